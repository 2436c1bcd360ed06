"""Reading a V2 TensorBundle: the ``.index`` entries and tensor bytes (memory-mapped locally,
ranged requests remotely; see ``storage``).

FORMAT.md sections 3-6. Every length and offset read from the file is checked against the real
file sizes before anything is allocated, so a corrupt or hostile index fails with
``CorruptCheckpoint`` instead of exhausting memory.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from tfckpt import protos, storage
from tfckpt.bundle.slices import (
    Slice,
    decode_slice_key,
    encode_slice_key,
    format_slice,
    slice_from_proto,
    slice_index,
    slice_shape,
)
from tfckpt.bundle.table import TableReader, crc32c, decode_varint, mask_crc, unmask_crc
from tfckpt.dtypes import STRING, VARIANT, DType, dtype_from_enum
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint, UnsupportedCheckpoint
from tfckpt.storage import STEP, Shard

HEADER_KEY = b""
# Elements read per chunk when streaming: large enough to amortize numpy call overhead, small
# enough that several passes over a chunk stay in cache.
CHUNK_ELEMENTS = 1 << 18
# Chunks of any dtype (at most 16 bytes an element) then never straddle two storage steps, so
# the chunks of two equal tensors line up wherever each is stored.
assert STEP % (CHUNK_ELEMENTS * 16) == 0
# No tensor may claim more elements than this, whatever its dtype (2^50 ~ 10^15).
MAX_ELEMENTS = 1 << 50
# One data file per shard, one writer per device: far beyond any real save (TPU pods write a
# few thousand). Every shard costs a file name and a stat in listings, so a header may not
# make a reader format and probe millions.
MAX_SHARDS = 100_000

if TYPE_CHECKING:
    import numpy as np


def data_filename(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def shape_of(proto: Any, where: str) -> tuple[int, ...]:
    """A TensorShapeProto as a tuple; unknown rank or negative dims are corrupt in a bundle."""
    if proto.unknown_rank:
        raise CorruptCheckpoint(f"{where}: shape has unknown rank")
    dims = tuple(int(d.size) for d in proto.dim)
    if any(d < 0 for d in dims):
        raise CorruptCheckpoint(f"{where}: negative dimension in shape {list(dims)}")
    if len(dims) > 64:
        raise CorruptCheckpoint(f"{where}: rank {len(dims)} is absurd")
    n = num_elements(dims)
    if n > MAX_ELEMENTS:
        raise CorruptCheckpoint(f"{where}: shape {list(dims)} claims {n} elements")
    # An empty tensor still needs a representable shape: numpy refuses dimensions whose
    # product, zeros left out, overflows (e.g. [0, 2^63-1]); no real tensor has such a shape.
    spread = 1
    for d in dims:
        spread *= max(d, 1)
    if spread > MAX_ELEMENTS:
        raise CorruptCheckpoint(f"{where}: shape {list(dims)} is absurd (even if empty)")
    return dims


def num_elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Entry:
    """One parsed index entry (a full tensor, a partitioned tensor's header, or a slice)."""

    key: bytes
    dtype: DType
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    slices: tuple[Slice, ...]
    proto: Any

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


def key_label(key: bytes) -> str:
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


class BundleReader:
    """The index of a V2 checkpoint prefix, with lazy memory-mapped access to its data shards."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        index_id = storage.identity(self.index_path)
        if index_id is None:
            raise CheckpointNotFound(f"{self.index_path}: no such file")
        with TableReader.open(self.index_path) as table:
            pairs = list(table)
        self._index_id = index_id
        self.entries: dict[bytes, Entry] = {}
        header_value: bytes | None = None
        for key, value in pairs:
            if key == HEADER_KEY:
                header_value = value
                continue
            self.entries[key] = self._parse_entry(key, value)
        if header_value is None:
            raise CorruptCheckpoint(f"{self.index_path}: no bundle header (not a V2 checkpoint?)")
        self.header = self._parse_header(header_value)
        self.num_shards = int(self.header.num_shards)
        for entry in self.entries.values():
            if not entry.slices and not 0 <= entry.shard_id < self.num_shards:
                raise CorruptCheckpoint(
                    f"{self.index_path}: {quoted(entry.label)} is in shard {entry.shard_id} "
                    f"of {self.num_shards}"
                )
        self._shards: dict[int, Shard] = {}
        _OPEN_READERS.add(self)

    # ---- parsing -------------------------------------------------------------------------
    def _parse_header(self, value: bytes) -> Any:
        try:
            header = protos.BundleHeaderProto.FromString(value)
        except DecodeError:
            raise CorruptCheckpoint(f"{self.index_path}: unreadable bundle header") from None
        if header.num_shards < 1 or header.num_shards > MAX_SHARDS:
            raise CorruptCheckpoint(f"{self.index_path}: header says {header.num_shards} shards")
        if header.endianness != 0:
            raise UnsupportedCheckpoint(
                f"{self.index_path}: big-endian checkpoint (tensor bytes are not little-endian)"
            )
        v = header.version
        if v.producer < 0 or v.min_consumer > 1 or 1 in v.bad_consumers:
            raise UnsupportedCheckpoint(
                f"{self.index_path}: checkpoint version producer={v.producer} "
                f"min_consumer={v.min_consumer} is newer than this reader (1)"
            )
        return header

    def _parse_entry(self, key: bytes, value: bytes) -> Entry:
        where = f"{self.index_path}: entry {quoted(key_label(key))}"
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
            dtype = dtype_from_enum(int(proto.dtype))
        except UnsupportedCheckpoint as exc:
            raise UnsupportedCheckpoint(f"{where}: {exc}") from None
        shape = shape_of(proto.shape, where)
        if proto.offset < 0 or proto.size < 0:
            raise CorruptCheckpoint(f"{where}: negative offset or size")
        try:
            slices = tuple(slice_from_proto(s, len(shape)) for s in proto.slices)
        except ValueError as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        return Entry(
            key=key,
            dtype=dtype,
            shape=shape,
            shard_id=int(proto.shard_id),
            offset=int(proto.offset),
            size=int(proto.size),
            crc32c=int(proto.crc32c),
            slices=slices,
            proto=proto,
        )

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
