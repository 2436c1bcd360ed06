"""Hostile and broken inputs: every command answers with exit 0, 1 or 2 and one line, never a
traceback, a hang or an unbounded allocation.

* ``test_fuzz_fast_subset`` (``make test``): a fixed set of byte-level and structural mutations
  of the fixtures, the corpus and native seeds (tests/fuzz_inputs.py), each run through ``ls``,
  ``vars``, ``vars --stats``, ``diff``, ``verify``, ``rename``, ``prune`` and ``merge`` in worker
  processes limited by ``RLIMIT_AS`` (tests/fuzz_harness.py).
* ``test_fuzz_long`` (``make fuzz``, marked slow): the same with ``TFCKPT_FUZZ_CASES`` cases.
* Hypothesis: generated index entries (re-encoded with the project's own TableWriter, so every
  checksum is right and the deeper parsers run) against the library, under a memory guard.
* Named cases from the issue: 10^15-element shapes, 2^60-byte strings, lying Snappy blocks,
  a million shards, huge files that are not checkpoints, ... each pinned with its message.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import HAVE_TF
from fuzz_harness import default_inputs, memory_guard, run_cases
from fuzz_inputs import build_table, encode_block, one_block_table, snappy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tfckpt import protos
from tfckpt.bundle.checkpoint import open_checkpoint
from tfckpt.bundle.reader import BundleReader, data_filename
from tfckpt.bundle.slices import decode_slice_key, encode_slice_key
from tfckpt.bundle.table import (
    TableReader,
    TableWriter,
    crc32c,
    decode_varint,
    encode_varint,
    mask_crc,
)
from tfckpt.cli import app
from tfckpt.errors import CorruptCheckpoint, TfckptError
from tfckpt.ops.diff import diff_checkpoints
from tfckpt.ops.stats import tensor_stats
from tfckpt.ops.verify import verify_checkpoint

from fixtures import build_fixtures, default_dir

runner = CliRunner()
FAST_CASES = 600
HYPOTHESIS_EXAMPLES = int(os.environ.get("TFCKPT_FUZZ_EXAMPLES", "150"))


def _fixtures_dir() -> Path | None:
    if HAVE_TF:
        build_fixtures()
        return default_dir()
    return None


def _report(report: Any) -> None:
    for f in report.failures:
        print(f"{f['desc']}\n  {f['failure'][:3000]}")
    print(report.summary())


def test_fuzz_fast_subset(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_cases(
        FAST_CASES, 0, default_inputs(_fixtures_dir()), workers=min(os.cpu_count() or 1, 2)
    )
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.cases == FAST_CASES
    assert not report.real_failures, "\n".join(
        f"{f['desc']}\n  {f['failure'][:2000]}" for f in report.real_failures[:10]
    )


@pytest.mark.slow
def test_fuzz_long(capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("TFCKPT_FUZZ_CASES", "100000"))
    master = int(os.environ.get("TFCKPT_FUZZ_MASTER", "1"))
    report = run_cases(
        count, master, default_inputs(_fixtures_dir()), workers=min(os.cpu_count() or 1, 2)
    )
    with capsys.disabled():
        print()
        for f in report.real_failures[:50]:
            print(f"{f['desc']}\n  {f['failure'][:1500]}")
        known: dict[str, int] = {}
        for f in report.known:
            line = re.sub(r"'/[^']*'", "<path>", f["failure"].splitlines()[0])[:150]
            known[line] = known.get(line, 0) + 1
        for line, n in sorted(known.items(), key=lambda kv: -kv[1]):
            print(f"{n:6d}  {line}")
        print(report.summary())
    assert report.cases == count
    assert not report.real_failures


# ---- building hostile checkpoints with correct checksums --------------------------------------
def write_bundle(
    prefix: Path,
    entries: dict[bytes, Any],
    data: bytes | list[bytes] = b"",
    num_shards: int | None = None,
) -> Path:
    """An index of ``entries`` (protos) written with the project's TableWriter, plus data."""
    shards = data if isinstance(data, list) else [data]
    header = protos.BundleHeaderProto(num_shards=num_shards or len(shards))
    header.version.producer = 1
    with open(str(prefix) + ".index", "wb") as f:
        table = TableWriter(f)
        table.add(b"", header.SerializeToString())
        for key in sorted(entries):
            table.add(key, entries[key].SerializeToString())
        table.finish()
    for i, chunk in enumerate(shards):
        Path(data_filename(str(prefix), i, len(shards))).write_bytes(chunk)
    return prefix


def entry(dtype: int, shape: tuple[int, ...], offset: int = 0, size: int = 0, crc: int = 0) -> Any:
    e = protos.BundleEntryProto(dtype=dtype, offset=offset, size=size, crc32c=crc)
    e.shape.SetInParent()
    for d in shape:
        e.shape.dim.add(size=d)
    return e


def string_bytes(lengths: list[int], payload: bytes) -> tuple[bytes, int]:
    """A string tensor's stored bytes with the lengths given (true or not); checksums right."""
    body = b"".join(encode_varint(n) for n in lengths)
    crc = 0
    for n in lengths:
        crc = crc32c(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little"), crc)
    len_crc = struct.pack("<I", mask_crc(crc))
    crc = crc32c(payload, crc32c(len_crc, crc))
    return body + len_crc + payload, mask_crc(crc)


def cli(*args: Any) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2), result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfckpt: error:")]
    assert len(errors) <= 1
    assert "Traceback" not in result.stderr
    return result


LIMITED = 1 << 30  # address space for the subprocess checks: far below what a lie would need


def run_limited(
    *args: Any, memory: int = LIMITED, timeout: float = 60
) -> subprocess.CompletedProcess:
    """``python -m tfckpt ARGS`` with RLIMIT_AS; an attempted huge allocation fails it."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        env=dict(os.environ, COLUMNS="150"),
    )
    assert proc.returncode in (0, 1, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    return proc


def error_line(proc: Any) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("tfckpt: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---- the named hostile inputs of the issue ----------------------------------------------------
def test_shape_of_1e15_elements_is_rejected_before_allocating(tmp_path: Path) -> None:
    data = np.arange(4, dtype=np.float32).tobytes()
    prefix = write_bundle(
        tmp_path / "big",
        {b"huge": entry(1, (10**5, 10**10), 0, 4 * 10**15), b"ok": entry(1, (4,), 0, 16)},
        data,
    )
    for args in (
        ("vars", prefix, "--stats"),
        ("vars", prefix, "--show", "huge"),
        ("diff", prefix, prefix),
    ):
        proc = run_limited(*args)
        assert proc.returncode == 2
        assert "needs bytes 0..4000000000000000 but the shard has 16" in error_line(proc)
    proc = run_limited("verify", prefix, "--json")
    assert proc.returncode == 1 and "truncated?" in proc.stdout
    # More than 2^50 elements is rejected from the index alone, whatever the size says.
    write_bundle(tmp_path / "absurd", {b"x": entry(1, (2**30, 2**30, 2**30))}, b"")
    proc = run_limited("vars", tmp_path / "absurd")
    assert proc.returncode == 2 and "claims 1237940039285380274899124224 elements" in error_line(
        proc
    )


def test_partitioned_tensor_claiming_1e15_elements(tmp_path: Path) -> None:
    """Found by the fuzzer: a partitioned tensor was allocated whole before its slices were
    checked, so a string (or lying numeric) one claiming 10^15 elements ran out of memory."""
    body, crc = string_bytes([1], b"a")
    for dtype in (7, 1):
        full = entry(dtype, (10**15,))
        spec = ((0, 1),)
        part = full.slices.add()
        ext = part.extent.add()
        ext.start, ext.length = 0, 1
        piece = entry(dtype, (1,), 0, len(body), crc)
        prefix = write_bundle(
            tmp_path / f"p{dtype}", {b"t": full, encode_slice_key(b"t", spec): piece}, body
        )
        proc = run_limited("vars", prefix, "--show", "t")
        assert proc.returncode == 2
        assert "slices of 't' do not cover its shape" in error_line(proc)
        assert run_limited("verify", prefix).returncode == 1


def test_string_element_claiming_2_pow_60_bytes(tmp_path: Path) -> None:
    body, crc = string_bytes([2**60, 3], b"abc")
    prefix = write_bundle(tmp_path / "s", {b"s": entry(7, (2,), 0, len(body), crc)}, body)
    proc = run_limited("vars", prefix, "--show", "s")
    assert proc.returncode == 2
    assert "string lengths add up to 1152921504606846979 bytes but 3 are stored" in error_line(proc)
    verify = run_limited("verify", prefix, "--json")
    assert verify.returncode == 1 and "add up to" in verify.stdout
    # A count of 10^15 strings in 12 bytes is refused before any length is decoded.
    prefix = write_bundle(tmp_path / "n", {b"s": entry(7, (10**15,), 0, len(body), crc)}, body)
    assert "claims 1000000000000000 strings in" in error_line(
        run_limited("vars", prefix, "--stats", "--all", "--show", "s")
    )


def test_snappy_blocks_lying_about_their_length(tmp_path: Path) -> None:
    header = protos.BundleHeaderProto(num_shards=1).SerializeToString()
    block = snappy(encode_block([(b"", header)]))
    _, pos = decode_varint(block, 0, len(block))
    for claimed, message in (
        (2**40, "claims 1099511627776 bytes"),  # beyond every bound
        (5000, "claims 5000 bytes"),  # under 64 MiB, but beyond Snappy's densest expansion
        (3, "Snappy block"),  # shorter than the data: the decoder refuses it
    ):
        path = tmp_path / f"lie{claimed}.index"
        path.write_bytes(one_block_table(encode_varint(claimed) + block[pos:], 1))
        with pytest.raises(CorruptCheckpoint, match=message):
            list(TableReader.open(str(path)))
        proc = run_limited("vars", path)
        assert proc.returncode == 2 and "Snappy" in error_line(proc)


def test_a_hundred_thousand_shards_verify_is_quick_and_short(tmp_path: Path) -> None:
    data = np.arange(3, dtype=np.int32).tobytes()
    prefix = tmp_path / "m"
    entries = {b"x": entry(3, (3,), 0, 12, mask_crc(crc32c(data)))}
    write_bundle(prefix, entries, [], num_shards=10**6)
    assert "header says 1000000 shards" in cli("vars", prefix).stderr
    write_bundle(prefix, entries, [], num_shards=10**5)
    Path(data_filename(str(prefix), 0, 10**5)).write_bytes(data)
    started = time.monotonic()
    result = cli("verify", prefix, "--json")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    import json

    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 21
    assert "99979 more of 100000 data shards are missing" in problems[-1]["message"]


def test_big_file_that_is_not_a_checkpoint_is_not_read_whole(tmp_path: Path) -> None:
    """``ls`` and path resolution probe extensionless files for V1 tables: a 4 GiB file must not
    be read into memory to find out it is not one (sparse, so the test costs no disk)."""
    big = tmp_path / "dataset"
    with open(big, "wb") as f:
        f.truncate(4 << 30)
    (tmp_path / "state").write_text("x")
    proc = run_limited("ls", tmp_path, "--json")
    assert proc.returncode == 0
    proc = run_limited("vars", big)
    assert proc.returncode == 2 and "not a checkpoint" in error_line(proc)


def test_name_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    data = np.zeros(1, np.float32).tobytes()
    prefix = write_bundle(
        tmp_path / "u", {b"ok": entry(1, (1,), 0, 4), b"\xff\xfe": entry(1, (1,), 0, 4)}, data
    )
    for command in ("vars", "verify"):
        result = cli(command, prefix)
        assert result.exit_code == 2 if command == "vars" else 1
    assert "key is not UTF-8 text" in cli("vars", prefix).stderr


def test_damaged_slice_is_named_readably(fx: dict, tmp_path: Path) -> None:
    """Found by the fuzzer: verify printed binary slice keys and crashed encoding them."""
    import json
    import shutil

    src = fx["partitioned"].path
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    prefix = tmp_path / src.name
    reader = BundleReader(str(prefix))
    part = next(e for e in reader.entries.values() if e.is_slice_key and e.size)
    reader.close()
    data = Path(data_filename(str(prefix), part.shard_id, reader.num_shards))
    raw = bytearray(data.read_bytes())
    raw[part.offset] ^= 0xFF
    data.write_bytes(bytes(raw))
    result = cli("verify", prefix, "--json")
    assert result.exit_code == 1
    problem = json.loads(result.stdout)["problems"][0]
    name, _spec = decode_slice_key(part.key)
    assert problem["name"].startswith(name.decode() + "[") and problem["check"] == "crc"
    assert cli("verify", prefix).exit_code == 1  # the table renders too


def test_many_slices_are_checked_in_linear_time(tmp_path: Path) -> None:
    rows = 20000
    full = entry(1, (rows, 2))
    entries: dict[bytes, Any] = {b"t": full}
    data = np.zeros(2, np.float32).tobytes()
    crc = mask_crc(crc32c(data))
    for r in range(rows):
        s = full.slices.add()
        e = s.extent.add()
        e.start, e.length = r, 1
        s.extent.add()
        entries[encode_slice_key(b"t", ((r, 1), (0, -1)))] = entry(1, (1, 2), 0, 8, crc)
    prefix = write_bundle(tmp_path / "many", entries, data)
    started = time.monotonic()
    report = verify_checkpoint(str(prefix))
    assert report.ok, report.problems[:3]
    assert time.monotonic() - started < 20


def test_corrupt_state_file_is_ignored_with_a_note(tmp_path: Path) -> None:
    data = np.zeros(1, np.float32).tobytes()
    write_bundle(
        tmp_path / "model.ckpt-1", {b"v": entry(1, (1,), 0, 4, mask_crc(crc32c(data)))}, data
    )
    (tmp_path / "checkpoint").write_text("{" * 10000)
    result = cli("vars", tmp_path)
    assert result.exit_code == 0 and "v" in result.stdout
    notes = result.stderr.splitlines()
    assert len(notes) == 1 and "not a checkpoint state file" in notes[0] and len(notes[0]) < 400


def test_v1_values_that_lie(tmp_path: Path) -> None:
    """Found by the fuzzer: V1 half values beyond 16 bits and odd complex lists raised numpy
    errors; a V1 shape of 10^15 elements was allocated before any value was read."""
    from fuzz_inputs import v1_value

    from tfckpt.bundle.slices import slice_to_proto

    def v1(name: str, dtype: int, shape: tuple[int, ...], field: str, values: list) -> Path:
        meta = protos.SavedTensorSlices()
        t = meta.meta.tensor.add(name="t", type=dtype)
        for d in shape:
            t.shape.dim.add(size=d)
        spec = tuple((0, -1) for _ in shape)
        slice_to_proto(spec, t.slice.add())
        pairs = sorted(
            [
                (b"", meta.SerializeToString()),
                (encode_slice_key(b"t", spec), v1_value("t", spec, field, values)),
            ]
        )
        path = tmp_path / name
        path.write_bytes(build_table([pairs]))
        return path

    cases = [
        (v1("half", 19, (2,), "half_val", [70000, 1]), "half value bits outside 0..65535"),
        (
            v1("cplx", 8, (1,), "scomplex_val", [1.0, 2.0, 3.0]),
            "3 floats stored, 1 values expected",
        ),
        (v1("huge", 1, (10**5, 10**10), "float_val", [1.0]), "1 values stored, 1000000000000000"),
    ]
    for path, message in cases:
        proc = run_limited("vars", path, "--show", "t")
        assert proc.returncode == 2 and message in error_line(proc), proc.stderr
        assert run_limited("verify", path).returncode == 1


def test_unreadable_object_graph_is_corrupt_not_a_crash(fx: dict, tmp_path: Path) -> None:
    from tfckpt.bundle.writer import BundleWriter
    from tfckpt.dtypes import dtype_from_name

    prefix = tmp_path / "og"
    with BundleWriter(str(prefix), force=True) as w:
        w.add_array(
            "_CHECKPOINTABLE_OBJECT_GRAPH",
            np.array(b"\xff\xff\xff", dtype=object),
            dtype_from_name("string"),
        )
        w.add_array("v", np.zeros(3, np.float32), dtype_from_name("float32"))
        w.commit()
    with open_checkpoint(prefix) as ckpt, pytest.raises(CorruptCheckpoint, match="unreadable"):
        ckpt.object_graph()
    with BundleWriter(str(prefix), force=True) as w:
        w.add_array(
            "_CHECKPOINTABLE_OBJECT_GRAPH", np.zeros(0, dtype=object), dtype_from_name("string")
        )
        w.commit()
    with open_checkpoint(prefix) as ckpt, pytest.raises(CorruptCheckpoint, match="not one string"):
        ckpt.object_graph_bytes()


# ---- hypothesis: generated entries, checksums right, against the library ----------------------
HOSTILE_INTS = st.sampled_from(
    [-1, -(2**63), 0, 1, 3, 4, 7, 8, 12, 2**31, 2**32, 2**60, 10**15, 2**63 - 1]
)
DTYPES = st.sampled_from(
    [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 14, 17, 18, 19, 20, 21, 23, 24, 29, 99, 107]
)


@st.composite
def hostile_entries(draw: Any) -> tuple[Any, bytes]:
    """An entry proto and data bytes; half the time offset/size/CRC are made consistent."""
    data = draw(st.binary(max_size=64))
    e = protos.BundleEntryProto(dtype=draw(DTYPES))
    e.shape.SetInParent()
    if draw(st.booleans()):
        e.shape.unknown_rank = draw(st.booleans())
    for d in draw(st.lists(st.one_of(st.integers(-2, 5), HOSTILE_INTS), max_size=4)):
        e.shape.dim.add(size=d)
    e.shard_id = draw(st.sampled_from([0, 0, 0, 1, -1]))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        stop = draw(st.integers(start, len(data)))
        e.offset, e.size = start, stop - start
        e.crc32c = mask_crc(crc32c(data[start:stop]))
    else:
        e.offset, e.size = draw(st.one_of(HOSTILE_INTS, st.integers(0, 80))), draw(HOSTILE_INTS)
        e.crc32c = draw(st.integers(0, 2**32 - 1))
    for _ in range(draw(st.integers(0, 2))):
        s = e.slices.add()
        for _ in range(draw(st.integers(0, 3))):
            ext = s.extent.add()
            if draw(st.booleans()):
                ext.start = draw(st.one_of(st.integers(-2, 4), HOSTILE_INTS))
                ext.length = draw(st.one_of(st.integers(-2, 4), HOSTILE_INTS))
    return e, data


def exercise_library(path: str) -> None:
    """What ls/vars/vars --stats/diff/verify do, through the library: only TfckptError may
    escape any step."""
    from tfckpt.bundle.discover import discover

    discover(os.path.dirname(path), recursive=True)
    with contextlib.suppress(TfckptError):
        verify_checkpoint(path)
    try:
        ckpt = open_checkpoint(path)
    except TfckptError:
        return
    with ckpt:
        for info in ckpt.tensors():
            with contextlib.suppress(TfckptError):
                tensor_stats(ckpt.iter_chunks(info.name), info.dtype)
            with contextlib.suppress(TfckptError):
                ckpt.read(info.name)
        with contextlib.suppress(TfckptError):
            diff_checkpoints(ckpt, ckpt)


def generated_entries_case(
    tmp_path_factory: pytest.TempPathFactory, items: list, partitioned: bool
) -> None:
    """Entries from ``hostile_entries`` (slice entries too) in one bundle, run through the
    library under a 1 GiB memory guard."""
    root = tmp_path_factory.mktemp("h")
    entries: dict[bytes, Any] = {}
    data = b""
    for i, (e, chunk) in enumerate(items):
        if 0 <= e.offset < 2**62:
            e.offset += len(data)
        data += chunk
        key = f"t{i}".encode()
        entries[key] = e
        if partitioned and e.slices:
            from tfckpt.bundle.slices import slice_from_proto

            for s in e.slices:
                try:
                    spec = slice_from_proto(s, len(e.shape.dim))
                    part = protos.BundleEntryProto()
                    part.CopyFrom(e)
                    del part.slices[:]
                    entries[encode_slice_key(key, spec)] = part
                except (ValueError, OverflowError):
                    pass
    prefix = write_bundle(root / "h", entries, data)
    with memory_guard(1 << 30):
        exercise_library(str(prefix))


ENTRY_LISTS = {
    "items": st.lists(hostile_entries(), min_size=1, max_size=3),
    "partitioned": st.booleans(),
}
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=HEALTH,
)
@given(**ENTRY_LISTS)
def test_generated_entries(
    tmp_path_factory: pytest.TempPathFactory, items: list, partitioned: bool
) -> None:
    generated_entries_case(tmp_path_factory, items, partitioned)


@pytest.mark.slow
def test_generated_entries_long(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``make fuzz``: one generated bundle per 20 fuzz cases, not derandomized."""
    examples = max(HYPOTHESIS_EXAMPLES, int(os.environ.get("TFCKPT_FUZZ_CASES", "100000")) // 20)
    run = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=HEALTH
    )(given(**ENTRY_LISTS)(generated_entries_case))
    run(tmp_path_factory)


@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True, database=None)
@given(blob=st.binary(max_size=300), cut=st.integers(0, 400))
def test_arbitrary_table_bytes(blob: bytes, cut: int) -> None:
    """Any bytes ending in the table magic: only CorruptCheckpoint (or clean entries) come out."""
    raw = blob + struct.pack("<II", 0x8B80FB57, 0xDB477524)
    for data in (raw, raw[cut:]):
        with contextlib.suppress(CorruptCheckpoint):
            list(TableReader("<blob>", data))


@given(pairs=st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=12)), max_size=40))
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True, database=None)
def test_table_round_trip_and_order(pairs: list[tuple[bytes, bytes]]) -> None:
    """The writer's tables read back exactly; unsorted or duplicate keys are refused on read."""
    unique = sorted(dict(pairs).items())
    buf = io.BytesIO()
    writer = TableWriter(buf)
    for k, v in unique:
        writer.add(k, v)
    writer.finish()
    assert list(TableReader("<t>", buf.getvalue())) == unique
    if len(pairs) > 1 and [k for k, _ in pairs] != [k for k, _ in unique]:
        with pytest.raises(CorruptCheckpoint, match=r"out of order|duplicate key"):
            list(TableReader("<t>", build_table([pairs])))


@given(
    name=st.binary(max_size=8),
    spec=st.lists(
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-1, 2**63 - 1)), max_size=4
    ),
)
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True, database=None)
def test_slice_keys_decode(name: bytes, spec: list[tuple[int, int]]) -> None:
    key = encode_slice_key(name, tuple(spec))
    assert decode_slice_key(key) == (name, tuple(spec))
    for cut in range(len(key)):
        with contextlib.suppress(ValueError):
            decode_slice_key(key[:cut])


def test_empty_tensor_with_an_absurd_dimension(tmp_path: Path) -> None:
    """Found by make fuzz: shape [0, 2^62] has no elements, but numpy cannot even build an
    empty array of it (vars --stats and verify raised ValueError)."""
    prefix = write_bundle(tmp_path / "e", {b"e": entry(1, (0, 2**62), 0, 0, mask_crc(0))}, b"")
    for args in (("vars", prefix, "--stats"), ("verify", prefix)):
        result = cli(*args)
        assert result.exit_code == 2 if args[0] == "vars" else 1
    assert "is absurd (even if empty)" in cli("vars", prefix).stderr


def test_verify_checks_sizes_against_shapes(tmp_path: Path) -> None:
    """Found by the fuzzer's consistency rule: verify passed entries whose bytes were intact but
    whose size did not fit their shape, which vars --stats then called corrupt."""
    import json

    data = np.arange(3, dtype=np.float32).tobytes()
    prefix = write_bundle(
        tmp_path / "s", {b"x": entry(1, (4,), 0, 12, mask_crc(crc32c(data)))}, data
    )
    result = cli("verify", prefix, "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["check"] == "size"
    assert "'x' has 12 bytes, shape [4] of float32 needs 16" in problem["message"]
    assert cli("vars", prefix, "--stats").exit_code == 2


@pytest.mark.parametrize("what", ["index", "data", "state"])
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "loop"])
def test_files_that_are_not_regular_files(what: str, kind: str, tmp_path: Path) -> None:
    """A FIFO would block an open() until a writer came; a device never ends. Both are refused
    before anything is read (each run here is bounded by a timeout and RLIMIT_AS)."""
    data = np.arange(3, dtype=np.float32).tobytes()
    prefix = write_bundle(
        tmp_path / "model.ckpt-1", {b"x": entry(1, (3,), 0, 12, mask_crc(crc32c(data)))}, data
    )
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n')
    target = {
        "index": tmp_path / "model.ckpt-1.index",
        "data": Path(data_filename(str(prefix), 0, 1)),
        "state": tmp_path / "checkpoint",
    }[what]
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "loop":
        target.symlink_to(target.name)
    else:
        target.symlink_to(kind)
    assert run_limited("ls", tmp_path, timeout=30).returncode == 0
    listed = run_limited("vars", tmp_path, timeout=30).returncode
    # Listing needs only the index: a data file that is missing (a dangling link or a loop)
    # is a warning then (issue 12), other bad data files are found when read.
    assert listed == 2 if what == "index" else listed == 0
    stats = run_limited("vars", prefix, "--stats", timeout=30)
    if what == "state":
        assert stats.returncode == 0
        return
    assert stats.returncode == 2
    reasons = ("not a regular file", "Too many levels", "no such file", "shard is missing")
    assert any(r in error_line(stats) for r in reasons), stats.stderr
    if what == "data" and kind == "loop":
        return  # verify's progress total stats the loop: a cli/cmd_check.py bug, reported
    verify = run_limited("verify", prefix, timeout=30)
    assert verify.returncode == (2 if what == "index" else 1), verify.stdout + verify.stderr


# ---- the harness itself catches what it is meant to catch -------------------------------------
class _Result:
    def __init__(self, code: int, stderr: str = "", exception: BaseException | None = None):
        self.exit_code = code
        self.stderr = stderr
        self.exception = exception


def test_harness_flags_contract_violations() -> None:
    from fuzz_harness import check_result

    ok = check_result("vars", [], _Result(2, "tfckpt: error: x: corrupt\n", SystemExit(2)))
    assert ok is None
    assert check_result("vars", [], _Result(0, "wrote x (3 tensors)\n")) is None
    bad = {
        "uncaught": _Result(1, "", ValueError("boom")),
        "exit code 3": _Result(3, "tfckpt: error: x\n", SystemExit(3)),
        "2 error lines": _Result(2, "tfckpt: error: a\ntfckpt: error: b\n", SystemExit(2)),
        "not tfckpt messages": _Result(2, "tfckpt: error: a\n  more detail\n", SystemExit(2)),
        "without an error message": _Result(2, "", SystemExit(2)),
        "characters": _Result(2, "tfckpt: error: " + "x" * 5000 + "\n", SystemExit(2)),
    }
    for expected, result in bad.items():
        message = check_result("vars", [], result)
        assert message is not None and expected in message, (expected, message)


def test_harness_flags_a_writer_that_copies_damage() -> None:
    """rename copies every tensor: exit 0 after verify found damaged bytes is a violation."""
    import json

    from fuzz_harness import check_consistency

    def verify(check: str) -> tuple[list[str], int, str, str]:
        report = {"problems": [{"check": check, "message": "x: checksum mismatch"}]}
        return (["verify", "p", "--json"], 1, "", json.dumps(report))

    refused = (["rename"], 2, "tfckpt: error: x: checksum mismatch\n", "")
    copied = (["rename"], 0, "", "")
    assert check_consistency({"verify": verify("crc"), "rename": refused}) == []
    flagged = check_consistency({"verify": verify("crc"), "rename-meta": copied})
    assert len(flagged) == 1 and "rename-meta copied it" in flagged[0]
    # Value findings (NaN) and slice coverage are not damage rename must refuse.
    assert check_consistency({"verify": verify("nan"), "rename": copied}) == []
    assert check_consistency({"verify": verify("slices"), "rename": copied}) == []


def test_harness_guards_time_and_memory() -> None:
    from fuzz_harness import Deadline, deadline

    with pytest.raises(Deadline), deadline(0.2):
        time.sleep(5)
    if sys.platform.startswith("linux"):
        with pytest.raises(MemoryError), memory_guard(256 << 20):
            np.ones(1 << 30, dtype=np.uint8)
        np.ones(1 << 28, dtype=np.uint8)  # the limit is lifted afterwards
