"""Renaming variables inside a ``.meta`` MetaGraphDef, consistently with a renamed checkpoint.

A variable node and the nodes in its scope (``v/read``, ``v/Assign``, ``v/Initializer/...``,
``global_step/cond/...``) move together; every reference follows: node inputs, ``_class``
colocation attributes, while-loop frame names, signature tensor names, the saver's
``tensor_names`` constants (the checkpoint keys the Saver restores from), and the names inside
collections. A collection's ``bytes_list`` entries are decoded by the message type TensorFlow
registers for the collection's name (FORMAT.md, "MetaGraphDef collections"): VariableDefs,
SaverDefs, QueueRunnerDefs and the TF1 control-flow contexts (CondContextDef / WhileContextDef,
their ``values_def`` and nested contexts). A bytes collection of any other name is left as it
is, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tfckpt import protos
from tfckpt.errors import GraphError, RenameConflict

_SAVER_NAMES_RE = re.compile(
    r"(^|/)(SaveV2|RestoreV2|SaveSlices|RestoreSlice)(_\d+)?/tensor_names$"
)
# TensorFlow's node-name rule (what the graph importer accepts): a letter, digit or '.', then
# letters, digits and '_', '-', '.', '/'; '>' may separate further such parts.
_NODE_PART = r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*"
NODE_NAME_RE = re.compile(rf"{_NODE_PART}(>{_NODE_PART})*")
# Collections whose bytes entries are VariableDefs (the names TensorFlow registers).
VARIABLE_COLLECTIONS = frozenset(
    {
        "variables",
        "trainable_variables",
        "local_variables",
        "model_variables",
        "moving_average_variables",
        "metric_variables",
        "global_step",
    }
)
# Ops whose ``frame_name`` attribute names their while loop's context (a name scope).
_FRAME_OPS = frozenset({"Enter", "RefEnter"})


def is_valid_node_name(name: str) -> bool:
    return NODE_NAME_RE.fullmatch(name) is not None


class _NodeRenamer:
    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames
        # Longest first, so a slot variable (v/Adam) wins over its variable (v) as a scope.
        self.scopes = sorted(renames, key=len, reverse=True)

    def node(self, name: str) -> str:
        if name in self.renames:
            return self.renames[name]
        for old in self.scopes:
            if name.startswith(old + "/"):
                return self.renames[old] + name[len(old) :]
        return name

    def scope(self, name: str) -> str:
        """A name scope (``global_step/cond/``, with or without the trailing ``/``)."""
        if name.endswith("/"):
            return self.node(name[:-1]) + "/"
        return self.node(name)

    def tensor(self, ref: str) -> str:
        """``^name``, ``name``, ``name:0`` references."""
        control = ref.startswith("^")
        body = ref[1:] if control else ref
        node, sep, port = body.partition(":")
        return ("^" if control else "") + self.node(node) + (sep + port if sep else "")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def rename_metagraph(data: bytes, renames: dict[str, str], notes: list[str] | None = None) -> bytes:
    """The MetaGraphDef with variables (checkpoint names ``renames``) renamed.

    Raises GraphError when the file is not a MetaGraphDef (or a registered collection holds
    something else than its message type), and RenameConflict when a moved node would get a
    name TensorFlow's importer refuses. Collections left unchanged are reported in ``notes``.
    """
    meta = protos.MetaGraphDef()
    try:
        meta.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise GraphError(f"cannot parse the .meta MetaGraphDef ({exc})") from None
    # Checkpoint names are variable node names, or (partitioned variables) the scope of their
    # ``part_N`` nodes; either way the name and everything under it move together.
    renamer = _NodeRenamer(renames)
    invalid: list[str] = []
    for node in meta.graph_def.node:
        old_name = node.name
        node.name = renamer.node(old_name)
        if node.name != old_name and not is_valid_node_name(node.name):
            invalid.append(node.name)
        # Resource and ref variables carry their own name as the resource's shared name.
        for attr in ("shared_name", "debug_name"):
            if attr in node.attr and node.attr[attr].s == _raw(old_name):
                node.attr[attr].s = _raw(node.name)
        for i, ref in enumerate(node.input):
            node.input[i] = renamer.tensor(ref)
        if "_class" in node.attr:
            values = node.attr["_class"].list.s
            for i, value in enumerate(values):
                text = _text(value)
                if text.startswith("loc:@"):
                    values[i] = _raw("loc:@" + renamer.node(text[5:]))
        if node.op in _FRAME_OPS and "frame_name" in node.attr:
            frame = node.attr["frame_name"]
            frame.s = _raw(renamer.scope(_text(frame.s)))
        if node.op == "Const" and _SAVER_NAMES_RE.search(node.name):
            tensor = node.attr["value"].tensor
            for i, value in enumerate(tensor.string_val):
                name = _text(value)
                tensor.string_val[i] = _raw(renames.get(name, name))
    if invalid:
        shown = ", ".join(repr(n) for n in sorted(invalid)[:3])
        raise RenameConflict(
            f"{len(invalid)} renamed graph node(s) would get a name TensorFlow refuses, e.g. "
            f"{shown} (node names are letters, digits and '.', '_', '-', '/', starting with a "
            "letter, digit or '.'): the renamed .meta would not import; nothing written"
        )
    skipped = []
    for key in sorted(meta.collection_def):
        if not _rename_collection(key, meta.collection_def[key], renamer):
            skipped.append(key)
    if skipped and renames and notes is not None:
        notes.append(
            f"{len(skipped)} .meta collection(s) of a type tfckpt does not know were copied "
            f"unchanged (names inside them are not renamed): {', '.join(map(repr, skipped))}"
        )
    for signature in meta.signature_def.values():
        for info in list(signature.inputs.values()) + list(signature.outputs.values()):
            if info.name:
                info.name = renamer.tensor(info.name)
    _rename_fields(meta.saver_def, renamer.tensor, _SAVER_FIELDS)
    return bytes(meta.SerializeToString())


_SAVER_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")
_QUEUE_FIELDS = ("queue_name", "close_op_name", "cancel_op_name")
_VARIABLE_FIELDS = ("variable_name", "initializer_name", "snapshot_name", "initial_value_name")


def _rename_fields(message: Any, rename: Callable[[str], str], fields: tuple[str, ...]) -> None:
    for field in fields:
        value = getattr(message, field)
        if value:
            setattr(message, field, rename(value))


def _rename_repeated(values: Any, rename: Callable[[str], str]) -> None:
    for i, value in enumerate(values):
        values[i] = rename(value)


def _rename_variable(var: Any, renamer: _NodeRenamer) -> None:
    _rename_fields(var, renamer.tensor, _VARIABLE_FIELDS)
    if var.HasField("save_slice_info_def"):
        info = var.save_slice_info_def
        info.full_name = renamer.node(info.full_name)


def _rename_saver(saver: Any, renamer: _NodeRenamer) -> None:
    _rename_fields(saver, renamer.tensor, _SAVER_FIELDS)


def _rename_queue_runner(queue: Any, renamer: _NodeRenamer) -> None:
    _rename_fields(queue, renamer.tensor, _QUEUE_FIELDS)
    _rename_repeated(queue.enqueue_op_name, renamer.tensor)


def _rename_values(values_def: Any, renamer: _NodeRenamer) -> None:
    _rename_repeated(values_def.values, renamer.tensor)
    external = {renamer.tensor(k): renamer.tensor(v) for k, v in values_def.external_values.items()}
    values_def.external_values.clear()
    values_def.external_values.update(external)


def _rename_context(context: Any, renamer: _NodeRenamer) -> None:
    """A CondContextDef or WhileContextDef, with its nested contexts (iteratively: nesting
    depth is bounded by the parser, not by Python's stack)."""
    todo = [context]
    while todo:
        ctx = todo.pop()
        ctx.context_name = renamer.scope(ctx.context_name)
        if ctx.DESCRIPTOR.name == "CondContextDef":
            _rename_fields(ctx, renamer.tensor, ("pred_name", "pivot_name"))
        else:
            _rename_fields(
                ctx,
                renamer.tensor,
                (
                    "pivot_name",
                    "pivot_for_pred_name",
                    "pivot_for_body_name",
                    "maximum_iterations_name",
                ),
            )
            _rename_repeated(ctx.loop_exit_names, renamer.tensor)
            _rename_repeated(ctx.loop_enter_names, renamer.tensor)
        if ctx.HasField("values_def"):
            _rename_values(ctx.values_def, renamer)
        for nested in ctx.nested_contexts:
            kind = nested.WhichOneof("ctxt")
            if kind is not None:
                todo.append(getattr(nested, kind))


_BYTES_COLLECTIONS: dict[str, tuple[Any, Callable[[Any, _NodeRenamer], None]]] = {
    **{name: (protos.VariableDef, _rename_variable) for name in VARIABLE_COLLECTIONS},
    "savers": (protos.SaverDef, _rename_saver),
    "queue_runners": (protos.QueueRunnerDef, _rename_queue_runner),
    "cond_context": (protos.CondContextDef, _rename_context),
    "while_context": (protos.WhileContextDef, _rename_context),
}


def _rename_collection(key: str, collection: Any, renamer: _NodeRenamer) -> bool:
    """Rename the names in one collection; False for a non-empty bytes collection whose message
    type is unknown (left unchanged)."""
    kind = collection.WhichOneof("kind")
    if kind == "node_list":
        _rename_repeated(collection.node_list.value, renamer.tensor)
        return True
    if kind != "bytes_list" or not collection.bytes_list.value:
        return True  # numbers and Any protos hold no graph names tfckpt knows of
    registered = _BYTES_COLLECTIONS.get(key)
    if registered is None:
        return False
    message_type, rename = registered
    values = collection.bytes_list.value
    for i, raw in enumerate(values):
        message = message_type()
        try:
            message.ParseFromString(raw)
        except Exception:  # protobuf raises DecodeError and friends
            raise GraphError(
                f"the .meta collection {key!r} holds an entry that is not a "
                f"{message_type.DESCRIPTOR.name} (corrupt .meta)"
            ) from None
        rename(message, renamer)
        values[i] = message.SerializeToString()
    return True
