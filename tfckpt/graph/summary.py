"""What a graph holds, as plain data: counts, inputs, outputs, variables, signatures; node
listings and Graphviz DOT. Pure functions over parsed messages; nothing here reads or prints.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from tfckpt.errors import GraphError
from tfckpt.graph.load import SAVEDMODEL, LoadedMessage

VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
SAVER_OPS = frozenset({"SaveV2", "RestoreV2", "Save", "Restore", "SaveSlices", "RestoreSlice"})
# Unconsumed nodes of these kinds are bookkeeping (initialisation, saving, summaries, asserts),
# not model outputs.
_MACHINERY_OPS = frozenset(
    {
        *SAVER_OPS,
        *PLACEHOLDER_OPS,
        "NoOp",
        "ReadVariableOp",
        "Const",
        "Assign",
        "AssignAdd",
        "AssignSub",
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "VarIsInitializedOp",
        "IsVariableInitialized",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "ShardedFilespec",
        "StringJoin",
        "Assert",
        "InitializeTable",
        "InitializeTableV2",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "LookupTableImportV2",
        "ScalarSummary",
        "HistogramSummary",
        "ImageSummary",
        "AudioSummary",
        "AudioSummaryV2",
        "TensorSummary",
        "TensorSummaryV2",
        "MergeSummary",
        "WriteSummary",
        "WriteScalarSummary",
        "FlushSummaryWriter",
    }
)
_MACHINERY_NAME_RE = re.compile(
    r"^(init(_\d+)?|init_all_tables|init_all_vars_op|group_deps(_\d+)?|legacy_init_op|main_op|"
    r"report_uninitialized_(variables|resources)(_\d+)?|ready_op|ready_for_local_init_op|"
    r"checkpoint_initializer(_\d+)?|save(_\d+)?|saver_filename)(/|$)"
    r"|/(Initializer|IsInitialized|Assign)(/|$)"
    r"|(^|/)gradients(_\d+)?/"
)


# ---- small shared helpers ---------------------------------------------------------------------
def node_of(ref: str) -> str:
    """``^a``, ``a:1``, ``a`` -> ``a``."""
    if ref.startswith("^"):
        ref = ref[1:]
    colon = ref.rfind(":")
    if colon > 0 and ref[colon + 1 :].isdigit():
        return ref[:colon]
    return ref


def dtype_name(enum: int) -> str:
    """TensorFlow's display name for a DataType number (``float32``, ``float32_ref``, ...)."""
    from tfckpt.dtypes import dtype_from_enum
    from tfckpt.errors import TfckptError

    ref = enum > 100
    base = enum - 100 if ref else enum
    if base == 0:
        return "invalid"
    try:
        name = dtype_from_enum(base).name
    except TfckptError:
        name = f"dtype_{base}"
    if base == 20:
        name = "resource"
    elif base == 21:
        name = "variant"
    return name + "_ref" if ref else name


def shape_list(shape: Any) -> list[int | None] | None:
    """A TensorShapeProto as a list (None for an unknown dimension), or None if rank unknown."""
    if shape.unknown_rank:
        return None
    return [None if d.size < 0 else int(d.size) for d in shape.dim]


def in_scope(name: str, scope: str | None) -> bool:
    if not scope:
        return True
    scope = scope.rstrip("/")
    return name == scope or name.startswith(scope + "/")


def select_nodes(
    graph_def: Any, scope: str | None = None, ops: Iterable[str] | None = None
) -> list[Any]:
    """Nodes in ``scope`` whose op matches one of ``ops`` (globs; all when None)."""
    patterns = list(ops or [])
    out = []
    for node in graph_def.node:
        if scope and not in_scope(node.name, scope):
            continue
        if patterns and not any(fnmatch.fnmatchcase(node.op, p) for p in patterns):
            continue
        out.append(node)
    return out


def _attr_shape(node: Any) -> list[int | None] | None:
    attr = node.attr
    if "shape" in attr and attr["shape"].HasField("shape"):
        return shape_list(attr["shape"].shape)
    if "_output_shapes" in attr and len(attr["_output_shapes"].list.shape):
        return shape_list(attr["_output_shapes"].list.shape[0])
    return None


def attr_dtype(node: Any, key: str = "dtype") -> str | None:
    """The display name of a node's DataType attribute ``key``, None without it."""
    if key in node.attr:
        return dtype_name(node.attr[key].type)
    return None


# A bare GraphDef's saver lives in scope ``save`` or ``save_N`` (matched from a node name's start;
# a first path segment matches it alone exactly when it is that scope).
DEFAULT_SAVER_SCOPE_RE = re.compile(r"^save(_\d+)?(/|$)")


def saver_scope(meta: Any | None) -> str | None:
    """The name scope of the MetaGraphDef's saver (``save`` from ``save/restore_all``)."""
    if meta is None or not meta.HasField("saver_def"):
        return None
    restore = node_of(meta.saver_def.restore_op_name)
    return restore.rsplit("/", 1)[0] if "/" in restore else None


def saver_nodes(meta: Any | None) -> set[str]:
    """Nodes the SaverDef names (TF2 savers are bare ``StatefulPartitionedCall_N`` nodes)."""
    if meta is None or not meta.HasField("saver_def"):
        return set()
    sd = meta.saver_def
    return {
        node_of(n) for n in (sd.filename_tensor_name, sd.save_tensor_name, sd.restore_op_name) if n
    }


def collection_sizes(meta: Any) -> dict[str, int]:
    sizes = {}
    for key in sorted(meta.collection_def):
        col = meta.collection_def[key]
        kind = col.WhichOneof("kind")
        sizes[key] = len(getattr(col, kind).value) if kind else 0
    return sizes


def _tensor_info(info: Any) -> dict[str, Any]:
    encoding = info.WhichOneof("encoding")
    dtype = dtype_name(info.dtype) if info.dtype else None  # ops (init op): no dtype
    record: dict[str, Any] = {"name": None, "dtype": dtype, "shape": None}
    if encoding == "name":
        record["name"] = info.name
    elif encoding == "coo_sparse":
        record["name"] = info.coo_sparse.values_tensor_name
        record["sparse"] = True
    elif encoding == "composite_tensor":
        record["composite"] = True
    if info.HasField("tensor_shape"):
        record["shape"] = shape_list(info.tensor_shape)
    return record


def signatures(meta: Any) -> dict[str, Any]:
    out = {}
    for key in sorted(meta.signature_def):
        sig = meta.signature_def[key]
        out[key] = {
            "method": sig.method_name,
            "inputs": {k: _tensor_info(sig.inputs[k]) for k in sorted(sig.inputs)},
            "outputs": {k: _tensor_info(sig.outputs[k]) for k in sorted(sig.outputs)},
        }
    return out


def saver_dict(meta: Any) -> dict[str, Any] | None:
    if not meta.HasField("saver_def"):
        return None
    sd = meta.saver_def
    return {
        "filename_tensor_name": sd.filename_tensor_name,
        "save_tensor_name": sd.save_tensor_name,
        "restore_op_name": sd.restore_op_name,
        "max_to_keep": sd.max_to_keep,
        "sharded": sd.sharded,
        "keep_checkpoint_every_n_hours": sd.keep_checkpoint_every_n_hours,
        "version": sd.CheckpointFormatVersion.Name(sd.version),
    }


def partition_info(meta: Any | None) -> dict[str, dict[str, Any]]:
    """Variable node name -> {full_name, full_shape, offset, shape} for partitioned variables
    (``save_slice_info_def`` of the VariableDefs in the variable collections)."""
    from tensorboard.compat.proto.variable_pb2 import VariableDef

    out: dict[str, dict[str, Any]] = {}
    if meta is None:
        return out
    for key, col in meta.collection_def.items():
        if col.WhichOneof("kind") != "bytes_list" or "variables" not in key:
            continue
        for raw in col.bytes_list.value:
            try:
                var = VariableDef.FromString(raw)
            except Exception:
                break  # not a VariableDef collection after all
            if not var.HasField("save_slice_info_def"):
                continue
            info = var.save_slice_info_def
            out[node_of(var.variable_name)] = {
                "full_name": info.full_name,
                "full_shape": [int(d) for d in info.full_shape],
                "offset": [int(d) for d in info.var_offset],
                "shape": [int(d) for d in info.var_shape],
            }
    return out


def variable_records(graph_def: Any, meta: Any | None, scope: str | None = None) -> list[dict]:
    parts = partition_info(meta)
    records = []
    for node in graph_def.node:
        if node.op not in VARIABLE_OPS or not in_scope(node.name, scope):
            continue
        record: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "dtype": attr_dtype(node),
            "shape": _attr_shape(node),
        }
        part = parts.get(node.name)
        if part is not None:
            record["partition_of"] = part["full_name"]
            record["full_shape"] = part["full_shape"]
        records.append(record)
    return records


def consumed(graph_def: Any) -> set[str]:
    seen: set[str] = set()
    for node in graph_def.node:
        for ref in node.input:
            seen.add(node_of(ref))
    return seen


def is_machinery(node: Any, skip: set[str]) -> bool:
    return (
        node.op in _MACHINERY_OPS
        or node.name in skip
        or _MACHINERY_NAME_RE.search(node.name) is not None
    )


def _functions(graph_def: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": f.signature.name,
            "nodes": len(f.node_def),
            "inputs": len(f.signature.input_arg),
            "outputs": len(f.signature.output_arg),
        }
        for f in sorted(graph_def.library.function, key=lambda f: f.signature.name)
    ]


def graph_summary(
    graph_def: Any, meta: Any | None = None, scope: str | None = None
) -> dict[str, Any]:
    """The summary of one graph (a GraphDef, or a MetaGraphDef's graph with its metadata)."""
    nodes = [n for n in graph_def.node if in_scope(n.name, scope)] if scope else graph_def.node
    ops = Counter(n.op for n in nodes)
    used = consumed(graph_def)
    skip = saver_nodes(meta)
    sscope = saver_scope(meta)
    inputs = [
        {
            "name": n.name,
            "op": n.op,
            "dtype": attr_dtype(n),
            "shape": _attr_shape(n),
        }
        for n in nodes
        if n.op in PLACEHOLDER_OPS
        and n.name not in skip
        and not (sscope and in_scope(n.name, sscope))
    ]
    outputs = [
        {"name": n.name, "op": n.op}
        for n in nodes
        if n.name not in used
        and not is_machinery(n, skip)
        and not (sscope and in_scope(n.name, sscope))
    ]
    versions = graph_def.versions
    summary: dict[str, Any] = {
        "producer": versions.producer if graph_def.HasField("versions") else None,
        "min_consumer": versions.min_consumer if graph_def.HasField("versions") else None,
        "nodes": len(nodes),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "inputs": inputs,
        "outputs": outputs,
        "variables": variable_records(graph_def, meta, scope),
        "functions": _functions(graph_def),
    }
    if meta is not None:
        info = meta.meta_info_def
        summary.update(
            {
                "tags": list(info.tags),
                "tensorflow_version": info.tensorflow_version or None,
                "tensorflow_git_version": info.tensorflow_git_version or None,
                "meta_graph_version": info.meta_graph_version or None,
                "stripped_default_attrs": info.stripped_default_attrs,
                "collections": collection_sizes(meta),
                "saver": saver_dict(meta),
                "signatures": signatures(meta),
                "object_graph_nodes": len(meta.object_graph_def.nodes),
                "assets": len(meta.asset_file_def),
            }
        )
    else:
        summary.update({"collections": {}, "saver": None, "signatures": {}})
    if scope:
        summary["scope"] = scope.rstrip("/")
    return summary


def summarize(
    loaded: LoadedMessage, scope: str | None = None, meta_graphs: Iterable[Any] | None = None
) -> dict[str, Any]:
    """The JSON-ready summary of a loaded graph file (SavedModels: one entry per meta graph,
    or per one of ``meta_graphs`` when given)."""
    head: dict[str, Any] = {"type": loaded.type, "path": loaded.path, "encoding": loaded.encoding}
    if loaded.type == SAVEDMODEL:
        from tfckpt import storage

        sm = loaded.message
        head["schema_version"] = sm.saved_model_schema_version
        if loaded.savedmodel_dir is not None:
            d = loaded.savedmodel_dir
            index = storage.join(d, "variables", "variables.index")
            head["has_variables"] = storage.isfile(index)
            head["has_fingerprint"] = storage.isfile(storage.join(d, "fingerprint.pb"))
        metas = sm.meta_graphs if meta_graphs is None else meta_graphs
        head["meta_graphs"] = [graph_summary(m.graph_def, m, scope) for m in metas]
        return head
    if loaded.type == "MetaGraphDef":
        return {**head, **graph_summary(loaded.message.graph_def, loaded.message, scope)}
    return {**head, **graph_summary(loaded.message, None, scope)}


# ---- picking one graph of a SavedModel --------------------------------------------------------
def pick_meta_graph(loaded: LoadedMessage, tags: str | None) -> tuple[Any, Any | None, str | None]:
    """``(graph_def, meta_graph_or_None, note)`` for commands that work on one graph.

    ``tags`` is a comma-separated tag set (``serve`` or ``serve,gpu``); without it a
    SavedModel's only meta graph is used, or the one tagged ``serve`` (else the first), with
    a note saying so.
    """
    from tfckpt.errors import UsageError

    metas = loaded.meta_graphs
    if not metas:
        if loaded.type == SAVEDMODEL:
            raise GraphError(f"{loaded.path}: the SavedModel holds no meta graph (no graph)")
        if tags is not None:
            raise UsageError("tags only apply to SavedModels")
        return loaded.message, None, None
    if tags is not None:
        wanted = {t for t in tags.split(",") if t}
        for meta in metas:
            if set(meta.meta_info_def.tags) == wanted:
                return meta.graph_def, meta, None
        available = "; ".join(",".join(m.meta_info_def.tags) or "(no tags)" for m in metas)
        raise UsageError(f"no meta graph with tags {tags!r} (available: {available})")
    if len(metas) == 1:
        return metas[0].graph_def, metas[0], None
    chosen = next((m for m in metas if list(m.meta_info_def.tags) == ["serve"]), metas[0])
    note = (
        f"{len(metas)} meta graphs; using the one tagged "
        f"{','.join(chosen.meta_info_def.tags) or '(no tags)'} (pick another by its tags)"
    )
    return chosen.graph_def, chosen, note


# ---- node listing -----------------------------------------------------------------------------
def node_records(nodes: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {"name": n.name, "op": n.op, "inputs": list(n.input), "device": n.device} for n in nodes
    ]


# ---- Graphviz DOT -----------------------------------------------------------------------------
def _q(text: str) -> str:
    """A DOT quoted string; newlines become DOT's ``\\n`` line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def _group(name: str, depth: int | None) -> str:
    if depth is None:
        return name
    parts = name.split("/")
    return "/".join(parts[:depth])


def to_dot(nodes: list[Any], depth: int | None = None, title: str = "graph") -> Iterator[str]:
    """Graphviz DOT lines; with ``depth`` nodes collapse into their first ``depth`` scopes."""
    names = {n.name for n in nodes}
    yield f"digraph {_q(title)} {{"
    yield "  rankdir=TB;"
    yield '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];'
    yield "  edge [color=gray40];"
    if depth is None:
        for n in nodes:
            yield f"  {_q(n.name)} [label={_q(n.name + chr(10) + n.op)}];"
        for n in nodes:
            for ref in n.input:
                src = node_of(ref)
                if src in names:
                    style = " [style=dashed]" if ref.startswith("^") else ""
                    yield f"  {_q(src)} -> {_q(n.name)}{style};"
    else:
        members: dict[str, list[Any]] = {}
        for n in nodes:
            members.setdefault(_group(n.name, depth), []).append(n)
        group_of = {n.name: _group(n.name, depth) for n in nodes}
        for group, group_nodes in members.items():
            if len(group_nodes) == 1 and group_nodes[0].name == group:
                label = group + "\n" + group_nodes[0].op
                yield f"  {_q(group)} [label={_q(label)}];"
            else:
                label = f"{group}/\n{len(group_nodes)} nodes"
                yield f"  {_q(group)} [label={_q(label)}, shape=box3d];"
        edges: Counter[tuple[str, str]] = Counter()
        for n in nodes:
            dst = group_of[n.name]
            for ref in n.input:
                src_node = node_of(ref)
                if src_node in group_of and group_of[src_node] != dst:
                    edges[(group_of[src_node], dst)] += 1
        for (src, dst), count in sorted(edges.items()):
            label = f" [label={_q(str(count))}]" if count > 1 else ""
            yield f"  {_q(src)} -> {_q(dst)}{label};"
    yield "}"
