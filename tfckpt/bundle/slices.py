"""Partitioned variables: slice specs and the ordered-code keys slice entries are stored under.

FORMAT.md section 6. A slice is a tuple of ``(start, length)`` per dimension, ``length == -1``
meaning the whole dimension.
"""

from __future__ import annotations

from typing import Any

Slice = tuple[tuple[int, int], ...]

_SIGNED_PREFIX = {
    2: (0xC0, 0x00),
    3: (0xE0, 0x00),
    4: (0xF0, 0x00),
    5: (0xF8, 0x00),
    6: (0xFC, 0x00),
    7: (0xFE, 0x00),
    8: (0xFF, 0x00),
    9: (0xFF, 0x80),
    10: (0xFF, 0xC0),
}


def num_increasing(value: int) -> bytes:
    """OrderedCode's unsigned encoding: a length byte, then big-endian bytes."""
    if value == 0:
        return b"\x00"
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(raw)]) + raw


def signed_num_increasing(value: int) -> bytes:
    x = value if value >= 0 else ~value
    if x < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = (x.bit_length() + 1) // 7 + 1
    if length > 10:
        raise ValueError(f"{value} is too large for a slice extent")
    raw = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[-length:])
    first, second = _SIGNED_PREFIX[length]
    raw[0] ^= first
    raw[1] ^= second
    return bytes(raw)


def encode_slice_key(name: bytes, spec: Slice) -> bytes:
    """The bundle key of one slice of ``name`` (EncodeTensorNameSlice)."""
    out = bytearray(b"\x00")
    for byte in name:
        if byte == 0x00:
            out += b"\x00\xff"
        elif byte == 0xFF:
            out += b"\xff\x00"
        else:
            out.append(byte)
    out += b"\x00\x01"
    out += num_increasing(len(spec))
    for start, length in spec:
        out += signed_num_increasing(start)
        out += signed_num_increasing(length)
    return bytes(out)


def _signed_num_decreasing_length(first: int, second: int) -> int:
    """The byte length of a SignedNumIncreasing whose (sign-normalized) first bytes are given."""
    if first != 0xFF:
        length = 0
        while first & 0x80:
            length += 1
            first = (first << 1) & 0xFF
        return length
    if second & 0x80 == 0:
        return 8
    return 9 if second & 0x40 == 0 else 10


def _decode_signed(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise ValueError("slice key truncated")
    negative = key[pos] < 0x80
    norm = [b ^ 0xFF if negative else b for b in key[pos : pos + 2]] + [0]
    length = _signed_num_decreasing_length(norm[0], norm[1])
    if length == 1:
        value = (key[pos] ^ 0x80) & 0xFF
        return (value - 256 if value >= 128 else value), pos + 1
    if length < 2 or pos + length > len(key):
        raise ValueError("bad number in slice key")
    raw = bytearray(key[pos : pos + length])
    first, second = _SIGNED_PREFIX[length]
    raw[0] ^= first
    raw[1] ^= second
    return int.from_bytes(raw, "big", signed=True), pos + length


def decode_slice_key(key: bytes) -> tuple[bytes, Slice]:
    """The tensor name and slice a slice key encodes (inverse of ``encode_slice_key``)."""
    if key[:1] != b"\x00":
        raise ValueError("not a slice key")
    name = bytearray()
    pos = 1
    while True:
        if pos + 1 >= len(key):
            raise ValueError("unterminated name in slice key")
        byte, nxt = key[pos], key[pos + 1]
        if byte == 0x00 and nxt == 0x01:
            pos += 2
            break
        if byte == 0x00 and nxt == 0xFF:
            name.append(0x00)
        elif byte == 0xFF and nxt == 0x00:
            name.append(0xFF)
        elif byte in (0x00, 0xFF):
            raise ValueError("bad escape in slice key")
        else:
            name.append(byte)
            pos += 1
            continue
        pos += 2
    if pos >= len(key):
        raise ValueError("slice key has no rank")
    width = key[pos]
    if width > 8 or pos + 1 + width > len(key):
        raise ValueError("bad rank in slice key")
    rank = int.from_bytes(key[pos + 1 : pos + 1 + width], "big")
    pos += 1 + width
    if rank > 64:
        raise ValueError("bad rank in slice key")
    spec = []
    for _ in range(rank):
        start, pos = _decode_signed(key, pos)
        length, pos = _decode_signed(key, pos)
        spec.append((start, length))
    if pos != len(key):
        raise ValueError("trailing bytes in slice key")
    return bytes(name), tuple(spec)


def slice_from_proto(proto: Any, rank: int) -> Slice:
    """A TensorSliceProto as ``((start, length), ...)``; missing extents are full dimensions."""
    extents = list(proto.extent)
    if len(extents) > rank:
        raise ValueError(f"slice has {len(extents)} extents for a rank-{rank} tensor")
    spec = []
    for i in range(rank):
        if i < len(extents):
            e = extents[i]
            length = e.length if e.HasField("length") else -1
            spec.append((int(e.start), int(length)))
        else:
            spec.append((0, -1))
    return tuple(spec)


def slice_to_proto(spec: Slice, proto: Any) -> Any:
    for start, length in spec:
        e = proto.extent.add()
        if length != -1:
            e.start = start
            e.length = length
    return proto


def slice_shape(spec: Slice, full_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the slice's data within a tensor of ``full_shape``."""
    return tuple(dim if length == -1 else length for (_, length), dim in zip(spec, full_shape))


def slice_index(spec: Slice, full_shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A numpy index selecting the slice within the full tensor; raises on out-of-range."""
    index = []
    for (start, length), dim in zip(spec, full_shape):
        if length == -1:
            index.append(slice(0, dim))
            continue
        if start < 0 or length < 0 or start + length > dim:
            raise ValueError(f"slice extent {start}:{start + length} outside dimension {dim}")
        index.append(slice(start, start + length))
    return tuple(index)


def format_slice(spec: Slice) -> str:
    """TF's text form: ``start,length:-:...`` (``-`` for a full dimension)."""
    return ":".join("-" if length == -1 else f"{start},{length}" for start, length in spec)
