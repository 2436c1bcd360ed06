"""Writing a new V2 prefix, atomically and under the destination's lock.

TF decides a V2 checkpoint exists by its ``.index``, so data files are published first and the
index last (then the ``.meta``); with ``force`` the old index goes before any data file is
replaced, so no moment exists where an index points at the wrong data. The files themselves are
written through ``storage.begin_prefix_write``: locally under temporary names renamed into place
at commit (a failure or interruption before ``commit()`` leaves only temp files, which
``abort()`` and the context manager remove; a failure during the renames also removes the data
files already placed); remotely at their final names in that order (object stores have no
rename). A process killed outright leaves temp files named ``<final>.tfckpt-tmp-<pid>-<hex>``
(and, after the data renames, data files without an index): the next writer to the same prefix
removes them, and ``tfckpt ls`` reports them.

Two writers never interleave: the destination is locked from the writer's creation until it
exits (``flock`` locally, a create-only lock object remotely). Without ``force`` the second
writer fails at once (OutputExists) and touches nothing; with ``force`` it waits, and the last
one wins whole. The index is published with no-replace semantics (``renameat2`` /
``link``), so even a writer that is not tfckpt cannot be overwritten without ``force``. A
destination that is one of the checkpoints being read is refused: replacing it would destroy
the source if the process died half-way.
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable, Iterable
from itertools import islice, pairwise
from typing import TYPE_CHECKING, Any

from tfckpt import storage
from tfckpt.bundle.reader import HEADER_KEY, data_filename
from tfckpt.bundle.table import TableWriter, crc32c, encode_varint, mask_crc
from tfckpt.dtypes import DType
from tfckpt.errors import CorruptCheckpoint, OutputExists, UsageError
from tfckpt.storage import COPY_CHUNK, Output, write_error
from tfckpt.storage.cleanup import clean_stale_temps, prefix_files, stale_temps

if TYPE_CHECKING:
    import numpy as np

# Indexes of this many entries or more are built as columns (bulk.table_blocks), with numpy.
COLUMNS_FROM = 4096

__all__ = [
    "BundleWriter",
    "check_destination",
    "clean_stale_temps",
    "encode_string_tensor",
    "make_entry",
    "prefix_files",
    "stale_temps",
]


def _refuse_source(prefix: str) -> None:
    from tfckpt.bundle.reader import open_index_ids

    found = storage.identity(prefix + ".index")
    if found is None:
        return
    source = open_index_ids().get(found)
    if source is not None:
        raise UsageError(
            f"{prefix}: the destination is the source checkpoint {source}; write to another "
            "prefix (replacing a checkpoint while reading it could destroy it)"
        )


def check_destination(prefix: str, force: bool) -> None:
    """Refuse an existing destination without ``force``; refuse an unwritable directory, and a
    destination that is a checkpoint this process is reading.

    A missing directory is fine (writers create it) if its nearest existing ancestor is a
    writable directory. Data files without an index do not make a destination exist.
    """
    storage.check_parent(prefix)
    _refuse_source(prefix)
    existing = prefix_files(prefix)
    if not storage.lexists(prefix + ".index"):
        # Data files without an index are what a write killed between its data and index
        # renames leaves: not a checkpoint (TF needs the index), so a new write may replace them.
        existing = [p for p in existing if p.endswith((".index", ".meta"))]
    if existing and not force:
        raise OutputExists(f"{prefix}: destination exists ({len(existing)} files)", fix="force")


def encode_header(num_shards: int) -> bytes:
    """The BundleHeaderProto of a new bundle (little-endian, version producer 1) as protobuf
    serializes it, without importing protobuf."""
    return b"\x08" + encode_varint(num_shards) + b"\x1a\x02\x08\x01"


def make_entry(
    dtype: DType,
    shape: tuple[int, ...],
    shard_id: int = 0,
    offset: int = 0,
    size: int = 0,
    crc: int | None = None,
    slices: Iterable[Any] = (),
) -> Any:
    from tfckpt import protos  # imported on use: listing a checkpoint never needs it

    entry = protos.BundleEntryProto(dtype=dtype.enum, shard_id=shard_id, offset=offset, size=size)
    entry.shape.SetInParent()
    for d in shape:
        entry.shape.dim.add(size=d)
    if crc is not None:
        entry.crc32c = crc
    for s in slices:
        entry.slices.add().CopyFrom(s)
    return entry


def encode_string_tensor(values: np.ndarray) -> tuple[bytes, int]:
    """The stored bytes of a string tensor and their masked CRC (FORMAT.md §5)."""
    flat = [v if isinstance(v, bytes) else str(v).encode() for v in values.reshape(-1)]
    out = bytearray()
    crc = 0
    for v in flat:
        out += encode_varint(len(v))
        n = len(v)
        crc = crc32c(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little"), crc)
    len_crc = mask_crc(crc).to_bytes(4, "little")
    out += len_crc
    crc = crc32c(len_crc, crc)
    for v in flat:
        out += v
        crc = crc32c(v, crc)
    return bytes(out), mask_crc(crc)


class BundleWriter:
    """Streams a new checkpoint prefix. Use as a context manager; call ``commit()`` to publish.

    Data for the writer's own shard (``own_shard``, default 0) is appended through
    ``add_array`` / ``add_bytes`` / ``add_stream`` / ``add_range``; whole existing data files can
    be adopted as the other shards with ``adopt_shard`` (copied, hard-linked or copied
    server-side, offsets unchanged). Index entries are given with ``add_entry``; a new ``.meta``
    with ``set_meta`` (published after the index). With ``own_shard=None`` every shard must be
    adopted. The destination stays locked until the context exits, so a state-file update
    after ``commit()`` is covered too.
    """

    def __init__(
        self,
        prefix: str,
        num_shards: int = 1,
        force: bool = False,
        own_shard: int | None = 0,
        sync: bool = False,
        keep_meta: bool = False,
    ) -> None:
        if num_shards < 1:
            raise UsageError("a checkpoint needs at least one shard")
        if own_shard is not None and not 0 <= own_shard < num_shards:
            raise UsageError(f"own shard {own_shard} outside 0..{num_shards - 1}")
        self.prefix = prefix
        self.num_shards = num_shards
        self.own_shard = own_shard
        self.force = force
        # Like cp and TensorFlow's own writer, data is left to the page cache by default: the
        # publication order already protects against interruption (kill, Ctrl-C, disk full).
        # ``sync`` also makes the result durable across power loss (fsync before publishing).
        self.sync = sync
        self.keep_meta = keep_meta  # the caller writes a new .meta after commit()
        check_destination(prefix, force)  # fail fast, before taking the lock
        self._write = storage.begin_prefix_write(
            prefix, force, sync, refuse=lambda: check_destination(prefix, force)
        )
        self.cleaned = self._write.cleaned
        self._entries: dict[bytes, bytes] = {}
        self._batches: list[tuple[list[bytes], bytes, Any, Any]] = []  # add_entries
        self._files: set[str] = set()  # final names written or adopted
        self._data: Output | None = None
        self._data_offset = 0
        self._meta: bytes | None = None
        self._committed = False

    # ---- data shard 0 (written here) ---------------------------------------------------
    def _own_path(self) -> str:
        if self.own_shard is None:
            raise UsageError("this writer adopts all its shards and writes no data")
        return data_filename(self.prefix, self.own_shard, self.num_shards)

    def _data_file(self) -> Output:
        if self._data is None:
            final = self._own_path()
            self._data = self._write.output(final)
            self._files.add(final)
        return self._data

    def _write_chunk(self, chunk: bytes | memoryview) -> None:
        self._data_file().write(chunk)
        self._data_offset += len(chunk)

    def add_stream(
        self, chunks: Iterable[bytes | memoryview], crc: int | None = None
    ) -> tuple[int, int, int]:
        """Append bytes to the own shard; returns (offset, size, masked crc).

        Pass ``crc`` (masked, from the source entry) when the bytes are copied unchanged, so no
        new checksum is computed; otherwise it is computed while streaming.
        """
        offset = self._data_offset
        running = 0
        for chunk in chunks:
            if crc is None:
                running = crc32c(chunk, running)
            self._write_chunk(chunk)
        size = self._data_offset - offset
        return offset, size, crc if crc is not None else mask_crc(running)

    def add_range(
        self,
        src: str,
        offset: int,
        size: int,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Append ``size`` bytes of file ``src`` from ``offset`` to the own shard (in the kernel
        between local files; unchanged bytes keep their stored checksums). Returns their offset
        in the shard."""
        at = self._data_offset
        self._data_file().append_range(src, offset, size, on_bytes)
        self._data_offset = at + size
        return at

    def append(self, data: bytes | memoryview) -> int:
        """Append bytes to the own shard as they are (stored tensors, already checked: no
        checksum is computed); returns how many."""
        self._write_chunk(data)
        return len(data)

    def add_bytes(self, data: bytes | memoryview, crc: int | None = None) -> tuple[int, int, int]:
        view = memoryview(data)
        return self.add_stream(
            (view[i : i + COPY_CHUNK] for i in range(0, len(view), COPY_CHUNK)), crc
        )

    def add_array(self, key: str | bytes, array: np.ndarray, dtype: DType) -> None:
        """Store a whole tensor value (numeric or string) in the own shard under ``key``."""
        import numpy as np

        if dtype.is_string:
            data, crc = encode_string_tensor(np.asarray(array, dtype=object))
            offset, size, crc = self.add_bytes(data, crc)
        else:
            assert dtype.numpy is not None
            arr = np.ascontiguousarray(array, dtype=dtype.numpy)
            offset, size, crc = self.add_bytes(arr.reshape(-1).view(np.uint8).data)
        entry = make_entry(dtype, tuple(np.shape(array)), self.own_shard or 0, offset, size, crc)
        self.add_entry(key, entry)

    # ---- other shards (adopted files) --------------------------------------------------
    def adopt_shard(
        self,
        src: str,
        shard_id: int,
        link: bool = False,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        """Make an existing data file shard ``shard_id`` of the new prefix (copy or link)."""
        if not 0 <= shard_id < self.num_shards or shard_id == self.own_shard:
            raise UsageError(f"shard {shard_id} cannot be adopted (outside, or the own shard)")
        final = data_filename(self.prefix, shard_id, self.num_shards)
        if final in self._files:
            raise UsageError(f"shard {shard_id} given twice")
        if not storage.isfile(src):
            what = "is not a file" if storage.lexists(src) else "is missing"
            raise CorruptCheckpoint(f"{src}: data shard {what}")
        self._files.add(final)
        try:
            self._write.adopt(src, final, link, on_bytes)
        except OSError as exc:
            raise write_error(final, exc) from None

    # ---- index ---------------------------------------------------------------------------
    def add_entry(self, key: str | bytes, entry: Any) -> None:
        raw_key = key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")
        if raw_key == HEADER_KEY:
            raise UsageError("the empty name is reserved for the bundle header")
        if raw_key in self._entries:
            raise UsageError(f"duplicate key {raw_key!r}")
        self._entries[raw_key] = entry.SerializeToString()

    def add_entries(
        self, keys: list[bytes], values: bytes, starts: np.ndarray, ends: np.ndarray
    ) -> None:
        """Many index entries at once: ``keys[i]`` (in any order) with the serialized
        BundleEntryProto ``values[starts[i]:ends[i]]``, e.g. a source index's own bytes reused
        as they are. Kept as columns, no Python object per entry; a key given twice (here or
        to ``add_entry``) is refused at ``commit()``."""
        if HEADER_KEY in keys:
            raise UsageError("the empty name is reserved for the bundle header")
        self._batches.append((keys, values, starts, ends))

    def set_meta(self, data: bytes) -> None:
        """A new ``.meta`` for the prefix, published right after the index."""
        self._meta = data

    def _index_bytes(self) -> bytes:
        header = encode_header(self.num_shards)
        out = io.BytesIO()
        table = TableWriter(out)
        count = len(self._entries) + sum(len(keys) for keys, *_ in self._batches)
        try:
            if count < COLUMNS_FROM:
                items = list(self._entries.items())
                for keys, values, starts, ends in self._batches:
                    items += zip(keys, map(values.__getitem__, map(slice, starts, ends)))
                table.add(HEADER_KEY, header)
                table.add_many(sorted(items))
            else:
                keys, values, starts, ends = self._columns(header)
                table.add_columns(keys, values, starts, ends)
        except ValueError:  # keys not strictly increasing once sorted: one was given twice
            every = sorted([*self._entries, *(k for keys, *_ in self._batches for k in keys)])
            duplicate = next(a for a, b in pairwise(every) if a == b)
            raise UsageError(f"duplicate key {duplicate!r}") from None
        table.finish()
        return out.getvalue()

    def _columns(self, header: bytes) -> tuple[list[bytes], bytes, np.ndarray, np.ndarray]:
        """Every entry (the header first) as sorted keys and their values' places in one
        buffer."""
        import numpy as np

        from tfckpt.bundle.bulk import exclusive_cumsum

        keys = [HEADER_KEY, *self._entries]
        own = [header, *self._entries.values()]
        bounds = exclusive_cumsum(np.fromiter(map(len, own), dtype=np.int64, count=len(own)))
        buffers, starts, ends = [b"".join(own)], [bounds[:-1]], [bounds[1:]]
        base = len(buffers[0])
        for more, values, first, last in self._batches:
            keys += more
            buffers.append(values)
            starts.append(np.asarray(first, dtype=np.int64) + base)
            ends.append(np.asarray(last, dtype=np.int64) + base)
            base += len(values)
        start, end = np.concatenate(starts), np.concatenate(ends)
        if not all(map(operator.lt, keys, islice(keys, 1, None))):
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys = [keys[i] for i in order]
            start, end = start[order], end[order]
        return keys, b"".join(buffers), start, end

    def commit(self) -> None:
        """Publish: data files first, the index next, then the .meta (if one was set)."""
        if self._committed:
            return
        try:
            if self._data is None and self.own_shard is not None:
                self._data_file()  # the own shard always exists, even if empty
            missing = [
                i
                for i in range(self.num_shards)
                if data_filename(self.prefix, i, self.num_shards) not in self._files
            ]
            if missing:
                raise UsageError(f"shards {missing} of {self.prefix} were never written")
            self._write.commit(self._index_bytes(), self._meta, self.keep_meta)
        except OSError as exc:
            self.abort()
            raise write_error(self.prefix, exc) from None
        except BaseException:
            self.abort()
            raise
        self._committed = True

    def abort(self) -> None:
        """Remove every file written so far (nothing is published)."""
        self._write.abort()

    def close(self) -> None:
        """Remove what an uncommitted write produced, and release the destination."""
        try:
            if not self._committed:
                self.abort()
        finally:
            self._write.release()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()
