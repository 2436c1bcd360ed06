"""Finding checkpoints, SavedModels, events files and leftovers in a directory tree (``ls``).

Listing never parses indexes: shard counts come from data file names and sizes from ``stat``,
so ``ls`` over a tree of large checkpoints stays instant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.bundle.checkpoint import is_savedmodel_dir, may_be_v1, step_of
from tfckpt.bundle.state import STATE_FILENAME, CheckpointStateInfo, reachable_from, read_state
from tfckpt.bundle.v1 import looks_like_v1
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint
from tfckpt.storage import TEMP_MARK

StateReader = Callable[[str], CheckpointStateInfo]

_DATA_RE = re.compile(r"^(?P<base>.+)\.data-(?P<shard>\d{5,})-of-(?P<total>\d{5,})$")
_V1_SHARD_RE = re.compile(r"^(?P<base>.+)-(?P<shard>\d{5})-of-(?P<total>\d{5})$")


@dataclass
class Found:
    """One thing ``ls`` reports. ``kind``: checkpoint | savedmodel | events | missing | temp."""

    kind: str
    path: str
    step: int | None = None
    format: str | None = None
    shards: int | None = None
    data_bytes: int | None = None
    has_meta: bool = False
    mtime: float | None = None
    latest: bool = False
    listed: bool = False  # named in the directory's `checkpoint` state file
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


def _mtime(path: str) -> float | None:
    st = storage.stat(path)
    return None if st is None else st.mtime


def _size(path: str) -> int:
    st = storage.stat(path)
    return 0 if st is None else st.size


def _scan_dir(
    directory: str, names: list[str], inside_savedmodel: bool, state_reader: StateReader
) -> list[Found]:
    found: list[Found] = []
    name_set = set(names)
    data_files: dict[str, list[tuple[int, int, str]]] = {}
    for name in names:
        m = _DATA_RE.match(name)
        if m and TEMP_MARK not in name and ".tempstate" not in name:
            data_files.setdefault(m.group("base"), []).append(
                (int(m.group("shard")), int(m.group("total")), name)
            )
    prefixes: dict[str, Found] = {}
    for name in sorted(names):
        full = storage.join(directory, name)
        if TEMP_MARK in name or ".tempstate" in name or name.endswith("_temp"):
            found.append(
                Found(
                    kind="temp",
                    path=full,
                    data_bytes=_size(full),
                    mtime=_mtime(full),
                    note="leftover temporary file from an interrupted write (the next "
                    "write to the same prefix removes it)",
                )
            )
            continue
        if "tfevents" in name and storage.isfile(full):
            found.append(
                Found(kind="events", path=full, data_bytes=_size(full), mtime=_mtime(full))
            )
            continue
        if name.endswith(".index") and storage.isfile(full):
            base = name[: -len(".index")]
            prefix = storage.join(directory, base)
            shards = data_files.get(base, [])
            totals = {t for _, t, _ in shards}
            item = Found(
                kind="checkpoint",
                path=prefix,
                step=step_of(prefix),
                format="V2",
                shards=max(totals) if totals else 0,
                data_bytes=sum(_size(storage.join(directory, n)) for _, _, n in shards),
                has_meta=base + ".meta" in name_set,
                mtime=_mtime(full),
            )
            if totals and len(shards) < max(totals):
                item.note = f"{max(totals) - len(shards)} data shard(s) missing"
            elif not shards:
                item.note = "no data file"
            pointers = _lfs_pointers([full, *(storage.join(directory, n) for _, _, n in shards)])
            if pointers:
                item.note = (
                    f"{', '.join(pointers)}: Git LFS pointer(s), not the files (fetch them: "
                    "git lfs pull)"
                )
            prefixes[prefix] = item
    # Data files whose index is missing: a write killed between its data and index renames (or
    # a partial copy). Not a checkpoint; the next write to that prefix replaces them.
    for base, shards in sorted(data_files.items()):
        if base + ".index" in name_set:
            continue
        for _, _, name in sorted(shards):
            full = storage.join(directory, name)
            found.append(
                Found(
                    kind="temp",
                    path=full,
                    data_bytes=_size(full),
                    mtime=_mtime(full),
                    note="data file without an index (interrupted write or partial copy)",
                )
            )
    # V1: single-file tables (no extension) and `-NNNNN-of-NNNNN` shard sets.
    v1_groups: dict[str, list[str]] = {}
    for name in sorted(names):
        full = storage.join(directory, name)
        if (
            not may_be_v1(name)
            or name == STATE_FILENAME
            or not storage.isfile(full)
            or any(full.startswith(p + ".") for p in prefixes)
            or not looks_like_v1(full)
        ):
            continue
        m = _V1_SHARD_RE.match(name)
        v1_groups.setdefault(storage.join(directory, m.group("base")) if m else full, []).append(
            full
        )
    for prefix, files in v1_groups.items():
        single = files == [prefix]
        key = prefix if single else files[0]
        prefixes[key] = Found(
            kind="checkpoint",
            path=key,
            step=step_of(prefix),
            format="V1",
            shards=len(files),
            data_bytes=sum(_size(f) for f in files),
            has_meta=storage.exists(prefix + ".meta") or storage.exists(key + ".meta"),
            mtime=max(_mtime(f) or 0.0 for f in files),
        )
    if storage.isfile(storage.join(directory, STATE_FILENAME)):
        found.extend(_apply_state(directory, prefixes, state_reader))
    if prefixes and not any(item.latest for item in prefixes.values()):
        _mark_picked(directory, prefixes)
    if not inside_savedmodel:
        found.extend(prefixes.values())
    return found


def _mark_picked(directory: str, prefixes: dict[str, Found]) -> None:
    """No state file names an existing latest checkpoint: mark the one every other command
    picks for this directory (the newest), so ``ls`` and ``verify DIR`` agree."""
    from tfckpt.bundle.checkpoint import newest_prefix

    picked = newest_prefix(list(prefixes))
    prefixes[picked].latest = True


def _real(path: str) -> str:
    """The path with symlinks resolved (a run reached through a link still matches the paths
    in its state file); a path no file can have (a NUL byte) stays as it is."""
    if storage.is_url(path):
        return storage.abspath(path)
    try:
        return os.path.realpath(path)
    except ValueError:
        return os.path.abspath(path)


def _lfs_pointers(paths: list[str]) -> list[str]:
    """The base names of the files among ``paths`` that are Git LFS pointers (only small files
    are opened: a listing stays instant)."""
    from tfckpt.storage.lfs import MAX_POINTER_BYTES, is_lfs_pointer

    return [
        storage.basename(p) for p in paths if _size(p) <= MAX_POINTER_BYTES and is_lfs_pointer(p)
    ]


def _apply_state(
    directory: str, prefixes: dict[str, Found], state_reader: StateReader
) -> list[Found]:
    """Mark the latest and listed checkpoints; report listed ones that are missing."""
    try:
        state = state_reader(directory)
    except CorruptCheckpoint as exc:
        return [Found(kind="missing", path=storage.join(directory, STATE_FILENAME), note=str(exc))]
    extra: list[Found] = []
    by_abs = {_real(p): f for p, f in prefixes.items()}
    listed = list(state.all)
    if state.latest and state.latest not in listed:
        listed.append(state.latest)
    for path in listed:
        item = by_abs.get(_real(path))
        if item is None:
            # Its .meta may have been copied without the index and data: say so.
            has_meta = reachable_from(directory, path) and storage.isfile(path + ".meta")
            extra.append(
                Found(
                    kind="missing",
                    path=path,
                    step=step_of(path),
                    has_meta=has_meta,
                    listed=True,
                    latest=path == state.latest,
                    note=f"listed in {state.path} but does not exist"
                    + (" (only its .meta is there)" if has_meta else ""),
                    extra={"state_file": state.path},
                )
            )
            continue
        item.listed = True
        if path == state.latest:
            item.latest = True
    return extra


def _savedmodel(directory: str) -> Found:
    variables = storage.join(directory, "variables")
    data = 0
    shards = 0
    try:
        variable_names = storage.listdir(variables) if storage.isdir(variables) else []
    except OSError:
        variable_names = []
    if variable_names:
        for name in variable_names:
            if _DATA_RE.match(name):
                shards += 1
                data += _size(storage.join(variables, name))
    pb = storage.join(directory, "saved_model.pb")
    graph_file = pb if storage.exists(pb) else storage.join(directory, "saved_model.pbtxt")
    return Found(
        kind="savedmodel",
        path=directory,
        step=None,
        format="V2" if storage.exists(storage.join(variables, "variables.index")) else None,
        shards=shards,
        data_bytes=data,
        mtime=_mtime(graph_file),
        note=None if storage.isdir(variables) else "no variables/ directory",
        extra={"graph_bytes": _size(graph_file)},
    )


def discover(
    path: str, recursive: bool = False, state_reader: StateReader = read_state
) -> list[Found]:
    """Everything ``ls`` shows for ``path`` (a directory, or a single checkpoint prefix/file).

    ``state_reader`` parses a directory's ``checkpoint`` file (TensorFlow's own parser with
    ``--engine tf``).
    """
    if storage.is_url(path):
        path = path.rstrip("/") or path
    if not storage.exists(path):
        from tfckpt.bundle.checkpoint import _checkpoint_exists, strip_checkpoint_suffix

        if _checkpoint_exists(strip_checkpoint_suffix(path)):
            path = storage.dirname(path) or "."
        else:
            raise CheckpointNotFound(f"{path}: no such file or directory")
    if not storage.isdir(path):
        path = storage.dirname(path) or "."
    results: list[Found] = []
    if recursive:
        walker = storage.walk(path)
    else:
        try:
            walker = iter([(path, [], storage.listdir(path))])
        except OSError as exc:
            raise CheckpointNotFound(f"{path}: cannot list ({exc.strerror})") from None
    savedmodels: set[str] = set()
    for directory, dirnames, filenames in walker:
        dirnames.sort()
        if is_savedmodel_dir(directory):
            savedmodels.add(storage.abspath(directory))
            results.append(_savedmodel(directory))
        parent = storage.dirname(storage.abspath(directory))
        inside = storage.basename(directory) == "variables" and parent in savedmodels
        results.extend(_scan_dir(directory, filenames, inside, state_reader))
        if not recursive:
            # Also show SavedModels one level down (e.g. an export dir of versions); without
            # --recursive, ``filenames`` is the whole listing, subdirectories included.
            for sub in sorted(filenames):
                full = storage.join(directory, sub)
                if storage.isdir(full) and is_savedmodel_dir(full):
                    results.append(_savedmodel(full))
    order = {"checkpoint": 0, "missing": 0, "savedmodel": 1, "events": 2, "temp": 3}
    results.sort(key=lambda f: (order[f.kind], storage.dirname(f.path), f.step or -1, f.path))
    return results
