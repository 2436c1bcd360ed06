"""The ``checkpoint`` state file: a text-format CheckpointState naming the latest prefix.

FORMAT.md section 1. Paths in it may be relative (to the directory) or absolute (and then often
stale after a copy); a missing checkpoint is reported, never fatal.
"""

from __future__ import annotations

import re
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
    """A ``checkpoint`` state file's text as a CheckpointState message (protobuf's text-format
    parser: any valid text format, and its error for anything else)."""
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


# The state file as TensorFlow writes it: one ``field: value`` per line, strings in double
# quotes with C escapes. Read and written here without protobuf (importing its text format
# costs ~0.1 s, most of a small command's start-up); any other text goes to ``parse_state``.
_LINE = re.compile(
    r'[ \t]*(\w+)[ \t]*:[ \t]*(?:"((?:[^"\\\n]|\\.)*)"|([-+]?[0-9][0-9.eE+-]*))[ \t]*'
)
_STRINGS = ("model_checkpoint_path", "all_model_checkpoint_paths")
_NUMBERS = ("all_model_checkpoint_timestamps", "last_preserved_timestamp")
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b'"': b'"', b"'": b"'", b"\\": b"\\"}


def _unescape(escaped: str) -> str | None:
    def one(m: re.Match[bytes]) -> bytes:
        octal, hexa, char = m.groups()
        if octal is not None:
            return bytes((int(octal, 8) & 0xFF,))
        if hexa is not None:
            return bytes((int(hexa, 16),))
        if char not in _SIMPLE:
            raise ValueError
        return _SIMPLE[char]

    try:
        return _ESCAPE.sub(one, escaped.encode("utf-8")).decode("utf-8")
    except ValueError:  # an escape protobuf would refuse, or bytes that are not UTF-8
        return None


def _fields(text: str) -> dict[str, list[Any]] | None:
    """The fields of a canonical state file, or None to leave the text to protobuf."""
    out: dict[str, list[Any]] = {name: [] for name in (*_STRINGS, *_NUMBERS)}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.fullmatch(line)
        if m is None or m.group(1) not in out:
            return None
        name, string, number = m.groups()
        if (name in _STRINGS) != (string is not None):
            return None
        if string is not None:
            value = _unescape(string)
            if value is None:
                return None
            out[name].append(value)
        else:
            try:
                out[name].append(float(number))
            except ValueError:
                return None
    singular = ("model_checkpoint_path", "last_preserved_timestamp")
    if any(len(out[name]) > 1 for name in singular):
        return None  # protobuf says what is wrong
    return out


def read_state(directory: str) -> CheckpointStateInfo:
    """Parse ``directory/checkpoint``; raises CorruptCheckpoint if it does not parse."""
    path = storage.join(directory, STATE_FILENAME)
    try:
        # Not a FIFO or a device (those block or never end); at most 1 MiB of it.
        text = storage.read_bytes(path, limit=1 << 20).decode("utf-8", "replace")
    except OSError as exc:
        raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
    fields = _fields(text)
    if fields is None:
        state = parse_state(text, path)
        fields = {
            "model_checkpoint_path": [state.model_checkpoint_path],
            "all_model_checkpoint_paths": list(state.all_model_checkpoint_paths),
            "all_model_checkpoint_timestamps": list(state.all_model_checkpoint_timestamps),
            "last_preserved_timestamp": [state.last_preserved_timestamp],
        }
    latest = (fields["model_checkpoint_path"] or [""])[0]
    raw_all = fields["all_model_checkpoint_paths"]
    return CheckpointStateInfo(
        path=path,
        raw_latest=latest,
        latest=resolve_state_path(directory, latest) if latest else None,
        raw_all=raw_all,
        all=[resolve_state_path(directory, p) for p in raw_all],
        timestamps=fields["all_model_checkpoint_timestamps"],
        last_preserved_timestamp=(fields["last_preserved_timestamp"] or [0.0])[0],
    )


def _quoted(value: str) -> str:
    """``value`` as protobuf's text format prints a string: non-ASCII characters as they are,
    printable ASCII as is (quotes and backslashes escaped), other bytes in octal."""
    out = []
    for char in value:
        code = ord(char)
        if char in "\"'\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif 32 <= code < 127 or code >= 128:
            out.append(char)
        else:
            out.append(f"\\{code:03o}")
    return '"' + "".join(out) + '"'


def format_state(
    latest: str,
    all_paths: list[str],
    timestamps: list[float] | None = None,
    last_preserved_timestamp: float | None = None,
) -> str:
    """The text of a state file, as protobuf's text format prints a CheckpointState."""
    lines = [f"model_checkpoint_path: {_quoted(latest)}"] if latest else []
    lines += [f"all_model_checkpoint_paths: {_quoted(p)}" for p in all_paths]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in timestamps or ()]
    if last_preserved_timestamp:
        lines.append(f"last_preserved_timestamp: {last_preserved_timestamp!r}")
    return "".join(line + "\n" for line in lines)


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
