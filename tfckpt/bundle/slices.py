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
