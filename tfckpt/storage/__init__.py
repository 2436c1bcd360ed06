"""The one seam to bytes on storage. Nothing above this package opens, lists, copies, links or
renames files itself: the bundle reader and writer, path resolution, ``ls``, the state file and
graph loading all come through here, so where the bytes live is decided in one place, by the
path's form: a local path (``local``: mmap, ``copy_file_range``, hard links, renames) or a URL
(``remote``: fsspec; ``s3://``, ``gs://``, ``http(s)://``, ``memory://`` ...).

Path helpers (``join``, ``dirname``, ``abspath`` ...) treat a URL's ``scheme://bucket`` as its
root, so code above can handle both kinds with one set of calls.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any

from tfckpt.storage.base import (
    STEP,
    Blob,
    FileSystem,
    OnBytes,
    Output,
    PrefixWrite,
    Shard,
    Stat,
)
from tfckpt.storage.local import (
    COPY_CHUNK,
    LOCK_SUFFIX,
    TEMP_MARK,
    LocalFS,
    copy_file,
    copy_range,
    make_dirs,
    open_regular,
    os_reason,
    pid_alive,
    publish,
    remove_dirs,
    rename_noreplace,
    sync_tree,
    temp_name,
    write_error,
    write_file_atomic,
)

__all__ = [
    "COPY_CHUNK",
    "LOCK_SUFFIX",
    "STEP",
    "TEMP_MARK",
    "Blob",
    "FileSystem",
    "OnBytes",
    "Output",
    "PrefixWrite",
    "Shard",
    "Stat",
    "abspath",
    "basename",
    "begin_prefix_write",
    "check_parent",
    "configure",
    "copy_file",
    "copy_range",
    "dirname",
    "exists",
    "fs_of",
    "getmtime",
    "getsize",
    "identity",
    "is_url",
    "isabs",
    "isdir",
    "isfile",
    "join",
    "lexists",
    "listdir",
    "make_dirs",
    "open_blob",
    "open_regular",
    "open_shard",
    "os_reason",
    "pid_alive",
    "publish",
    "read_bytes",
    "relpath",
    "remove",
    "remove_dirs",
    "rename_noreplace",
    "same_store",
    "stat",
    "sync_tree",
    "temp_name",
    "walk",
    "write_error",
    "write_file",
    "write_file_atomic",
]

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
_LOCAL = LocalFS()


# ---- the path's form -----------------------------------------------------------------------
def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return _URL_RE.match(path) is not None


def _split(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``s3://``, ``bucket/a/b``)."""
    m = _URL_RE.match(url)
    assert m is not None
    return url[: m.end()], url[m.end() :]


def fs_of(path: str) -> FileSystem:
    """The filesystem that holds ``path``."""
    m = _URL_RE.match(path)
    if m is None:
        return _LOCAL
    from tfckpt.storage.remote import remote_fs

    return remote_fs(m.group(1).lower(), path)


def configure(anon: bool = False) -> None:
    """Options for remote stores (``anon``: read public buckets without credentials)."""
    from tfckpt.storage.remote import configure as remote_configure

    remote_configure(anon=anon)


def same_store(a: str, b: str) -> bool:
    """Whether a server-side copy from ``a`` to ``b`` is possible (one remote store)."""
    if not (is_url(a) and is_url(b)):
        return False
    fa = fs_of(a)
    return fa is fs_of(b) and not getattr(fa, "read_only", True)


# ---- path arithmetic -----------------------------------------------------------------------
def join(base: str, *parts: str) -> str:
    if not is_url(base):
        return os.path.join(base, *parts)
    return posixpath.join(base, *parts)


def dirname(path: str) -> str:
    """The directory of ``path``; a URL's root (``s3://bucket``) is its own directory."""
    if not is_url(path):
        return os.path.dirname(path)
    scheme, rest = _split(path)
    rest = rest.rstrip("/")
    return scheme + (posixpath.dirname(rest) or rest)


def basename(path: str) -> str:
    if not is_url(path):
        return os.path.basename(path)
    return posixpath.basename(_split(path)[1].rstrip("/"))


def abspath(path: str) -> str:
    if not is_url(path):
        return os.path.abspath(path)
    scheme, rest = _split(path)
    return scheme + posixpath.normpath(rest).lstrip("/") if rest else path


def isabs(path: str) -> bool:
    return is_url(path) or os.path.isabs(path)


def relpath(path: str, base: str) -> str:
    """``path`` relative to ``base`` (``path`` itself when they are not on one filesystem)."""
    if is_url(path) != is_url(base):
        return path
    if not is_url(path):
        return os.path.relpath(path, base)
    (sa, ra), (sb, rb) = _split(abspath(path)), _split(abspath(base))
    if sa != sb or ra.split("/")[0] != rb.split("/")[0]:
        return path
    return posixpath.relpath(ra, rb)


# ---- stats and listings --------------------------------------------------------------------
def stat(path: str) -> Stat | None:
    return fs_of(path).stat(path)


def isfile(path: str) -> bool:
    if not is_url(path):
        return os.path.isfile(path)
    st = stat(path)
    return st is not None and st.isfile


def isdir(path: str) -> bool:
    if not is_url(path):
        return os.path.isdir(path)
    st = stat(path)
    return st is not None and st.isdir


def exists(path: str) -> bool:
    return os.path.exists(path) if not is_url(path) else stat(path) is not None


def lexists(path: str) -> bool:
    """Whether anything is at ``path`` (locally also a dangling symlink)."""
    return os.path.lexists(path) if not is_url(path) else stat(path) is not None


def getsize(path: str) -> int:
    """Size in bytes (OSError when missing)."""
    if not is_url(path):
        return os.path.getsize(path)
    st = stat(path)
    if st is None:
        raise FileNotFoundError(2, "No such file or directory", path)
    return st.size


def getmtime(path: str) -> float:
    """Modification time (OSError when missing; 0.0 where a store keeps none)."""
    if not is_url(path):
        return os.path.getmtime(path)
    st = stat(path)
    if st is None:
        raise FileNotFoundError(2, "No such file or directory", path)
    return st.mtime or 0.0


def listdir(directory: str) -> list[str]:
    """Names in a directory (OSError when it cannot be listed)."""
    return fs_of(directory).listdir(directory)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    return fs_of(top).walk(top)


def identity(path: str) -> Any:
    """What makes two paths one file: (device, inode) locally, the URL remotely; None when
    nothing is there."""
    return fs_of(path).identity(path)


# ---- reading -------------------------------------------------------------------------------
def open_blob(path: str) -> Blob:
    """Random-access reads of one regular file (FileNotFoundError when missing,
    CorruptCheckpoint for a FIFO, device or directory)."""
    return fs_of(path).open_blob(path)


def open_shard(path: str) -> Shard:
    """A data shard for tensor reads (FileNotFoundError when missing)."""
    return fs_of(path).open_shard(path)


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """A whole file (at most ``limit`` bytes of it)."""
    with open_blob(path) as blob:
        if limit is not None and blob.size > limit:
            return blob.pread(0, limit)
        return blob.read_all()


# ---- writing -------------------------------------------------------------------------------
def write_file(path: str, data: bytes, replace: bool) -> None:
    """Publish one small file atomically; without ``replace`` never over an existing one."""
    fs_of(path).write_file(path, data, replace)


def remove(path: str) -> None:
    fs_of(path).remove(path)


def check_parent(path: str, destination: str | None = None) -> None:
    """Refuse a destination that cannot be written: locally the nearest existing ancestor of
    its directory must be a writable directory (missing ones are created by the writers);
    read-only stores (HTTP) refuse every write. Messages name ``destination``."""
    fs_of(path).check_parent(path, destination)


def begin_prefix_write(
    prefix: str, force: bool, sync: bool = False, refuse: Callable[[], None] = lambda: None
) -> PrefixWrite:
    """Lock the destination ``prefix`` and return its write (see ``PrefixWrite``)."""
    return fs_of(prefix).begin_prefix_write(prefix, force, sync, refuse)
