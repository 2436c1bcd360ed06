"""Local files: temporary names, atomic publishing, destination checks and in-kernel copies.

Every writer creates its files under ``<final>.tfckpt-tmp-<pid>-<hex>`` and renames them into
place; copies use ``copy_file_range`` (no user-space buffer) and hard links where asked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO

from tfckpt.errors import CorruptCheckpoint, OutputExists, WriteError

TEMP_MARK = ".tfckpt-tmp-"
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
    return f"{final}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def os_reason(exc: OSError) -> str:
    return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))


def write_error(path: str, exc: OSError) -> WriteError:
    """The error for a failed write of ``path`` (``disk full`` for ENOSPC, else the OS reason)."""
    return WriteError(f"{path}: cannot write ({os_reason(exc)})")


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


def write_file_atomic(path: str, data: bytes, force: bool = False) -> None:
    """Write one file under a temp name and rename it into place."""
    if os.path.exists(path) and not force:
        raise OutputExists(f"{path}: exists", fix="force")
    make_dirs(os.path.dirname(os.path.abspath(path)))
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise write_error(path, exc) from None
