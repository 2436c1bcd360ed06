"""Writing a new V2 prefix, atomically: everything under temporary names, renamed at commit.

TF decides a V2 checkpoint exists by its ``.index``, so data shards are renamed into place first
and the index last; with ``force`` the old index is removed before any data file is replaced, so
no moment exists where an index points at the wrong data. A failure or interruption before
``commit()`` leaves only temp files, which ``abort()`` (and the context manager) removes; a
failure during the renames also removes the data files already placed. A process killed outright
leaves temp files named ``<final>.tfckpt-tmp-<pid>-<hex>`` (and, after the data renames, data
files without an index): the next writer to the same prefix removes those of dead processes,
and ``tfckpt ls`` reports them. A destination that is one of the checkpoints being read is
refused: replacing it would destroy the source if the process died half-way.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from tfckpt import protos
from tfckpt.bundle.reader import HEADER_KEY, data_filename
from tfckpt.bundle.table import TableWriter, crc32c, encode_varint, mask_crc
from tfckpt.dtypes import DType
from tfckpt.errors import OutputExists, UsageError
from tfckpt.storage import (
    COPY_CHUNK,
    TEMP_MARK,
    check_parent,
    copy_file,
    copy_range,
    make_dirs,
    open_regular,
    pid_alive,
    temp_name,
    write_error,
)

if TYPE_CHECKING:
    import numpy as np


def prefix_files(prefix: str) -> list[str]:
    """Existing files that belong to ``prefix`` (index, data shards, meta)."""
    directory = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    out: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        if name in (base + ".index", base + ".meta") or (
            name.startswith(base + ".data-") and TEMP_MARK not in name
        ):
            out.append(os.path.join(directory, name))
    return out


def stale_temps(prefix: str) -> list[str]:
    """Temp files of writers to ``prefix`` (and its directory's state file) whose process is
    gone: leftovers of a killed write."""
    directory = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    owned = re.compile(re.escape(base) + r"\.(index|meta|data-\d{5,}-of-\d{5,})|checkpoint")
    out = []
    for name in names:
        final, mark, rest = name.partition(TEMP_MARK)
        if not mark or not owned.fullmatch(final):
            continue
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            out.append(os.path.join(directory, name))
    return sorted(out)


def clean_stale_temps(prefix: str) -> list[str]:
    """Remove ``stale_temps(prefix)``; returns what was removed."""
    removed = []
    for path in stale_temps(prefix):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.remove(path)
            removed.append(path)
    return removed


def _refuse_source(prefix: str) -> None:
    from tfckpt.bundle.reader import open_index_ids

    try:
        st = os.stat(prefix + ".index")
    except OSError:
        return
    source = open_index_ids().get((st.st_dev, st.st_ino))
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
    check_parent(prefix)
    _refuse_source(prefix)
    existing = prefix_files(prefix)
    if not os.path.lexists(prefix + ".index"):
        # Data files without an index are what a write killed between its data and index
        # renames leaves: not a checkpoint (TF needs the index), so a new write may replace them.
        existing = [p for p in existing if p.endswith((".index", ".meta"))]
    if existing and not force:
        raise OutputExists(f"{prefix}: destination exists ({len(existing)} files)", fix="force")


def make_entry(
    dtype: DType,
    shape: tuple[int, ...],
    shard_id: int = 0,
    offset: int = 0,
    size: int = 0,
    crc: int | None = None,
    slices: Iterable[Any] = (),
) -> Any:
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
    ``add_array`` / ``add_bytes`` / ``add_stream``; whole existing data files can be adopted as
    the other shards with ``adopt_shard`` (copied or hard-linked, offsets unchanged). Index
    entries are given with ``add_entry``. With ``own_shard=None`` every shard must be adopted.
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
        # rename protocol already protects against interruption (kill, Ctrl-C, disk full).
        # ``sync`` also makes the result durable across power loss (fsync before publishing).
        self.sync = sync
        self.keep_meta = keep_meta  # the caller writes a new .meta after commit()
        check_destination(prefix, force)
        self._made_dirs = make_dirs(os.path.dirname(os.path.abspath(prefix)))
        self.cleaned = clean_stale_temps(prefix)
        self._entries: dict[bytes, bytes] = {}
        self._temps: dict[str, str] = {}  # final path -> temp path
        self._data: BinaryIO | None = None
        self._data_offset = 0
        self._committed = False
        self._placed: list[str] = []  # data files renamed into place by a commit in progress

    # ---- data shard 0 (written here) ---------------------------------------------------
    def _own_path(self) -> str:
        if self.own_shard is None:
            raise UsageError("this writer adopts all its shards and writes no data")
        return data_filename(self.prefix, self.own_shard, self.num_shards)

    def _data_file(self) -> BinaryIO:
        if self._data is None:
            final = self._own_path()
            tmp = temp_name(final)
            try:
                self._data = open(tmp, "wb")  # noqa: SIM115 - closed in commit/abort
            except OSError as exc:
                raise write_error(final, exc) from None
            self._temps[final] = tmp
        return self._data

    def _write(self, chunk: bytes | memoryview) -> None:
        try:
            self._data_file().write(chunk)
        except OSError as exc:
            raise write_error(self._own_path(), exc) from None
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
            self._write(chunk)
        size = self._data_offset - offset
        return offset, size, crc if crc is not None else mask_crc(running)

    def add_range(
        self,
        src: str,
        offset: int,
        size: int,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Append ``size`` bytes of file ``src`` from ``offset`` to the own shard, in the kernel
        (unchanged bytes keep their stored checksums). Returns their offset in the shard."""
        data = self._data_file()
        at = self._data_offset
        try:
            data.flush()
            with open_regular(src) as fin:  # a FIFO or device source would block or never end
                copy_range(fin.fileno(), offset, data.fileno(), at, size, on_bytes)
            data.seek(at + size)  # later buffered writes continue after the copied range
        except OSError as exc:
            raise write_error(self._own_path(), exc) from None
        self._data_offset = at + size
        return at

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
        if final in self._temps:
            raise UsageError(f"shard {shard_id} given twice")
        if not os.path.isfile(src):
            from tfckpt.errors import CorruptCheckpoint

            what = "is not a file" if os.path.lexists(src) else "is missing"
            raise CorruptCheckpoint(f"{src}: data shard {what}")
        tmp = temp_name(final)
        self._temps[final] = tmp
        try:
            copy_file(src, tmp, link, on_bytes)
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

    def _write_index(self, path: str) -> None:
        header = protos.BundleHeaderProto(num_shards=self.num_shards)
        header.version.producer = 1
        with open(path, "wb") as f:
            table = TableWriter(f)
            table.add(HEADER_KEY, header.SerializeToString())
            for key in sorted(self._entries):
                table.add(key, self._entries[key])
            table.finish()
            f.flush()
            if self.sync:
                os.fsync(f.fileno())

    def _sync_temps(self) -> None:
        for tmp in self._temps.values():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _publish(self, index_final: str, index_tmp: str) -> None:
        """The renames. The old index goes first (from then on there is no checkpoint at this
        prefix, never one pointing at the wrong data), then old data files that the new ones do
        not replace, then the new data files, then the new index."""
        existing = {os.path.abspath(p) for p in prefix_files(self.prefix)}
        if os.path.abspath(index_final) in existing:
            if not self.force:
                raise OutputExists(f"{self.prefix}: destination appeared meanwhile", fix="force")
            os.remove(index_final)
        replaced = {os.path.abspath(final) for final in self._temps}
        for old in sorted(existing - replaced):
            if not old.endswith(".index") and not (self.keep_meta and old.endswith(".meta")):
                # Old shards (or orphans of a killed write) not replaced, and the old .meta:
                # it describes the overwritten checkpoint (unless a new one follows).
                os.remove(old)
        for final, tmp in self._temps.items():
            if final != index_final:
                os.replace(tmp, final)
                self._placed.append(final)
        os.replace(index_tmp, index_final)
        self._placed = []

    def _unplace(self) -> None:
        """After a failed publish: remove the data files already renamed into place (the index
        never was), so nothing partial is left."""
        for final in self._placed:
            with contextlib.suppress(OSError):
                os.remove(final)
            self._temps.pop(final, None)
        self._placed = []

    def commit(self) -> None:
        """Publish: data shards renamed into place first, the index last."""
        if self._committed:
            return
        index_final = self.prefix + ".index"
        try:
            if self._data is None and self.own_shard is not None:
                self._data_file()  # the own shard always exists, even if empty
            if self._data is not None:
                self._data.flush()
                self._data.close()
            missing = [
                i
                for i in range(self.num_shards)
                if data_filename(self.prefix, i, self.num_shards) not in self._temps
            ]
            if missing:
                raise UsageError(f"shards {missing} of {self.prefix} were never written")
            if self.sync:
                self._sync_temps()
            index_tmp = temp_name(index_final)
            self._temps[index_final] = index_tmp
            self._write_index(index_tmp)
            self._publish(index_final, index_tmp)
            if self.sync:
                fd = os.open(os.path.dirname(os.path.abspath(index_final)), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            self._unplace()
            self.abort()
            raise write_error(self.prefix, exc) from None
        except BaseException:
            self._unplace()
            self.abort()
            raise
        self._committed = True
        self._temps.clear()

    def abort(self) -> None:
        """Remove every temp file written so far."""
        if self._data is not None and not self._data.closed:
            self._data.close()
        for tmp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        self._temps.clear()
        for directory in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # only if still empty
        self._made_dirs = []

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._committed:
            self.abort()
