"""The ``checkpoint`` state file: a text-format CheckpointState naming the latest prefix.

FORMAT.md section 1. Paths in it may be relative (to the directory) or absolute (and then often
stale after a copy); a missing checkpoint is reported, never fatal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.errors import CorruptCheckpoint, WriteError

STATE_FILENAME = "checkpoint"


@dataclass
class CheckpointStateInfo:
    path: str  # the state file
    raw_latest: str  # as written in the file
    latest: str | None  # resolved to a path (joined onto the directory when relative)
    raw_all: list[str] = field(default_factory=list)
    all: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0


def resolve_state_path(directory: str, path: str) -> str:
    return path if storage.isabs(path) else storage.join(directory, path)


def reachable_from(directory: str, path: str) -> bool:
    """Whether a path read from ``directory``'s state file can name something there: an
    absolute local path in a state file in a bucket (copied up from a training machine) names
    a file on whatever machine reads it, never the checkpoint beside the state file."""
    return not storage.is_url(directory) or storage.is_url(path)


def parse_state(text: str, where: str) -> Any:
    """A ``checkpoint`` state file's text as a CheckpointState message."""
    from google.protobuf import text_format

    from tfckpt import protos

    state = protos.CheckpointState()
    try:
        text_format.Parse(text, state)
    except text_format.ParseError as exc:
        # The parser quotes the offending token, which may be the whole (hostile) file.
        reason = str(exc).splitlines()[0] if str(exc) else "parse error"
        if len(reason) > 120:
            reason = reason[:120] + "..."
        raise CorruptCheckpoint(f"{where}: not a checkpoint state file ({reason})") from None
    return state


def read_state(directory: str) -> CheckpointStateInfo:
    """Parse ``directory/checkpoint``; raises CorruptCheckpoint if it does not parse."""
    path = storage.join(directory, STATE_FILENAME)
    try:
        # Not a FIFO or a device (those block or never end); at most 1 MiB of it.
        text = storage.read_bytes(path, limit=1 << 20).decode("utf-8", "replace")
    except OSError as exc:
        raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
    state = parse_state(text, path)
    latest = state.model_checkpoint_path
    return CheckpointStateInfo(
        path=path,
        raw_latest=latest,
        latest=resolve_state_path(directory, latest) if latest else None,
        raw_all=list(state.all_model_checkpoint_paths),
        all=[resolve_state_path(directory, p) for p in state.all_model_checkpoint_paths],
        timestamps=list(state.all_model_checkpoint_timestamps),
        last_preserved_timestamp=state.last_preserved_timestamp,
    )


def format_state(
    latest: str,
    all_paths: list[str],
    timestamps: list[float] | None = None,
    last_preserved_timestamp: float | None = None,
) -> str:
    from google.protobuf import text_format

    from tfckpt import protos

    state = protos.CheckpointState(
        model_checkpoint_path=latest, all_model_checkpoint_paths=all_paths
    )
    if timestamps:
        state.all_model_checkpoint_timestamps.extend(timestamps)
    if last_preserved_timestamp:
        state.last_preserved_timestamp = last_preserved_timestamp
    return text_format.MessageToString(state)


def update_state_for_new_prefix(prefix: str) -> str:
    """Write/update ``checkpoint`` next to ``prefix`` so it names ``prefix`` as the latest.

    Existing entries are kept (minus a previous entry for this prefix); paths are relative.
    The file is replaced atomically. Returns the state file's path.
    """
    directory = storage.dirname(storage.abspath(prefix))
    name = storage.basename(prefix)
    paths: list[str] = []
    stamps: list[float] = []
    preserved = None
    state_path = storage.join(directory, STATE_FILENAME)
    is_index = storage.isfile(state_path + ".index")
    if storage.isfile(state_path) and not is_index:
        try:
            old = read_state(directory)
            keep = [
                (raw, ts)
                for raw, ts in zip(
                    old.raw_all, old.timestamps + [0.0] * (len(old.raw_all) - len(old.timestamps))
                )
                if storage.abspath(resolve_state_path(directory, raw)) != storage.abspath(prefix)
            ]
            paths = [raw for raw, _ in keep]
            stamps = [ts for _, ts in keep]
            preserved = old.last_preserved_timestamp or None
        except CorruptCheckpoint:
            paths, stamps = [], []
    elif is_index:
        # A prefix literally named "checkpoint" occupies the name; leave it alone.
        return ""
    paths.append(name)
    stamps.append(time.time())
    text = format_state(name, paths, stamps if all(stamps) else None, preserved)
    storage.write_file(state_path, text.encode("utf-8"), replace=True)
    return state_path


def record_latest(prefix: str) -> None:
    """After writing ``prefix``: name it the latest in its directory's state file, as TF's Saver
    does (``update_state_for_new_prefix``), with a WriteError that says the checkpoint itself is
    complete when only the state file could not be written."""
    try:
        update_state_for_new_prefix(prefix)
    except (OSError, WriteError) as exc:
        reason = storage.os_reason(exc) if isinstance(exc, OSError) else exc.reason
        state = storage.join(storage.dirname(prefix) or ".", STATE_FILENAME)
        raise WriteError(
            f"{state}: cannot update the state file ({reason}); {prefix} itself was "
            "written completely"
        ) from None
