"""Columnar index writing: many ``.index`` entries at once, with numpy instead of a Python step
per entry (FORMAT.md sections 2-3).

A writer that renames, merges or prunes 10^6 tensors must not pay microseconds per entry. These
functions work on whole columns: ``encode_entries`` serializes BundleEntryProtos exactly as
``index.encode_entry`` does (protobuf's own encoding), and ``table_blocks`` lays sorted
(key, value) pairs out in table blocks exactly as ``TableWriter.add`` does (same prefix
compression, restart points and block boundaries), so a table built either way is the same
bytes. ``crc32c_many`` checksums many byte ranges of one buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

from tfckpt.bundle.table import _MASK_DELTA, crc32c_bytes

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.index import IndexColumns

_MAX_VARINT = 10
# Entries handled per vectorized pass: bounds the temporaries of 10^6 entries.
CHUNK = 1 << 16


def varint_sizes(x: np.ndarray) -> np.ndarray:
    """The encoded length of each (non-negative) value as a base-128 varint."""
    import numpy as np

    u = x.astype(np.uint64, copy=False)
    sizes = np.ones(u.shape, dtype=np.int64)
    top = int(u.max(initial=0))
    for k in range(1, _MAX_VARINT):
        if top < 1 << (7 * k):
            break
        sizes += u >= np.uint64(1 << (7 * k))
    return sizes


def put_varints(out: np.ndarray, pos: np.ndarray, x: np.ndarray, sizes: np.ndarray) -> None:
    """Write ``x[i]`` as a varint of ``sizes[i]`` bytes at ``out[pos[i]:]``."""
    import numpy as np

    u = x.astype(np.uint64, copy=False)
    if sizes.size and int(sizes.max()) == 1:
        out[pos] = u.astype(np.uint8)
        return
    for k in range(int(sizes.max(initial=0))):
        m = sizes > k
        byte = (u[m] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (sizes[m] > k + 1).astype(np.uint64) << np.uint64(7)
        out[pos[m] + k] = (byte | more).astype(np.uint8)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, without a loop."""
    import numpy as np

    lengths = lengths.astype(np.int64, copy=False)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64, copy=False) - before, lengths) + np.arange(
        total, dtype=np.int64
    )


def copy_segments(
    out: np.ndarray, dst: np.ndarray, src: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> None:
    """``out[dst[i]:dst[i] + lengths[i]] = src[starts[i]:starts[i] + lengths[i]]`` for every i."""
    import numpy as np

    if lengths.size:
        taken = ranges(starts, lengths)
        out[taken + np.repeat(dst - starts, lengths)] = src[taken]


def distinct(values: np.ndarray) -> list[int]:
    """The distinct values of an array of small non-negative integers (dtype numbers, shard
    ids), in order (``np.unique`` would import ``numpy.ma``, ~0.1 s)."""
    import numpy as np

    return np.flatnonzero(np.bincount(values)).tolist() if values.size else []


def entry_ends(offset: np.ndarray, size: np.ndarray) -> np.ndarray:
    """``offset + size`` of stored entries, saturating at the int64 maximum: an index may hold
    offsets up to 2**63 - 1, whose ends must still compare as past any shard, not wrap to a
    negative number."""
    import numpy as np

    end = offset + size
    wrapped = end < offset
    if wrapped.any():
        end[wrapped] = np.iinfo(np.int64).max
    return end


def exclusive_cumsum(x: np.ndarray) -> np.ndarray:
    import numpy as np

    out = np.zeros(x.size + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out


# ---- BundleEntryProtos -------------------------------------------------------------------------
def encode_entries(
    dtype: np.ndarray,
    rank: np.ndarray,
    dims: np.ndarray,
    shard: np.ndarray,
    offset: np.ndarray,
    size: np.ndarray,
    crc: np.ndarray,
) -> tuple[bytes, np.ndarray]:
    """Serialize entries without slices as ``index.encode_entry`` does, all at once.

    Entry ``i`` has dtype number ``dtype[i]``, a shape of ``rank[i]`` dimensions (consecutive
    in the flat ``dims``), and the given shard, offset, size and masked CRC. Returns the
    concatenated encodings and the ``n + 1`` boundaries between them.
    """
    import numpy as np

    n = dtype.size
    d = dims.astype(np.int64, copy=False)
    dsz = varint_sizes(d)
    dim_len = np.where(d == 0, 2, 3 + dsz)  # 0x12 len [0x08 varint]
    dim_row = np.repeat(np.arange(n, dtype=np.int64), rank)
    body = np.bincount(dim_row, weights=dim_len, minlength=n).astype(np.int64)
    fields = []  # (tag, present, value, value sizes); None sizes: 4 raw bytes
    for tag, value in ((0x08, dtype), (0x18, shard), (0x20, offset), (0x28, size)):
        v = value.astype(np.int64, copy=False)
        fields.append((tag, v != 0, v, varint_sizes(v)))
    c = crc.astype(np.int64, copy=False)
    body_sz = varint_sizes(body)
    lengths = 1 + body_sz + body  # the shape field is always present
    for _, present, _, sz in fields:
        lengths += np.where(present, 1 + sz, 0)
    lengths += np.where(c != 0, 5, 0)
    bounds = exclusive_cumsum(lengths)
    out = np.zeros(int(bounds[-1]), dtype=np.uint8)
    pos = bounds[:-1].copy()

    def put_field(tag: int, present: np.ndarray, v: np.ndarray, sz: np.ndarray) -> None:
        at = pos[present]
        out[at] = tag
        put_varints(out, at + 1, v[present], sz[present])
        pos[present] += 1 + sz[present]

    put_field(*fields[0])  # dtype (field 1)
    out[pos] = 0x12  # shape (field 2)
    put_varints(out, pos + 1, body, body_sz)
    pos += 1 + body_sz
    # Each dimension: 0x12, its length, then 0x08 and the size (an empty message for 0).
    first_dim = exclusive_cumsum(rank)[:-1]
    within = exclusive_cumsum(dim_len)[:-1]
    within -= np.repeat(within[first_dim[rank > 0]], rank[rank > 0])
    at = pos[dim_row] + within
    out[at] = 0x12
    nonzero = d != 0
    out[at[~nonzero] + 1] = 0
    nz_at = at[nonzero]
    out[nz_at + 1] = (1 + dsz[nonzero]).astype(np.uint8)
    out[nz_at + 2] = 0x08
    put_varints(out, nz_at + 3, d[nonzero], dsz[nonzero])
    pos += body
    for field in fields[1:]:
        put_field(*field)
    has_crc = c != 0
    at = pos[has_crc]
    out[at] = 0x35
    raw = c[has_crc].astype("<u4").view(np.uint8).reshape(-1, 4)
    for k in range(4):
        out[at + 1 + k] = raw[:, k]
    return out.tobytes(), bounds


def encode_rows(
    cols: IndexColumns,
    rows: np.ndarray,
    shard: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> tuple[bytes, np.ndarray]:
    """``encode_entries`` for rows of an index's columns (plain entries: no slices, decoded
    by tfckpt itself), with a new ``shard`` and/or ``offset`` each; ``CHUNK`` rows at a time,
    so the temporaries stay small whatever the count."""
    import numpy as np

    dim_start = cols.np("dim_start")
    shard = cols.np("shard")[rows] if shard is None else shard
    offset = cols.np("offset")[rows] if offset is None else offset
    parts, bounds = [], [np.zeros(1, dtype=np.int64)]
    for lo in range(0, rows.size, CHUNK):
        part = rows[lo : lo + CHUNK]
        first, rank = dim_start[part], dim_start[part + 1] - dim_start[part]
        data, edges = encode_entries(
            cols.np("dtype")[part],
            rank,
            cols.np("dims")[ranges(first, rank)],
            shard[lo : lo + CHUNK],
            offset[lo : lo + CHUNK],
            cols.np("size")[part],
            cols.np("crc")[part],
        )
        bounds.append(edges[1:] + bounds[-1][-1])
        parts.append(data)
    return b"".join(parts), np.concatenate(bounds)


# ---- table blocks ------------------------------------------------------------------------------
def common_prefixes(kbuf: np.ndarray, kstart: np.ndarray, klen: np.ndarray) -> np.ndarray:
    """For every key but the first, the length of the prefix it shares with the previous key
    (``kbuf`` holds the keys back to back, followed by at least 8 padding bytes)."""
    import numpy as np

    n = klen.size
    if n < 2:
        return np.zeros(max(n - 1, 0), dtype=np.int64)
    # The 8 bytes from every position as one little-endian number: 8 bytes compared per step,
    # the first that differs is the lowest set byte of the XOR.
    words = np.ndarray((kbuf.size - 7,), dtype="<u8", buffer=kbuf, strides=(1,))
    a, b = kstart[:-1], kstart[1:]
    limit = np.minimum(klen[:-1], klen[1:])
    lcp = np.zeros(n - 1, dtype=np.int64)
    active = np.flatnonzero(limit > 0)
    done = 0
    while active.size:
        x = words[a[active] + done] ^ words[b[active] + done]
        lowest = x & (~x + np.uint64(1))  # the lowest set bit, a power of two (exact in float)
        same = np.where(x == 0, 8, (np.frexp(lowest.astype(np.float64))[1] - 1) // 8)
        left = limit[active] - done
        same = np.minimum(same, left)
        lcp[active] = done + same
        active = active[(same == 8) & (left > 8)]
        done += 8
    return lcp


def out_of_order(
    kbuf: np.ndarray, kstart: np.ndarray, klen: np.ndarray, lcp: np.ndarray
) -> int | None:
    """The index of the first key not greater than the one before it, or None."""
    import numpy as np

    if lcp.size == 0:
        return None
    prev_len, cur_len = klen[:-1], klen[1:]
    ended = lcp >= np.minimum(prev_len, cur_len)
    at = np.minimum(lcp, kbuf.size - 1)
    bigger = kbuf[np.minimum(kstart[1:] + at, kbuf.size - 1)] > kbuf[kstart[:-1] + at]
    fine = np.where(ended, cur_len > prev_len, bigger)
    bad = np.flatnonzero(~fine)
    return int(bad[0]) + 1 if bad.size else None


def _packed(keys: Sequence[bytes], klen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys back to back (and 8 padding bytes, see ``common_prefixes``), and where each starts."""
    import numpy as np

    return np.frombuffer(b"".join([*keys, bytes(8)]), dtype=np.uint8), exclusive_cumsum(klen)[:-1]


def table_blocks(
    keys: Sequence[bytes],
    values: bytes,
    vstart: np.ndarray,
    vend: np.ndarray,
    block_size: int,
    restart_interval: int,
) -> Iterator[tuple[bytes, bytes]]:
    """(contents, last key) of each data block holding the sorted ``keys`` with values
    ``values[vstart[i]:vend[i]]``, as ``TableWriter.add`` lays them out: a block ends after the
    entry that brings it (with its restart array) to ``block_size`` bytes; every
    ``restart_interval``-th entry of a block stores its whole key, the others only what differs
    from the previous key. ValueError if the keys are not strictly increasing."""
    import numpy as np

    n = len(keys)
    if n == 0:
        return
    klen = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    lcp = np.zeros(n, dtype=np.int64)
    for lo in range(0, n - 1, CHUNK):  # with the key before each chunk: few temporaries
        hi = min(n, lo + CHUNK + 1)
        kbuf, kstart = _packed(keys[lo:hi], klen[lo:hi])
        lcp[lo + 1 : hi] = common_prefixes(kbuf, kstart, klen[lo:hi])
        bad = out_of_order(kbuf, kstart, klen[lo:hi], lcp[lo + 1 : hi])
        if bad is not None:
            raise ValueError(f"table keys must be strictly increasing: {keys[lo + bad]!r}")
    vbuf = np.frombuffer(values, dtype=np.uint8)
    vstart = vstart.astype(np.int64, copy=False)
    vlen = vend.astype(np.int64, copy=False) - vstart
    start = 0
    window = 4096
    while start < n:
        while True:
            stop = min(n, start + window)
            j = np.arange(stop - start)
            restart = j % restart_interval == 0
            shared = np.where(restart, 0, lcp[start:stop])
            unshared = klen[start:stop] - shared
            vl = vlen[start:stop]
            head = varint_sizes(shared) + varint_sizes(unshared) + varint_sizes(vl)
            ends = np.cumsum(head + unshared + vl)
            full = ends + 4 * (j // restart_interval + 1) + 4 >= block_size
            hit = int(np.argmax(full)) if full.any() else -1
            if hit >= 0 or stop == n:
                count = hit + 1 if hit >= 0 else stop - start
                break
            window *= 2
        window = count + count // 4 + 64  # the next block is likely much the same
        sl = slice(0, count)
        shared, unshared, vl, head = shared[sl], unshared[sl], vl[sl], head[sl]
        restarts = np.flatnonzero(restart[sl])
        pos = np.zeros(count, dtype=np.int64)
        pos[1:] = ends[: count - 1]
        used = int(ends[count - 1])
        out = np.empty(used + 4 * restarts.size + 4, dtype=np.uint8)
        at = pos
        for field in (shared, unshared, vl):
            sz = varint_sizes(field)
            put_varints(out, at, field, sz)
            at = at + sz
        rows = slice(start, start + count)
        kbuf, kstart = _packed(keys[rows], klen[rows])
        copy_segments(out, at, kbuf, kstart + shared, unshared)
        copy_segments(out, at + unshared, vbuf, vstart[rows], vl)
        tail = np.append(pos[restarts], restarts.size).astype("<u4")
        out[used:] = tail.view(np.uint8)
        yield out.tobytes(), keys[start + count - 1]
        start += count


# ---- reading many small ranges ----------------------------------------------------------------
def span_groups(
    start: np.ndarray, end: np.ndarray, step: int, gap: int = 1 << 20, most: int = 1 << 16
) -> list[tuple[int, int]]:
    """Ranges of a file sorted by ``start``, cut into groups ``[i, j)`` to read at once: a group
    starts within one ``step``-aligned stretch of the file (so it spans at most ``step`` bytes
    plus its last range), has no hole over ``gap`` bytes and at most ``most`` ranges."""
    import numpy as np

    n = start.size
    if n == 0:
        return []
    reach = np.maximum.accumulate(end)
    cut = np.ones(n, dtype=bool)
    cut[1:] = (start[1:] // step != start[:-1] // step) | (start[1:] - reach[:-1] > gap)
    first = np.flatnonzero(cut)
    within = np.arange(n) - np.repeat(first, np.diff(np.append(first, n)))
    cut |= within % most == 0
    bounds = np.append(np.flatnonzero(cut), n).tolist()
    return list(pairwise(bounds))


# ---- checksums ---------------------------------------------------------------------------------
def masked_crcs(pieces: Iterable[bytes], count: int) -> np.ndarray:
    """The masked CRC32C (as the index stores it) of each of ``count`` byte strings, as an
    int64 array comparable with the index's ``crc`` column: one hardware checksum call each,
    no Python step of its own."""
    import numpy as np

    crcs = np.fromiter(map(crc32c_bytes, pieces), dtype=np.uint64, count=count)
    masked = (((crcs >> np.uint64(15)) | (crcs << np.uint64(17))) + np.uint64(_MASK_DELTA)) & (
        np.uint64(0xFFFFFFFF)
    )
    return masked.astype(np.int64)


def crc32c_many(buf: bytes, starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
    """``masked_crcs`` of each ``buf[starts[i]:ends[i]]``."""
    return masked_crcs(map(buf.__getitem__, map(slice, starts, ends)), len(starts))
