"""The one seam to bytes on storage. Nothing above this package opens, copies, links or renames
files itself: the bundle reader and writer, graph loading, exports and the state file all come
through here, so where the bytes live (a local disk today) is decided in one place.

``local`` holds the primitives for local files: regular-file opens that refuse FIFOs and
devices, temporary names of the form ``<final>.tfckpt-tmp-<pid>-<hex>``, atomic publication by
rename, destination checks, ``copy_file_range`` copies and hard links.
"""

from __future__ import annotations

from tfckpt.storage.local import (
    COPY_CHUNK,
    TEMP_MARK,
    check_parent,
    copy_file,
    copy_range,
    make_dirs,
    open_regular,
    os_reason,
    pid_alive,
    temp_name,
    write_error,
    write_file_atomic,
)

__all__ = [
    "COPY_CHUNK",
    "TEMP_MARK",
    "check_parent",
    "copy_file",
    "copy_range",
    "make_dirs",
    "open_regular",
    "os_reason",
    "pid_alive",
    "temp_name",
    "write_error",
    "write_file_atomic",
]
