"""The writers' bulk paths (issue 13): index tables, entries and checksums built in columns give
exactly what the one-entry-at-a-time paths give, and a damaged byte among 200,000 tensors is
still caught and named."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from clitools import ok, run

import tfckpt
from tfckpt.bundle import bulk, writer
from tfckpt.bundle.bulk import encode_entries, encode_rows, table_blocks
from tfckpt.bundle.index import encode_entry
from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.table import BLOCK_SIZE, RESTART_INTERVAL, TableReader, TableWriter
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import dtype_from_name
from tfckpt.errors import CorruptCheckpoint, UsageError


def _random_table(rng: random.Random, n: int) -> tuple[list[bytes], list[bytes]]:
    keys: set[bytes] = set()
    stems = [b"", b"a", b"model/layer_", b"model/layer_0001/kernel/", b"x" * 300, b"\x00\x01"]
    while len(keys) < n:
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        keys.add(rng.choice(stems) + tail)
    sizes = [0, 3, 20, 127, 128, 200, 5]
    values = [
        bytes(
            rng.randrange(256) for _ in range(40_000 if rng.random() < 0.002 else rng.choice(sizes))
        )
        for _ in keys
    ]
    return sorted(keys), values


def _by_entry(keys: list[bytes], values: list[bytes]) -> bytes:
    out = io.BytesIO()
    table = TableWriter(out)
    table.add_many(zip(keys, values))
    table.finish()
    return out.getvalue()


def _in_columns(keys: list[bytes], values: list[bytes]) -> bytes:
    out = io.BytesIO()
    table = TableWriter(out)
    ends = np.cumsum([len(v) for v in values], dtype=np.int64)
    table.add_columns(keys, b"".join(values), ends - [len(v) for v in values], ends)
    table.finish()
    return out.getvalue()


@pytest.mark.parametrize("n", [1, 2, 17, 300, 5000])
def test_table_in_columns_is_the_table_entry_by_entry(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 64)  # chunk boundaries inside the table
    rng = random.Random(n)
    keys, values = _random_table(rng, n)
    table = _in_columns(keys, values)
    assert table == _by_entry(keys, values)
    with TableReader("t", table) as reader:
        assert list(reader) == list(zip(keys, values))


def test_blocks_end_where_the_entry_by_entry_writer_ends_them() -> None:
    keys = [
        b"model/block_%05d/dense_%02d/kernel/Adam_1" % (i // 100, i % 100) for i in range(30_000)
    ]
    value = b"\x08\x01\x12\x04\x12\x02\x08\x10 \x80\x04(@5\x01\x02\x03\x04"
    starts = np.zeros(len(keys), dtype=np.int64)
    blocks = list(table_blocks(keys, value, starts, starts + len(value), BLOCK_SIZE, 16))
    assert len(blocks) > 3 and all(len(b) < BLOCK_SIZE + 100 for b, _ in blocks)
    assert _in_columns(keys, [value] * len(keys)) == _by_entry(keys, [value] * len(keys))
    assert RESTART_INTERVAL == 16


@pytest.mark.parametrize(
    ("keys", "bad"),
    [([b"a", b"c", b"b"], b"b"), ([b"a", b"ab", b"ab"], b"ab"), ([b"ab", b"a"], b"a")],
)
def test_table_in_columns_refuses_keys_out_of_order(keys: list[bytes], bad: bytes) -> None:
    with pytest.raises(ValueError, match="strictly increasing") as err:
        _in_columns(keys, [b""] * len(keys))
    assert repr(bad) in str(err.value)


def test_entries_in_columns_are_encoded_as_protobuf_encodes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tfckpt import protos

    rng = random.Random(7)
    n = 2000
    dtypes = np.array([rng.choice([0, 1, 2, 7, 19, 200]) for _ in range(n)])
    shapes = [
        tuple(rng.choice([0, 1, 3, 127, 128, 300, 2**40]) for _ in range(rng.randrange(0, 5)))
        for _ in range(n)
    ]
    rank = np.array([len(s) for s in shapes])
    dims = np.array([d for s in shapes for d in s], dtype=np.int64)
    other = [
        np.array([rng.choice(c) for _ in range(n)])
        for c in ([0, 1, 200], [0, 5, 2**33], [0, 64, 2**20], [0, 1, 2**32 - 1])
    ]
    data, bounds = encode_entries(dtypes, rank, dims, *other)
    for i in range(n):
        fields = (int(dtypes[i]), shapes[i], *(int(c[i]) for c in other))
        assert data[bounds[i] : bounds[i + 1]] == encode_entry(*fields)
        proto = protos.BundleEntryProto(
            dtype=fields[0], shard_id=fields[2], offset=fields[3], size=fields[4], crc32c=fields[5]
        )
        proto.shape.SetInParent()
        for d in shapes[i]:
            proto.shape.dim.add(size=d)
        assert data[bounds[i] : bounds[i + 1]] == proto.SerializeToString()


def test_rows_are_reencoded_in_chunks(native: object, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = BundleReader(str(native("tf1")))  # type: ignore[operator]
    cols = bundle.columns
    rows = np.array([r for r in range(len(cols)) if r not in cols.slices and r not in cols.unusual])
    monkeypatch.setattr(bulk, "CHUNK", 3)
    data, bounds = encode_rows(cols, rows, shard=np.full(rows.size, 5), offset=rows * 1000)
    for k, row in enumerate(rows.tolist()):
        entry = bundle.entries.entry(row)
        assert data[bounds[k] : bounds[k + 1]] == entry.reencoded(5, row * 1000, entry.size)
    bundle.close()


def _many(prefix: Path, count: int) -> list[str]:
    """``count`` float32[16] tensors written without a Python step per tensor: one data block and
    the entries in columns (the bulk writer path itself)."""
    names = [
        f"m/block_{i // 300:05d}/dense_{(i // 3) % 100:02d}/kernel{('', '/Adam', '/Adam_1')[i % 3]}"
        for i in range(count)
    ]
    values = (
        np.arange(count, dtype=np.float32)[:, None] + np.arange(16, dtype=np.float32) / 16
    ).reshape(-1)
    data = values.tobytes()
    import google_crc32c

    from tfckpt.bundle.table import mask_crc

    crcs = np.array(
        [mask_crc(google_crc32c.value(data[64 * i : 64 * i + 64])) for i in range(count)]
    )
    offsets = np.arange(count, dtype=np.int64) * 64
    encoded, bounds = encode_entries(
        np.ones(count, np.int64),
        np.ones(count, np.int64),
        np.full(count, 16),
        np.zeros(count, np.int64),
        offsets,
        np.full(count, 64),
        crcs,
    )
    with BundleWriter(str(prefix)) as w:
        w.append(data)
        w.add_entries([n.encode() for n in names], encoded, bounds[:-1], bounds[1:])
        w.commit()
    return names


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    prefix = tmp_path_factory.mktemp("huge") / "model.ckpt"
    return prefix, _many(prefix, 200_000)


def test_a_flipped_byte_among_200000_tensors_is_named_and_nothing_written(
    huge: tuple[Path, list[str]], tmp_path: Path
) -> None:
    prefix, names = huge
    damaged = tmp_path / "src" / "model.ckpt"
    damaged.parent.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        data = bytearray(Path(str(prefix) + suffix).read_bytes())
        if suffix != ".index":
            data[64 * 123_457 + 30] ^= 0x01  # the middle of tensor 123,457
        Path(str(damaged) + suffix).write_bytes(bytes(data))
    name = sorted(names)[123_457]
    out = tmp_path / "out"
    for args in (
        ["rename", damaged, out / "r" / "m", "--add-prefix", "x/", "-q"],
        ["prune", damaged, out / "p" / "m", "--drop", "Adam_1$", "-q"],
        ["merge", f"{damaged}:a/", f"{damaged}:b/", "-o", out / "m" / "m", "-q"],
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"checksum mismatch for '{name}'" in lines[0], lines
        assert "nothing written" in lines[0]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_bulk_written_indexes_are_the_entry_by_entry_ones(
    huge: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, names = huge
    for how in ("columns", "entries"):
        if how == "entries":  # every index through TableWriter.add_many
            monkeypatch.setattr(writer, "COLUMNS_FROM", 10**9)
        tfckpt.rename(prefix, tmp_path / how / "r", add_prefix="x/")
        tfckpt.prune(prefix, tmp_path / how / "p", drop=["Adam$"])
        tfckpt.merge([(prefix, "b/"), (prefix, "a/")], tmp_path / how / "m")
    made = sorted(p.name for p in (tmp_path / "columns").glob("?.*"))  # not the state file
    assert len(made) == 7 and made == sorted(p.name for p in (tmp_path / "entries").glob("?.*"))
    for name in made:
        a = (tmp_path / "columns" / name).read_bytes()
        assert a == (tmp_path / "entries" / name).read_bytes(), name
    with tfckpt.open(tmp_path / "columns" / "p") as ckpt:
        kept = [n for n in sorted(names) if not n.endswith("/Adam")]
        assert list(ckpt.keys()) == kept
        row = names.index(kept[-1])
        assert ckpt[kept[-1]].tolist() == [row + k / 16 for k in range(16)]
    assert ok("verify", tmp_path / "columns" / "m").exit_code == 0


def test_writer_refuses_a_key_given_twice_across_entries_and_columns(tmp_path: Path) -> None:
    f32 = dtype_from_name("float32")
    entry = encode_entry(1, (1,), 0, 0, 4, 0)
    with BundleWriter(str(tmp_path / "m")) as w:
        w.add_array("b", np.zeros(1, np.float32), f32)
        w.add_entries([b"a", b"b"], entry, np.zeros(2, np.int64), np.full(2, len(entry)))
        with pytest.raises(UsageError, match="duplicate key b'b'"):
            w.commit()
    with BundleWriter(str(tmp_path / "n")) as w, pytest.raises(UsageError, match="reserved"):
        w.add_entries([b""], entry, np.zeros(1, np.int64), np.ones(1, np.int64))


def test_failing_rows_flags_what_the_one_by_one_checks_must_see(
    tmp_path: Path, native: object
) -> None:
    prefix = tmp_path / "m"
    f32 = dtype_from_name("float32")
    with BundleWriter(str(prefix)) as w:
        for i in range(5):
            w.add_array(f"t{i}", np.full(4, i, np.float32), f32)
        w.add_array("s", np.array([b"x", b"yz"], dtype=object), dtype_from_name("string"))
        w.add_array("big", np.zeros(300_000, np.float32), f32)
        w.commit()
    data = Path(str(prefix) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    bundle = BundleReader(str(prefix))
    cols = bundle.columns
    rows = np.arange(len(cols))
    by_key = {k: i for i, k in enumerate(cols.keys)}
    flagged = {cols.keys[r] for r in rows[bundle.failing_rows(rows)].tolist()}
    assert flagged == {b"s", b"big"}  # strings and large tensors are checked one by one
    bundle.close()
    raw[cols.offset[by_key[b"t3"]] + 2] ^= 0x10
    data.write_bytes(bytes(raw))
    bundle = BundleReader(str(prefix))
    flagged = {cols.keys[r] for r in rows[bundle.failing_rows(rows)].tolist()}
    assert flagged == {b"s", b"big", b"t3"}
    with pytest.raises(CorruptCheckpoint, match="'t3'"):
        bundle.check_crc(bundle.entries.entry(by_key[b"t3"]))
    assert bundle.failing_rows([by_key[b"t3"], by_key[b"t2"]]).tolist() == [True, False]
    bundle.close()
    data.write_bytes(bytes(raw[: cols.offset[by_key[b"t4"]] + 8]))  # t4 cut short
    bundle = BundleReader(str(prefix))
    flagged = {cols.keys[r] for r in rows[bundle.failing_rows(rows)].tolist()}
    assert flagged == {b"s", b"big", b"t3", b"t4"}
    bundle.close()
    data.unlink()  # a missing shard: nothing passes
    bundle = BundleReader(str(prefix))
    assert bundle.failing_rows(rows).all()
    bundle.close()


def test_prune_copies_long_runs_in_the_kernel_and_short_ones_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from native_fixtures import _write, flip_stored_byte

    values = {
        f"v{i:03d}" + ("/Adam" if i % 3 == 2 else ""): np.arange(
            30_000 if i % 7 == 0 else 16, dtype=np.float32
        )
        + i
        for i in range(120)
    }
    prefix = tmp_path / "src" / "m"
    _write(prefix, values)
    copies: list[int] = []
    real = os.copy_file_range

    def counted(*args: object, **kwargs: object) -> int:
        copies.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "copy_file_range", counted)
    result = tfckpt.prune(prefix, tmp_path / "out" / "m", drop=["Adam$"])
    assert copies  # the 120 KB tensors' runs went through the kernel
    assert result.written is not None and result.written.tensors == 80
    with tfckpt.open(tmp_path / "out" / "m") as ckpt:
        assert sorted(ckpt.keys()) == sorted(k for k in values if not k.endswith("Adam"))
        for name in ckpt:
            assert np.array_equal(ckpt[name], values[name])
    assert ok("verify", tmp_path / "out" / "m").exit_code == 0
    # A damaged byte in a run the kernel copies (checked beside the copy): named, nothing out.
    flip_stored_byte(prefix, "v070", 60_000, 0x20)
    copies.clear()
    from tfckpt.ops import writing

    for overlap_from in (writing.OVERLAP_FROM, 0):  # checked as the copy goes, or beside it
        monkeypatch.setattr(writing, "OVERLAP_FROM", overlap_from)
        for how in ("prune", "rename", "link"):  # link: checked by two threads before linking
            with pytest.raises(CorruptCheckpoint, match="checksum mismatch for 'v070'"):
                out = tmp_path / "bad" / f"{how}{overlap_from}" / "m"
                if how == "prune":
                    tfckpt.prune(prefix, out, drop=["Adam$"])
                else:
                    tfckpt.rename(prefix, out, add_prefix="x/", link=how == "link")
    assert copies and not any(p.is_file() for p in (tmp_path / "bad").rglob("*"))


@pytest.mark.parametrize("shards", [1, 2, 127, 128, 100_000])
def test_the_bundle_header_is_encoded_as_protobuf_encodes_it(shards: int) -> None:
    from tfckpt import protos
    from tfckpt.bundle.writer import encode_header

    header = protos.BundleHeaderProto(num_shards=shards)
    header.version.producer = 1
    assert encode_header(shards) == header.SerializeToString()


@pytest.mark.parametrize("order", ["stored", "reversed", "every_other", "shuffled"])
def test_read_many_is_the_entries_read_one_by_one_in_the_order_given(
    tmp_path: Path, order: str
) -> None:
    from native_fixtures import _write_parts

    rng = np.random.default_rng(7)
    values = {f"t{i:03d}": rng.standard_normal(i % 7 + 1).astype(np.float32) for i in range(120)}
    names = sorted(values)
    prefix = tmp_path / "m"
    _write_parts(prefix, [{n: values[n] for n in names[i::2]} for i in range(2)])  # 2 shards
    bundle = BundleReader(str(prefix))
    rows = list(range(len(names)))
    if order == "reversed":
        rows.reverse()
    elif order == "every_other":
        rows = rows[::2]
    elif order == "shuffled":
        random.Random(3).shuffle(rows)
    got = bundle.read_many(rows, 4).view(np.float32)
    keys = bundle.columns.keys
    assert got.tolist() == np.concatenate([values[keys[r].decode()] for r in rows]).tolist()
    bundle.close()
    data = Path(str(prefix) + ".data-00001-of-00002")
    raw = bytearray(data.read_bytes())
    victim = names[75]  # in shard 1
    row = keys.index(victim.encode())
    raw[bundle.columns.offset[row] + 1] ^= 0x04
    data.write_bytes(bytes(raw))
    bundle = BundleReader(str(prefix))
    with pytest.raises(CorruptCheckpoint, match=f"checksum mismatch for '{victim}'"):
        bundle.read_many(rows if row in rows else [*rows, row], 4)
    bundle.close()


def test_an_entry_reaching_past_2_63_is_past_its_shard_for_every_bulk_check(
    tmp_path: Path,
) -> None:
    from tfckpt.bundle.table import crc32c, mask_crc

    f32 = dtype_from_name("float32")
    prefix = tmp_path / "m"
    # Bytes from offset 2**63 - 8 "end" past 2**63 (int64 wraps): an empty range if computed so,
    # whose checksum the entry carries.
    entry = encode_entry(1, (4,), 0, (1 << 63) - 8, 16, mask_crc(crc32c(b"")))
    with BundleWriter(str(prefix)) as w:
        for i in range(1200):
            w.add_array(f"t{i:04d}", np.full(4, i, np.float32), f32)
        w.add_entries([b"wrap"], entry, np.zeros(1, np.int64), np.full(1, len(entry)))
        w.commit()
    result = run("verify", prefix)
    assert result.exit_code == 1 and "'wrap' needs bytes 9223372036854775800.." in result.stdout
    for args in (
        ["vars", prefix, "--stats"],
        ["diff", prefix, prefix],
        ["rename", prefix, tmp_path / "out" / "m", "--add-prefix", "x/"],
    ):
        result = run(*args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, (args, result.stderr)
        assert "'wrap' needs bytes" in lines[0] and "internal error" not in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_read_many_takes_overlapping_shared_and_empty_entries(tmp_path: Path) -> None:
    from tfckpt.bundle.table import crc32c, mask_crc

    f32 = dtype_from_name("float32")
    prefix = tmp_path / "m"
    arrays = [np.arange(4, dtype=np.float32) + 4 * i for i in range(10)]
    data = b"".join(a.tobytes() for a in arrays)  # t0..t9, 16 bytes each, back to back

    def entry(offset: int, size: int) -> bytes:
        piece = data[offset : offset + size]
        return encode_entry(1, (size // 4,), 0, offset, size, mask_crc(crc32c(piece)))

    extra = {
        b"u_same_as_t3": entry(48, 16),
        b"u_across_t5_t6": entry(88, 16),
        b"v_empty": entry(40, 0),
    }
    with BundleWriter(str(prefix)) as w:
        for i, a in enumerate(arrays):
            w.add_array(f"t{i}", a, f32)
        encoded = b"".join(extra.values())
        bounds = np.cumsum([0, *map(len, extra.values())])
        w.add_entries(list(extra), encoded, bounds[:-1], bounds[1:])
        w.commit()
    bundle = BundleReader(str(prefix))
    n = len(bundle.columns)
    for rows in (list(range(n)), list(range(n))[::-1], [3, 10, 11, 12, 5, 6, 3], [12]):
        want = b"".join(bundle.read_entry(bundle.entries.entry(r)).tobytes() for r in rows)
        assert bundle.read_many(rows, 4).tobytes() == want
    bundle.close()
