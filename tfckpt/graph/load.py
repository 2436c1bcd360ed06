"""Find the graph file a path means, tell its message type from its bytes, and parse it.

A path may be a ``.meta``, a GraphDef ``.pb``/``.pbtxt``, a SavedModel directory or its
``saved_model.pb``/``.pbtxt``, or a checkpoint (prefix, any of its files, or a directory) whose
``<prefix>.meta`` exists. The message type comes from the content, not the extension (a
MetaGraphDef saved as ``.pb`` is common): FORMAT.md section 10 has the field numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tfckpt import protos, storage
from tfckpt.errors import GraphError, TfckptError, UsageError
from tfckpt.graph.textproto import parse_text

GRAPHDEF = "GraphDef"
METAGRAPH = "MetaGraphDef"
SAVEDMODEL = "SavedModel"
STATE = "CheckpointState"
GRAPH_TYPES = (GRAPHDEF, METAGRAPH, SAVEDMODEL)
ALL_TYPES = (*GRAPH_TYPES, STATE)

# --type accepts these spellings (case-insensitive).
TYPE_NAMES = {
    "graphdef": GRAPHDEF,
    "graph": GRAPHDEF,
    "metagraphdef": METAGRAPH,
    "metagraph": METAGRAPH,
    "meta": METAGRAPH,
    "savedmodel": SAVEDMODEL,
    "saved_model": SAVEDMODEL,
    "checkpointstate": STATE,
    "checkpoint": STATE,
    "state": STATE,
}

# A protobuf message cannot exceed 2 GiB; refuse before reading such a file into memory.
MAX_BYTES = 2**31 - 1

# The first field name of a text message tells its type (these sets do not overlap).
_TEXT_FIELDS = {
    GRAPHDEF: {"node", "versions", "version", "library", "debug_info"},
    METAGRAPH: {
        "meta_info_def",
        "graph_def",
        "saver_def",
        "collection_def",
        "signature_def",
        "asset_file_def",
        "object_graph_def",
    },
    SAVEDMODEL: {"saved_model_schema_version", "meta_graphs"},
    STATE: {
        "model_checkpoint_path",
        "all_model_checkpoint_paths",
        "all_model_checkpoint_timestamps",
        "last_preserved_timestamp",
    },
}


def message_class(type_name: str) -> Any:
    return {
        GRAPHDEF: protos.GraphDef,
        METAGRAPH: protos.MetaGraphDef,
        SAVEDMODEL: protos.SavedModel,
        STATE: protos.CheckpointState,
    }[type_name]


def parse_type_option(value: str | None, allowed: tuple[str, ...] = ALL_TYPES) -> str | None:
    """``--type`` value -> canonical type name (None when not given)."""
    if value is None:
        return None
    canonical = TYPE_NAMES.get(value.lower().replace("-", "_"), value)
    if canonical not in allowed:
        raise UsageError(f"--type {value}: expected one of {', '.join(allowed)}")
    return canonical


@dataclass
class LoadedMessage:
    """One parsed file: a GraphDef, MetaGraphDef, SavedModel or CheckpointState."""

    path: str  # the file that was read
    type: str
    encoding: str  # "binary" or "text"
    message: Any
    notes: list[str] = field(default_factory=list)
    savedmodel_dir: str | None = None  # the directory, when the file is a SavedModel's

    @property
    def meta_graphs(self) -> list[Any]:
        """The MetaGraphDefs inside (one for a MetaGraphDef, none for a GraphDef)."""
        if self.type == SAVEDMODEL:
            return list(self.message.meta_graphs)
        if self.type == METAGRAPH:
            return [self.message]
        return []


# ---- paths ----------------------------------------------------------------------------------
def resolve_graph_path(path: str, notes: list[str] | None = None) -> tuple[str, str | None]:
    """The graph file ``path`` means, and the SavedModel directory it belongs to (if any)."""
    from tfckpt.bundle.checkpoint import is_savedmodel_dir, resolve_prefix, strip_checkpoint_suffix

    notes = [] if notes is None else notes
    if storage.isdir(path):
        if is_savedmodel_dir(path):
            return _savedmodel_file(path, notes), path
        try:
            prefix, _ = resolve_prefix(path, notes)
        except TfckptError:
            prefix = None
        if prefix is not None and storage.isfile(prefix + ".meta"):
            return prefix + ".meta", None
        for name in ("graph.pbtxt", "graph.pb"):
            candidate = storage.join(path, name)
            if storage.isfile(candidate):
                return candidate, None
        raise GraphError(
            f"{path}: no SavedModel, checkpoint .meta or graph.pbtxt in this directory"
        )
    if storage.isfile(path):
        base = storage.basename(path)
        if base in ("saved_model.pb", "saved_model.pbtxt"):
            return path, storage.dirname(path) or "."
        stripped = strip_checkpoint_suffix(path)
        if stripped != path and not path.endswith(".meta"):  # x.index / x.data-*: use x.meta
            return _meta_of(stripped, path), None
        return path, None
    if storage.isfile(path + ".meta"):  # a checkpoint prefix
        return path + ".meta", None
    if storage.isfile(path + ".index"):
        return _meta_of(path, path), None
    if storage.lexists(path):  # a FIFO, a device, a dangling symlink: read_limited says which
        return path, None
    raise GraphError(f"{path}: no such file or directory")


def _meta_of(prefix: str, given: str) -> str:
    meta = prefix + ".meta"
    if not storage.isfile(meta):
        raise GraphError(f"{given}: the checkpoint has no {storage.basename(meta)} graph")
    return meta


def _savedmodel_file(directory: str, notes: list[str]) -> str:
    pb = storage.join(directory, "saved_model.pb")
    pbtxt = storage.join(directory, "saved_model.pbtxt")
    if storage.isfile(pb):
        if storage.isfile(pbtxt):
            notes.append(f"{directory}: has saved_model.pb and .pbtxt; reading the .pb")
        return pb
    return pbtxt


# ---- content detection -------------------------------------------------------------------
def looks_like_text(data: bytes) -> bool:
    """Protobuf text starts (after blanks and comments) with a field name; binary does not."""
    head = data[:4096]
    if b"\x00" in head:
        return False
    # Invalid UTF-8 is decided later (a clear "not UTF-8 text" error for text files).
    return _first_identifier(head.decode("utf-8", "replace")) is not None


def _first_identifier(text: str) -> str | None:
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            j = text.find("\n", i)
            if j < 0:
                return None
            i = j + 1
        else:
            break
    j = i
    while j < n and (text[j].isalnum() or text[j] == "_"):
        j += 1
    if j == i or not (text[i].isalpha() or text[i] == "_"):
        return None
    rest = text[j:].lstrip()
    if rest and rest[0] not in ":{<":
        return None
    return text[i:j]


def detect_text_type(data: bytes, where: str) -> str:
    first = _first_identifier(data[:4096].decode("utf-8", "ignore"))
    for type_name, names in _TEXT_FIELDS.items():
        if first in names:
            return type_name
    raise GraphError(
        f"{where}: unknown message type (text starting with field {first!r}); "
        "use --type to say what it is"
    )


def _unknown_count(message: Any) -> int:
    from google.protobuf import unknown_fields

    return len(unknown_fields.UnknownFieldSet(message))


def _plausible(type_name: str, message: Any) -> bool:
    """A binary parse that succeeded is also sensible for that type: wrong field numbers or
    wire types parse as unknown fields, and short byte strings parse as almost anything."""
    if type_name == SAVEDMODEL:
        return len(message.meta_graphs) > 0 and all(
            _graph_ok(m.graph_def) for m in message.meta_graphs
        )
    if type_name == METAGRAPH:
        has_any = message.HasField("graph_def") or message.HasField("meta_info_def")
        return has_any and _graph_ok(message.graph_def)
    if type_name == GRAPHDEF:
        has_any = len(message.node) or len(message.library.function) or message.HasField("versions")
        return bool(has_any) and _graph_ok(message)
    if type_name == STATE:
        return bool(message.model_checkpoint_path or len(message.all_model_checkpoint_paths))
    return False


def _graph_ok(graph_def: Any) -> bool:
    return all(node.op and node.name for node in graph_def.node[:64])


def _unknowns(type_name: str, message: Any) -> int:
    """Unknown fields where a wrong type shows them first: the top level, meta graphs, the
    graph and its first nodes."""
    graphs = []
    count = _unknown_count(message)
    if type_name == SAVEDMODEL:
        for meta in message.meta_graphs:
            count += _unknown_count(meta) + _unknown_count(meta.meta_info_def)
            graphs.append(meta.graph_def)
    elif type_name == METAGRAPH:
        count += _unknown_count(message.meta_info_def)
        graphs.append(message.graph_def)
    elif type_name == GRAPHDEF:
        graphs.append(message)
    for graph in graphs:
        count += _unknown_count(graph) + sum(_unknown_count(n) for n in graph.node[:64])
    return count


def detect_binary_type(
    data: bytes, where: str, candidates: tuple[str, ...]
) -> tuple[str, Any, list[str]]:
    """``(type, message, notes)``: the first candidate whose parse is plausible and has no
    unknown fields; else the first plausible one (a newer TensorFlow may add fields)."""
    fallback: tuple[str, Any] | None = None
    for type_name in candidates:
        try:
            message = message_class(type_name).FromString(data)
        except Exception:  # protobuf's DecodeError and friends
            continue
        if not _plausible(type_name, message):
            continue
        if not _unknowns(type_name, message):
            return type_name, message, []
        if fallback is None:
            fallback = (type_name, message)
    if fallback is not None:
        note = (
            f"{where}: read as a {fallback[0]} with fields unknown to tfckpt (a newer "
            "TensorFlow?); they are kept in binary output but cannot be shown or written as text"
        )
        return fallback[0], fallback[1], [note]
    kinds = ", ".join(candidates[:-1]) + f" or {candidates[-1]}"
    raise GraphError(
        f"{where}: not a {kinds} (unknown message type, or a truncated, corrupt or too deeply "
        "nested protobuf; use --type to say what it is)"
    )


def parse_bytes(
    data: bytes,
    where: str,
    type_name: str | None = None,
    candidates: tuple[str, ...] = GRAPH_TYPES,
    notes: list[str] | None = None,
) -> tuple[str, str, Any]:
    """``(type, encoding, message)`` for the bytes of one file."""
    if not data.strip():
        raise GraphError(f"{where}: empty file")
    from tfckpt.storage.lfs import LFS_POINTER, is_lfs_pointer_bytes

    if is_lfs_pointer_bytes(data):
        raise GraphError(f"{where}: {LFS_POINTER}")
    if looks_like_text(data):
        if type_name is None:
            type_name = detect_text_type(data, where)
            if type_name not in candidates:
                raise GraphError(f"{where}: a text {type_name}, not a graph")
        return type_name, "text", parse_text(data, message_class(type_name), where)
    if type_name is None:
        type_name, message, found = detect_binary_type(data, where, candidates)
        if notes is not None:
            notes.extend(found)
        return type_name, "binary", message
    try:
        message = message_class(type_name).FromString(data)
    except Exception as exc:
        raise GraphError(
            f"{where}: cannot parse as a binary {type_name} ({exc}); truncated or corrupt, "
            "or nested deeper than protobuf's limit of 100"
        ) from None
    return type_name, "binary", message


def read_limited(path: str) -> bytes:
    """The whole file, refusing what is not a regular file (a FIFO would block, a device never
    ends) and anything over protobuf's 2 GiB message limit, whatever its size claims."""
    from tfckpt.errors import CorruptCheckpoint

    too_big = f"{path}: over protobuf's 2 GiB message limit; not a graph"
    try:
        with storage.open_blob(path) as blob:
            if blob.size > MAX_BYTES:
                raise GraphError(too_big)
            # What the file holds when read (it may have grown), never a 2 GiB buffer.
            data = blob.read_all()
        if len(data) > MAX_BYTES:
            raise GraphError(too_big)
        return data
    except CorruptCheckpoint as exc:  # not a regular file
        raise GraphError(str(exc)) from None
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise GraphError(f"{path}: is a directory") from None
    except OSError as exc:
        raise GraphError(f"{path}: cannot read ({exc.strerror})") from None


def load_graph(path: str, type_name: str | None = None) -> LoadedMessage:
    """Read the GraphDef / MetaGraphDef / SavedModel ``path`` means (see the module doc)."""
    notes: list[str] = []
    file_path, sm_dir = resolve_graph_path(os.fspath(path), notes)
    data = read_limited(file_path)
    if type_name is None and sm_dir is not None:
        type_name = SAVEDMODEL
    kind, encoding, message = parse_bytes(data, file_path, type_name, GRAPH_TYPES, notes)
    return LoadedMessage(file_path, kind, encoding, message, notes, sm_dir)


def load_message(path: str, type_name: str | None = None) -> LoadedMessage:
    """Read one file of any supported type (``convert-pbtxt``); a SavedModel directory means
    its saved_model.pb (or .pbtxt)."""
    from tfckpt.bundle.checkpoint import is_savedmodel_dir

    notes: list[str] = []
    sm_dir = None
    if is_savedmodel_dir(path):
        sm_dir, path = path, _savedmodel_file(path, notes)
    data = read_limited(path)
    if type_name is None and storage.basename(path) == "checkpoint":
        type_name = STATE
    if type_name is None and sm_dir is not None:
        type_name = SAVEDMODEL
    kind, encoding, message = parse_bytes(data, path, type_name, ALL_TYPES, notes)
    return LoadedMessage(path, kind, encoding, message, notes, sm_dir)
