"""``ls --repair``: point a ``checkpoint`` state file back at the checkpoints beside it.

After a directory is moved or copied, the state file often holds absolute paths into the old
location: missing (TF then says there is no checkpoint) or, worse after a copy, still present
and silently used instead of the copy. Each listed path is matched to a checkpoint in the
directory by its trailing path components (longest match first) and rewritten relative to the
directory; paths that match nothing there are kept as they are and reported. Order, timestamps
and ``last_preserved_timestamp`` are kept. The plan is pure data; ``apply_state_repair`` writes
it atomically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.bundle.state import STATE_FILENAME, format_state, reachable_from, read_state
from tfckpt.errors import CheckpointNotFound

# Statuses of one path: already right; rewritten to a checkpoint in the directory; kept
# although nothing exists there (reported).
OK, RELOCATED, MISSING = "ok", "relocated", "missing"


@dataclass
class RepairEntry:
    old: str
    new: str
    status: str
    timestamp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "status": self.status,
            "timestamp": self.timestamp,
        }


@dataclass
class RepairPlan:
    directory: str
    state_path: str
    latest: RepairEntry | None
    entries: list[RepairEntry] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0

    @property
    def changed(self) -> bool:
        return any(e.old != e.new for e in self._all())

    def _all(self) -> list[RepairEntry]:
        return ([self.latest] if self.latest else []) + self.entries

    def counts(self) -> dict[str, int]:
        counts = {OK: 0, RELOCATED: 0, MISSING: 0}
        for entry in self.entries:
            counts[entry.status] += 1
        return counts

    def text(self) -> str:
        """The repaired state file."""
        return format_state(
            self.latest.new if self.latest else "",
            [e.new for e in self.entries],
            self.timestamps or None,
            self.last_preserved_timestamp or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "state_path": self.state_path,
            "changed": self.changed,
            "latest": self.latest.to_dict() if self.latest else None,
            "entries": [e.to_dict() for e in self.entries],
            "counts": self.counts(),
        }


def _exists(prefix: str) -> bool:
    from tfckpt.bundle.checkpoint import is_v2_prefix
    from tfckpt.bundle.v1 import looks_like_v1

    return is_v2_prefix(prefix) or (storage.isfile(prefix) and looks_like_v1(prefix))


def _local_match(directory: str, raw: str) -> str | None:
    """The relative path of the checkpoint in ``directory`` that ``raw`` names, judged by its
    trailing components (the longest that exists wins), or None."""
    parts = [p for p in re.split(r"[/\\]+", raw) if p and p != "."]
    for k in range(len(parts), 0, -1):
        tail = parts[-k:]
        if ".." in tail:
            continue
        if _exists(storage.join(directory, *tail)):
            return "/".join(tail)
    return None


def _repair_one(directory: str, raw: str, timestamp: float | None = None) -> RepairEntry:
    if not storage.isabs(raw) and _exists(storage.join(directory, raw)):
        return RepairEntry(raw, raw, OK, timestamp)
    local = _local_match(directory, raw)
    if local is not None:
        return RepairEntry(raw, local, OK if local == raw else RELOCATED, timestamp)
    # Nothing here: an absolute path to elsewhere that exists is left alone (and is fine).
    found = reachable_from(directory, raw) and _exists(raw)
    return RepairEntry(raw, raw, OK if found else MISSING, timestamp)


def plan_state_repair(path: str) -> RepairPlan:
    """Plan the repair of ``path/checkpoint`` (``path`` may also be the state file itself)."""
    directory = path
    if storage.basename(path) == STATE_FILENAME and storage.isfile(path):
        directory = storage.dirname(path) or "."
    if not storage.isdir(directory):
        raise CheckpointNotFound(f"{path}: no such directory")
    state_path = storage.join(directory, STATE_FILENAME)
    if not storage.isfile(state_path) or storage.isfile(state_path + ".index"):
        raise CheckpointNotFound(f"{state_path}: no checkpoint state file to repair")
    state = read_state(directory)
    stamps: list[float | None] = list(state.timestamps)
    stamps += [None] * (len(state.raw_all) - len(stamps))
    entries = [_repair_one(directory, raw, ts) for raw, ts in zip(state.raw_all, stamps)]
    latest = None
    if state.raw_latest:
        same = [e for e in entries if e.old == state.raw_latest]
        latest = same[-1] if same else _repair_one(directory, state.raw_latest)
        latest = RepairEntry(latest.old, latest.new, latest.status)
    return RepairPlan(
        directory=directory,
        state_path=state_path,
        latest=latest,
        entries=entries,
        timestamps=list(state.timestamps),
        last_preserved_timestamp=state.last_preserved_timestamp,
    )


def apply_state_repair(plan: RepairPlan) -> None:
    """Replace the state file with the repaired one (temp file, then rename)."""
    storage.write_file(plan.state_path, plan.text().encode("utf-8"), replace=True)
