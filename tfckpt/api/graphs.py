"""Graphs: ``.meta`` MetaGraphDefs, GraphDef ``.pb``/``.pbtxt`` files and SavedModels.

Example::

    import tfckpt

    summary = tfckpt.graph_summary("saved_model_dir")
    print(summary.data["meta_graphs"][0]["signatures"])
    report = tfckpt.check_graph("export_dir", "runs/model.ckpt-1000")
    if not report.ok:
        print(report.data["suggestion"])
    tfckpt.convert_graph("model.ckpt-1000.meta", "model.pbtxt")
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import UsageError

PathLike = str | os.PathLike[str]


@dataclass
class GraphReport:
    """A JSON-ready result of a graph command (``data``), whether it passed (``ok``: always True
    for summaries and listings), and notes for the user."""

    data: Any
    ok: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.data, dict):
            return {"ok": self.ok, **self.data}
        return {"ok": self.ok, "items": self.data}


def load_graph(path: PathLike, *, type: str | None = None, engine: str = "native") -> Any:
    """Parse a graph file: the message type from the content unless ``type`` (graphdef,
    metagraph, savedmodel) says; ``engine="tf"`` loads it through TensorFlow
    (``import_meta_graph`` / ``import_graph_def``, then ``as_graph_def``).

    >>> tfckpt.api.graphs.load_graph("model.ckpt-1000.meta").type
    'MetaGraphDef'
    """
    from tfckpt.api.checks import _check_engine
    from tfckpt.graph.load import GRAPH_TYPES, parse_type_option

    _check_engine(engine)
    kind = parse_type_option(type, GRAPH_TYPES)
    if engine == "tf":
        from tfckpt.tf_engine.graph import tf_load_graph

        return tf_load_graph(os.fspath(path), kind)
    from tfckpt.graph.load import load_graph as load_native

    return load_native(os.fspath(path), kind)


def graph_summary(
    path: PathLike,
    *,
    type: str | None = None,
    scope: str | None = None,
    tags: str | None = None,
    engine: str = "native",
) -> GraphReport:
    """Versions, node and op counts, inputs, outputs, variables, collections, saver,
    signatures, library functions and SavedModel tags of a graph file. ``tags`` picks one
    meta graph of a SavedModel (comma-separated tag set); ``scope`` restricts to a name scope.

    >>> tfckpt.graph_summary("model.ckpt-1000.meta").data["nodes"]
    412
    """
    from tfckpt.graph.summary import pick_meta_graph, summarize

    loaded = load_graph(path, type=type, engine=engine)
    meta_graphs = None
    if tags is not None:
        if loaded.type != "SavedModel":
            raise UsageError("tags only apply to SavedModels")
        meta_graphs = [pick_meta_graph(loaded, tags)[1]]
    return GraphReport(summarize(loaded, scope, meta_graphs), notes=list(loaded.notes))


def graph_nodes(
    path: PathLike,
    *,
    type: str | None = None,
    scope: str | None = None,
    ops: Iterable[str] = (),
    tags: str | None = None,
    engine: str = "native",
) -> tuple[list[Any], GraphReport]:
    """The nodes of one graph (``scope``: a name scope; ``ops``: op-type globs) as NodeDefs and
    as records (name, op, inputs, device).

    >>> nodes, report = tfckpt.api.graphs.graph_nodes("graph.pbtxt", ops=["MatMul"])
    """
    from tfckpt.graph.summary import node_records, pick_meta_graph, select_nodes

    loaded = load_graph(path, type=type, engine=engine)
    graph_def, _, pick_note = pick_meta_graph(loaded, tags)
    selected = select_nodes(graph_def, scope, list(ops))
    notes = list(loaded.notes) + ([pick_note] if pick_note else [])
    return selected, GraphReport(node_records(selected), notes=notes)


def graph_dot(
    path: PathLike,
    *,
    type: str | None = None,
    scope: str | None = None,
    ops: Iterable[str] = (),
    tags: str | None = None,
    depth: int | None = None,
    engine: str = "native",
    output: PathLike | None = None,
    force: bool = False,
) -> tuple[str, int, list[str]]:
    """Graphviz text of a graph's nodes (collapsed into scopes ``depth`` levels deep); returns
    ``(text, node count, notes)`` and, with ``output``, also writes the text there atomically.

    >>> text, count, _ = tfckpt.api.graphs.graph_dot("graph.pbtxt", depth=2)
    """
    from tfckpt.graph.summary import to_dot

    if depth is not None and depth < 1:
        raise UsageError("depth must be at least 1")
    selected, report = graph_nodes(path, type=type, scope=scope, ops=ops, tags=tags, engine=engine)
    text = "\n".join(to_dot(selected, depth, os.fspath(path))) + "\n"
    if output is not None:
        from tfckpt.storage import write_file_atomic

        write_file_atomic(os.fspath(output), text.encode("utf-8"), force)
    return text, len(selected), report.notes


def check_graph(
    graph: PathLike,
    checkpoint: PathLike,
    *,
    type: str | None = None,
    scope: str | None = None,
    tags: str | None = None,
    engine: str = "native",
) -> GraphReport:
    """Match what the graph restores against the checkpoint (``report.ok``: nothing missing or
    mismatched). TF1 graphs by the saver's tensor names (else the variable nodes), TF2
    SavedModels by object-graph keys. When a prefix change would fix a mismatch, the report's
    ``suggestion`` holds the ``tfckpt rename`` command that does it.

    >>> tfckpt.check_graph("export_dir", "runs/model.ckpt-1000").ok
    True
    """
    from tfckpt.api.checks import open_engine
    from tfckpt.graph.check import check_against_checkpoint, graph_needs
    from tfckpt.graph.summary import pick_meta_graph

    loaded = load_graph(graph, type=type, engine=engine)
    graph_def, meta, pick_note = pick_meta_graph(loaded, tags)
    notes = list(loaded.notes) + ([pick_note] if pick_note else [])
    needs = graph_needs(graph_def, meta)
    # Only the index is compared: a checkpoint whose data is missing is checked, with a warning.
    with open_engine(checkpoint, engine, need_data=False) as ckpt:
        notes += ckpt.notes
        data = check_against_checkpoint(needs, ckpt, os.fspath(checkpoint), loaded.path, scope)
    return GraphReport(data, ok=bool(data["ok"]), notes=notes)


def signature(
    path: PathLike, name: str, *, tags: str | None = None, engine: str = "native"
) -> GraphReport:
    """One signature of a SavedModel in full (method, every input and output with dtype, shape
    and tensor name), as ``saved_model_cli show --signature_def`` prints it.

    >>> tfckpt.api.graphs.signature("saved_model_dir", "serving_default").data["inputs"]
    """
    from tfckpt.graph.summary import pick_meta_graph, signatures

    loaded = load_graph(path, engine=engine)
    _, meta, pick_note = pick_meta_graph(loaded, tags)
    found = signatures(meta) if meta is not None else {}
    if name not in found:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listed = ", ".join(sorted(found)) or "none"
        raise UsageError(f"{loaded.path}: no signature {name!r} (signatures: {listed}){hint}")
    data = {"path": loaded.path, "signature": name, **found[name]}
    return GraphReport(data, notes=list(loaded.notes) + ([pick_note] if pick_note else []))


def convert_graph(
    src: PathLike,
    dst: PathLike,
    *,
    type: str | None = None,
    elide_constants: bool = False,
    force: bool = False,
    dry_run: bool = False,
) -> Any:
    """Convert a GraphDef, MetaGraphDef, SavedModel or ``checkpoint`` state file between binary
    and text protobuf (direction from the extensions: .pb/.meta <-> .pbtxt/.txt). The output is
    parsed back and compared with the input before anything is written; ``dst="-"`` writes
    nothing and leaves the bytes in the returned plan's ``data``.

    >>> tfckpt.convert_graph("model.ckpt-1000.meta", "model.pbtxt").encoding
    'text'
    """
    from tfckpt.graph.convert import apply_conversion, plan_conversion
    from tfckpt.graph.load import parse_type_option

    dst = os.fspath(dst)
    plan = plan_conversion(os.fspath(src), dst, parse_type_option(type), elide_constants)
    if dst != "-" and not dry_run:
        apply_conversion(plan, force)
    return plan


__all__ = [
    "GraphReport",
    "check_graph",
    "convert_graph",
    "graph_dot",
    "graph_nodes",
    "graph_summary",
    "load_graph",
    "signature",
]
