"""Local files: temporary names, atomic no-replace publishing, destination locks, memory-mapped
reads and in-kernel copies.

Every writer creates its files under ``<final>.tfckpt-tmp-<pid>-<hex>`` and renames them into
place; copies use ``copy_file_range`` (no user-space buffer) and hard links where asked. A new
checkpoint prefix is written under an exclusive ``flock`` on ``<prefix>.tfckpt-tmp-lock`` (the
kernel drops it when its process dies, so a killed writer never leaves a lock that blocks), and
its index is published with ``renameat2(RENAME_NOREPLACE)`` (or ``link``) so a file that
appeared meanwhile is never overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from tfckpt.errors import CorruptCheckpoint, OutputExists, WriteError
from tfckpt.storage.base import (
    DIR,
    FILE,
    OTHER,
    STEP,
    Blob,
    FileSystem,
    OnBytes,
    Output,
    PrefixWrite,
    Shard,
    Stat,
)

TEMP_MARK = ".tfckpt-tmp-"
LOCK_SUFFIX = TEMP_MARK + "lock"
COPY_CHUNK = 8 * 1024 * 1024


def open_regular(path: str) -> BinaryIO:
    """Open an existing file for reading, refusing anything but a regular file (raises
    CorruptCheckpoint): a FIFO would block the open until a writer came, a device (a symlink to
    /dev/zero, /dev/urandom) reads without end. Other OSErrors propagate."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a directory"
                if stat.S_ISDIR(mode)
                else "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a device or socket"
            )
            raise CorruptCheckpoint(f"{path}: is {kind}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def temp_name(final: str) -> str:
    import secrets  # only writers need it (hashlib, random: a few ms of start-up)

    return f"{final}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def os_reason(exc: OSError) -> str:
    return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))


def write_error(path: str, exc: OSError) -> WriteError:
    """The error for a failed write of ``path`` (``disk full`` for ENOSPC, else the OS reason)."""
    return WriteError(f"{path}: cannot write ({os_reason(exc)})", os_reason(exc))


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def check_parent(path: str, destination: str | None = None) -> None:
    """Refuse a destination whose directory is unusable: the nearest existing ancestor of
    ``path``'s directory (a missing directory is created by the writers) must be a writable
    directory. Messages name ``destination`` (default ``path``)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        shown = path if destination is None else destination
        raise WriteError(f"{parent}: not a directory (destination {shown})")
    if not os.access(parent, os.W_OK):
        raise WriteError(f"{parent}: destination directory is not writable")


def make_dirs(directory: str) -> list[str]:
    """``mkdir -p``; returns the directories it created, outermost first."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(path, exc) from None
        created.append(path)
    return created


def remove_dirs(made: list[str]) -> None:
    """Remove directories ``make_dirs`` created, innermost first, each only if still empty."""
    for directory in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def copy_file(
    src: str, dst: str, link: bool = False, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Copy (or hard-link, falling back to a copy across filesystems) ``src`` to ``dst``.

    Copies go through ``copy_file_range`` in bounded steps (in-kernel, no user-space buffer),
    reporting progress; nothing is read into memory.
    """
    if link:
        try:
            os.link(src, dst)
            if on_bytes is not None:
                on_bytes(os.path.getsize(src))
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        copy_range(fin.fileno(), 0, fout.fileno(), 0, size, on_bytes)


def copy_range(
    src_fd: int,
    src_offset: int,
    dst_fd: int,
    dst_offset: int,
    size: int,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Copy ``size`` bytes between explicit offsets of two files, in bounded steps.

    ``copy_file_range`` keeps the bytes in the kernel (no user-space buffer, no page faults on a
    mapping); where a filesystem refuses it, ``pread``/``pwrite`` of 8 MiB steps do the same.
    File positions are not used or moved.
    """
    use_range = hasattr(os, "copy_file_range")
    done_total = 0
    while done_total < size:
        step = min(COPY_CHUNK * 8, size - done_total)
        src_at, dst_at = src_offset + done_total, dst_offset + done_total
        if use_range:
            try:
                done = os.copy_file_range(src_fd, dst_fd, step, src_at, dst_at)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                use_range = False
                continue
        else:
            chunk = os.pread(src_fd, min(step, COPY_CHUNK), src_at)
            done = os.pwrite(dst_fd, chunk, dst_at) if chunk else 0
        if done == 0:
            raise OSError(errno.EIO, f"source ended {size - done_total} bytes early")
        done_total += done
        if on_bytes is not None:
            on_bytes(done)


# ---- no-replace publication ----------------------------------------------------------------
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: list[Any] = []  # [libc's renameat2, or None], once looked up


def _libc_renameat2() -> Any:
    if not _renameat2:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
            fn.argtypes += [ctypes.c_uint]
            _renameat2.append(fn)
        except (AttributeError, OSError):
            _renameat2.append(None)
    return _renameat2[0]


def rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` atomically unless ``dst`` exists (FileExistsError then).

    ``renameat2(RENAME_NOREPLACE)`` where the kernel and filesystem have it (files and
    directories); else ``link`` + ``unlink`` for files; else (a filesystem with neither, e.g.
    some FUSE mounts) a check and a rename, which the destination lock still serializes
    between tfckpt writers.
    """
    fn = _libc_renameat2()
    if fn is not None:
        import ctypes

        if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst)
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
            raise OSError(err, os.strerror(err), dst)
    if not os.path.isdir(src):
        try:
            os.link(src, dst)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                raise
        else:
            os.remove(src)
            return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def publish(tmp: str, final: str, replace: bool) -> None:
    """Move a finished temp file (or directory) into place: replacing what is there with
    ``replace``, else never (OutputExists, also when ``final`` appeared meanwhile)."""
    if replace:
        os.replace(tmp, final)
        return
    try:
        rename_noreplace(tmp, final)
    except FileExistsError:
        raise OutputExists(
            f"{final}: exists (appeared while this was written)", fix="force"
        ) from None


def fsync_paths(paths: list[str]) -> None:
    """fsync each file or directory in ``paths``."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_tree(path: str) -> None:
    """fsync a file, or a directory and the files directly in it."""
    paths = [path]
    if os.path.isdir(path):
        paths = [e.path for e in os.scandir(path) if e.is_file()] + [path]
    fsync_paths(paths)


def write_file_atomic(path: str, data: bytes, force: bool = False) -> None:
    """Write one file under a temp name and publish it (no-replace unless ``force``)."""
    if not force and os.path.lexists(path):
        raise OutputExists(f"{path}: exists", fix="force")
    made = make_dirs(os.path.dirname(os.path.abspath(path)))
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path, force)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        remove_dirs(made)
        raise write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        remove_dirs(made)
        raise


# ---- destination lock ----------------------------------------------------------------------
class PrefixLock:
    """An exclusive ``flock`` on ``<prefix>.tfckpt-tmp-lock``, held while a prefix is written.

    Without ``wait`` a lock held by another writer raises OutputExists at once; with ``wait``
    (``--force``: the last writer wins) this blocks until it is free. The file is removed on
    release; a holder that finds its file unlinked or replaced under it retries on the new one.
    """

    def __init__(self, prefix: str, wait: bool) -> None:
        import fcntl

        self.path = prefix + LOCK_SUFFIX
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise OutputExists(
                    f"{prefix}: another writer is writing this destination right now"
                ) from None
            except OSError:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # released and removed by the previous holder meanwhile: again
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)  # before unlocking: a waiter then retries on a new file
        os.close(self._fd)
        self._fd = None


# ---- reading -------------------------------------------------------------------------------
class LocalBlob(Blob):
    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open_regular(path)
        self.size = os.fstat(self._file.fileno()).st_size

    def pread(self, offset: int, length: int) -> bytes:
        try:
            out = os.pread(self._file.fileno(), length, offset)
        except OSError as exc:
            raise CorruptCheckpoint(f"{self.path}: cannot read ({exc.strerror})") from None
        if len(out) != length:
            raise CorruptCheckpoint(f"{self.path}: file shrank while being read")
        return out

    def read_all(self) -> bytes:
        # What the file holds now, plus one byte to notice growth (never an unbounded read).
        self._file.seek(0)
        return self._file.read(self.size + 1)

    def close(self) -> None:
        self._file.close()


class LocalShard(Shard):
    """A data file mapped read-only: views are zero-copy; streaming drops pages behind it."""

    def __init__(self, path: str) -> None:
        self.path = path
        f = open_regular(path)
        self.size = os.fstat(f.fileno()).st_size
        self._file: BinaryIO | None = None
        self._map: mmap.mmap | None = None
        if self.size == 0:
            f.close()
        else:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._file = f  # kept open for the map's lifetime

    def view(self, offset: int, length: int) -> memoryview:
        if self._map is None:
            return memoryview(b"")[0:0]
        return memoryview(self._map)[offset : offset + length]

    def stream(self, offset: int, length: int) -> Iterator[memoryview]:
        view = self.view(offset, length)
        for start in range(0, length, STEP):
            step = view[start : start + STEP]
            yield step
            self.release(offset + start, len(step))

    def release(self, offset: int, length: int) -> None:
        """Drop mapped pages already used so RSS stays bounded (the page cache keeps them).
        Safe for a read-only file mapping: touching the range again faults it back in."""
        if self._map is None or length <= 0 or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = offset - offset % mmap.PAGESIZE
        end = min(offset + length, self.size)
        if end > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        if self._map is not None:
            # numpy views may still be alive; then the OS unmaps at exit.
            with contextlib.suppress(BufferError):
                self._map.close()
        if self._file is not None:
            self._file.close()


# ---- writing a prefix ----------------------------------------------------------------------
class LocalOutput(Output):
    def __init__(self, final: str, tmp: str) -> None:
        self.final = final
        self.tmp = tmp
        try:
            self._file: BinaryIO = open(tmp, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise write_error(final, exc) from None
        self._at = 0
        self._source: tuple[str, BinaryIO] | None = None  # kept open: prune copies 10^5 runs

    def write(self, chunk: bytes | memoryview) -> None:
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise write_error(self.final, exc) from None
        self._at += len(chunk)

    def append_range(self, src: str, offset: int, size: int, on_bytes: OnBytes | None) -> None:
        from tfckpt import storage

        if storage.is_url(src):  # bytes from elsewhere: through memory, in bounded steps
            with storage.open_shard(src) as shard:
                for step in shard.stream(offset, size):
                    self.write(step)
                    if on_bytes is not None:
                        on_bytes(len(step))
            return
        try:
            self._file.flush()
            if self._source is None or self._source[0] != src:
                self._close_source()
                # open_regular: a FIFO or device source would block or never end
                self._source = (src, open_regular(src))
            fin = self._source[1]
            copy_range(fin.fileno(), offset, self._file.fileno(), self._at, size, on_bytes)
            self._file.seek(self._at + size)  # later buffered writes continue after the range
        except OSError as exc:
            raise write_error(self.final, exc) from None
        self._at += size

    def _close_source(self) -> None:
        if self._source is not None:
            self._source[1].close()
            self._source = None

    def close(self) -> None:
        self._close_source()
        if not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:
                raise write_error(self.final, exc) from None


class LocalPrefixWrite(PrefixWrite):
    """Everything under temp names in the destination directory, renamed into place at commit
    (see the package docstring of bundle/writer.py for the order)."""

    def __init__(self, prefix: str, force: bool, sync: bool, refuse: Callable[[], None]) -> None:
        self.prefix = prefix
        self.force = force
        self.sync = sync
        self.cleaned: list[str] = []
        self._temps: dict[str, str] = {}  # final path -> temp path
        self._outputs: list[LocalOutput] = []
        self._placed: list[str] = []  # data files renamed into place by a commit in progress
        self._committed = False
        check_parent(prefix)
        self._made_dirs = make_dirs(os.path.dirname(os.path.abspath(prefix)))
        self._lock: PrefixLock | None = None
        try:
            self._lock = PrefixLock(prefix, wait=force)
            refuse()  # under the lock: nobody else can be publishing here now
            from tfckpt.storage.cleanup import clean_stale_temps

            self.cleaned = clean_stale_temps(prefix)
        except BaseException:
            self.release()
            raise

    def _claim(self, final: str) -> str:
        if final in self._temps:
            raise ValueError(f"{final} written twice")
        tmp = temp_name(final)
        self._temps[final] = tmp
        return tmp

    def output(self, final: str) -> Output:
        out = LocalOutput(final, self._claim(final))
        self._outputs.append(out)
        return out

    def adopt(self, src: str, final: str, link: bool, on_bytes: OnBytes | None) -> None:
        tmp = self._claim(final)
        from tfckpt import storage

        if storage.is_url(src):
            out = LocalOutput(final, tmp)
            try:
                out.append_range(src, 0, storage.getsize(src), on_bytes)
            finally:
                out.close()
            return
        try:
            copy_file(src, tmp, link, on_bytes)
        except OSError as exc:
            raise write_error(final, exc) from None

    def commit(self, index: bytes, meta: bytes | None, keep_meta: bool) -> None:
        index_final = self.prefix + ".index"
        meta_final = self.prefix + ".meta"
        try:
            for out in self._outputs:
                out.close()
            index_tmp = self._claim(index_final)
            with open(index_tmp, "wb") as f:
                f.write(index)
            meta_tmp = self._claim(meta_final) if meta is not None else None
            if meta_tmp is not None:
                with open(meta_tmp, "wb") as f:
                    f.write(meta)  # type: ignore[arg-type]
            if self.sync:
                fsync_paths(list(self._temps.values()))
            self._publish(index_final, index_tmp, meta_final, meta_tmp, keep_meta)
            if self.sync:
                fsync_paths([os.path.dirname(os.path.abspath(index_final))])
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

    def _publish(
        self,
        index_final: str,
        index_tmp: str,
        meta_final: str,
        meta_tmp: str | None,
        keep_meta: bool,
    ) -> None:
        """The renames. The old index goes first (from then on there is no checkpoint at this
        prefix, never one pointing at the wrong data), then old data files that the new ones do
        not replace, then the new data files, then the new index (never over one that appeared
        meanwhile unless forced), then the new .meta."""
        from tfckpt.storage.cleanup import prefix_files

        existing = {os.path.abspath(p) for p in prefix_files(self.prefix)}
        if os.path.abspath(index_final) in existing:
            if not self.force:
                raise OutputExists(f"{self.prefix}: destination appeared meanwhile", fix="force")
            os.remove(index_final)
        replaced = {os.path.abspath(final) for final in self._temps}
        for old in sorted(existing - replaced):
            if not old.endswith(".index") and not (keep_meta and old.endswith(".meta")):
                # Old shards (or orphans of a killed write) not replaced, and the old .meta:
                # it describes the overwritten checkpoint (unless a new one follows).
                os.remove(old)
        for final, tmp in self._temps.items():
            if final not in (index_final, meta_final):
                os.replace(tmp, final)
                self._placed.append(final)
        publish(index_tmp, index_final, replace=False)
        self._placed = []
        if meta_tmp is not None:
            os.replace(meta_tmp, meta_final)

    def _unplace(self) -> None:
        """After a failed publish: remove the data files already renamed into place (the index
        never was), so nothing partial is left."""
        for final in self._placed:
            with contextlib.suppress(OSError):
                os.remove(final)
            self._temps.pop(final, None)
        self._placed = []

    def abort(self) -> None:
        for out in self._outputs:
            with contextlib.suppress(OSError, WriteError):
                out.close()
        for tmp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        self._temps.clear()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if not self._committed:
            remove_dirs(self._made_dirs)
        self._made_dirs = []


# ---- the filesystem ------------------------------------------------------------------------
def _stat_of(st: os.stat_result) -> Stat:
    kind = FILE if stat.S_ISREG(st.st_mode) else DIR if stat.S_ISDIR(st.st_mode) else OTHER
    return Stat(kind, st.st_size, st.st_mtime)


class LocalFS(FileSystem):
    remote = False

    def stat(self, path: str) -> Stat | None:
        try:
            return _stat_of(os.stat(path))
        except (OSError, ValueError):
            return None

    def listdir(self, directory: str) -> list[str]:
        return os.listdir(directory)

    def walk(self, top: str) -> Iterator[tuple[str, list[str], list[str]]]:
        yield from os.walk(top, onerror=None, followlinks=False)

    def open_blob(self, path: str) -> Blob:
        return LocalBlob(path)

    def open_shard(self, path: str) -> Shard:
        return LocalShard(path)

    def write_file(self, path: str, data: bytes, replace: bool) -> None:
        write_file_atomic(path, data, force=replace)

    def remove(self, path: str) -> None:
        os.remove(path)

    def check_parent(self, path: str, destination: str | None = None) -> None:
        check_parent(path, destination)

    def begin_prefix_write(
        self, prefix: str, force: bool, sync: bool, refuse: Callable[[], None]
    ) -> PrefixWrite:
        return LocalPrefixWrite(prefix, force, sync, refuse)

    def identity(self, path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)
