"""``export`` of many plain tensors through columns (tfckpt/transfer/columns.py, issue 13): the
same plan, bytes and errors as the per-tensor path, on checkpoints written by tfckpt's writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from clitools import ok, run
from native_fixtures import _write

import tfckpt
from tfckpt.bundle.checkpoint import open_checkpoint
from tfckpt.transfer import columns, export, safetensors
from tfckpt.transfer.formats import Format

ODD_NAMES = ['say "hi"', "back\\slash", "tab\there", "ünïcødé/ß", "emoji/🙂", "ctl\x01x"]


def mixed(prefix: Path, shards: int = 1) -> dict[str, np.ndarray]:
    """Small tensors of several dtypes and shapes, empty ones, one above ``columns.SMALL``,
    names JSON must escape, strings (safetensors skips them); ``shards`` data files."""
    rng = np.random.default_rng(7)
    values: dict[str, np.ndarray] = {}
    for i in range(600):
        values[f"layer_{i // 50:03d}/w_{i % 50:02d}"] = rng.standard_normal(4).astype(np.float32)
        if i % 7 == 0:
            values[f"layer_{i // 50:03d}/step_{i % 50:02d}"] = np.array(i, np.int64)
        if i % 11 == 0:
            values[f"layer_{i // 50:03d}/m_{i % 50:02d}"] = rng.integers(0, 9, (3, 2), np.int32)
        if i % 13 == 0:
            values[f"layer_{i // 50:03d}/h_{i % 50:02d}"] = rng.standard_normal((2, 2, 2)).astype(
                ml_dtypes.bfloat16
            )
    values["empty/a"] = np.zeros((0,), np.float32)
    values["empty/b"] = np.zeros((2, 0), np.float32)
    values["flags"] = np.array([True, False, True])
    values["wide"] = np.arange(4, dtype=np.float64)
    values["big/kernel"] = rng.standard_normal(300_000).astype(np.float32)  # 1.2 MB
    values["vocab"] = np.array([b"a", b"bc"], dtype=object)
    for k, name in enumerate(ODD_NAMES):
        values[name] = np.full(2, k, np.float32)
    return _write(prefix, values, shards=shards)


@pytest.fixture(scope="module")
def mixed_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("mixed") / "model.ckpt"
    mixed(prefix)
    return prefix


@pytest.fixture(scope="module")
def sharded_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("mixed2") / "model.ckpt"
    mixed(prefix, shards=2)
    return prefix


def per_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "COLUMNS", False)


OPTIONS: list[list[str]] = [
    [],
    ["--match", "layer_00[13]/*", "--match", "big/*"],  # gaps between the tensors copied
    ["--sep", ".", "--metadata", "origin=test"],
    ["--sub", "^layer_", "L"],
]


@pytest.mark.parametrize("args", OPTIONS)
@pytest.mark.parametrize("which", ["mixed_prefix", "sharded_prefix"])
def test_columns_write_what_the_per_tensor_path_writes(
    which: str,
    args: list[str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = request.getfixturevalue(which)
    fast = tfckpt.export(prefix, tmp_path / "a.safetensors", dry_run=True)
    assert fast.plan.columns is not None  # planned in columns
    ok("export", prefix, tmp_path / "a.safetensors", *args)
    doc_a = json.loads(ok("export", prefix, tmp_path / "x.safetensors", *args, "--json").stdout)
    with monkeypatch.context() as m:
        per_tensor(m)
        slow = tfckpt.export(prefix, tmp_path / "b.safetensors", dry_run=True)
        assert slow.plan.columns is None
        ok("export", prefix, tmp_path / "b.safetensors", *args)
        doc_b = json.loads(ok("export", prefix, tmp_path / "y.safetensors", *args, "--json").stdout)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    for doc in (doc_a, doc_b):
        doc.pop("output")
    assert doc_a == doc_b
    if not args:
        skip = {"source": "vocab", "dtype": "string", "reason": "safetensors has no string type"}
        assert doc_a["skipped"] == [skip]
    from safetensors.numpy import load_file

    loaded = load_file(tmp_path / "a.safetensors")
    with open_checkpoint(prefix) as ckpt:
        for name in ("big/kernel", "empty/b", 'say "hi"', "ctl\x01x"):
            if name in loaded:
                assert np.array_equal(loaded[name], ckpt[name]), name


def test_items_built_from_columns_are_the_per_tensor_plan(
    mixed_prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_checkpoint(mixed_prefix) as ckpt:
        fast = export.plan_export(ckpt, "o.safetensors", Format.safetensors)
        assert fast.columns is not None and fast.count == len(fast.columns)
        total = fast.total_bytes
        with monkeypatch.context() as m:
            per_tensor(m)
            slow = export.plan_export(ckpt, "o.safetensors", Format.safetensors)
        assert fast.items == slow.items and fast.columns is None  # built once, then the list
        assert total == slow.total_bytes and fast.metadata == slow.metadata
        assert fast.data_residue == slow.data_residue


def test_the_header_is_what_json_writes() -> None:
    tensors = [
        safetensors.StTensor(name, "F32", shape, 8 * k, 8 * k + 8)
        for k, (name, shape) in enumerate(
            [("plain", (2,)), ("scalar", ()), ("m", (1, 2, 3)), *((n, (0,)) for n in ODD_NAMES)]
        )
    ]
    for metadata in ({}, {"k": 'v "q"', "ü": "\n"}):
        for residue in (None, 0, 4096):
            body: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
            for t in tensors:
                body[t.name] = {
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "data_offsets": [t.begin, t.end],
                }
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            raw += b" " * (-len(raw) % 8)
            if residue is not None:
                raw += b" " * ((residue - 8 - len(raw)) % safetensors.ALIGN_GRANULE)
            expected = struct.pack("<Q", len(raw)) + raw
            assert safetensors.build_st_header(tensors, metadata, residue) == expected
    assert safetensors.build_st_header([], {}) == struct.pack("<Q", 8) + b"{}      "


def test_a_flipped_byte_among_many_small_tensors_is_named(tmp_path: Path) -> None:
    values = {f"t/{i:05d}": np.full(16, i, np.float32) for i in range(5000)}
    prefix = tmp_path / "src" / "model.ckpt"
    _write(prefix, values)
    data = next(prefix.parent.glob("model.ckpt.data-*"))
    raw = bytearray(data.read_bytes())
    raw[3217 * 64 + 5] ^= 0x10  # inside t/03217
    data.write_bytes(bytes(raw))
    for out in ("w.safetensors", "w/w.safetensors"):
        result = run("export", prefix, tmp_path / out)
        assert result.exit_code == 2, result.stderr
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line
        assert "'t/03217'" in line and "checksum mismatch" in line
    assert {p.name for p in tmp_path.iterdir()} == {"src"}


def test_a_damaged_large_tensor_and_a_truncated_shard(tmp_path: Path) -> None:
    prefix = tmp_path / "src" / "model.ckpt"
    mixed(prefix)
    data = next(prefix.parent.glob("model.ckpt.data-*"))
    with open_checkpoint(prefix) as ckpt:
        big = ckpt.entry("big/kernel")
        at, size = big.offset, big.size
    raw = bytearray(data.read_bytes())
    raw[at + size // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    result = run("export", prefix, tmp_path / "w.safetensors")
    assert result.exit_code == 2 and "'big/kernel'" in result.stderr, result.stderr
    data.write_bytes(bytes(raw[: len(raw) // 2]))
    result = run("export", prefix, tmp_path / "w.safetensors")
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.name for p in tmp_path.iterdir()} == {"src"}


def test_runs_and_gaps_are_copied_in_few_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adjacent tensors go out in one copy; every other one (gaps) in one read of the span."""
    values = {f"t/{i:05d}": np.full(16, i, np.float32) for i in range(4000)}
    prefix = tmp_path / "src" / "model.ckpt"
    _write(prefix, values)
    from tfckpt.transfer import common

    calls: list[int] = []
    real = common.copy_to_fd

    def counted(src: int, offset: int, size: int, dst: int, on_bytes: Any) -> None:
        calls.append(size)
        real(src, offset, size, dst, on_bytes)

    monkeypatch.setattr(common, "copy_to_fd", counted)
    ok("export", prefix, tmp_path / "all.safetensors")
    assert calls == [4000 * 64]
    calls.clear()
    ok("export", prefix, tmp_path / "half.safetensors", "--regex", r"[02468]$")
    assert calls == []  # gathered from one read
    from safetensors.numpy import load_file

    half = load_file(tmp_path / "half.safetensors")
    assert len(half) == 2000 and np.array_equal(half["t/03998"], values["t/03998"])


def test_a_header_safetensors_cannot_read_is_refused_before_writing(
    mixed_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safetensors, "MAX_ST_HEADER", 4096)
    result = run("export", mixed_prefix, tmp_path / "w.safetensors")
    assert result.exit_code == 2 and "safetensors reads at most 4,096" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_large_headers_are_compared_byte_for_byte(
    mixed_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above PARSE_HEADER_MAX the header is not parsed back, but what is on disk must still be
    what was written."""
    monkeypatch.setattr(safetensors, "PARSE_HEADER_MAX", 0)
    real = safetensors.Safetensors.write

    def scribble(self: Any, src: Any, plan: Any, tmp: str, *args: Any) -> list[str]:
        notes = real(self, src, plan, tmp, *args)
        with open(tmp, "r+b") as f:
            f.seek(20)
            f.write(b"X")
        return notes

    ok("export", mixed_prefix, tmp_path / "ok.safetensors")
    monkeypatch.setattr(safetensors.Safetensors, "write", scribble)
    result = run("export", mixed_prefix, tmp_path / "w.safetensors")
    assert result.exit_code == 1 and "header differs" in result.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"ok.safetensors"}


def test_small_tensors_are_checked_in_windows(
    mixed_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows smaller than one tensor still read every tensor once."""
    monkeypatch.setattr(columns, "WINDOW", 16)
    ok("export", mixed_prefix, tmp_path / "w.safetensors")
    with monkeypatch.context() as m:
        per_tensor(m)
        ok("export", mixed_prefix, tmp_path / "v.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes() == (tmp_path / "v.safetensors").read_bytes()


@pytest.mark.parametrize("out", ["w.npz", "w/"])
def test_npz_and_npy_are_planned_in_columns_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    """Their writers go tensor by tensor: the records are built from the columns, the same."""
    values = {f"t/{i:04d}": np.full((2, 3), i, np.float32) for i in range(300)}
    values["step"] = np.array(7, np.int64)
    prefix = tmp_path / "src" / "model.ckpt"
    _write(prefix, values)
    used: list[bool] = []
    real = export._plan_columns

    def spy(*args: Any) -> bool:
        used.append(real(*args))
        return used[-1]

    monkeypatch.setattr(export, "_plan_columns", spy)
    doc_a = json.loads(ok("export", prefix, f"{tmp_path}/a/{out}", "--json").stdout)
    assert used == [True]
    with monkeypatch.context() as m:
        per_tensor(m)
        doc_b = json.loads(ok("export", prefix, f"{tmp_path}/b/{out}", "--json").stdout)
    assert used == [True, False]
    assert {**doc_a, "output": None} == {**doc_b, "output": None}
    if out.endswith(".npz"):
        with np.load(tmp_path / "a" / out) as a, np.load(tmp_path / "b" / out) as b:
            assert sorted(a.files) == sorted(b.files) == sorted(values)
            assert all(np.array_equal(a[k], b[k]) for k in a.files)
    else:
        a_files = sorted(p.name for p in (tmp_path / "a" / out).iterdir())
        assert a_files == sorted(p.name for p in (tmp_path / "b" / out).iterdir())
        for name in a_files:
            assert (tmp_path / "a" / out / name).read_bytes() == (
                tmp_path / "b" / out / name
            ).read_bytes()
