"""Reading a V2 TensorBundle: the ``.index`` entries and tensor bytes (memory-mapped locally,
ranged requests remotely; see ``storage``).

FORMAT.md sections 3-6. Every length and offset read from the file is checked against the real
file sizes before anything is allocated, so a corrupt or hostile index fails with
``CorruptCheckpoint`` instead of exhausting memory.
"""

from __future__ import annotations

import struct
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tfckpt import storage
from tfckpt.bundle.bulk import (
    crc32c_many,
    distinct,
    entry_ends,
    exclusive_cumsum,
    span_groups,
)
from tfckpt.bundle.index import MAX_ELEMENTS as MAX_ELEMENTS  # re-exported
from tfckpt.bundle.index import (
    IndexColumns,
    decode_header,
    encode_entry,
    key_label,
    num_elements,
    parse_index,
    quoted,
)
from tfckpt.bundle.index import shape_of as shape_of  # re-exported
from tfckpt.bundle.slices import (
    Slice,
    encode_slice_key,
    format_slice,
    slice_index,
    slice_shape,
)
from tfckpt.bundle.table import (
    TableReader,
    crc32c,
    decode_varint,
    mask_crc,
    unmask_crc,
)
from tfckpt.dtypes import STRING, VARIANT, DType, dtype_from_enum
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint, UnsupportedCheckpoint
from tfckpt.storage import STEP, Shard

HEADER_KEY = b""
# Entries up to this size are checked many at a time (``failing_rows``); larger ones stream.
BULK_MAX = 1 << 20
# Elements read per chunk when streaming: large enough to amortize numpy call overhead, small
# enough that several passes over a chunk stay in cache.
CHUNK_ELEMENTS = 1 << 18
# Chunks of any dtype (at most 16 bytes an element) then never straddle two storage steps, so
# the chunks of two equal tensors line up wherever each is stored.
assert STEP % (CHUNK_ELEMENTS * 16) == 0
# One data file per shard, one writer per device: far beyond any real save (TPU pods write a
# few thousand). Every shard costs a file name and a stat in listings, so a header may not
# make a reader format and probe millions.
MAX_SHARDS = 100_000

if TYPE_CHECKING:
    import numpy as np


def data_filename(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


class Entry:
    """One index entry (a full tensor, a partitioned tensor's header, or a slice): a view of
    one row of the reader's columns, so making one costs two slots (code that walks 10^6
    entries pays for the fields it reads). ``proto`` decodes the stored message on demand."""

    __slots__ = ("_cols", "_row")

    def __init__(self, cols: IndexColumns, row: int) -> None:
        self._cols = cols
        self._row = row

    @property
    def key(self) -> bytes:
        return self._cols.keys[self._row]

    @property
    def dtype(self) -> DType:
        return dtype_from_enum(self._cols.dtype[self._row])

    @property
    def shape(self) -> tuple[int, ...]:
        return self._cols.shape(self._row)

    @property
    def shard_id(self) -> int:
        return self._cols.shard[self._row]

    @property
    def offset(self) -> int:
        return self._cols.offset[self._row]

    @property
    def size(self) -> int:
        return self._cols.size[self._row]

    @property
    def crc32c(self) -> int:
        """The masked CRC32C, as stored."""
        return self._cols.crc[self._row]

    @property
    def slices(self) -> tuple[Slice, ...]:
        return self._cols.slices.get(self._row, ())

    @property
    def _raw(self) -> bytes:
        return self._cols.value(self._row)

    @property
    def raw(self) -> bytes:
        """The serialized BundleEntryProto, as stored."""
        return self._raw

    @property
    def proto(self) -> Any:
        """The entry as a (new) BundleEntryProto message."""
        return protos_module().BundleEntryProto.FromString(self._raw)

    def reencoded(self, shard_id: int, offset: int, size: int) -> bytes:
        """The entry serialized with these shard, offset and size: the stored bytes when they
        are unchanged; else encoded anew (through protobuf for entries with slices or fields
        tfckpt does not decode itself)."""
        cols, row = self._cols, self._row
        if (shard_id, offset, size) == (cols.shard[row], cols.offset[row], cols.size[row]):
            return cols.value(row)
        if row not in cols.unusual and row not in cols.slices:
            return encode_entry(
                cols.dtype[row], cols.shape(row), shard_id, offset, size, cols.crc[row]
            )
        proto = self.proto
        proto.shard_id, proto.offset, proto.size = shard_id, offset, size
        return bytes(proto.SerializeToString())

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.key,
            self.dtype,
            self.shape,
            self.shard_id,
            self.offset,
            self.size,
            self.crc32c,
            self.slices,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Entry(key={self.key!r}, dtype={self.dtype.name}, shape={self.shape}, "
            f"shard_id={self.shard_id}, offset={self.offset}, size={self.size})"
        )

    @property
    def name(self) -> str:
        return self.key.decode("utf-8", "surrogateescape")

    @property
    def is_slice_key(self) -> bool:
        # Slice entries are keyed by ordered code, which starts with a 0x00 byte.
        return self.key[:1] == b"\x00"

    @property
    def label(self) -> str:
        """A printable name: slice keys (binary ordered code) as ``name[start,length:...]``."""
        return key_label(self.key)


def protos_module() -> Any:
    from tfckpt import protos

    return protos


class EntryMap(Mapping[bytes, Entry]):
    """``{key: Entry}`` over an index's columns, in key order; entries are built when asked for.

    Looking a key up is a binary search over the sorted keys; iterating ``values()`` builds one
    short-lived Entry per row. Code that touches every entry of a large index should read the
    columns (``BundleReader.columns``) instead.
    """

    def __init__(self, cols: IndexColumns) -> None:
        self._cols = cols

    def __len__(self) -> int:
        return len(self._cols.keys)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._cols.keys)

    def row(self, key: bytes) -> int | None:
        keys = self._cols.keys
        i = bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.row(key) is not None

    def __getitem__(self, key: bytes) -> Entry:
        i = self.row(key) if isinstance(key, bytes) else None
        if i is None:
            raise KeyError(key)
        return self.entry(i)

    def entry(self, i: int) -> Entry:
        return Entry(self._cols, i)

    def values(self) -> Iterator[Entry]:  # type: ignore[override]
        return (self.entry(i) for i in range(len(self._cols.keys)))

    def items(self) -> Iterator[tuple[bytes, Entry]]:  # type: ignore[override]
        return ((key, self.entry(i)) for i, key in enumerate(self._cols.keys))


class BundleReader:
    """The index of a V2 checkpoint prefix, with lazy memory-mapped access to its data shards."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        index_id = storage.identity(self.index_path)
        if index_id is None:
            raise CheckpointNotFound(f"{self.index_path}: no such file")
        with TableReader.open(self.index_path) as table:
            blocks = [(h.offset, table.read_block(h)) for h in table.block_handles()]
        self._index_id = index_id
        header_value, self.columns = parse_index(self.index_path, blocks)
        del blocks
        self.entries = EntryMap(self.columns)
        if header_value is None:
            raise CorruptCheckpoint(f"{self.index_path}: no bundle header (not a V2 checkpoint?)")
        self.header: Any = None  # the BundleHeaderProto, when it had to be decoded by protobuf
        self.num_shards = self._parse_header(header_value)
        cols = self.columns
        if cols.keys and (min(cols.shard) < 0 or max(cols.shard) >= self.num_shards):
            for i, shard in enumerate(cols.shard):
                if i not in cols.slices and not 0 <= shard < self.num_shards:
                    raise CorruptCheckpoint(
                        f"{self.index_path}: {quoted(key_label(cols.keys[i]))} is in shard "
                        f"{shard} of {self.num_shards}"
                    )
        self._shards: dict[int, Shard] = {}
        _OPEN_READERS.add(self)

    # ---- parsing -------------------------------------------------------------------------
    def _parse_header(self, value: bytes) -> int:
        """The number of shards, after checking the header's version and byte order."""
        plain = decode_header(value)
        if plain is None:
            header = self.header = self._header_proto(value)
            v = header.version
            plain = (
                header.num_shards,
                header.endianness,
                v.producer,
                v.min_consumer,
                tuple(v.bad_consumers),
            )
        num_shards, endianness, producer, min_consumer, bad_consumers = plain
        if num_shards < 1 or num_shards > MAX_SHARDS:
            raise CorruptCheckpoint(f"{self.index_path}: header says {num_shards} shards")
        if endianness != 0:
            raise UnsupportedCheckpoint(
                f"{self.index_path}: big-endian checkpoint (tensor bytes are not little-endian)"
            )
        if producer < 0 or min_consumer > 1 or 1 in bad_consumers:
            raise UnsupportedCheckpoint(
                f"{self.index_path}: checkpoint version producer={producer} "
                f"min_consumer={min_consumer} is newer than this reader (1)"
            )
        return int(num_shards)

    def _header_proto(self, value: bytes) -> Any:
        from google.protobuf.message import DecodeError

        from tfckpt import protos

        try:
            return protos.BundleHeaderProto.FromString(value)
        except DecodeError:
            raise CorruptCheckpoint(f"{self.index_path}: unreadable bundle header") from None

    def used_shards(self) -> set[int]:
        """The shards that hold the bytes of some entry (partitioned headers hold none)."""
        cols = self.columns
        if not cols.slices:
            return set(cols.shard)
        return {s for i, s in enumerate(cols.shard) if i not in cols.slices}

    # ---- data access -----------------------------------------------------------------------
    def data_path(self, shard_id: int) -> str:
        return data_filename(self.prefix, shard_id, self.num_shards)

    def data_paths(self) -> list[str]:
        return [self.data_path(i) for i in range(self.num_shards)]

    def present_shards(self) -> dict[int, int]:
        """``{shard id: size}`` of the data files that exist, from one directory listing.

        A header may claim up to MAX_SHARDS shards; stat-ing each name would take seconds
        (remotely, one request each). Where a store cannot be listed (HTTP), each is asked.
        """
        directory = storage.dirname(self.prefix) or "."
        base = storage.basename(self.prefix) + ".data-"
        suffix = f"-of-{self.num_shards:05d}"
        found: dict[int, int] = {}
        try:
            names = storage.listdir(directory)
        except OSError:
            if not storage.is_url(self.prefix):
                return found
            names = [storage.basename(p) for p in self.data_paths()]
        for name in names:
            if not (name.startswith(base) and name.endswith(suffix)):
                continue
            digits = name[len(base) : -len(suffix)]
            if not digits.isdigit() or len(digits) < 5:
                continue
            shard = int(digits)
            # Compare file names, not paths: a bare prefix ("model.ckpt") has no directory part
            # while the listing's paths do ("./model.ckpt.data-...").
            if shard >= self.num_shards or name != storage.basename(self.data_path(shard)):
                continue
            st = storage.stat(storage.join(directory, name))
            if st is not None and st.isfile:
                found[shard] = st.size
        return found

    def _shard(self, shard_id: int) -> Shard:
        found = self._shards.get(shard_id)
        if found is not None:
            return found
        path = self.data_path(shard_id)
        try:
            shard = storage.open_shard(path)
        except FileNotFoundError:
            raise CorruptCheckpoint(f"{path}: data shard is missing") from None
        except OSError as exc:
            raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
        from tfckpt.storage.lfs import LFS_POINTER, MAX_POINTER_BYTES, is_lfs_pointer_bytes

        if shard.size <= MAX_POINTER_BYTES and is_lfs_pointer_bytes(shard.view(0, shard.size)):
            shard.close()
            raise CorruptCheckpoint(f"{path}: {LFS_POINTER}")
        self._shards[shard_id] = shard
        return shard

    def shard_size(self, shard_id: int) -> int:
        return self._shard(shard_id).size

    def check_range(self, entry: Entry) -> None:
        """The entry's bytes must lie inside its shard (checked without reading them)."""
        size = self.shard_size(entry.shard_id)
        end = entry.offset + entry.size
        if end > size:
            raise CorruptCheckpoint(
                f"{self.data_path(entry.shard_id)}: {quoted(entry.label)} needs bytes "
                f"{entry.offset}..{end} but the shard has {size} (truncated?)"
            )

    def raw(self, entry: Entry) -> memoryview:
        """The entry's stored bytes, whole (a zero-copy view of a local mapped shard)."""
        self.check_range(entry)
        return self._shard(entry.shard_id).view(entry.offset, entry.size)

    def stream(self, entry: Entry) -> Iterator[memoryview]:
        """The entry's stored bytes in steps of ``storage.STEP`` (the last may be shorter),
        memory released behind the consumer: any tensor size in bounded memory."""
        self.check_range(entry)
        yield from self._shard(entry.shard_id).stream(entry.offset, entry.size)

    def prefetch(self, entries: Iterable[Entry]) -> None:
        """Say which stored entries (partitioned tensors: their slice entries) will be read, in
        this order: remote shards fetch them ahead of the reader, several requests in flight."""
        if not storage.is_url(self.prefix):
            return  # local shards are mapped: the page cache reads ahead
        wanted: dict[int, list[tuple[int, int]]] = {}
        for entry in entries:
            wanted.setdefault(entry.shard_id, []).append((entry.offset, entry.size))
        for shard_id, ranges in wanted.items():
            try:
                self._shard(shard_id).prefetch(ranges)
            except CorruptCheckpoint:
                continue  # a missing shard: the read itself will say so

    def release(self, shard_id: int, offset: int, length: int) -> None:
        """Drop mapped pages already streamed so RSS stays bounded (the page cache keeps them).

        Safe for a read-only file mapping: touching the range again simply faults it back in.
        """
        shard = self._shards.get(shard_id)
        if shard is not None:
            shard.release(offset, length)

    def check_crc(self, entry: Entry) -> None:
        """Verify the entry's stored bytes against its CRC32C, streaming in bounded steps."""
        if entry.dtype.enum == VARIANT:
            self._check_variant_crc(entry)
            return
        crc = 0
        for step in self.stream(entry):
            crc = crc32c(step, crc)
        if mask_crc(crc) != entry.crc32c:
            raise CorruptCheckpoint(
                f"{self.data_path(entry.shard_id)}: checksum mismatch for {quoted(entry.label)} "
                "(corrupt data)"
            )

    def _check_variant_crc(self, entry: Entry) -> None:
        """Variant tensors (FORMAT.md §5): per element a varint64 length, that many bytes and a
        masked running CRC; the running CRC covers each length as 8 bytes, the bytes and each
        stored checksum, and the entry's CRC is the masked final value."""
        raw = self.raw(entry)
        where = f"{self.data_path(entry.shard_id)}: {quoted(entry.label)}"
        end = len(raw)
        pos = crc = 0
        try:
            for index in range(num_elements(entry.shape)):
                length, pos = decode_varint(raw, pos, end, "variant length")
                if pos + length + 4 > end:
                    raise CorruptCheckpoint(f"{where}: variant element {index} runs past its entry")
                crc = crc32c(struct.pack("<Q", length), crc)
                crc = crc32c(raw[pos : pos + length], crc)
                (stored,) = struct.unpack_from("<I", raw, pos + length)
                if stored != mask_crc(crc):
                    raise CorruptCheckpoint(
                        f"{where}: checksum mismatch in variant element {index}"
                    )
                crc = crc32c(raw[pos + length : pos + length + 4], crc)
                pos += length + 4
        except ValueError as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        if pos != end or mask_crc(crc) != entry.crc32c:
            raise CorruptCheckpoint(f"{where}: checksum mismatch (corrupt data)")

    def stored_ranges(
        self, shard_id: int, starts: np.ndarray, ends: np.ndarray, checksums: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The bytes ``starts[k]..ends[k]`` of a shard concatenated in the order given (one
        uint8 array) and the masked CRC32C of each range (int64, comparable with the index's
        ``crc`` column; zeros unless ``checksums``). CorruptCheckpoint if a range ends past
        the shard or the shard cannot be opened. Nearby ranges are read as one span (one read
        remotely, mapped pages released after), one checksum call per range and no other
        Python step per range when the ranges are given in stored order."""
        import numpy as np

        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        dest = exclusive_cumsum(ends - starts)
        out = np.empty(int(dest[-1]), dtype=np.uint8)
        crcs = np.zeros(starts.size, dtype=np.int64)
        if starts.size == 0:
            return out, crcs
        if bool((ends < starts).any()) or int(ends.max()) > self.shard_size(shard_id):
            raise CorruptCheckpoint(f"{self.data_path(shard_id)}: a range ends past the shard")
        # Holes of up to 64 KiB are read through, larger ones skipped (a sparse subset of the
        # entries reads little more than its own bytes).
        for picked, data, first, last in self._spans(shard_id, starts, ends, 1 << 16):
            if checksums:
                crcs[picked] = crc32c_many(data, first, last)
            _place(out, dest[picked], data, first, last)
        return out, crcs

    def _spans(
        self, shard_id: int, starts: np.ndarray, ends: np.ndarray, gap: int
    ) -> Iterator[tuple[np.ndarray, bytes, list[int], list[int]]]:
        """Ranges of a shard (inside it) read a span of nearby ones at a time (``span_groups``:
        at most ``storage.STEP`` bytes, holes of at most ``gap``): for each span, which ranges
        it holds (indices into ``starts``), its bytes, and where each range lies in them."""
        import numpy as np

        order = np.argsort(starts, kind="stable")
        for i, j in span_groups(starts[order], ends[order], STEP, gap):
            picked = order[i:j]
            lo, hi = int(starts[picked[0]]), int(ends[picked].max())
            data = self.read_span(shard_id, lo, hi)
            yield picked, data, (starts[picked] - lo).tolist(), (ends[picked] - lo).tolist()

    def read_many(self, rows: Sequence[int] | np.ndarray, itemsize: int) -> np.ndarray:
        """The stored bytes of many plain entries of one fixed-width dtype (``itemsize`` bytes
        per element), concatenated in the order given, as one uint8 array.

        Each entry is checked as ``read_entry`` checks it (inside its shard, the size its shape
        needs, its CRC32C); the first that fails raises the same error ``read_entry`` would.
        Read as ``stored_ranges`` reads: how ``vars --stats`` reads 10^5 small tensors.
        """
        import numpy as np

        cols = self.columns
        rows = np.asarray(rows, dtype=np.int64)
        offset, size, shard, crc = (cols.np(c)[rows] for c in ("offset", "size", "shard", "crc"))
        dest = exclusive_cumsum(size)
        try:
            if not np.array_equal(size, cols.np("nelem")[rows] * itemsize):
                raise CorruptCheckpoint("size")
            parts = []
            for sid in distinct(shard):
                here = np.flatnonzero(shard == sid)
                data, crcs = self.stored_ranges(
                    sid, offset[here], entry_ends(offset[here], size[here])
                )
                if not np.array_equal(crcs, crc[here]):
                    raise CorruptCheckpoint("crc")
                parts.append((here, data))
        except CorruptCheckpoint:
            for r in rows.tolist():  # the first entry read_entry refuses says what is wrong
                self.read_entry(self.entries.entry(r))
            raise
        if len(parts) == 1:
            return parts[0][1]
        out = np.empty(int(dest[-1]), dtype=np.uint8)
        for here, data in parts:  # the shards' bytes interleaved back in the order given
            inner = exclusive_cumsum(size[here])
            _place(out, dest[here], data, inner[:-1].tolist(), inner[1:].tolist())
        return out

    def bulk_checkable(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each row of the columns: whether its bytes can be checked in bulk (a plain
        fixed-width entry of at most ``BULK_MAX`` bytes, not a partitioned tensor's header)
        and its size is the one its shape needs. The others are for ``check_crc`` and friends,
        one by one (strings, variants, large tensors, and whatever is wrong)."""
        import numpy as np

        cols = self.columns
        rows = np.asarray(rows, dtype=np.int64)
        codes = cols.np("dtype")[rows]
        itemsize = np.zeros(rows.size, dtype=np.int64)
        for code in distinct(codes):
            dt = dtype_from_enum(code)
            if dt.numpy is not None:
                itemsize[codes == code] = dt.itemsize
        size = cols.np("size")[rows]
        ok = (itemsize > 0) & (size <= BULK_MAX) & (size == cols.np("nelem")[rows] * itemsize)
        if cols.slices:
            ok &= ~np.isin(rows, np.fromiter(cols.slices, dtype=np.int64))
        return ok

    def crc_failures(self, rows: np.ndarray, data: bytes, base: int) -> np.ndarray:
        """For each row: whether its stored bytes, found in ``data`` (the bytes of its shard
        from offset ``base``), miss their CRC32C."""
        cols = self.columns
        start = cols.np("offset")[rows] - base
        end = start + cols.np("size")[rows]
        return crc32c_many(data, start.tolist(), end.tolist()) != cols.np("crc")[rows]

    def read_span(self, shard_id: int, lo: int, hi: int) -> bytes:
        """Bytes ``lo..hi`` of a shard (CorruptCheckpoint if they are not all there), with the
        mapped pages released afterwards."""
        shard = self._shard(shard_id)
        if hi > shard.size:
            raise CorruptCheckpoint(f"{self.data_path(shard_id)}: a range ends past the shard")
        data = bytes(shard.view(lo, hi - lo))
        self.release(shard_id, lo, hi - lo)
        return data

    def failing_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each of these rows: True unless its stored entry is checked here and passes
        ``read_entry``'s checks (inside its shard, the size its shape needs, its CRC32C). Rows
        ``bulk_checkable`` refuses are True too: check those one by one (``check_crc``...),
        which also says what is wrong. The bytes are read a span of nearby entries at a time
        (at most ``storage.STEP`` bytes, one read remotely), one checksum call per entry."""
        import numpy as np

        cols = self.columns
        rows = np.asarray(rows, dtype=np.int64)
        fail = ~self.bulk_checkable(rows)
        offset, size, shard, crc = (cols.np(c)[rows] for c in ("offset", "size", "shard", "crc"))
        end = entry_ends(offset, size)
        for sid in distinct(shard[~fail]):
            here = np.flatnonzero((shard == sid) & ~fail)
            fail[here] = True  # until their check passes
            try:
                shard_size = self.shard_size(sid)
            except CorruptCheckpoint:
                continue  # a missing or unreadable shard: all of them fail
            here = here[end[here] <= shard_size]  # those ending past the shard fail
            for picked, data, first, last in self._spans(sid, offset[here], end[here], 1 << 20):
                at = here[picked]
                fail[at] = crc32c_many(data, first, last) != crc[at]
        return fail

    def _expected_size(self, entry: Entry) -> int:
        return num_elements(entry.shape) * entry.dtype.itemsize

    def check_size(self, entry: Entry) -> None:
        """A fixed-width tensor's stored size must be its elements times the item size."""
        if entry.dtype.numpy is not None and entry.size != self._expected_size(entry):
            raise CorruptCheckpoint(
                f"{self.index_path}: {quoted(entry.label)} has {entry.size} bytes, shape "
                f"{list(entry.shape)} of {entry.dtype.name} needs {self._expected_size(entry)}"
            )

    def _numeric_view(self, entry: Entry) -> np.ndarray:
        if entry.dtype.numpy is None:
            raise UnsupportedCheckpoint(
                f"{quoted(entry.label)}: cannot decode dtype {entry.dtype.name}"
            )
        self.check_size(entry)
        raw = self.raw(entry)
        import numpy as np

        return np.frombuffer(raw, dtype=entry.dtype.numpy).reshape(entry.shape)

    def read_entry(self, entry: Entry, verify: bool = True) -> np.ndarray:
        """Decode one stored (non-partitioned) entry; verifies its CRC32C unless told not to."""
        if entry.dtype.enum == STRING:
            return self._read_strings(entry, verify)
        if entry.dtype.enum == VARIANT:
            raise UnsupportedCheckpoint(
                f"{quoted(entry.label)}: variant tensors are opaque; tfckpt copies them but cannot "
                "decode their values"
            )
        arr = self._numeric_view(entry)
        if verify:
            self.check_crc(entry)
        return arr

    def _read_strings(self, entry: Entry, verify: bool) -> np.ndarray:
        raw = self.raw(entry)
        n = num_elements(entry.shape)
        end = len(raw)
        if n > end:  # every element needs at least one length byte
            raise CorruptCheckpoint(
                f"{self.index_path}: {quoted(entry.label)} claims {n} strings in {end} bytes"
            )
        where = f"{self.data_path(entry.shard_id)}: {quoted(entry.label)}"
        lengths = []
        pos = 0
        crc = 0
        try:
            for _ in range(n):
                length, pos = decode_varint(raw, pos, end, "string length")
                lengths.append(length)
                crc = crc32c(
                    struct.pack("<I", length)
                    if length <= 0xFFFFFFFF
                    else struct.pack("<Q", length),
                    crc,
                )
        except ValueError as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        if pos + 4 > end:
            raise CorruptCheckpoint(f"{where}: string tensor truncated")
        (stored_len_crc,) = struct.unpack_from("<I", raw, pos)
        if verify and unmask_crc(stored_len_crc) != crc:
            raise CorruptCheckpoint(f"{where}: string length checksum mismatch")
        crc = crc32c(raw[pos : pos + 4], crc)
        pos += 4
        total = sum(lengths)
        if pos + total != end:
            raise CorruptCheckpoint(
                f"{where}: string lengths add up to {total} bytes but {end - pos} are stored"
            )
        if verify and mask_crc(crc32c(raw[pos:], crc)) != entry.crc32c:
            raise CorruptCheckpoint(f"{where}: checksum mismatch (corrupt data)")
        import numpy as np

        out = np.empty(n, dtype=object)
        for i, length in enumerate(lengths):
            out[i] = bytes(raw[pos : pos + length])
            pos += length
        return out.reshape(entry.shape)

    def slice_entry(self, entry: Entry, spec: Slice) -> Entry:
        key = encode_slice_key(entry.key, spec)
        found = self.entries.get(key)
        if found is None:
            raise CorruptCheckpoint(
                f"{self.index_path}: slice {format_slice(spec)} of {quoted(entry.label)} has no "
                "entry"
            )
        if found.dtype != entry.dtype:
            raise CorruptCheckpoint(
                f"{self.index_path}: slice of {quoted(entry.label)} has another dtype"
            )
        try:
            expected = slice_shape(spec, entry.shape)
            slice_index(spec, entry.shape)
        except ValueError as exc:
            raise CorruptCheckpoint(f"{self.index_path}: {quoted(entry.label)}: {exc}") from None
        if found.shape != expected:
            raise CorruptCheckpoint(
                f"{self.index_path}: slice {format_slice(spec)} of {quoted(entry.label)} has "
                f"shape {list(found.shape)}, expected {list(expected)}"
            )
        return found

    def read(self, entry: Entry, verify: bool = True) -> np.ndarray:
        """The full value of a tensor, assembling partitioned slices."""
        if not entry.slices:
            return self.read_entry(entry, verify)
        dt = object if entry.dtype.numpy is None else entry.dtype.numpy
        parts = [(spec, self.slice_entry(entry, spec)) for spec in entry.slices]
        # Bound the allocation by what the slices really store: every part must lie inside its
        # shard, and the parts must hold at least one byte per element (a string element needs
        # its length byte), before the full tensor is allocated.
        for _, part in parts:
            self.check_range(part)
        stored = sum(part.size for _, part in parts)
        if num_elements(entry.shape) * max(entry.dtype.itemsize, 1) > stored:
            raise CorruptCheckpoint(
                f"{self.index_path}: slices of {quoted(entry.label)} do not cover its shape"
            )
        import numpy as np

        out = np.zeros(entry.shape, dtype=dt)
        for spec, part in parts:
            out[slice_index(spec, entry.shape)] = self.read_entry(part, verify)
        return out

    def iter_chunks(
        self, entry: Entry, chunk_elements: int = CHUNK_ELEMENTS, verify: bool = True
    ) -> Iterator[np.ndarray]:
        """Flat chunks of a numeric tensor's values (all slices in turn), never the whole tensor.

        The CRC32C of each stored entry is checked once its last chunk has been produced.
        """
        import numpy as np

        parts = [self.slice_entry(entry, s) for s in entry.slices] if entry.slices else [entry]
        for part in parts:
            if part.dtype.numpy is None:
                yield self.read_entry(part, verify).reshape(-1)
                continue
            self.check_size(part)
            crc = 0
            for step in self.stream(part):
                if verify:
                    crc = crc32c(step, crc)
                flat = np.frombuffer(step, dtype=part.dtype.numpy)
                for start in range(0, flat.size, chunk_elements):
                    yield flat[start : start + chunk_elements]
            if verify and mask_crc(crc) != part.crc32c:
                raise CorruptCheckpoint(
                    f"{self.data_path(part.shard_id)}: checksum mismatch for {quoted(part.label)} "
                    "(corrupt data)"
                )

    def stored_size(self, entry: Entry) -> int:
        """Bytes the tensor occupies in the data files (all its slices)."""
        if entry.slices:
            total = 0
            for spec in entry.slices:
                found = self.entries.get(encode_slice_key(entry.key, spec))
                total += found.size if found else 0
            return total
        return entry.size

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        _OPEN_READERS.discard(self)


# Readers not yet closed, so that a writer can refuse to replace a checkpoint being read.
_OPEN_READERS: weakref.WeakSet[BundleReader] = weakref.WeakSet()


def open_index_ids() -> dict[Any, str]:
    """``{identity of the .index: prefix}`` of the checkpoints open in this process
    (``storage.identity``: device and inode locally, the URL remotely)."""
    return {r._index_id: r.prefix for r in list(_OPEN_READERS)}


def _place(
    out: np.ndarray, dest: np.ndarray, data: bytes | np.ndarray, starts: list[int], ends: list[int]
) -> None:
    """``out[dest[k]:...] = data[starts[k]:ends[k]]`` for each k: one copy when the ranges lie
    back to back in ``data`` and are wanted back to back in ``out`` (entries in stored order),
    else one copy each."""
    import numpy as np

    src = np.frombuffer(data, dtype=np.uint8)
    lengths = np.subtract(ends, starts)
    if starts[1:] == ends[:-1] and np.array_equal(np.diff(dest), lengths[:-1]):
        first = int(dest[0])
        out[first : first + ends[-1] - starts[0]] = src[starts[0] : ends[-1]]
        return
    for d, a, b in zip(dest.tolist(), starts, ends):
        out[d : d + b - a] = src[a:b]
