"""Git LFS pointer files: what a clone without ``git lfs`` holds instead of the real file.

A pointer is a small text file (``version https://git-lfs.github.com/spec/v1``, ``oid
sha256:...``, ``size N``); read as a checkpoint it looks truncated or corrupt, so readers ask
here first and say what it really is.
"""

from __future__ import annotations

import contextlib
import mmap

LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
# Pointer files are about 130 bytes; anything much larger is not one.
MAX_POINTER_BYTES = 1024
LFS_POINTER = "this is a Git LFS pointer, not the file (fetch the real file: git lfs pull)"


def is_lfs_pointer_bytes(head: bytes | memoryview | mmap.mmap) -> bool:
    """Whether ``head`` (a file's first bytes, or all of them) is a Git LFS pointer."""
    return len(head) <= MAX_POINTER_BYTES and bytes(head[: len(LFS_MAGIC)]) == LFS_MAGIC


def is_lfs_pointer(path: str) -> bool:
    """Whether the file at ``path`` is a Git LFS pointer (False for anything unreadable)."""
    from tfckpt import storage
    from tfckpt.errors import TfckptError

    with contextlib.suppress(OSError, TfckptError), storage.open_blob(path) as blob:
        if blob.size > MAX_POINTER_BYTES:
            return False
        return is_lfs_pointer_bytes(blob.pread(0, blob.size))
    return False
