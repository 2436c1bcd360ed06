"""Shared pieces of applying rename / prune / merge plans with BundleWriter.

Tensor bytes are never decoded for V2 inputs: ``rename`` and ``merge`` adopt the source data
files as shards (copied in-kernel or hard-linked) and write only a new index; ``prune`` copies
each kept tensor's raw bytes into one compacted data file and reuses its stored checksum. TF2
object graphs are rewritten to match (see bundle/objgraph.py) and stored in an extra shard so the
source files stay byte-identical.

Nothing damaged is copied (``ShardCheck``): before anything is written every source shard must
hold the bytes the index places in it, and while the bytes are copied each copied tensor's bytes
are checked against its CRC32C, small tensors many at a time (``BundleReader.failing_rows``),
``verify=False`` skipping that read; a hard link is checked before it is made. Index entries are
written in columns (``add_tensors``): the source's encoded entries reused when only the key
changes, else encoded anew in bulk. Any damage raises CorruptCheckpoint naming the tensor and
the shard, and the writer removes everything it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import compress
from typing import TYPE_CHECKING, Any

from tfckpt import storage
from tfckpt.bundle.bulk import entry_ends
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.index import slice_key_count
from tfckpt.bundle.reader import BundleReader, Entry, num_elements, quoted
from tfckpt.bundle.slices import encode_slice_key
from tfckpt.bundle.table import crc32c, mask_crc
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import STRING, VARIANT, dtype_from_enum
from tfckpt.errors import CorruptCheckpoint
from tfckpt.storage import STEP

if TYPE_CHECKING:
    import numpy as np

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


def keys_of(names: list[str]) -> list[bytes]:
    """``key_bytes`` of every name, in one encode when no name holds a newline."""
    joined = "\n".join(names).encode("utf-8", "surrogateescape")
    if names and joined.count(b"\n") == len(names) - 1:
        return joined.split(b"\n")
    return list(map(key_bytes, names))


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
    writer: BundleWriter, bundle: BundleReader, entry: Entry, new_key: bytes, shard_offset: int = 0
) -> None:
    """Index entries for one tensor under a new key (a partitioned tensor's slices re-keyed)."""
    writer.add_entry(new_key, copy_entry(entry, shard_offset))
    for spec in entry.slices:
        part = bundle.slice_entry(entry, spec)
        writer.add_entry(encode_slice_key(new_key, spec), copy_entry(part, shard_offset))


def write_decoded(writer: BundleWriter, ckpt: Checkpoint, name: str, new_name: str) -> None:
    info = ckpt.info(name)
    writer.add_array(key_bytes(new_name), ckpt.read(name), info.dtype)


# ---- many tensors at once ---------------------------------------------------------------------
def tensor_rows(bundle: BundleReader) -> np.ndarray:
    """The rows of the bundle's columns that are tensors (every key but the slice keys, which
    sort first), in key order."""
    import numpy as np

    cols = bundle.columns
    return np.arange(slice_key_count(cols.keys), len(cols), dtype=np.int64)


def add_tensors(
    writer: BundleWriter,
    bundle: BundleReader,
    rows: np.ndarray,
    keys: list[bytes],
    shard_offset: int = 0,
) -> None:
    """Index entries for the tensors at ``rows`` of the bundle's columns under the new
    ``keys`` (a partitioned tensor's slices re-keyed with it), their data files moved up by
    ``shard_offset``. The source's own entry bytes are reused when only the key changes, else
    the entries are encoded anew in bulk; no Python step per entry either way, but for the
    few that need one (partitioned tensors; with a shard offset, entries protobuf decoded)."""
    import numpy as np

    from tfckpt.bundle.bulk import encode_rows

    cols = bundle.columns
    special = set(cols.slices)
    if shard_offset:
        special |= cols.unusual
    plain = np.ones(rows.size, dtype=bool)
    if special:
        plain = ~np.isin(rows, np.fromiter(special, dtype=np.int64))
        for i in np.flatnonzero(~plain).tolist():
            entry = bundle.entries.entry(int(rows[i]))
            add_with_slices(writer, bundle, entry, keys[i], shard_offset)
        keys = list(compress(keys, plain.tolist()))
    picked = rows[plain]
    if not shard_offset:
        writer.add_entries(keys, cols.buf, cols.np("vstart")[picked], cols.np("vend")[picked])
        return
    values, bounds = encode_rows(cols, picked, shard=cols.np("shard")[picked] + shard_offset)
    writer.add_entries(keys, values, bounds[:-1], bounds[1:])


def copied_rows(bundle: BundleReader, rows: np.ndarray) -> np.ndarray:
    """The rows holding these tensors' bytes: a partitioned tensor's slices, the others
    themselves."""
    import numpy as np

    cols = bundle.columns
    if not cols.slices:
        return rows
    headers = np.isin(rows, np.fromiter(cols.slices, dtype=np.int64))
    parts = [
        piece._row
        for row in rows[headers].tolist()
        for piece in stored_pieces(bundle, bundle.entries.entry(row))
    ]
    return np.concatenate([rows[~headers], np.array(parts, dtype=np.int64)])


# ---- checking what is copied ----------------------------------------------------------------
def stored_pieces(bundle: BundleReader, entry: Entry) -> list[Entry]:
    """The entries holding a tensor's bytes: its slices for a partitioned tensor, else itself."""
    if entry.slices:
        return [bundle.slice_entry(entry, spec) for spec in entry.slices]
    return [entry]


def nothing_written(exc: CorruptCheckpoint) -> CorruptCheckpoint:
    return CorruptCheckpoint(f"{exc}; nothing written")


def check_reach(bundle: BundleReader, rows: np.ndarray) -> None:
    """The farthest-reaching of these stored entries (of one shard) must fit in the shard: a
    missing, truncated or foreign data file is refused before anything is written (its size
    only: nothing is read, so this is also what a server-side copy is checked by)."""
    if rows.size:
        cols = bundle.columns
        far = int(rows[entry_ends(cols.np("offset")[rows], cols.np("size")[rows]).argmax()])
        try:
            bundle.check_range(bundle.entries.entry(far))
        except CorruptCheckpoint as exc:
            raise nothing_written(exc) from None


def check_entry(bundle: BundleReader, entry: Entry) -> None:
    """One stored entry's bytes against the index: the size its shape needs and its CRC32C,
    read in bounded steps (CorruptCheckpoint naming it otherwise)."""
    try:
        # Fixed-width tensors: size against shape (as BundleReader.check_size).
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
        raise nothing_written(exc) from None


def check_rows(bundle: BundleReader, rows: np.ndarray, failing: np.ndarray) -> None:
    """Check one by one, in order, the rows a bulk check left (``failing``): the first damaged
    one raises, named."""
    for row in rows[failing].tolist():
        check_entry(bundle, bundle.entries.entry(row))


def check_rows_bulk(bundle: BundleReader, rows: np.ndarray) -> None:
    """Check stored entries: many at a time (``failing_rows``), what that leaves one by one."""
    check_rows(bundle, rows, bundle.failing_rows(rows))


def on_thread(work: Callable[[], object]) -> Callable[[], None]:
    """Start ``work`` on a daemon thread; the function returned waits for it and re-raises
    what it raised (a caller that fails first need not wait)."""
    import threading

    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised by wait(), in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="tfckpt-check", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait


class ShardCheck:
    """The stored entries (rows of the bundle's columns) a copy takes from one source shard,
    checked as the copy proceeds.

    Creating it checks the shard against the index (``check_reach``). ``advance(n)``, given as
    the copy's progress callback, checks the entries the copy has passed the last byte of (the
    bytes are in the page cache then), many at a time (``BundleReader.failing_rows``) and the
    others one by one; ``finish()`` checks whatever is left (all of it before a hard link,
    which reads nothing; for a long local copy, all of it on a thread beside the copy: see
    ``copy_checked``). Mapped pages are released behind the checks.
    """

    def __init__(
        self,
        bundle: BundleReader,
        shard: int,
        rows: np.ndarray,
        verify: bool = True,
        start: int = 0,
        on_bytes: Progress | None = None,
    ) -> None:
        import numpy as np

        cols = bundle.columns
        self.bundle = bundle
        self.shard = shard
        offset = cols.np("offset")[rows]
        ends = entry_ends(offset, cols.np("size")[rows])
        order = np.lexsort((offset, ends))  # in the order the copy passes their last byte
        self.rows, self.ends = rows[order], ends[order]
        self.nbytes = int(cols.np("size")[rows].sum())
        self.verify = verify
        self.position = start  # source offset the copy has reached
        self.on_bytes = on_bytes
        self._next = 0
        self._released = start
        check_reach(bundle, self.rows)

    def advance(self, nbytes: int) -> None:
        self.position += nbytes
        self._check_upto(self.position)
        if self.on_bytes is not None:
            self.on_bytes(nbytes)

    def finish(self, threads: int = 1) -> None:
        """Check whatever is left; with ``threads`` > 1, split by bytes between that many
        threads (CRC32C runs without the GIL): for checks nothing else runs beside."""
        if threads > 1 and self.verify and self.rows.size - self._next > 1:
            self._check_split(threads)
        self._check_upto(None)
        if self.rows.size:  # drop what is still mapped: RSS stays bounded over many checks
            self._release_before(int(self.ends.max()), force=True)

    def _check_upto(self, end: int | None) -> None:
        stop = self.rows.size if end is None else int(self.ends.searchsorted(end, "right"))
        ready = self.rows[self._next : stop]
        self._next = max(stop, self._next)
        if not self.verify or not ready.size:
            return
        check_rows_bulk(self.bundle, ready)
        self._release_before(int(self.ends[stop - 1]))

    def _check_split(self, threads: int) -> None:
        import numpy as np

        rows, ends = self.rows[self._next :], self.ends[self._next :]
        cuts = np.searchsorted(ends, np.linspace(ends[0], ends[-1], threads + 1)[1:-1])
        waits = [
            on_thread(partial(check_rows_bulk, self.bundle, part)) for part in np.split(rows, cuts)
        ]
        for wait in waits:  # the first part's damage is reported first
            wait()
        self._next = self.rows.size

    def _release_before(self, offset: int, force: bool = False) -> None:
        """Drop mapped pages below ``offset`` once a release step's worth has accumulated."""
        if offset - self._released >= (1 if force else STEP):
            self.bundle.release(self.shard, self._released, offset - self._released)
            self._released = offset


def shard_checks(
    bundle: BundleReader,
    rows: np.ndarray,
    verify: bool = True,
    on_bytes: Progress | None = None,
) -> dict[int, ShardCheck]:
    """One ShardCheck per shard the tensors at ``rows`` (partitioned ones: their slices)
    store bytes in; every shard's size is checked here, before anything is written."""
    from tfckpt.bundle.bulk import distinct

    pieces = copied_rows(bundle, rows)
    shards = bundle.columns.np("shard")[pieces]
    return {
        shard: ShardCheck(bundle, shard, pieces[shards == shard], verify, 0, on_bytes)
        for shard in distinct(shards)
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
        check.finish(threads=2 if _overlap(check, src) else 1)
        writer.adopt_shard(src, new_shard, link, check.advance)
        return
    copy_checked(check, partial(writer.adopt_shard, src, new_shard, False), src)


# Copies of at least this many bytes are checked beside the copy (``copy_checked``).
OVERLAP_FROM = 64 << 20


def _overlap(check: ShardCheck, source: str) -> bool:
    """Whether a check of bytes from ``source`` runs on a thread of its own: a local file (a
    remote shard's reader is not shared between threads) and enough bytes to be worth it."""
    return check.verify and check.nbytes >= OVERLAP_FROM and not storage.is_url(source)


def copy_checked(check: ShardCheck, copy: Callable[[Progress | None], object], source: str) -> None:
    """Run ``copy(progress)``, which copies the entries ``check`` holds from ``source``, and
    check them: all pass before this returns. When that is a long copy from a local file, the
    checks run beside it on a second thread (the kernel copies, CRC32C runs without the GIL:
    two cores); otherwise as the copy's progress passes them (many small entries are Python
    work that two threads would only contend for)."""
    if not _overlap(check, source):
        copy(check.advance)
        check.finish()
        return
    wait = on_thread(check.finish)
    copy(check.on_bytes)  # an interrupted or failed copy does not wait for the checks
    wait()
