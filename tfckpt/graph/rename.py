"""Renaming variables inside a ``.meta`` MetaGraphDef, consistently with a renamed checkpoint.

A variable node and the nodes in its scope (``v/read``, ``v/Assign``, ``v/Initializer/...``)
move together; every reference follows: node inputs, ``_class`` colocation attributes, the
VariableDefs in collections, signature tensor names, and the saver's ``tensor_names`` constants
(the checkpoint keys the Saver restores from).
"""

from __future__ import annotations

import re
from typing import Any

from tfckpt import protos
from tfckpt.errors import GraphError

_SAVER_NAMES_RE = re.compile(
    r"(^|/)(SaveV2|RestoreV2|SaveSlices|RestoreSlice)(_\d+)?/tensor_names$"
)


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

    def tensor(self, ref: str) -> str:
        """``^name``, ``name``, ``name:0`` references."""
        control = ref.startswith("^")
        body = ref[1:] if control else ref
        node, sep, port = body.partition(":")
        return ("^" if control else "") + self.node(node) + (sep + port if sep else "")


def rename_metagraph(data: bytes, renames: dict[str, str]) -> bytes:
    """The MetaGraphDef with variables (checkpoint names ``renames``) renamed."""
    meta = protos.MetaGraphDef()
    try:
        meta.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise GraphError(f"cannot parse the .meta MetaGraphDef ({exc})") from None
    # Checkpoint names are variable node names, or (partitioned variables) the scope of their
    # ``part_N`` nodes; either way the name and everything under it move together.
    renamer = _NodeRenamer(renames)
    for node in meta.graph_def.node:
        old_name = node.name
        node.name = renamer.node(old_name)
        # Resource and ref variables carry their own name as the resource's shared name.
        for attr in ("shared_name", "debug_name"):
            if attr in node.attr and node.attr[attr].s == old_name.encode(
                "utf-8", "surrogateescape"
            ):
                node.attr[attr].s = node.name.encode("utf-8", "surrogateescape")
        for i, ref in enumerate(node.input):
            node.input[i] = renamer.tensor(ref)
        if "_class" in node.attr:
            values = node.attr["_class"].list.s
            for i, value in enumerate(values):
                text = value.decode("utf-8", "surrogateescape")
                if text.startswith("loc:@"):
                    values[i] = ("loc:@" + renamer.node(text[5:])).encode(
                        "utf-8", "surrogateescape"
                    )
        if node.op == "Const" and _SAVER_NAMES_RE.search(node.name):
            tensor = node.attr["value"].tensor
            for i, value in enumerate(tensor.string_val):
                name = value.decode("utf-8", "surrogateescape")
                tensor.string_val[i] = renames.get(name, name).encode("utf-8", "surrogateescape")
    for collection in meta.collection_def.values():
        _rename_collection(collection, renamer)
    for signature in meta.signature_def.values():
        for info in list(signature.inputs.values()) + list(signature.outputs.values()):
            if info.name:
                info.name = renamer.tensor(info.name)
    saver = meta.saver_def
    for field in ("filename_tensor_name", "save_tensor_name", "restore_op_name"):
        value = getattr(saver, field)
        if value:
            setattr(saver, field, renamer.tensor(value))
    return bytes(meta.SerializeToString())


def _rename_collection(collection: Any, renamer: _NodeRenamer) -> None:
    kind = collection.WhichOneof("kind")
    if kind == "node_list":
        values = collection.node_list.value
        for i, value in enumerate(values):
            values[i] = renamer.tensor(value)
    elif kind == "bytes_list":
        from tensorboard.compat.proto import variable_pb2

        values = collection.bytes_list.value
        for i, raw in enumerate(values):
            var = variable_pb2.VariableDef()
            try:
                var.ParseFromString(raw)
            except Exception:  # not a VariableDef: leave it alone
                continue
            if not var.variable_name:
                continue
            var.variable_name = renamer.tensor(var.variable_name)
            for field in ("initializer_name", "snapshot_name", "initial_value_name"):
                value = getattr(var, field)
                if value:
                    setattr(var, field, renamer.tensor(value))
            if var.HasField("save_slice_info_def"):
                info = var.save_slice_info_def
                info.full_name = renamer.node(info.full_name)
            values[i] = var.SerializeToString()
