"""The files of a checkpoint prefix at a destination, and leftovers of interrupted writes."""

from __future__ import annotations

import contextlib
import re

from tfckpt import storage
from tfckpt.storage.local import TEMP_MARK, pid_alive


def prefix_files(prefix: str) -> list[str]:
    """Existing files that belong to ``prefix`` (index, data shards, meta)."""
    directory = storage.dirname(prefix) or "."
    base = storage.basename(prefix)
    out: list[str] = []
    try:
        names = storage.listdir(directory)
    except OSError:
        return out
    for name in names:
        if name in (base + ".index", base + ".meta") or (
            name.startswith(base + ".data-") and TEMP_MARK not in name
        ):
            out.append(storage.join(directory, name))
    return out


def stale_temps(prefix: str) -> list[str]:
    """Temp files of writers to ``prefix`` (and its directory's state file) whose process is
    gone: leftovers of a killed write."""
    if storage.is_url(prefix):
        return []  # remote writers publish final names directly; no temp files
    directory = storage.dirname(prefix) or "."
    base = storage.basename(prefix)
    try:
        names = storage.listdir(directory)
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
            out.append(storage.join(directory, name))
    return sorted(out)


def clean_stale_temps(prefix: str) -> list[str]:
    """Remove ``stale_temps(prefix)``; returns what was removed."""
    removed = []
    for path in stale_temps(prefix):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            storage.remove(path)
            removed.append(path)
    return removed
