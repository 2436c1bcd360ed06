"""The index columns: the vectorized and the per-entry decoders agree with protobuf, entry by
entry, on real checkpoints and on generated, unusual and hostile entries; errors are the same
whichever decoder runs."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from fuzz_inputs import build_table, encode_block, footer, frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfckpt import protos
from tfckpt.bundle.index import decode_entry, parse_entry, parse_index
from tfckpt.bundle.slices import encode_slice_key, slice_to_proto
from tfckpt.bundle.table import BlockHandle, TableReader, encode_varint
from tfckpt.errors import TfckptError

from fixtures import CORPUS

HEADER = protos.BundleHeaderProto(num_shards=1).SerializeToString()


def _blocks(data: bytes) -> list[tuple[int, bytes]]:
    table = TableReader("<t>", data)
    return [(h.offset, table.read_block(h)) for h in table.block_handles()]


def reference(data: bytes) -> Any:
    """What the plain per-pair protobuf path makes of a table: rows or the error it raises."""
    try:
        pairs = list(TableReader("<t>", data))
        header = pairs[0][1] if pairs and pairs[0][0] == b"" else None
        rows = [
            (key, _decoded_row(parse_entry("<t>", key, value)))
            for key, value in pairs
            if key != b""
        ]
    except TfckptError as exc:
        return type(exc).__name__, str(exc)
    return header, rows


def _decoded_row(d: Any) -> tuple[Any, ...]:
    return (d.dtype, d.dims, d.shard, d.offset, d.size, d.crc, d.slices)


def columns(data: bytes, vectorize: bool) -> Any:
    try:
        header, cols = parse_index("<t>", _blocks(data), vectorize=vectorize)
    except TfckptError as exc:
        return type(exc).__name__, str(exc)
    rows = [
        (
            cols.keys[i],
            (
                cols.dtype[i],
                cols.shape(i),
                cols.shard[i],
                cols.offset[i],
                cols.size[i],
                cols.crc[i],
                cols.slices.get(i, ()),
            ),
        )
        for i in range(len(cols))
    ]
    for i, (_, row) in enumerate(rows):
        n = 1
        for d in row[1]:
            n *= d
        assert cols.nelem[i] == n
    return header, rows


def check_all_agree(data: bytes) -> Any:
    expected = reference(data)
    assert columns(data, vectorize=False) == expected
    assert columns(data, vectorize=True) == expected
    return expected


def table(entries: dict[bytes, bytes], per_block: int = 1000, restart: int = 16) -> bytes:
    pairs = sorted({b"": HEADER, **entries}.items())
    blocks = [pairs[i : i + per_block] for i in range(0, len(pairs), per_block)]
    return build_table(blocks, restart_interval=restart)


def entry(dtype: int = 1, shape: tuple[int, ...] = (2, 3), **fields: Any) -> bytes:
    e = protos.BundleEntryProto(dtype=dtype, **fields)
    e.shape.SetInParent()
    for d in shape:
        e.shape.dim.add(size=d)
    return e.SerializeToString()


# ---- real checkpoints -------------------------------------------------------------------------
def _real_indexes() -> list[Path]:
    found = sorted(CORPUS.rglob("*.index")) if CORPUS.is_dir() else []
    return found[:40]


@pytest.mark.parametrize("index", _real_indexes(), ids=lambda p: p.parent.name + "/" + p.name)
def test_corpus_indexes_decode_alike(index: Path) -> None:
    header, rows = check_all_agree(index.read_bytes())
    assert header is not None and rows


def test_native_fixtures_decode_alike(native: Any) -> None:
    for kind in ("tf1", "sharded", "partitioned", "dtypes", "tf2", "many"):
        data = Path(str(native(kind)) + ".index").read_bytes()
        _header, rows = check_all_agree(data)
        assert rows


def test_many_blocks_and_slices_decode_alike() -> None:
    entries = {
        f"var/{i:05d}/kernel".encode(): entry(1, (i % 7, 16), offset=64 * i, size=64)
        for i in range(3000)
    }
    spec = ((0, 2), (0, -1))
    header = protos.BundleEntryProto(dtype=1)
    header.shape.dim.add(size=4)
    header.shape.dim.add(size=5)
    slice_to_proto(spec, header.slices.add())
    entries[b"part"] = header.SerializeToString()
    entries[encode_slice_key(b"part", spec)] = entry(1, (2, 5), size=40)
    data = table(entries, per_block=500)
    _, rows = check_all_agree(data)
    assert len(rows) == 3002
    assert rows[0][0].startswith(b"\x00")  # slice keys sort first


# ---- single entries ---------------------------------------------------------------------------
UNUSUAL = {
    "plain": entry(),
    "scalar": entry(9, ()),
    "empty dim": entry(1, (0, 7)),
    "all fields": entry(14, (5,), shard_id=3, offset=2**40, size=10, crc32c=0xFFFFFFFF),
    "negative offset": entry(offset=-1),
    "negative size": entry(size=-5),
    "negative shard": entry(shard_id=-2),
    "unknown dtype": entry(dtype=99),
    "ref dtype": entry(dtype=101),
    "no dtype": entry(dtype=0),
    "empty value": b"",
    "garbage": b"\xff\xff\xff",
    "truncated varint": b"\x08\x81",
    "truncated crc": b"\x35\x01\x02",
    "unknown field": entry() + b"\x40\x01",
    "repeated dtype": entry() + b"\x08\x02",
    "shape twice": entry() + b"\x12\x02\x12\x00",
    "negative dim": entry(1, (-3,)),
    "huge dims": entry(1, (2**30, 2**30)),
    "1e15 elements": entry(1, (10**15 + 1,)),
    "absurd empty": entry(1, (0, 2**63 - 1)),
    "rank 65": entry(1, (1,) * 65),
    "rank 64": entry(1, (1,) * 64),
    "named dim": b"\x08\x01\x12\x07\x12\x05\x08\x02\x12\x01a",
    "unknown rank": b"\x08\x01\x12\x02\x18\x01",
    "zero unknown rank": b"\x08\x01\x12\x02\x18\x00",
    "dim with two sizes": b"\x08\x01\x12\x06\x12\x04\x08\x02\x08\x03",
    "shape overruns": b"\x08\x01\x12\x09\x12\x02\x08\x02",
    "dim overruns": b"\x08\x01\x12\x04\x12\x05\x08\x02",
    "overlong varint": b"\x08" + b"\x81" * 10 + b"\x01",
    "10-byte negative": entry(offset=-(2**62)),
    "field 7 slices": entry() + b"\x3a\x00",
    "wire type mismatch": b"\x0a\x01\x00",
    "fixed64": b"\x09" + b"\x00" * 8,
    "group": b"\x0b\x0c",
}


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_entry_decodes_alike(name: str) -> None:
    check_all_agree(table({b"a": entry(), b"b": UNUSUAL[name], b"c": entry(2, (1,))}))


def test_plain_entries_take_the_fast_path() -> None:
    assert decode_entry(entry(1, (2, 3), offset=8, size=24, crc32c=7)) == (1, (2, 3), 0, 8, 24, 7)
    assert decode_entry(entry(1, (0,))) == (1, (0,), 0, 0, 0, 0)
    assert decode_entry(entry() + b"\x3a\x00") is None  # slices: the protobuf path
    assert decode_entry(entry(offset=-1)) is None  # raises on the protobuf path


def test_keys_that_are_not_utf8_fail_the_same_way() -> None:
    got = check_all_agree(table({b"ok": entry(), b"bad\xff": entry(), b"z": entry()}))
    assert got[0] == "CorruptCheckpoint" and "not UTF-8" in got[1]
    assert "'bad" in got[1]


def test_first_bad_entry_in_key_order_is_reported() -> None:
    entries = {f"v{i:03d}".encode(): entry() for i in range(100)}
    entries[b"v050"] = entry(dtype=77)
    entries[b"v070"] = entry(offset=-1)
    got = check_all_agree(table(entries))
    assert got[0] == "UnsupportedCheckpoint" and "'v050'" in got[1]


def test_duplicate_and_unordered_keys_are_corrupt() -> None:
    pairs = [(b"", HEADER), (b"a", entry()), (b"a", entry())]
    got = check_all_agree(build_table([pairs]))
    assert got == ("CorruptCheckpoint", "<t>: duplicate key b'a' (corrupt index)")
    pairs = [(b"", HEADER), (b"b", entry()), (b"a", entry())]
    assert check_all_agree(build_table([pairs]))[0] == "CorruptCheckpoint"


# ---- blocks whose restart points lie: the vectorized scan falls back -----------------------------
def _table_of_block(contents: bytes) -> bytes:
    body = frame(contents)
    meta = BlockHandle(len(body), 8)
    body += frame(encode_block([]))
    index_contents = encode_block([(b"\xff", BlockHandle(0, len(contents)).encode())], 1)
    index = BlockHandle(len(body), len(index_contents))
    return body + frame(index_contents) + footer(meta, index)


def _with_restarts(pairs: list[tuple[bytes, bytes]], restarts: list[int]) -> bytes:
    block = encode_block(pairs, restart_interval=10**9)  # one restart, at 0
    body = block[:-8]
    return (
        body + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    )


@pytest.mark.parametrize(
    "restarts",
    [[0], [0, 5], [3], [0, 0], [0, 10**6], [0, 17, 9], list(range(0, 400, 7))],
    ids=str,
)
def test_lying_restart_points_do_not_change_the_entries(restarts: list[int]) -> None:
    pairs = sorted({b"": HEADER, **{f"k{i:02d}".encode(): entry() for i in range(30)}}.items())
    data = _table_of_block(_with_restarts(pairs, restarts))
    _header, rows = check_all_agree(data)
    assert len(rows) == 30


def test_shared_prefix_at_a_restart_point_is_followed() -> None:
    # A writer may compress against the previous key even at a restart point; the scan groups
    # entries by restart points but assembles keys in order.
    pairs = sorted({b"": HEADER, **{f"key{i:02d}".encode(): entry() for i in range(20)}}.items())
    out = bytearray()
    restarts = []
    last = b""
    for i, (key, value) in enumerate(pairs):
        if i in (0, 10):
            restarts.append(len(out))
        shared = 0
        while shared < min(len(last), len(key)) and last[shared] == key[shared]:
            shared += 1
        out += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        out += key[shared:] + value
        last = key
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    _header, rows = check_all_agree(_table_of_block(bytes(out)))
    assert [k for k, _ in rows] == [f"key{i:02d}".encode() for i in range(20)]


# ---- generated entries --------------------------------------------------------------------------
_int64 = st.one_of(st.integers(0, 300), st.integers(-(2**63), 2**63 - 1))
_int32 = st.one_of(st.integers(0, 40), st.integers(-(2**31), 2**31 - 1))


@st.composite
def entry_bytes(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["proto", "proto+junk", "bytes"]))
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=40)))
    e = protos.BundleEntryProto(
        dtype=draw(st.one_of(st.integers(0, 35), st.integers(0, 2**31 - 1))),
        shard_id=draw(_int32),
        offset=draw(_int64),
        size=draw(_int64),
        crc32c=draw(st.integers(0, 2**32 - 1)),
    )
    if draw(st.booleans()):
        e.shape.SetInParent()
        for d in draw(st.lists(st.one_of(st.integers(0, 9), _int64), max_size=5)):
            e.shape.dim.add(size=d)
    if draw(st.integers(0, 9)) == 0:
        spec = tuple((0, -1) for _ in e.shape.dim)
        slice_to_proto(spec, e.slices.add())
    raw = e.SerializeToString()
    if kind == "proto+junk":
        raw += bytes(draw(st.binary(max_size=8)))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.binary(min_size=1, max_size=6), entry_bytes(), max_size=40),
    st.integers(1, 20),
)
def test_generated_entries_decode_alike(entries: dict[bytes, bytes], restart: int) -> None:
    check_all_agree(table(entries, per_block=7, restart=restart))


def test_entries_are_encoded_as_protobuf_encodes_them() -> None:
    import random

    from tfckpt.bundle.index import decode_header, encode_entry

    rng = random.Random(0)
    for _ in range(2000):
        dims = tuple(rng.choice([0, 1, 5, 127, 128, 300, 2**40]) for _ in range(rng.randint(0, 4)))
        fields = {
            "shard_id": rng.choice([0, 1, 200]),
            "offset": rng.choice([0, 5, 2**33]),
            "size": rng.choice([0, 64, 300]),
            "crc32c": rng.choice([0, 1, 2**32 - 1]),
        }
        e = protos.BundleEntryProto(dtype=rng.choice([1, 9]), **fields)
        e.shape.SetInParent()
        for d in dims:
            e.shape.dim.add(size=d)
        assert e.SerializeToString() == encode_entry(
            e.dtype, dims, e.shard_id, e.offset, e.size, e.crc32c
        )
    header = protos.BundleHeaderProto(num_shards=3, endianness=1)
    header.version.producer = 1
    header.version.min_consumer = 1
    assert decode_header(header.SerializeToString()) == (3, 1, 1, 1, ())
    assert decode_header(header.SerializeToString() + b"\x20\x01") is None  # unknown: protobuf
    header.version.bad_consumers.extend([4, 5])  # packed: left to protobuf
    assert decode_header(header.SerializeToString()) is None


def test_decoding_in_chunks_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from tfckpt.bundle import index

    entries = {
        f"v{i:04d}".encode(): entry(1, (i % 4, 3), offset=12 * i, size=12) for i in range(300)
    }
    entries[b"v0100"] = entry(dtype=77)  # flagged: raises from the protobuf path
    entries[b"v0200"] = entry(1, (2,)) + b"\x40\x01"  # flagged, valid
    data = table(entries, per_block=50)
    whole = columns(data, vectorize=True)
    monkeypatch.setattr(index, "DECODE_CHUNK", 7)
    assert columns(data, vectorize=True) == whole == reference(data)
    del entries[b"v0100"]
    data = table(entries, per_block=50)
    assert check_all_agree(data)[1][199][1][1] == (2,)
