"""``graph --check``: does a checkpoint hold what a graph restores?

What the graph needs, in order of preference:

1. TF2 SavedModels (a MetaGraphDef with an object graph): every variable object and optimizer
   slot, keyed as TF2 checkpoints key them: the object path from the root, found breadth-first
   through ``children`` (the first path to reach an object names it), local names escaped,
   then ``/.ATTRIBUTES/VARIABLE_VALUE`` (FORMAT.md section 9). Dtype and shape come from the
   SavedVariable.
2. TF1 graphs with a saver: the names in the saver's ``tensor_names`` constants (the inputs of
   its SaveV2/RestoreV2/Save/Restore/SaveSlices/RestoreSlice nodes, in the SaverDef's scope, or
   any ``save``/``save_N`` scope in a bare GraphDef). These are exactly the keys TF looks up,
   the source of "Key ... not found in checkpoint". Dtypes come from the op's ``dtypes``
   attribute, shapes from the variable of that name, or the full shape of a partitioned one.
3. Otherwise the variable nodes (VariableV2 / VarHandleOp), with ``.../part_N`` partitions
   (``save_slice_info`` in the variable collections) folded into one checkpoint name.

A name-based graph checked against an object-based (TF2) checkpoint matches through the
attributes' ``full_name`` (the TF1-style variable name), as ``tf.compat.v1.train.Saver`` does
when it restores from an object-based checkpoint.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY
from tfckpt.bundle.objgraph import escape_local_name, node_paths
from tfckpt.graph.summary import (
    DEFAULT_SAVER_SCOPE_RE,
    SAVER_OPS,
    VARIABLE_OPS,
    attr_dtype,
    dtype_name,
    in_scope,
    node_of,
    partition_info,
    saver_scope,
    shape_list,
)

ATTR_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Suggest per-name rules with --sub up to this many names; beyond, a --mapping file.
_MAX_SUB_NAMES = 25


@dataclass
class NeededVariable:
    key: str  # the checkpoint key the graph restores
    dtype: str | None
    shape: list[int | None] | None
    source: str  # node name or object path it comes from
    parts: int = 0  # partitions folded into this key

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.key, "dtype": self.dtype, "shape": self.shape}
        if self.key.endswith(ATTR_SUFFIX):
            d["path"] = self.source
        if self.parts:
            d["partitions"] = self.parts
        return d


@dataclass
class GraphNeeds:
    variables: list[NeededVariable]
    method: str  # "object graph" | "saver" | "variables"
    unsaved: list[str] = field(default_factory=list)  # variable nodes the saver leaves out


# ---- what the graph needs ---------------------------------------------------------------------
def object_graph_needs(object_graph: Any) -> list[NeededVariable]:
    """Checkpoint keys of the variables (and optimizer slots) of a SavedObjectGraph."""
    nodes = object_graph.nodes
    if not len(nodes):
        return []
    # node_paths lists parents before their children (breadth-first).
    paths: dict[int, str] = {}
    for node_id, path in node_paths(object_graph).items():
        if not path:
            paths[node_id] = ""
            continue
        parent, index = path[-1]
        base = paths[parent]
        local_name = escape_local_name(nodes[parent].children[index].local_name)
        paths[node_id] = (base + "/" if base else "") + local_name
    out: list[NeededVariable] = []
    for i, node in enumerate(nodes):
        if node.WhichOneof("kind") == "variable" and i in paths and i != 0:
            out.append(_object_variable(paths[i], node.variable, paths[i]))
        for slot in node.slot_variables:
            var_path = paths.get(slot.original_variable_node_id)
            if (
                var_path is None
                or i not in paths
                or not 0 <= slot.slot_variable_node_id < len(nodes)
            ):
                continue
            slot_path = f"{var_path}/.OPTIMIZER_SLOT/{paths[i]}/{escape_local_name(slot.slot_name)}"
            slot_node = nodes[slot.slot_variable_node_id]
            out.append(_object_variable(slot_path, slot_node.variable, slot_path))
    return out


def _object_variable(path: str, variable: Any, source: str) -> NeededVariable:
    return NeededVariable(
        key=path + ATTR_SUFFIX,
        dtype=dtype_name(variable.dtype) if variable.dtype else None,
        shape=shape_list(variable.shape) if variable.HasField("shape") else None,
        source=source,
    )


def _const_strings(node: Any) -> list[str] | None:
    if node.op != "Const" or "value" not in node.attr:
        return None
    return [s.decode("utf-8", "replace") for s in node.attr["value"].tensor.string_val]


def _full_shape(shape_and_slice: str) -> list[int | None] | None:
    """``"10 4 0,4:0,4"`` -> [10, 4]; "" -> None (not a slice: shape from elsewhere)."""
    parts = shape_and_slice.split()
    if len(parts) < 2:
        return None
    try:
        return [int(p) for p in parts[:-1]]
    except ValueError:
        return None


def saver_needs(
    graph_def: Any, meta: Any | None, parts: dict[str, dict[str, Any]] | None = None
) -> list[NeededVariable] | None:
    """The keys the graph's saver reads and writes, or None when it has no saver.

    ``parts`` is ``partition_info(meta)`` when the caller already has it."""
    scope = saver_scope(meta)
    by_name = {n.name: n for n in graph_def.node}
    names: dict[str, NeededVariable] = {}
    found = False
    if parts is None:
        parts = partition_info(meta)
    full_shapes = {p["full_name"]: p["full_shape"] for p in parts.values()}
    # Restore ops first: what loading reads wins over what saving writes.
    saver_ops = sorted(
        (n for n in graph_def.node if n.op in SAVER_OPS and len(n.input) >= 2),
        key=lambda n: not n.op.startswith("Restore"),
    )
    for node in saver_ops:
        top = node.name.split("/", 1)[0]
        if scope is not None:
            if not in_scope(node.name, scope):
                continue
        elif not DEFAULT_SAVER_SCOPE_RE.match(top):
            continue
        names_node = by_name.get(node_of(node.input[1]))
        keys = _const_strings(names_node) if names_node is not None else None
        if keys is None:
            continue
        found = True
        slices: list[str] = []
        if len(node.input) > 2 and node.op in ("SaveV2", "RestoreV2", "SaveSlices", "RestoreSlice"):
            slices_node = by_name.get(node_of(node.input[2]))
            slices = (_const_strings(slices_node) if slices_node is not None else None) or []
        dtypes = _op_dtypes(node)
        for j, key in enumerate(keys):
            var = by_name.get(key)
            shape = _full_shape(slices[j]) if j < len(slices) else None
            if shape is None and key in full_shapes:
                shape = list(full_shapes[key])
            if shape is None and var is not None and var.op in VARIABLE_OPS:
                shape = shape_list(var.attr["shape"].shape) if "shape" in var.attr else None
            dtype = dtypes[j] if j < len(dtypes) else None
            if key not in names or (names[key].dtype is None and dtype is not None):
                names[key] = NeededVariable(key, dtype, shape, key)
    return list(names.values()) if found else None


def _op_dtypes(node: Any) -> list[str]:
    for key in ("dtypes", "T"):
        if key in node.attr and len(node.attr[key].list.type):
            return [dtype_name(t) for t in node.attr[key].list.type]
    if "dt" in node.attr:
        return [dtype_name(node.attr["dt"].type)]
    return []


def variable_needs(
    graph_def: Any, meta: Any | None, parts: dict[str, dict[str, Any]] | None = None
) -> list[NeededVariable]:
    """Variable nodes, partitions folded into their full name.

    ``parts`` is ``partition_info(meta)`` when the caller already has it."""
    if parts is None:
        parts = partition_info(meta)
    by_key: dict[str, NeededVariable] = {}
    part_re = re.compile(r"^(.*)/part_\d+$")
    grouped: Counter[str] = Counter(
        m.group(1)
        for n in graph_def.node
        if n.op in VARIABLE_OPS and (m := part_re.match(n.name)) and n.name not in parts
    )
    for node in graph_def.node:
        if node.op not in VARIABLE_OPS:
            continue
        dtype = attr_dtype(node)
        part = parts.get(node.name)
        m = part_re.match(node.name)
        if part is not None:
            key, shape = part["full_name"], list(part["full_shape"])
        elif m and grouped[m.group(1)] > 1:
            key, shape = m.group(1), None  # partitioned, full shape unknown without collections
        else:
            key = node.name
            shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
        if key in by_key:
            by_key[key].parts += 1
        else:
            by_key[key] = NeededVariable(key, dtype, shape, node.name, 1 if key != node.name else 0)
    return list(by_key.values())


def graph_needs(graph_def: Any, meta: Any | None) -> GraphNeeds:
    if meta is not None and len(meta.object_graph_def.nodes):
        needs = GraphNeeds(object_graph_needs(meta.object_graph_def), "object graph")
    else:
        parts = partition_info(meta)
        saved = saver_needs(graph_def, meta, parts)
        if saved is not None:
            keys = {v.key for v in saved}
            unsaved = [v.key for v in variable_needs(graph_def, meta, parts) if v.key not in keys]
            needs = GraphNeeds(saved, "saver", sorted(unsaved))
        else:
            needs = GraphNeeds(variable_needs(graph_def, meta, parts), "variables")
    needs.variables.sort(key=lambda v: v.key)
    return needs


# ---- the checkpoint side ----------------------------------------------------------------------
def checkpoint_full_names(ckpt: Any) -> dict[str, str]:
    """TF2 checkpoints: full_name (TF1-style variable name) -> checkpoint key."""
    from tfckpt import protos

    try:
        raw = ckpt.read(OBJECT_GRAPH_KEY).reshape(-1)[0]
        graph = protos.TrackableObjectGraph.FromString(bytes(raw))
    except Exception:
        return {}
    out: dict[str, str] = {}
    for node in graph.nodes:
        for attr in node.attributes:
            if attr.name == "VARIABLE_VALUE" and attr.full_name:
                out.setdefault(attr.full_name, attr.checkpoint_key)
    return out


# ---- comparison -------------------------------------------------------------------------------
def _shapes_agree(a: list[int | None] | None, b: list[int]) -> bool:
    if a is None:
        return True
    return len(a) == len(b) and all(x is None or x == y for x, y in zip(a, b))


def _rename_command(src: str, prefix: str, args: list[str]) -> str:
    # Next to the source, so the destination directory exists.
    from tfckpt import storage

    dst = storage.join(storage.dirname(prefix), "renamed-" + storage.basename(prefix))
    return " ".join(["tfckpt", "rename", shlex.quote(src), shlex.quote(dst), *args])


def _apply_rule(name: str, old: str, new: str) -> str:
    return new + name[len(old) :] if name.startswith(old) else name


def _prefix_suggestion(
    missing: list[str], unused: list[str], matched: set[str], src: str, prefix: str
) -> dict[str, Any] | None:
    """A prefix swap (checkpoint ``old`` -> graph ``new``) that turns unused checkpoint names
    into missing graph names; None when no swap fixes anything."""
    if not missing or not unused:
        return None
    by_rest: dict[str, list[str]] = {}
    for u in unused:
        by_rest.setdefault(u, []).append("")
        for i, ch in enumerate(u):
            if ch == "/":
                by_rest.setdefault(u[i + 1 :], []).append(u[: i + 1])
    votes: Counter[tuple[str, str]] = Counter()
    for m in missing:
        seen = set()
        splits = [(m, "")] + [(m[i + 1 :], m[: i + 1]) for i, ch in enumerate(m) if ch == "/"]
        for rest, new in splits:
            for old in by_rest.get(rest, ()):
                if old != new and (old, new) not in seen:
                    seen.add((old, new))
                    votes[(old, new)] += 1
    if not votes:
        return None
    # Most names fixed; then the shortest prefixes (the rule closest to the root).
    (old, new), _ = min(votes.items(), key=lambda kv: (-kv[1], len(kv[0][0]) + len(kv[0][1])))
    missing_set = set(missing)
    fixed = {u: _apply_rule(u, old, new) for u in unused if u.startswith(old)}
    fixed = {u: g for u, g in fixed.items() if g in missing_set}
    # Names the blanket rule must leave alone: ones that already match, and unused ones it
    # would rename onto a matching name (a rename conflict).
    keep = {m for m in matched if m.startswith(old) and _apply_rule(m, old, new) != m}
    keep |= {u for u in unused if u.startswith(old) and _apply_rule(u, old, new) in matched}
    mapping_note = ""
    if keep:
        # Rename only the names it fixes, or everything but the ones to keep: the shorter.
        names, excluded = sorted(fixed), sorted(keep)
        head = "^" + re.escape(old)
        if len(names) <= min(len(excluded), _MAX_SUB_NAMES):
            rests = "|".join(re.escape(u[len(old) :]) for u in names)
            args = ["--sub", shlex.quote(f"{head}({rests})$"), shlex.quote(new + r"\1")]
        elif len(excluded) <= _MAX_SUB_NAMES:
            rests = "|".join(re.escape(u[len(old) :]) for u in excluded)
            args = ["--sub", shlex.quote(f"{head}(?!(?:{rests})$)"), shlex.quote(new)]
        else:
            args = ["--mapping", "MAPPING.json"]
            mapping_note = " (MAPPING.json: the suggestion's mapping in --json output)"
        rule = "sub"
    elif old == "":
        args, rule = ["--add-prefix", shlex.quote(new)], "add_prefix"
    elif new == "":
        args, rule = ["--strip-prefix", shlex.quote(old)], "strip_prefix"
    else:
        args = ["--sub", shlex.quote("^" + re.escape(old)), shlex.quote(new)]
        rule = "sub"
    if old and new:
        description = f"checkpoint prefix {old!r} is {new!r} in the graph"
    elif old:
        description = f"checkpoint names have an extra prefix {old!r}"
    else:
        description = f"graph names have an extra prefix {new!r}"
    description += mapping_note
    command: str | None = _rename_command(src, prefix, args)
    if any(k.endswith(ATTR_SUFFIX) for k in fixed) and old.count("/") != new.count("/"):
        # TF2 keys follow object attributes: `tfckpt rename` keeps their depth, so this is
        # fixed where the checkpoint is read, not by renaming it.
        command = None
        root = (old or new).rstrip("/")
        description += (
            f": the objects sit one level {'deeper' if old else 'higher'} in the checkpoint; "
            + (
                f"read it with tf.train.Checkpoint({root}=obj)"
                if old and "/" not in root
                else "restore from the object that holds them"
            )
        )
    return {
        "kind": rule,
        "from": old,
        "to": new,
        "description": description,
        "fixes": len(fixed),
        "of": len(missing),
        "command": command,
        "mapping": dict(sorted(fixed.items())),
    }


def check_against_checkpoint(
    needs: GraphNeeds, ckpt: Any, src: str, graph_path: str, scope: str | None = None
) -> dict[str, Any]:
    """Compare what the graph needs with what ``ckpt`` (an opened checkpoint) holds.

    With ``scope`` only the graph's variables in that name scope are checked; checkpoint
    entries count as unused only when no variable of the whole graph reads them.
    """
    tensors = ckpt.tensors()
    infos = {i.name: i for i in tensors if i.name != OBJECT_GRAPH_KEY}
    via_full_name = False
    everything = {v.key: v for v in needs.variables}
    needed = {k: v for k, v in everything.items() if in_scope(v.source, scope)}
    unsaved = [u for u in needs.unsaved if in_scope(u, scope)]
    lookup = {k: k for k in infos}
    object_based = any(i.name == OBJECT_GRAPH_KEY for i in tensors)
    if object_based and needs.method != "object graph":
        full_names = checkpoint_full_names(ckpt)
        if sum(k in full_names for k in needed) > sum(k in infos for k in needed):
            lookup = {name: key for name, key in full_names.items() if key in infos}
            via_full_name = True
    matched: list[str] = []
    missing: list[NeededVariable] = []
    mismatched: list[dict[str, Any]] = []
    used_keys: set[str] = set()
    for key in sorted(needed):
        var = needed[key]
        ckpt_key = lookup.get(key)
        if ckpt_key is None:
            missing.append(var)
            continue
        used_keys.add(ckpt_key)
        info = infos[ckpt_key]
        shape = list(info.shape)
        problems = []
        if var.dtype is not None and var.dtype.removesuffix("_ref") != info.dtype.name:
            problems.append("dtype")
        if not _shapes_agree(var.shape, shape):
            problems.append("shape")
        if problems:
            mismatched.append(
                {
                    "name": key,
                    "problems": problems,
                    "graph": {"dtype": var.dtype, "shape": var.shape},
                    "checkpoint": {"dtype": info.dtype.name, "shape": shape},
                }
            )
        else:
            matched.append(key)
    used_keys.update(lookup[k] for k in everything if k in lookup)
    unused = [infos[k] for k in sorted(infos) if k not in used_keys]
    # Suggestions speak in checkpoint names (what `tfckpt rename` renames); through full_name
    # the keys are not the names the graph uses, so no rename can be derived.
    suggestions = []
    if not via_full_name:
        prefix_fix = _prefix_suggestion(
            [m.key for m in missing], [u.name for u in unused], set(matched), src, ckpt.prefix
        )
        if prefix_fix is not None:
            suggestions.append(prefix_fix)
    close = _close_matches(missing, unused, suggestions)
    report: dict[str, Any] = {
        "graph": graph_path,
        "checkpoint": ckpt.prefix,
        "method": needs.method + (" via full_name" if via_full_name else ""),
        "needed": len(needed),
        "matched": len(matched),
        "missing": [m.to_dict() for m in missing],
        "mismatched": mismatched,
        "unused": [_info_dict(u) for u in unused],
        "unsaved": unsaved,
        "suggestions": suggestions,
        "close_matches": close,
        "ok": not missing and not mismatched,
    }
    return report


def _info_dict(info: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": info.name, "dtype": info.dtype.name, "shape": list(info.shape)}
    if getattr(info, "object_path", None):
        d["path"] = info.object_path
    return d


def _close_matches(
    missing: list[NeededVariable], unused: list[Any], suggestions: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Per-name near misses (spelling) for what the prefix rule does not explain."""
    explained = set()
    for s in suggestions:
        explained.update(s["mapping"].values())
    rest = [m for m in missing if m.key not in explained][:50]
    if not rest or not unused or len(rest) * len(unused) > 250_000:
        return []
    names = [u.name for u in unused]
    out = []
    for m in rest:
        best = difflib.get_close_matches(m.key, names, n=1, cutoff=0.75)
        if best:
            out.append({"missing": m.key, "candidate": best[0]})
    return out
