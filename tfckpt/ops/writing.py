"""Shared pieces of applying rename / prune / merge plans with BundleWriter.

Tensor bytes are never decoded for V2 inputs: ``rename`` and ``merge`` adopt the source data
files as shards (copied in-kernel or hard-linked) and write only a new index; ``prune`` streams
each kept tensor's raw bytes into one compacted data file and reuses its stored checksum. TF2
object graphs are rewritten to match (see bundle/objgraph.py) and stored in an extra shard so the
source files stay byte-identical.

Nothing damaged is copied (``ShardCheck``): before anything is written every source shard must
hold the bytes the index places in it, and while the bytes are copied each copied tensor's bytes
are checked against its CRC32C (``verify=False`` skips that read); a hard link is checked before
it is made. Any damage raises CorruptCheckpoint naming the tensor and the shard, and the writer
removes everything it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.reader import BundleReader, Entry, num_elements, quoted
from tfckpt.bundle.slices import encode_slice_key
from tfckpt.bundle.table import crc32c, mask_crc
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import STRING, VARIANT, dtype_from_enum
from tfckpt.errors import CorruptCheckpoint
from tfckpt.storage import STEP

Progress = Callable[[int], None]


@dataclass
class WriteResult:
    prefix: str
    shards: int
    tensors: int
    bytes_written: int = 0
    notes: list[str] = field(default_factory=list)


def key_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def add_object_graph(writer: BundleWriter, raw: bytes) -> None:
    """Store a serialized TF2 object graph as the scalar string tensor TF reads it from."""
    import numpy as np

    value = np.empty((), dtype=object)
    value[()] = raw
    writer.add_array(key_bytes(OBJECT_GRAPH_KEY), value, dtype_from_enum(STRING))


class EntryCopy:
    """What ``copy_entry`` returns: a stored entry to write again, with its ``shard_id``,
    ``offset`` and ``size`` open to change (like a BundleEntryProto's). ``SerializeToString``
    gives the stored bytes themselves when nothing changed, else the entry re-encoded
    (``Entry.reencoded``): no protobuf message per tensor."""

    __slots__ = ("_entry", "offset", "shard_id", "size")

    def __init__(self, entry: Entry, shard_id: int) -> None:
        self._entry = entry
        self.shard_id = shard_id
        self.offset = entry.offset
        self.size = entry.size

    def SerializeToString(self) -> bytes:  # the protobuf method's name
        return self._entry.reencoded(self.shard_id, self.offset, self.size)


def copy_entry(entry: Entry, shard_offset: int = 0) -> Any:
    shard = entry.shard_id + shard_offset if shard_offset and not entry.slices else entry.shard_id
    return EntryCopy(entry, shard)


def add_with_slices(
    writer: BundleWriter, bundle: BundleReader, entry: Entry, new_name: str, shard_offset: int = 0
) -> None:
    """Index entries for one tensor under a new name (a partitioned tensor's slices re-keyed)."""
    writer.add_entry(key_bytes(new_name), copy_entry(entry, shard_offset))
    for spec in entry.slices:
        part = bundle.slice_entry(entry, spec)
        writer.add_entry(
            encode_slice_key(key_bytes(new_name), spec), copy_entry(part, shard_offset)
        )


def write_decoded(writer: BundleWriter, ckpt: Checkpoint, name: str, new_name: str) -> None:
    info = ckpt.info(name)
    writer.add_array(key_bytes(new_name), ckpt.read(name), info.dtype)


# ---- checking what is copied ----------------------------------------------------------------
def stored_pieces(bundle: BundleReader, entry: Entry) -> list[Entry]:
    """The entries holding a tensor's bytes: its slices for a partitioned tensor, else itself."""
    if entry.slices:
        return [bundle.slice_entry(entry, spec) for spec in entry.slices]
    return [entry]


class ShardCheck:
    """The entries a copy takes from one source shard, checked as the copy proceeds.

    Creating it checks the shard against the index (the file exists and holds every byte range
    the entries claim; CorruptCheckpoint otherwise). ``advance(n)``, given as the copy's progress
    callback, checks each entry once the copy has passed its last byte (the bytes are in the
    page cache then); ``finish()`` checks whatever is left (all of it before a hard link, which
    reads nothing). Entries are read from the mapped source in file order, in bounded steps, with
    the mapped pages released behind them.
    """

    def __init__(
        self,
        bundle: BundleReader,
        shard: int,
        entries: list[Entry],
        verify: bool = True,
        start: int = 0,
        on_bytes: Progress | None = None,
    ) -> None:
        self.bundle = bundle
        self.shard = shard
        self.entries = sorted(entries, key=lambda e: (e.offset + e.size, e.offset))
        self.verify = verify
        self.position = start  # source offset the copy has reached
        self.on_bytes = on_bytes
        self._next = 0
        self._released = start
        if self.entries:
            # The farthest-reaching entry must fit in the shard: a missing, truncated or
            # foreign data file is refused before anything is written (its size only: nothing
            # is read, so this is also what a server-side copy is checked by).
            try:
                self.bundle.check_range(self.entries[-1])
            except CorruptCheckpoint as exc:
                raise CorruptCheckpoint(f"{exc}; nothing written") from None

    def advance(self, nbytes: int) -> None:
        self.position += nbytes
        self._check_upto(self.position)
        if self.on_bytes is not None:
            self.on_bytes(nbytes)

    def finish(self) -> None:
        self._check_upto(None)
        if self.entries:  # drop what is still mapped: RSS stays bounded over many checks
            end = max(e.offset + e.size for e in self.entries)
            self._release_before(end, force=True)

    def _check_upto(self, end: int | None) -> None:
        ready = []
        while self._next < len(self.entries):
            entry = self.entries[self._next]
            if end is not None and entry.offset + entry.size > end:
                break
            self._next += 1
            ready.append(entry)
        if not self.verify or not ready:
            return
        # Many small tensors are checked together; should that fail, one by one in order, so
        # the first damaged one is named.
        if self.bundle.check_many(ready):
            self._release_before(max(e.offset + e.size for e in ready))
            return
        for entry in ready:
            self._check(entry)

    def _check(self, entry: Entry) -> None:
        bundle = self.bundle
        try:
            # Fixed-width tensors: size against shape (as BundleReader.check_size, without
            # importing numpy, which a copy never needs).
            itemsize = entry.dtype.itemsize
            if itemsize and entry.size != num_elements(entry.shape) * itemsize:
                raise CorruptCheckpoint(
                    f"{bundle.index_path}: {quoted(entry.label)} has {entry.size} bytes, shape "
                    f"{list(entry.shape)} of {entry.dtype.name} needs "
                    f"{num_elements(entry.shape) * itemsize}"
                )
            if entry.dtype.enum in (STRING, VARIANT):
                # Their checksums cover decoded lengths, not the raw bytes (FORMAT.md §5).
                if entry.dtype.enum == STRING:
                    bundle.read_entry(entry, verify=True)
                else:
                    bundle.check_crc(entry)
                return
            crc = 0
            for step in bundle.stream(entry):  # bounded steps, pages released behind them
                crc = crc32c(step, crc)
            if mask_crc(crc) != entry.crc32c:
                raise CorruptCheckpoint(
                    f"{bundle.data_path(entry.shard_id)}: checksum mismatch for "
                    f"{quoted(entry.label)} (corrupt data)"
                )
        except CorruptCheckpoint as exc:
            raise CorruptCheckpoint(f"{exc}; nothing written") from None
        self._release_before(entry.offset + entry.size)

    def _release_before(self, offset: int, force: bool = False) -> None:
        """Drop mapped pages below ``offset`` once a release step's worth has accumulated."""
        if offset - self._released >= (1 if force else STEP):
            self.bundle.release(self.shard, self._released, offset - self._released)
            self._released = offset


def shard_checks(
    bundle: BundleReader,
    entries: list[Entry],
    verify: bool = True,
    on_bytes: Progress | None = None,
) -> dict[int, ShardCheck]:
    """One ShardCheck per shard the ``entries`` (tensors, or a partitioned tensor's headers)
    store bytes in; every shard's size is checked here, before anything is written."""
    by_shard: dict[int, list[Entry]] = {}
    for entry in entries:
        for piece in stored_pieces(bundle, entry):
            by_shard.setdefault(piece.shard_id, []).append(piece)
    return {
        shard: ShardCheck(bundle, shard, pieces, verify, 0, on_bytes)
        for shard, pieces in sorted(by_shard.items())
    }


def adopt_checked(
    writer: BundleWriter,
    bundle: BundleReader,
    shard: int,
    new_shard: int,
    check: ShardCheck | None,
    link: bool = False,
    on_bytes: Progress | None = None,
) -> None:
    """Adopt one source shard into the writer, checking the entries copied from it: during the
    copy, or entirely before a hard link."""
    src = bundle.data_path(shard)
    if check is None or storage.same_store(src, writer.prefix):
        # No tensor is taken from this shard; or it is copied server-side (its bytes never
        # pass through here, so what is checked is its size against the index, which
        # ShardCheck did on creation): nothing to read.
        writer.adopt_shard(src, new_shard, link, on_bytes)
        return
    if link:
        check.finish()
    writer.adopt_shard(src, new_shard, link, check.advance)
    check.finish()
