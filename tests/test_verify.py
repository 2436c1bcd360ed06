"""``tfckpt verify``: clean checkpoints pass; every kind of damage is caught and named.

Damage is done to copies of the TF-free twins (``nfx``), so these tests run without TensorFlow;
every checkpoint of both origins must pass; the TF engine's agreement uses the TF fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tfsave import native_values, save_native, save_with_tf
from typer.testing import CliRunner

from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.table import TableReader, TableWriter
from tfckpt.cli import app
from tfckpt.ops.verify import verify_checkpoint

from fixtures import CORPUS, Fixture, corpus_checkpoints

runner = CliRunner()


def verify(*args: Any) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["verify", *[str(a) for a in args], "--json"])
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def copy_prefix(prefix: Path, dest: Path) -> Path:
    for f in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(f, dest / f.name)
    return dest / prefix.name


@pytest.fixture
def adam_copy(nfx: Any, tmp_path: Path) -> Path:
    return copy_prefix(nfx["tf1_adam"].path, tmp_path)


def test_every_fixture_passes(any_fx: Any) -> None:
    for fixture in any_fx.values():
        if not fixture.intact:
            continue
        report = verify_checkpoint(str(fixture.path))
        assert report.ok, (fixture.name, report.problems)
        assert report.tensors > 0


@pytest.mark.parametrize("prefix", corpus_checkpoints(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_corpus_checkpoint_passes(prefix: Path) -> None:
    report = verify_checkpoint(
        str(prefix),
    )
    assert report.ok, report.problems


def _entry_of(prefix: Path, name: str) -> Any:
    bundle = BundleReader(str(prefix))
    entry = bundle.entries[name.encode()]
    bundle.close()
    return entry


def test_flipped_byte_inside_a_tensor(adam_copy: Path) -> None:
    entry = _entry_of(adam_copy, "model/dense0/kernel")
    data = Path(str(adam_copy) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 7] ^= 0x01
    data.write_bytes(bytes(raw))
    code, report = verify(adam_copy)
    assert code == 1
    assert [(p["check"], p["name"]) for p in report["problems"]] == [("crc", "model/dense0/kernel")]
    assert "checksum mismatch" in report["problems"][0]["message"]


def test_flipped_byte_in_the_index(adam_copy: Path) -> None:
    index = Path(str(adam_copy) + ".index")
    raw = bytearray(index.read_bytes())
    raw[30] ^= 0x04
    index.write_bytes(bytes(raw))
    code, report = verify(adam_copy)
    assert code == 1
    assert report["problems"][0]["check"] == "index"
    assert "checksum mismatch" in report["problems"][0]["message"]


def test_truncated_data_shard(adam_copy: Path) -> None:
    data = Path(str(adam_copy) + ".data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-50])
    code, report = verify(adam_copy)
    assert code == 1
    assert {p["check"] for p in report["problems"]} == {"range"}
    assert all(p["file"].endswith(".data-00000-of-00001") and p["name"] for p in report["problems"])


def test_missing_shard(nfx: Any, tmp_path: Path) -> None:
    copy = copy_prefix(nfx["sharded"].path, tmp_path)
    Path(str(copy) + ".data-00001-of-00002").unlink()
    code, report = verify(copy)
    assert code == 1
    assert any(p["check"] == "shard" and "missing" in p["message"] for p in report["problems"])


def test_entry_pointing_past_the_end(adam_copy: Path) -> None:
    index = Path(str(adam_copy) + ".index")
    from tfckpt import protos

    pairs = list(TableReader(str(index), index.read_bytes()))
    out = []
    for key, value in pairs:
        if key == b"global_step":
            entry = protos.BundleEntryProto.FromString(value)
            entry.offset = 10_000_000
            value = entry.SerializeToString()
        out.append((key, value))
    with open(index, "wb") as f:
        writer = TableWriter(f)
        for key, value in out:
            writer.add(key, value)
        writer.finish()
    code, report = verify(adam_copy)
    assert code == 1
    assert [(p["check"], p["name"]) for p in report["problems"]] == [("range", "global_step")]


def test_nan_injected_into_a_weight(adam_copy: Path, tmp_path: Path) -> None:
    values = native_values(str(adam_copy))
    values["model/dense1/kernel"] = values["model/dense1/kernel"].copy()
    values["model/dense1/kernel"][0, 0] = np.nan
    values["model/dense0/bias"] = np.full_like(values["model/dense0/bias"], np.inf)
    bad = save_native(str(tmp_path / "nan"), values)
    assert verify(bad)[0] == 0  # structurally fine
    code, report = verify(bad, "--no-nan")
    assert code == 1
    assert [(p["check"], p["name"]) for p in report["problems"]] == [("nan", "model/dense1/kernel")]
    assert "1 of 8 values are NaN" in report["problems"][0]["message"]
    code, report = verify(bad, "--no-inf")
    assert [(p["check"], p["name"]) for p in report["problems"]] == [("inf", "model/dense0/bias")]
    code, report = verify(bad, "--max-abs", "1000")
    assert code == 0  # max-abs looks at finite values
    code, report = verify(adam_copy, "--max-abs", "1e-9")
    assert code == 1 and {p["check"] for p in report["problems"]} == {"max_abs"}


def test_v1_checkpoint_verifies(nfx: Any) -> None:
    code, report = verify(nfx["v1"].path)
    assert code == 0 and report["format"] == "V1" and report["tensors"] == 2


def test_not_a_checkpoint_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a table")
    for target in (tmp_path / "junk", tmp_path / "missing"):
        result = runner.invoke(app, ["verify", str(target)])
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("tfckpt: error:")


def test_table_output(adam_copy: Path) -> None:
    result = runner.invoke(app, ["verify", str(adam_copy)])
    assert result.exit_code == 0 and result.stdout.startswith("OK:")


def test_missing_slice_of_a_partitioned_variable(nfx: Any, tmp_path: Path) -> None:
    copy = copy_prefix(nfx["partitioned"].path, tmp_path)
    index = Path(str(copy) + ".index")
    pairs = list(TableReader(str(index), index.read_bytes()))
    slice_keys = [k for k, _ in pairs if k.startswith(b"\x00") and b"emb/rows" in k]
    assert len(slice_keys) == 3
    with open(index, "wb") as f:
        writer = TableWriter(f)
        for key, value in pairs:
            if key != slice_keys[1]:
                writer.add(key, value)
        writer.finish()
    code, report = verify(copy)
    assert code == 1
    problems = [(p["check"], p["name"]) for p in report["problems"]]
    assert ("slices", "emb/rows") in problems
    assert any("cover" in p["message"] for p in report["problems"])


def test_variant_tensors_are_checked_by_their_own_checksum_layout(
    fx: dict[str, Fixture], tmp_path: Path
) -> None:
    """tf.data iterator state: per-element masked running CRCs (FORMAT.md §5)."""
    prefix = copy_prefix(fx["tf2_iterator"].path, tmp_path)
    assert verify(prefix)[0] == 0
    result = runner.invoke(app, ["diff", str(prefix), str(fx["tf2_iterator"].path)])
    assert result.exit_code == 0, result.output
    bundle = BundleReader(str(prefix))
    entry = bundle.entries[b"iterator/.ATTRIBUTES/ITERATOR_STATE"]
    bundle.close()
    data = next(tmp_path.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    raw[entry.offset + entry.size // 2] ^= 0x20
    data.write_bytes(bytes(raw))
    code, report = verify(prefix)
    assert code == 1
    [problem] = report["problems"]
    assert problem["name"] == "iterator/.ATTRIBUTES/ITERATOR_STATE"
    assert "checksum mismatch" in problem["message"]


@pytest.mark.tf
def test_engine_tf_agrees_with_native(fx: dict[str, Fixture], tmp_path: Path, tf: Any) -> None:
    adam_copy = copy_prefix(fx["tf1_adam"].path, tmp_path)
    for fixture in fx.values():
        if not fixture.intact:
            continue
        native = verify(fixture.path)
        via_tf = verify(fixture.path, "--engine", "tf")
        assert native[0] == via_tf[0] == 0, fixture.name
        assert native[1]["tensors"] == via_tf[1]["tensors"], fixture.name
    entry = _entry_of(adam_copy, "model/dense0/kernel")
    data = Path(str(adam_copy) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 7] ^= 0x01
    data.write_bytes(bytes(raw))
    code, report = verify(adam_copy, "--engine", "tf", "--no-nan")
    assert code == 1
    assert [p["name"] for p in report["problems"]] == ["model/dense0/kernel"]


def test_max_abs_bounds_integer_tensors_too(tmp_path: Path, tf: Any) -> None:
    prefix = save_with_tf(
        str(tmp_path / "m"), {"i": np.array([2**40, 3], np.int64), "f": np.ones(2, np.float32)}
    )
    for engine in ("native", "tf"):
        code, report = verify(prefix, "--max-abs", "1e6", "--engine", engine)
        assert code == 1 and [p["name"] for p in report["problems"]] == ["i"], engine
        assert verify(prefix, "--max-abs", "1e13", "--engine", engine)[0] == 0
