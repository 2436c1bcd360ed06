"""``convert-pbtxt``: binary <-> text protobuf for GraphDef, MetaGraphDef, SavedModel and the
``checkpoint`` state file (CheckpointState).

The output is checked before it is written: parsing it back must give the same message
(compared as deterministic binary), so a field tfckpt's protobuf definitions do not know (text
output cannot carry unknown fields) stops the conversion instead of silently dropping data.
``--elide-constants`` output is the exception: it is for reading and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.errors import GraphError, UsageError
from tfckpt.graph.load import GRAPHDEF, METAGRAPH, SAVEDMODEL, LoadedMessage, load_message
from tfckpt.graph.textproto import parse_text, to_text

TEXT_EXTENSIONS = (".pbtxt", ".txt", ".prototxt", ".pbtext")
BINARY_EXTENSIONS = (".pb", ".meta")
# Constants whose tensor_content is larger than this are elided by --elide-constants.
ELIDE_BYTES = 1024
ELIDED_MARKER = "<tfckpt: elided {nbytes} bytes of {dtype} {shape}; NOT round-trippable>"


@dataclass
class ConversionPlan:
    """What ``convert-pbtxt`` will write, built before anything is written."""

    source: LoadedMessage
    dst: str  # "-" for stdout
    encoding: str  # output: "text" or "binary"
    elided: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: bytes = b""

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.source.path,
            "output": self.dst,
            "type": self.source.type,
            "from": self.source.encoding,
            "to": self.encoding,
            "bytes": len(self.data),
            "elided": self.elided,
            "round_trip": not self.elided,
        }


def output_encoding(dst: str, src_encoding: str) -> tuple[str, str | None]:
    """``(encoding, note)`` for an output path: by extension, else the opposite of the input."""
    opposite = "text" if src_encoding == "binary" else "binary"
    if dst == "-":
        return opposite, None
    lower = dst.lower()
    if lower.endswith(TEXT_EXTENSIONS) or storage.basename(dst) == "checkpoint":
        return "text", None
    if lower.endswith(BINARY_EXTENSIONS):
        return "binary", None
    return opposite, f"{dst}: extension not .pb/.meta/.pbtxt/.txt; writing {opposite}"


def _tensor_attrs(message: Any, type_name: str) -> list[tuple[str, Any]]:
    """``(where, TensorProto)`` for every tensor-valued attr in the graph(s) and functions."""
    graphs: list[tuple[str, Any]] = []
    if type_name == GRAPHDEF:
        graphs = [("", message)]
    elif type_name == METAGRAPH:
        graphs = [("", message.graph_def)]
    elif type_name == SAVEDMODEL:
        graphs = [(f"meta_graphs[{i}] ", m.graph_def) for i, m in enumerate(message.meta_graphs)]
    out = []
    for label, graph in graphs:
        node_lists = [(label, graph.node)] + [
            (f"{label}function {f.signature.name}: ", f.node_def) for f in graph.library.function
        ]
        for where, nodes in node_lists:
            for node in nodes:
                for key, attr in node.attr.items():
                    kind = attr.WhichOneof("value")
                    if kind == "tensor":
                        out.append((f"{where}{node.name} [{key}]", attr.tensor))
                    elif kind == "list":
                        for j, t in enumerate(attr.list.tensor):
                            out.append((f"{where}{node.name} [{key}][{j}]", t))
    return out


def elide_constants(message: Any, type_name: str, limit: int = ELIDE_BYTES) -> list[dict]:
    """Replace large ``tensor_content`` with a marker, in place; what was elided."""
    from tfckpt.graph.summary import dtype_name, shape_list

    elided = []
    for where, tensor in _tensor_attrs(message, type_name):
        nbytes = len(tensor.tensor_content)
        if nbytes <= limit:
            continue
        dtype = dtype_name(tensor.dtype)
        shape = shape_list(tensor.tensor_shape)
        shape_text = "[" + ", ".join("?" if d is None else str(d) for d in shape or []) + "]"
        marker = ELIDED_MARKER.format(nbytes=nbytes, dtype=dtype, shape=shape_text)
        tensor.tensor_content = marker.encode()
        elided.append({"where": where, "bytes": nbytes, "dtype": dtype, "shape": shape})
    return elided


def plan_conversion(
    src: str, dst: str, type_name: str | None = None, elide: bool = False
) -> ConversionPlan:
    """Read ``src`` and build the bytes ``dst`` will get (checked to round-trip)."""
    if dst != "-" and storage.abspath(dst) == storage.abspath(src):
        raise UsageError(f"{dst}: output is the input file")
    source = load_message(src, type_name)
    encoding, note = output_encoding(dst, source.encoding)
    plan = ConversionPlan(source, dst, encoding, notes=list(source.notes))
    if note:
        plan.notes.append(note)
    if encoding == source.encoding:
        plan.notes.append(f"input and output are both {encoding}; re-serializing")
    if elide and encoding != "text":
        raise UsageError("--elide-constants only applies to text output")
    message = source.message
    if elide:
        message = type(message)()
        message.CopyFrom(source.message)
        plan.elided = elide_constants(message, source.type)
    if encoding == "text":
        plan.data = to_text(message).encode("utf-8")
    else:
        plan.data = message.SerializeToString()
    if not plan.elided:
        _check_round_trip(plan)
    return plan


def _check_round_trip(plan: ConversionPlan) -> None:
    cls = type(plan.source.message)
    if plan.encoding == "text":
        back = parse_text(plan.data, cls, plan.dst)
    else:
        back = cls.FromString(plan.data)
    original = plan.source.message.SerializeToString(deterministic=True)
    if back.SerializeToString(deterministic=True) != original:
        raise GraphError(
            f"{plan.source.path}: the {plan.encoding} output would not give back the same "
            f"{plan.source.type} (fields unknown to tfckpt's protobuf definitions?); "
            "nothing written"
        )


def apply_conversion(plan: ConversionPlan, force: bool = False) -> None:
    """Write the planned bytes to ``plan.dst`` atomically (not for ``-``)."""
    storage.write_file(plan.dst, plan.data, replace=force)
