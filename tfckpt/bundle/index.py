"""The entries of a bundle's ``.index``, parsed into compact columns (FORMAT.md sections 2-4).

A checkpoint may hold a million entries; a Python object per field per entry would cost hundreds
of bytes and microseconds each. ``parse_index`` reads the table's blocks and decodes every
``BundleEntryProto`` into typed arrays (dtype, shard, offset, size, masked CRC, element count,
shape as offsets into one flat array of dimensions), keeping the serialized entries in one
buffer for the rare caller that wants a message.

Two decoders fill the same columns: a vectorized one (numpy, for large indexes) and a
per-entry Python one (small indexes, so listing a small checkpoint never imports numpy). Both
accept only the plain encodings writers produce and flag anything else: slices, unknown or
repeated fields, overlong or out-of-range numbers, shapes with names or an unknown rank, keys
that are not UTF-8, absurd shapes. Flagged entries are decoded by the protobuf library with
every check (``parse_entry``), which is also what raises for a corrupt entry, so the errors are
the same whichever decoder ran, and raised for the first bad entry in key order.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from tfckpt.bundle.slices import Slice, decode_slice_key, format_slice, slice_from_proto
from tfckpt.bundle.table import decode_varint, encode_varint, scan_block
from tfckpt.dtypes import dtype_from_enum
from tfckpt.errors import CorruptCheckpoint, UnsupportedCheckpoint

if TYPE_CHECKING:
    import numpy as np

# No tensor may claim more elements than this, whatever its dtype (2^50 ~ 10^15).
MAX_ELEMENTS = 1 << 50
MAX_RANK = 64
# Data blocks larger than this in total are decoded with numpy (whose import costs more than
# decoding a few thousand entries in Python).
VECTORIZE_ABOVE = 256 * 1024
# Restart groups longer than this are scanned entry by entry (the vectorized scan takes one
# step per entry of the longest group; writers restart every 16 entries).
MAX_GROUP_STEPS = 256
_I63 = 1 << 63
_I31 = 1 << 31


def _known_dtypes() -> frozenset[int]:
    known = set()
    for e in range(256):
        try:
            dtype_from_enum(e)
        except UnsupportedCheckpoint:
            continue
        known.add(e)
    return frozenset(known)


KNOWN_DTYPES = _known_dtypes()


def key_label(key: bytes) -> str:
    """A printable name: slice keys (binary ordered code) as ``name[start,length:...]``."""
    if key[:1] == b"\x00":
        try:
            name, spec = decode_slice_key(key)
            return f"{name.decode('utf-8', 'backslashreplace')}[{format_slice(spec)}]"
        except ValueError:
            pass
    return key.decode("utf-8", "backslashreplace")


def quoted(text: str, limit: int = 200) -> str:
    """``repr`` of a name for a one-line message, shortened if absurdly long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"...({len(text)} chars)"


def shape_of(proto: Any, where: str) -> tuple[int, ...]:
    """A TensorShapeProto as a tuple; unknown rank or negative dims are corrupt in a bundle."""
    if proto.unknown_rank:
        raise CorruptCheckpoint(f"{where}: shape has unknown rank")
    dims = tuple(int(d.size) for d in proto.dim)
    if any(d < 0 for d in dims):
        raise CorruptCheckpoint(f"{where}: negative dimension in shape {list(dims)}")
    if len(dims) > MAX_RANK:
        raise CorruptCheckpoint(f"{where}: rank {len(dims)} is absurd")
    n = num_elements(dims)
    if n > MAX_ELEMENTS:
        raise CorruptCheckpoint(f"{where}: shape {list(dims)} claims {n} elements")
    # An empty tensor still needs a representable shape: numpy refuses dimensions whose
    # product, zeros left out, overflows (e.g. [0, 2^63-1]); no real tensor has such a shape.
    if _spread(dims) > MAX_ELEMENTS:
        raise CorruptCheckpoint(f"{where}: shape {list(dims)} is absurd (even if empty)")
    return dims


def num_elements(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _spread(dims: Sequence[int]) -> int:
    spread = 1
    for d in dims:
        spread *= max(d, 1)
    return spread


class Decoded:
    """One entry decoded by the protobuf library (the path for flagged entries)."""

    __slots__ = ("crc", "dims", "dtype", "offset", "shard", "size", "slices")

    def __init__(
        self,
        dtype: int,
        dims: tuple[int, ...],
        shard: int,
        offset: int,
        size: int,
        crc: int,
        slices: tuple[Slice, ...],
    ) -> None:
        self.dtype, self.dims, self.shard = dtype, dims, shard
        self.offset, self.size, self.crc, self.slices = offset, size, crc, slices


def parse_entry(index_path: str, key: bytes, value: bytes) -> Decoded:
    """Decode one entry with every check, raising CorruptCheckpoint/UnsupportedCheckpoint."""
    from google.protobuf.message import DecodeError

    from tfckpt import protos

    where = f"{index_path}: entry {quoted(key_label(key))}"
    if key[:1] != b"\x00":
        # Names are text (TF's Python API decodes them as UTF-8); slice keys are binary.
        try:
            key.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptCheckpoint(f"{where}: key is not UTF-8 text (corrupt index)") from None
    try:
        proto = protos.BundleEntryProto.FromString(value)
    except DecodeError:
        raise CorruptCheckpoint(f"{where}: unreadable entry") from None
    try:
        dtype_from_enum(int(proto.dtype))
    except UnsupportedCheckpoint as exc:
        raise UnsupportedCheckpoint(f"{where}: {exc}") from None
    shape = shape_of(proto.shape, where)
    if proto.offset < 0 or proto.size < 0:
        raise CorruptCheckpoint(f"{where}: negative offset or size")
    try:
        slices = tuple(slice_from_proto(s, len(shape)) for s in proto.slices)
    except ValueError as exc:
        raise CorruptCheckpoint(f"{where}: {exc}") from None
    return Decoded(
        int(proto.dtype),
        shape,
        int(proto.shard_id),
        int(proto.offset),
        int(proto.size),
        int(proto.crc32c),
        slices,
    )


# ---- the per-entry Python decoder ---------------------------------------------------------------
def _shape_dims(v: bytes, p: int, end: int) -> tuple[int, ...] | None:
    """The dims of a plain TensorShapeProto at v[p:end] (each Dim only a size), else None."""
    dims: list[int] = []
    while p < end:
        if v[p] != 0x12:
            return None
        length, p = decode_varint(v, p + 1, end)
        stop = p + length
        if stop > end:
            return None
        if length == 0:
            dims.append(0)
        else:
            if v[p] != 0x08:
                return None
            d, p = decode_varint(v, p + 1, stop)
            if p != stop or d >= _I63:
                return None
            dims.append(d)
        p = stop
    return tuple(dims)


def decode_entry(v: bytes) -> tuple[int, tuple[int, ...], int, int, int, int] | None:
    """``(dtype, dims, shard, offset, size, crc)`` of a plainly encoded, valid entry, else None."""
    n = len(v)
    p = 0
    dtype = shard = offset = size = crc = 0
    dims: tuple[int, ...] | None = ()
    seen_shape = False
    try:
        while p < n:
            tag = v[p]
            p += 1
            if tag == 0x35:
                if p + 4 > n:
                    return None
                crc = v[p] | v[p + 1] << 8 | v[p + 2] << 16 | v[p + 3] << 24
                p += 4
                continue
            if p < n and v[p] < 0x80:
                x = v[p]
                p += 1
            else:
                x, p = decode_varint(v, p, n)
            if tag == 0x08:
                dtype = x
            elif tag == 0x12:
                if seen_shape or p + x > n:
                    return None
                seen_shape = True
                dims = _shape_dims(v, p, p + x)
                if dims is None:
                    return None
                p += x
            elif tag == 0x18:
                if x >= _I31:
                    return None
                shard = x
            elif tag == 0x20:
                if x >= _I63:
                    return None
                offset = x
            elif tag == 0x28:
                if x >= _I63:
                    return None
                size = x
            else:
                return None
    except (ValueError, IndexError):
        return None
    assert dims is not None
    if (
        dtype not in KNOWN_DTYPES
        or len(dims) > MAX_RANK
        or num_elements(dims) > MAX_ELEMENTS
        or _spread(dims) > MAX_ELEMENTS
    ):
        return None
    return dtype, dims, shard, offset, size, crc


def decode_header(v: bytes) -> tuple[int, int, int, int, tuple[int, ...]] | None:
    """``(num_shards, endianness, producer, min_consumer, bad_consumers)`` of a plainly encoded
    BundleHeaderProto, else None (the protobuf path decides)."""
    n = len(v)
    p = 0
    shards = endian = producer = min_consumer = 0
    bad: list[int] = []
    try:
        while p < n:
            tag = v[p]
            if tag == 0x1A:  # version: a VersionDef
                length, p = decode_varint(v, p + 1, n)
                end = p + length
                if end > n:
                    return None
                while p < end:
                    inner = v[p]
                    x, p = decode_varint(v, p + 1, end)
                    if x >= _I31:
                        return None
                    if inner == 0x08:
                        producer = x
                    elif inner == 0x10:
                        min_consumer = x
                    elif inner == 0x18:
                        bad.append(x)
                    else:
                        return None
                if p != end:
                    return None
                continue
            x, p = decode_varint(v, p + 1, n)
            if x >= _I31:
                return None
            if tag == 0x08:
                shards = x
            elif tag == 0x10:
                endian = x
            else:
                return None
    except (ValueError, IndexError):
        return None
    return shards, endian, producer, min_consumer, tuple(bad)


_SMALL_VARINTS = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < 128 else encode_varint(value)


_SHAPES: dict[tuple[int, ...], bytes] = {}


def _shape_field(dims: tuple[int, ...]) -> bytes:
    """Field 2 (the TensorShapeProto) as protobuf serializes it, each distinct shape once."""
    field = _SHAPES.get(dims)
    if field is None:
        body = b"".join(
            b"\x12\x00" if d == 0 else b"\x12" + _varint(len(v := _varint(d)) + 1) + b"\x08" + v
            for d in dims
        )
        field = b"\x12" + _varint(len(body)) + body
        if len(_SHAPES) < 65536:
            _SHAPES[dims] = field
    return field


def encode_entry(
    dtype: int, dims: tuple[int, ...], shard: int, offset: int, size: int, crc: int
) -> bytes:
    """A BundleEntryProto without slices, serialized as protobuf does (fields in number order,
    zero scalars left out; the shape always present), without protobuf."""
    out = b"\x08" + _varint(dtype) if dtype else b""
    out += _shape_field(dims)
    if shard:
        out += b"\x18" + _varint(shard)
    if offset:
        out += b" " + _varint(offset)
    if size:
        out += b"(" + _varint(size)
    if crc:
        out += b"5" + crc.to_bytes(4, "little")
    return out


# ---- the columns ---------------------------------------------------------------------------------
class IndexColumns:
    """Every entry of an index but the header, in key order, as parallel compact arrays.

    ``keys`` are the raw keys (bytes; slice keys are binary ordered code). Row ``i`` has dtype
    number ``dtype[i]``, shape ``dims[dim_start[i]:dim_start[i + 1]]``, ``nelem[i]`` elements,
    stored bytes ``offset[i]``/``size[i]`` in shard ``shard[i]`` with masked CRC ``crc[i]``, and
    its serialized ``BundleEntryProto`` at ``buf[vstart[i]:vend[i]]``. Partitioned tensors (the
    few entries with slices) have theirs in ``slices``.
    """

    __slots__ = (
        "buf",
        "crc",
        "dim_start",
        "dims",
        "dtype",
        "keys",
        "nelem",
        "offset",
        "shard",
        "size",
        "slices",
        "unusual",
        "vend",
        "vstart",
    )

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.dtype = array("i")
        self.shard = array("q")
        self.offset = array("q")
        self.size = array("q")
        self.crc = array("q")
        self.nelem = array("q")
        self.dim_start = array("q", [0])
        self.dims = array("q")
        self.vstart = array("q")
        self.vend = array("q")
        self.buf = b""
        self.slices: dict[int, tuple[Slice, ...]] = {}
        # Rows decoded by protobuf (anything but a plain encoding): re-encoded by protobuf too.
        self.unusual: set[int] = set()

    def __len__(self) -> int:
        return len(self.keys)

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.dims[self.dim_start[i] : self.dim_start[i + 1]])

    def value(self, i: int) -> bytes:
        """The serialized BundleEntryProto of row ``i``."""
        return self.buf[self.vstart[i] : self.vend[i]]

    def np(self, name: str) -> np.ndarray:
        """A column as a numpy array (a view, no copy)."""
        return column_view(getattr(self, name))


def column_view(col: array[int] | range) -> np.ndarray:
    """An ``array`` column as a numpy view (``i``: int32, else int64); a ``range`` as int64."""
    import numpy as np

    if isinstance(col, range):
        return np.arange(col.start, col.stop, col.step, dtype=np.int64)
    return np.frombuffer(col, dtype=np.int32 if col.typecode == "i" else np.int64)


# ---- table scan ----------------------------------------------------------------------------------
Blocks = list[tuple[int, bytes]]  # (file offset, uncompressed contents) of each data block


def _where(path: str, offset: int) -> str:
    return f"{path}: block at offset {offset}"


def _scan_python(
    path: str, blocks: Blocks
) -> tuple[bytes, list[int], list[int], list[int], list[int]]:
    """Entry positions in the concatenated blocks, one block at a time."""
    shared: list[int] = []
    kstart: list[int] = []
    vstart: list[int] = []
    vend: list[int] = []
    base = 0
    for offset, block in blocks:
        s, k, vs, ve = scan_block(block, _where(path, offset))
        shared += s
        if base:
            kstart += [x + base for x in k]
            vstart += [x + base for x in vs]
            vend += [x + base for x in ve]
        else:
            kstart += k
            vstart += vs
            vend += ve
        base += len(block)
    return b"".join(b for _, b in blocks), shared, kstart, vstart, vend


def _np_varint(
    u8: np.ndarray, pos: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Varints at ``pos`` (each bounded by ``end``): (value as uint64, next position, ok)."""
    import numpy as np

    last = u8.size - 1
    ok = pos < end
    b = u8[np.minimum(pos, last)]
    value = (b & 0x7F).astype(np.uint64)
    nxt = pos + 1
    cont = ok & (b >= 0x80)
    if cont.any():
        rows = np.flatnonzero(cont)
        p = nxt[rows]
        e = end[rows]
        v = value[rows]
        live = np.ones(rows.size, dtype=bool)
        good = np.ones(rows.size, dtype=bool)
        for k in range(1, 10):
            inside = p < e
            good &= inside | ~live
            live &= inside
            bb = u8[np.minimum(p, last)]
            v |= np.where(live, (bb & 0x7F).astype(np.uint64) << np.uint64(7 * k), np.uint64(0))
            p = p + live
            live &= bb >= 0x80
            if not live.any():
                break
        good &= ~live  # still more after 10 bytes
        value[rows] = v
        nxt[rows] = p
        ok[rows] = good
    return value, nxt, ok


def _scan_numpy(path: str, blocks: Blocks) -> tuple[bytes, Any, Any, Any, Any]:
    """Entry positions found by stepping through every restart group of every block at once.

    Each group (the entries from one restart point to the next) starts at a known offset, so
    the k-th entries of all groups are decoded together. The result is trusted only for blocks
    whose groups chain exactly (each ends where the next begins, every length in bounds, every
    shared prefix available); other blocks are scanned entry by entry, which raises the precise
    error if they are corrupt.
    """
    import numpy as np

    buf = b"".join(b for _, b in blocks)
    u8 = np.frombuffer(buf, dtype=np.uint8)
    gstart: list[int] = []
    gend: list[int] = []
    gblock: list[int] = []
    fallback: set[int] = set()
    base = 0
    for bi, (_, block) in enumerate(blocks):
        n = len(block)
        nr = int.from_bytes(block[n - 4 : n], "little") if n >= 4 else 0
        if n < 4 or nr == 0 or 4 * (nr + 1) > n:
            fallback.add(bi)
        else:
            limit = n - 4 * (nr + 1)
            if limit > 0:
                restarts = np.frombuffer(block, dtype="<u4", count=nr, offset=limit).astype(
                    np.int64
                )
                if (
                    restarts[0] != 0
                    or restarts[-1] >= limit
                    or (nr > 1 and not bool(np.all(restarts[1:] > restarts[:-1])))
                ):
                    fallback.add(bi)
                else:
                    starts = (restarts + base).tolist()
                    gstart += starts
                    gend += [*starts[1:], base + limit]
                    gblock += [bi] * nr
        base += n
    gs = np.array(gstart, dtype=np.int64)
    ge = np.array(gend, dtype=np.int64)
    gb = np.array(gblock, dtype=np.int64)
    bad_group = np.zeros(gs.size, dtype=bool)
    parts: list[tuple[np.ndarray, ...]] = []
    rows = np.arange(gs.size)
    pos = gs.copy()
    steps = 0
    while rows.size:
        steps += 1
        if steps > MAX_GROUP_STEPS:
            bad_group[rows] = True
            break
        p0 = pos[rows]
        e = ge[rows]
        sh, p, ok1 = _np_varint(u8, p0, e)
        un, p, ok2 = _np_varint(u8, p, e)
        vl, p, ok3 = _np_varint(u8, p, e)
        ok = ok1 & ok2 & ok3 & (sh < _I31) & (un < _I31) & (vl < _I31)
        ks = p
        vs = ks + un.astype(np.int64)
        ve = vs + vl.astype(np.int64)
        ok &= ve <= e
        bad_group[rows[~ok]] = True
        parts.append((rows, p0, sh, ks, vs, ve))
        pos[rows] = ve
        rows = rows[ok & (ve < e)]
    if parts:
        # Groups lie in file order and step k of group g is its k-th entry: entry (g, k) goes
        # to row first_row[g] + k (file order) without sorting.
        counts = np.zeros(gs.size, dtype=np.int64)
        for x in parts:
            counts[x[0]] += 1
        first_row = np.cumsum(counts) - counts
        total = int(counts.sum())
        grp, sh_all, ks_all, vs_all, ve_all = (np.empty(total, dtype=np.int64) for _ in range(5))
        for k, (rows_k, _, sh_k, ks_k, vs_k, ve_k) in enumerate(parts):
            at = first_row[rows_k] + k
            grp[at], sh_all[at], ks_all[at], vs_all[at], ve_all[at] = rows_k, sh_k, ks_k, vs_k, ve_k
        blk = gb[grp]
        bad_block = np.zeros(len(blocks), dtype=bool)
        bad_block[gb[bad_group]] = True
        # A shared prefix longer than the previous key (the first key of a block has none).
        klen = sh_all + (vs_all - ks_all)
        prev = np.concatenate([[0], klen[:-1]])
        first = np.concatenate([[True], blk[1:] != blk[:-1]])
        prev[first] = 0
        bad_block[blk[sh_all > prev]] = True
        fallback |= set(np.flatnonzero(bad_block).tolist())
        keep = ~bad_block[blk] if fallback else None
        if keep is not None:
            blk, sh_all, ks_all, vs_all, ve_all = (
                x[keep] for x in (blk, sh_all, ks_all, vs_all, ve_all)
            )
    else:
        blk = sh_all = ks_all = vs_all = ve_all = np.zeros(0, dtype=np.int64)
    if not fallback:
        return buf, sh_all, ks_all, vs_all, ve_all
    # Merge the trusted blocks' entries with the others, scanned in Python, in block order.
    shared: list[Any] = []
    bounds = np.searchsorted(blk, np.arange(len(blocks) + 1)).tolist()
    kstart: list[Any] = []
    vstart: list[Any] = []
    vend: list[Any] = []
    base = 0
    for bi, (offset, block) in enumerate(blocks):
        if bi in fallback:
            bs, bk, bvs, bve = scan_block(block, _where(path, offset))
            shared.append(np.array(bs, dtype=np.int64))
            kstart.append(np.array(bk, dtype=np.int64) + base)
            vstart.append(np.array(bvs, dtype=np.int64) + base)
            vend.append(np.array(bve, dtype=np.int64) + base)
        else:
            lo, hi = bounds[bi], bounds[bi + 1]
            shared.append(sh_all[lo:hi])
            kstart.append(ks_all[lo:hi])
            vstart.append(vs_all[lo:hi])
            vend.append(ve_all[lo:hi])
        base += len(block)
    return (
        buf,
        np.concatenate(shared),
        np.concatenate(kstart),
        np.concatenate(vstart),
        np.concatenate(vend),
    )


def _assemble_keys(path: str, buf: bytes, shared: Any, kstart: Any, vstart: Any) -> list[bytes]:
    """Full keys from the prefix-compressed ones; strictly increasing across the table.
    Positions may be lists or numpy arrays (taken a chunk at a time: no list of 10^6 ints)."""
    keys: list[bytes] = []
    append = keys.append
    prev = b""
    n = len(shared)
    step = 1 << 15
    for lo in range(0, n, step):
        chunk = (shared[lo : lo + step], kstart[lo : lo + step], vstart[lo : lo + step])
        if not isinstance(chunk[0], list):
            chunk = (chunk[0].tolist(), chunk[1].tolist(), chunk[2].tolist())
        for sh, ks, vs in zip(*chunk):
            prev = prev[:sh] + buf[ks:vs]
            append(prev)
    # The order is checked apart, by one C-level pass (a third of the loop's time if inside).
    if not all(map(bytes.__lt__, keys, islice(keys, 1, None))):
        i = next(i for i in range(1, len(keys)) if keys[i] <= keys[i - 1])
        what = "duplicate key" if keys[i] == keys[i - 1] else "keys out of order at"
        raise CorruptCheckpoint(f"{path}: {what} {keys[i][:60]!r} (corrupt index)")
    return keys


# ---- decoding the entries ------------------------------------------------------------------------
def _decode_python(cols: IndexColumns, flagged: list[int]) -> None:
    """Fill the columns one entry at a time."""
    buf = cols.buf
    dim_start = cols.dim_start
    dims = cols.dims
    for i, (vs, ve) in enumerate(zip(cols.vstart, cols.vend)):
        got = decode_entry(buf[vs:ve])
        if got is None:
            flagged.append(i)
            got = (0, (), 0, 0, 0, 0)
        dtype, shape, shard, offset, size, crc = got
        cols.dtype.append(dtype)
        cols.shard.append(shard)
        cols.offset.append(offset)
        cols.size.append(size)
        cols.crc.append(crc)
        cols.nelem.append(num_elements(shape))
        dims.extend(shape)
        dim_start.append(len(dims))


# Entries decoded per vectorized pass: bounds the temporaries of a 10^6-entry index.
DECODE_CHUNK = 1 << 16


def _decode_numpy(cols: IndexColumns, flagged: list[int]) -> None:
    """Fill the columns by decoding field k of every entry at once (a few passes per chunk of
    ``DECODE_CHUNK`` entries)."""
    import numpy as np

    _return_big_blocks()
    u8 = np.frombuffer(cols.buf, dtype=np.uint8)
    if u8.size == 0:
        u8 = np.zeros(1, dtype=np.uint8)
    vs_all = np.frombuffer(cols.vstart, dtype=np.int64)
    end_all = np.frombuffer(cols.vend, dtype=np.int64)
    n = vs_all.size
    for name, code in (
        ("dtype", "i"),
        ("shard", "q"),
        ("offset", "q"),
        ("size", "q"),
        ("crc", "q"),
        ("nelem", "q"),
        ("dims", "q"),
    ):
        setattr(cols, name, array(code))
    cols.dim_start = array("q", [0])
    for lo in range(0, n, DECODE_CHUNK):
        hi = min(lo + DECODE_CHUNK, n)
        got = _decode_range(u8, vs_all[lo:hi], end_all[lo:hi])
        cols.dtype.frombytes(got["dtype"].astype(np.int32).tobytes())
        for name in ("shard", "offset", "size", "crc", "nelem", "dims"):
            getattr(cols, name).frombytes(got[name].astype(np.int64).tobytes())
        cols.dim_start.frombytes((got["starts"][1:] + cols.dim_start[-1]).tobytes())
        flagged.extend((np.flatnonzero(got["bad"]) + lo).tolist())


def _return_big_blocks() -> None:
    """Have glibc give large freed blocks back at once (a fixed mmap threshold): the decode's
    temporaries would otherwise stay in the heap and count in the peak RSS of what follows."""
    if sys.platform != "linux" or getattr(_return_big_blocks, "done", False):
        return
    _return_big_blocks.done = True  # type: ignore[attr-defined]
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: 1 MiB, not adaptive
    except (OSError, AttributeError):
        pass


def _decode_range(u8: np.ndarray, vs: np.ndarray, end: np.ndarray) -> dict[str, np.ndarray]:
    """Decode the entries at ``vs``..``end`` (see ``_decode_numpy``): columns, the rank and
    flat dims of each shape (``starts`` into them), and which entries are flagged."""
    import numpy as np

    n = vs.size
    dtype = np.zeros(n, dtype=np.int64)
    shard = np.zeros(n, dtype=np.int64)
    offset = np.zeros(n, dtype=np.uint64)
    size = np.zeros(n, dtype=np.uint64)
    crc = np.zeros(n, dtype=np.int64)
    shape_s = np.full(n, -1, dtype=np.int64)
    shape_e = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(vs < end)
    pos = vs.copy()
    while rows.size:
        p = pos[rows]
        e = end[rows]
        tag = u8[p]
        fixed = tag == 0x35
        x, p2, ok = _np_varint(u8, p + 1, e)
        # fixed32 (the CRC)
        fr = fixed & (p + 5 <= e)
        if fr.any():
            q = p[fr] + 1
            crc[rows[fr]] = (
                u8[q].astype(np.int64)
                | u8[q + 1].astype(np.int64) << 8
                | u8[q + 2].astype(np.int64) << 16
                | u8[q + 3].astype(np.int64) << 24
            )
        newpos = np.where(fixed, p + 5, p2)
        good = np.where(fixed, fr, ok)
        is_dtype = tag == 0x08
        is_shape = tag == 0x12
        is_shard = tag == 0x18
        is_off = tag == 0x20
        is_size = tag == 0x28
        known = fixed | is_dtype | is_shape | is_shard | is_off | is_size
        good &= known
        good &= ~((is_dtype | is_shard) & (x >= _I31))
        good &= ~((is_off | is_size) & (x >= _I63))
        xi = np.minimum(x, np.uint64(1 << 40)).astype(np.int64)
        # length-delimited: the shape (once)
        length_end = p2 + xi
        good &= ~(is_shape & ((length_end > e) | (shape_s[rows] >= 0)))
        newpos = np.where(is_shape, length_end, newpos)
        g = good & is_dtype
        dtype[rows[g]] = xi[g]
        g = good & is_shard
        shard[rows[g]] = xi[g]
        g = good & is_off
        offset[rows[g]] = x[g]
        g = good & is_size
        size[rows[g]] = x[g]
        g = good & is_shape
        shape_s[rows[g]] = p2[g]
        shape_e[rows[g]] = length_end[g]
        bad[rows[~good]] = True
        pos[rows] = newpos
        rows = rows[good & (newpos < e)]
    # Shapes: each dim a sub-message holding only its size (or empty, a zero dimension).
    rank = np.zeros(n, dtype=np.int64)
    dim_rows: list[np.ndarray] = []
    dim_vals: list[np.ndarray] = []
    dim_k: list[np.ndarray] = []
    rows = np.flatnonzero((shape_s >= 0) & (shape_s < shape_e) & ~bad)
    pos = shape_s.copy()
    k = 0
    while rows.size:
        if k >= MAX_RANK:
            bad[rows] = True
            break
        p = pos[rows]
        e = shape_e[rows]
        good = u8[p] == 0x12
        length, p2, ok = _np_varint(u8, p + 1, e)
        good &= ok & (length < _I31)
        stop = p2 + np.minimum(length, np.uint64(_I31)).astype(np.int64)
        good &= stop <= e
        empty = length == 0
        good &= empty | (u8[np.minimum(p2, u8.size - 1)] == 0x08)
        d, p3, ok = _np_varint(u8, p2 + 1, stop)
        good &= empty | (ok & (p3 == stop) & (d < _I63))
        value = np.where(empty, np.uint64(0), d).astype(np.int64)
        bad[rows[~good]] = True
        keep = rows[good]
        dim_rows.append(keep)
        dim_vals.append(value[good])
        dim_k.append(np.full(keep.size, k, dtype=np.int64))
        rank[keep] += 1
        pos[rows] = stop
        rows = rows[good & (stop < e)]
        k += 1
    bad |= ~np.isin(dtype, np.fromiter(KNOWN_DTYPES, dtype=np.int64))
    rank[bad] = 0
    # Element counts (and the zero-free "spread"), checked in float first: a product that
    # might exceed the bound is left to the exact checks of the flagged path.
    if dim_rows:
        r = np.concatenate(dim_rows)
        v = np.concatenate(dim_vals)
        kk = np.concatenate(dim_k)
        live = ~bad[r]
        r, v, kk = r[live], v[live], kk[live]
        order = np.lexsort((kk, r))
        r, v = r[order], v[order]
        logs = np.zeros(n)
        spread_logs = np.zeros(n)
        with np.errstate(divide="ignore"):
            np.add.at(logs, r, np.log2(v.astype(np.float64)))
            np.add.at(spread_logs, r, np.log2(np.maximum(v, 1).astype(np.float64)))
        too_big = (logs > 49.5) | (spread_logs > 49.5)
        if too_big.any():
            bad |= too_big
            live = ~too_big[r]
            r, v = r[live], v[live]
            rank[too_big] = 0
        nelem = np.ones(n, dtype=np.int64)
        np.multiply.at(nelem, r, v)
        flat = v
    else:
        nelem = np.ones(n, dtype=np.int64)
        flat = np.zeros(0, dtype=np.int64)
    nelem[bad] = 0
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(rank, out=starts[1:])
    return {
        "dtype": dtype,
        "shard": shard,
        "offset": offset.astype(np.int64),
        "size": size.astype(np.int64),
        "crc": crc,
        "nelem": nelem,
        "dims": flat.astype(np.int64),
        "starts": starts,
        "bad": bad,
    }


def slice_key_count(keys: list[bytes]) -> int:
    """How many of the (sorted) keys are slice keys: they start with 0x00, so they come first."""
    return bisect_left(keys, b"\x01")


def _check_names(cols: IndexColumns, flagged: list[int]) -> None:
    """Flag the first key that is not UTF-8 text (slice keys are binary and exempt)."""
    keys = cols.keys
    first = slice_key_count(keys)
    try:
        b"\n".join(keys[first:] if first else keys).decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for i in range(first, len(keys)):
        try:
            keys[i].decode("utf-8")
        except UnicodeDecodeError:
            flagged.append(i)
            return


def _apply_flagged(cols: IndexColumns, index_path: str, flagged: list[int]) -> None:
    """Decode the flagged rows with the protobuf library (raising for the first bad one)."""
    fixes: dict[int, Decoded] = {}
    cols.unusual = set(flagged)
    for i in sorted(cols.unusual):
        fixes[i] = parse_entry(index_path, cols.keys[i], cols.value(i))
    if not fixes:
        return
    new_dims = array("q")
    new_start = array("q", [0])
    old_dims, old_start = cols.dims, cols.dim_start
    for i in range(len(cols.keys)):
        fix = fixes.get(i)
        if fix is None:
            new_dims.extend(old_dims[old_start[i] : old_start[i + 1]])
        else:
            new_dims.extend(fix.dims)
            cols.dtype[i] = fix.dtype
            cols.shard[i] = fix.shard
            cols.offset[i] = fix.offset
            cols.size[i] = fix.size
            cols.crc[i] = fix.crc
            cols.nelem[i] = num_elements(fix.dims)
            if fix.slices:
                cols.slices[i] = fix.slices
        new_start.append(len(new_dims))
    cols.dims, cols.dim_start = new_dims, new_start


def parse_index(
    index_path: str, blocks: Blocks, vectorize: bool | None = None
) -> tuple[bytes | None, IndexColumns]:
    """The header value (None if absent) and the columns of every other entry.

    ``blocks`` are the table's data blocks (checked and uncompressed) in order. ``vectorize``
    forces a decoder (tests); by default numpy decodes large indexes, or any once it is loaded.
    """
    if vectorize is None:
        vectorize = "numpy" in sys.modules or sum(len(b) for _, b in blocks) > VECTORIZE_ABOVE
    scan: Callable[..., tuple[bytes, Any, Any, Any, Any]]
    scan = _scan_numpy if vectorize and blocks else _scan_python
    buf, shared, kstart, vstart, vend = scan(index_path, blocks)
    keys = _assemble_keys(index_path, buf, shared, kstart, vstart)
    header: bytes | None = None
    skip = 0
    if keys and keys[0] == b"":
        header = buf[vstart[0] : vend[0]]
        skip = 1
    cols = IndexColumns()
    cols.buf = buf
    cols.keys = keys[skip:] if skip else keys
    if isinstance(vstart, list):
        cols.vstart = array("q", vstart[skip:])
        cols.vend = array("q", vend[skip:])
    else:
        cols.vstart = array("q", vstart[skip:].astype("<i8").tobytes())  # type: ignore[union-attr]
        cols.vend = array("q", vend[skip:].astype("<i8").tobytes())  # type: ignore[union-attr]
    del shared, kstart, vstart, vend
    flagged: list[int] = []
    if vectorize and cols.keys:
        _decode_numpy(cols, flagged)
    else:
        _decode_python(cols, flagged)
    _check_names(cols, flagged)
    _apply_flagged(cols, index_path, flagged)
    return header, cols
