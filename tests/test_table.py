"""The LevelDB-style table: varints, CRC masking, block layout, footer; corruption is caught."""

from __future__ import annotations

import io
import struct

import pytest

from tfckpt.bundle.slices import encode_slice_key, signed_num_increasing
from tfckpt.bundle.table import (
    BLOCK_SIZE,
    FOOTER_SIZE,
    TableReader,
    TableWriter,
    crc32c,
    decode_varint,
    encode_varint,
    iter_block,
    mask_crc,
    unmask_crc,
)
from tfckpt.errors import CorruptCheckpoint

from fixtures import CORPUS


def test_varint_round_trip_and_limits() -> None:
    for value in (0, 1, 127, 128, 300, 2**32 - 1, 2**63 - 1, 2**64 - 1):
        encoded = encode_varint(value)
        assert decode_varint(encoded, 0, len(encoded)) == (value, len(encoded))
    assert encode_varint(300) == b"\xac\x02"
    with pytest.raises(ValueError, match="truncated"):
        decode_varint(b"\x80\x80", 0, 2)
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        decode_varint(b"\xff" * 20, 0, 20)


def test_crc_mask_matches_format_doc() -> None:
    assert mask_crc(0) == 0xA282EAD8
    for value in (0, 1, 0xDEADBEEF, 0xFFFFFFFF):
        assert unmask_crc(mask_crc(value)) == value
    # Standard CRC-32C check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283
    assert crc32c(memoryview(b"123456789")) == 0xE3069283


def test_slice_key_encoding_examples_from_format_doc() -> None:
    assert signed_num_increasing(0) == b"\x80"
    assert signed_num_increasing(-1) == b"\x7f"
    assert signed_num_increasing(5) == b"\x85"
    assert signed_num_increasing(100) == b"\xc0\x64"
    assert signed_num_increasing(10000) == b"\xe0\x27\x10"
    assert signed_num_increasing(-65) == b"\x3f\xbf"
    key = encode_slice_key(b"a\x00b\xff", ((0, 5), (0, -1)))
    assert key == b"\x00" + b"a\x00\xffb\xff\x00" + b"\x00\x01" + b"\x01\x02" + b"\x80\x85\x80\x7f"


def _table(pairs: list[tuple[bytes, bytes]]) -> bytes:
    buf = io.BytesIO()
    writer = TableWriter(buf)
    for k, v in pairs:
        writer.add(k, v)
    writer.finish()
    return buf.getvalue()


def test_table_round_trip_spans_several_blocks() -> None:
    pairs = [(f"var/{i:05d}".encode(), bytes([i % 251]) * 1000) for i in range(800)]
    data = _table(pairs)
    assert len(data) > 3 * BLOCK_SIZE  # really several data blocks
    assert data[-8:] == bytes.fromhex("57fb808b247547db")
    assert list(TableReader("mem", data)) == pairs


def test_empty_table_reads_as_empty() -> None:
    assert list(TableReader("mem", _table([]))) == []


def test_writer_refuses_unsorted_keys() -> None:
    writer = TableWriter(io.BytesIO())
    writer.add(b"b", b"")
    with pytest.raises(ValueError):
        writer.add(b"a", b"")


@pytest.mark.parametrize("cut", [1, 8, FOOTER_SIZE, 100])
def test_truncated_table_is_reported(cut: int) -> None:
    data = _table([(b"k%03d" % i, b"v" * 50) for i in range(50)])
    with pytest.raises(CorruptCheckpoint, match="mem"):
        list(TableReader("mem", data[:-cut]))


def test_flipped_byte_in_block_fails_its_checksum() -> None:
    data = bytearray(_table([(b"k%03d" % i, b"v" * 50) for i in range(50)]))
    data[10] ^= 0x40
    with pytest.raises(CorruptCheckpoint, match="block checksum mismatch at offset 0"):
        list(TableReader("mem", bytes(data)))


def test_absurd_restart_count_is_reported() -> None:
    contents = struct.pack("<I", 0xFFFFFF)
    buf = io.BytesIO()
    writer = TableWriter(buf)
    handle = writer._write_raw_block(contents)  # a block claiming millions of restarts
    writer._index.append((b"z", handle))
    writer.finish()
    with pytest.raises(CorruptCheckpoint, match="restart count"):
        list(TableReader("mem", buf.getvalue()))


def test_snappy_compressed_index_from_corpus() -> None:
    index = (
        CORPUS / "tensorflow__serving/tensorflow_serving/servables/tensorflow/testdata/"
        "saved_model_half_plus_two_cpu/00000123/variables/variables.index"
    )
    if not index.exists():
        pytest.skip("corpus not present")
    raw = index.read_bytes()
    reader = TableReader(str(index), raw)
    handles = list(iter_block(reader.read_block(reader.index_handle), "index"))
    offset, pos = decode_varint(handles[0][1], 0, len(handles[0][1]))
    size, _ = decode_varint(handles[0][1], pos, len(handles[0][1]))
    assert raw[offset + size] == 1  # the data block's trailer says Snappy
    keys = [k for k, _ in reader]
    assert keys[0] == b"" and len(keys) == 6


def test_add_many_writes_the_same_table_as_add() -> None:
    import random

    rng = random.Random(3)
    keys = sorted(
        {bytes(rng.choice(b"ab/\x00\xff") for _ in range(rng.randint(1, 300))) for _ in range(3000)}
    )
    pairs = [(k, bytes(rng.randint(0, 255) for _ in range(rng.choice([0, 5, 200])))) for k in keys]
    one = io.BytesIO()
    writer = TableWriter(one)
    for k, v in pairs:
        writer.add(k, v)
    writer.finish()
    many = io.BytesIO()
    writer = TableWriter(many)
    writer.add_many(pairs)
    writer.finish()
    assert one.getvalue() == many.getvalue()
    assert list(TableReader("mem", many.getvalue())) == pairs
    with pytest.raises(ValueError, match="strictly increasing"):
        TableWriter(io.BytesIO()).add_many([(b"b", b""), (b"a", b"")])
