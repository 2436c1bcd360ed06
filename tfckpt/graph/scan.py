"""``scan``: what a model's graphs can do outside the process that loads them.

Loading a SavedModel runs its graph. The scan looks at every place an op can hide: the nodes
of every meta graph (not only ``serve``), every library function whether anything calls it or
not, and GraphDefs serialized into string constants that a graph-taking op (``DatasetFromGraph``)
runs. Each op is classified by ``op_policy.OPS`` (capability + reason); for ops that name a file
or URL the scanner traces that argument back to where it comes from (a constant, an input of
the graph, a file in the SavedModel's ``assets/``, the caller of a function) and decides:

- **the model's own saver** (save / restore / merge ops in exactly the shape TensorFlow
  generates: reached from the SaverDef, writing to the file name the loader passes in, plus
  TensorFlow's shard suffixes) is not reported; a look-alike (a constant path, a function only
  *named* like TF's traced saver, an op under ``save/`` the SaverDef does not reach) is a
  finding;
- a **reader of a file shipped in assets/** (a vocabulary table) is *info*; the same op reading
  an absolute or outside path is a finding; so is an asset whose name leaves ``assets/``;
- ops whose file argument comes from a function **nothing calls** are info; anything else the
  table denies is a finding, with where it runs (``at load``: reached from the init op, the
  saver's restore or a resource initialiser; ``when called``; ``never``).

Everything here is plain data: ``scan_message`` returns ``Finding`` records; the API
(``tfckpt.api.scan``) opens files and builds the report, ``render`` shows it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from tfckpt.graph.op_policy import OpRule, classify, url_capability
from tfckpt.graph.summary import DEFAULT_SAVER_SCOPE_RE, in_scope, node_of

# TensorFlow's savers join these suffixes to the caller's file name (sharded saves write to
# "<prefix>_temp/part-..." then merge; an s3:// prefix gets ".part").
SAVER_SUFFIX_RE = re.compile(r"^(\.part|_temp(_[0-9a-f]{32})?/part)$")
# The name TensorFlow gives the file-name tensor of a default saver scope: a Const "model" or a
# PlaceholderWithDefault the caller feeds.
_DEFAULT_SAVER_FILENAME = "model"
# How deep nested GraphDefs (a graph in a constant of a graph in a constant...) are followed.
MAX_NESTING = 4
# Bound on tracing one argument (steps through the graph), so a huge graph cannot stall a scan.
_TRACE_BUDGET = 4000
_MAX_DEPTH = 200
# Shown per constant value (JSON and tables); the values themselves can be megabytes.
_MAX_VALUE_CHARS = 300
_MAX_VALUES = 8

_PLACEHOLDERS = frozenset({"Placeholder", "PlaceholderV2"})
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall", "TPUPartitionedCall"})
_IF_OPS = frozenset({"If", "StatelessIf", "_If"})
_WHILE_OPS = frozenset({"While", "StatelessWhile", "_While"})
_CASE_OPS = frozenset({"Case", "StatelessCase"})
_READ_VARIABLE_OPS = frozenset({"ReadVariableOp"})
_ASSIGN_VARIABLE_OPS = frozenset({"AssignVariableOp"})
# Ops through which a string value (a file name) flows: op -> data inputs it comes from
# ("all", or positions; "out" = the input at the output's own position).
_PASS_THROUGH: dict[str, str | tuple[int, ...]] = {
    "Identity": (0,),
    "Snapshot": (0,),
    "StopGradient": (0,),
    "PreventGradient": (0,),
    "EnsureShape": (0,),
    "Reshape": (0,),
    "ExpandDims": (0,),
    "Squeeze": (0,),
    "StridedSlice": (0,),
    "Gather": (0,),
    "GatherV2": (0,),
    "Tile": (0,),
    "Fill": (1,),
    "IdentityN": "out",
    "StringJoin": "all",
    "Add": "all",
    "AddV2": "all",
    "Pack": "all",
    "ConcatV2": "concat2",
    "Concat": "concat1",
    "Select": (1, 2),
    "SelectV2": (1, 2),
    "ShardedFilename": (0,),
    "ShardedFilespec": (0,),
    "StaticRegexReplace": (0,),
    "RegexReplace": (0,),
}
# Graph-taking ops: op -> the input holding a serialized GraphDef.
GRAPH_INPUT_OPS = {"DatasetFromGraph": 0}
# Collections and signatures a loader runs when it loads a SavedModel.
_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "main_op", "table_initializer")
_INIT_SIGNATURE = "__saved_model_init_op"
_ASSET_COLLECTION = "saved_model_assets"
# Object-graph children TensorFlow calls while loading (resource creation / initialisation).
_LOAD_TIME_CHILDREN = ("_create_resource", "_initialize")

AT_LOAD = "at load"
WHEN_CALLED = "when called"
NEVER = "never"


# ---- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a file-name argument comes from.

    ``kind``: ``constant`` (``values``), ``attr`` (an attribute's ``values``), ``input`` (a
    placeholder or a function argument the caller supplies), ``asset`` (a file in assets/;
    ``escapes`` when its name leaves the directory), ``saver`` (the file name the loader passes
    to the model's saver), ``uncalled`` (an argument of a function nothing calls), ``variable``
    (a variable's value), ``computed`` (another op's output).
    """

    kind: str
    detail: str
    node: str | None = None
    function: str | None = None
    values: tuple[str, ...] = ()
    escapes: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "detail": self.detail}
        if self.node is not None:
            out["node"] = self.node
        if self.function is not None:
            out["function"] = self.function
        if self.kind in ("constant", "attr"):
            out["values"] = list(self.values)
        if self.kind == "asset":
            out["escapes"] = self.escapes
        return out

    def describe(self) -> str:
        if self.kind in ("constant", "attr"):
            shown = ", ".join(repr(v) for v in self.values[:3])
            more = f" (+{len(self.values) - 3} more)" if len(self.values) > 3 else ""
            what = "constant" if self.kind == "constant" else f"attribute {self.detail}"
            return f"{what} {shown}{more}" if self.values else f"{what} (empty)"
        if self.kind == "asset":
            return f"asset {self.detail!r}" + (" (outside assets/)" if self.escapes else "")
        return self.detail


@dataclass
class Finding:
    """One op the policy reports: a finding (``severity`` high/medium/low) or info."""

    op: str
    node: str
    function: str | None
    capability: str
    severity: str  # high | medium | low | info
    why: str
    file: str
    tags: list[str] | None  # the meta graph's tags; None for a bare GraphDef
    runs: str  # "at load" | "when called" | "never"
    sources: list[Source] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)  # the graph-taking nodes holding the graph

    @property
    def where(self) -> str:
        inner = f"function {self.function}" if self.function else "graph"
        if self.nested:
            inner += " in the GraphDef of " + " > ".join(self.nested)
        return inner

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "node": self.node,
            "function": self.function,
            "capability": self.capability,
            "severity": self.severity,
            "why": self.why,
            "file": self.file,
            "tags": self.tags,
            "runs": self.runs,
            "path_sources": [s.to_dict() for s in self.sources],
            "nested_in": list(self.nested),
        }


@dataclass(frozen=True)
class ScanOptions:
    """``deny`` / ``allow``: op-name globs that add findings / demote them to info;
    ``default``: apply the default table (``op_policy.OPS``); ``scope``: only top-level nodes in
    this name scope and the functions they call."""

    deny: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    default: bool = True
    scope: str | None = None

    def denied_by(self, op: str) -> str | None:
        return next((p for p in self.deny if fnmatch.fnmatchcase(op, p)), None)

    def allowed_by(self, op: str) -> str | None:
        return next((p for p in self.allow if fnmatch.fnmatchcase(op, p)), None)


@dataclass
class GraphStats:
    nodes: int = 0
    functions: int = 0
    nested_graphs: int = 0


# ---- small helpers -------------------------------------------------------------------------
def data_inputs(node: Any) -> list[str]:
    return [i for i in node.input if not i.startswith("^")]


def _text(value: bytes) -> str:
    text = value.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def const_strings(node: Any) -> list[bytes] | None:
    """The raw values of a string ``Const`` node (None when it is not one)."""
    tensor = node.attr["value"].tensor if "value" in node.attr else None
    if tensor is None or tensor.dtype != 7:  # DT_STRING
        return None
    return list(tensor.string_val)


# Defaults of the attributes the op table reads (TF2 strips default-valued attributes).
_ATTR_DEFAULTS: dict[str, list[str]] = {
    "descriptor_source": ["local://"],
    "output_stream": ["stderr"],
    "vocab_file": [""],
    "debug_ops_spec": [],
    "debug_urls": [],
}


def _attr_strings(node: Any, name: str) -> list[str] | None:
    if name not in node.attr:
        return _ATTR_DEFAULTS.get(name)
    attr = node.attr[name]
    kind = attr.WhichOneof("value")
    if kind == "s":
        return [_text(attr.s)]
    if kind == "list":
        return [_text(v) for v in attr.list.s]
    return None


def _asset_escapes(filename: str) -> bool:
    """An asset file name that does not stay inside assets/ (absolute, or with '..')."""
    if not filename or filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", filename):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", filename))


class _Scope:
    """The nodes of the top-level graph (``name`` None) or of one library function."""

    def __init__(self, name: str | None, nodes: Iterable[Any], fdef: Any = None) -> None:
        self.name = name
        self.nodes: dict[str, Any] = {}
        for node in nodes:
            self.nodes.setdefault(node.name, node)
        self.args: dict[str, int] = {}
        self.outputs: list[str] = []
        self.rets: dict[str, str] = {}
        if fdef is not None:
            self.args = {a.name: i for i, a in enumerate(fdef.signature.input_arg)}
            self.outputs = [a.name for a in fdef.signature.output_arg]
            self.rets = dict(fdef.ret)

    def ref(self, ref: str) -> tuple[str | None, str, int]:
        """``(arg_name or None, node_name, output_index)`` of a tensor reference."""
        if self.name is None:
            name, _, index = ref.partition(":")
            return None, name, int(index) if index.isdigit() else 0
        if ref in self.args:
            return ref, "", 0
        parts = ref.split(":")
        if len(parts) == 3 and parts[2].isdigit():
            return None, parts[0], int(parts[2])  # node:output_arg:index (see _out_index)
        return None, parts[0], 0

    def out_name(self, ref: str) -> str | None:
        parts = ref.split(":")
        return parts[1] if self.name is not None and len(parts) == 3 else None


# ---- one graph ------------------------------------------------------------------------------
class _Graph:
    """A GraphDef with its library, and what its MetaGraphDef says about savers, assets,
    init ops and the TF2 object graph."""

    def __init__(
        self,
        graph_def: Any,
        meta: Any | None,
        file: str,
        tags: list[str] | None,
        nested: list[str],
        runs_override: str | None = None,
    ) -> None:
        self.graph_def = graph_def
        self.meta = meta
        self.file = file
        self.tags = tags
        self.nested = nested
        self.runs_override = runs_override
        self.top = _Scope(None, graph_def.node)
        self.fns: dict[str, _Scope] = {}
        for fdef in graph_def.library.function:
            self.fns.setdefault(
                fdef.signature.name, _Scope(fdef.signature.name, fdef.node_def, fdef)
            )
        self.callers: dict[str, list[tuple[_Scope, Any, str]]] = {}
        for scope in (self.top, *self.fns.values()):
            for node in scope.nodes.values():
                for fname, key in _called(node, self.fns):
                    self.callers.setdefault(fname, []).append((scope, node, key))
        self.gradients: dict[str, list[str]] = {}  # function -> its gradient functions
        for grad in graph_def.library.gradient:
            self.gradients.setdefault(grad.function_name, []).append(grad.gradient_func)
        self._meta_facts(meta)

    # -- MetaGraphDef facts --
    def _meta_facts(self, meta: Any | None) -> None:
        self.saver_filename: set[str] = set()
        self.saver_roots: list[str] = []
        self.saver_restore: list[str] = []
        self.assets: dict[str, str] = {}  # tensor node -> asset file name
        self.asset_by_index: list[str] = []
        self.init_roots: list[str] = []
        self.signature_nodes: list[str] = []
        self.bound: dict[str, list[int]] = {}  # concrete function -> captured object ids
        self.concrete: set[str] = set()  # functions a TF2 loader exposes
        self.object_kinds: dict[int, tuple[str, Any]] = {}
        self.load_functions: set[str] = set()
        if meta is None:
            return
        if meta.HasField("saver_def"):
            sd = meta.saver_def
            if sd.filename_tensor_name:
                self.saver_filename.add(node_of(sd.filename_tensor_name))
            self.saver_roots = [node_of(n) for n in (sd.save_tensor_name, sd.restore_op_name) if n]
            self.saver_restore = [node_of(sd.restore_op_name)] if sd.restore_op_name else []
        for asset in meta.asset_file_def:
            self._add_asset(asset)
        if _ASSET_COLLECTION in meta.collection_def:
            from tfckpt.protos import AssetFileDef

            for packed in meta.collection_def[_ASSET_COLLECTION].any_list.value:
                if not packed.type_url.endswith(".AssetFileDef"):
                    continue
                asset = AssetFileDef()
                try:  # tensorboard's copy of the message has another full name: no Unpack
                    asset.ParseFromString(packed.value)
                except Exception:
                    continue
                self._add_asset(asset, indexed=False)
        for key in _INIT_COLLECTIONS:
            if key in meta.collection_def:
                self.init_roots += [node_of(v) for v in meta.collection_def[key].node_list.value]
        for key, sig in meta.signature_def.items():
            infos = list(sig.inputs.values()) + list(sig.outputs.values())
            names = [node_of(i.name) for i in infos if i.WhichOneof("encoding") == "name"]
            if key == _INIT_SIGNATURE:
                self.init_roots += names
            else:
                self.signature_nodes += names
        if meta.HasField("object_graph_def"):
            self._object_graph(meta.object_graph_def)

    def _add_asset(self, asset: Any, indexed: bool = True) -> None:
        if indexed:
            self.asset_by_index.append(asset.filename)
        if asset.tensor_info.name:
            self.assets[node_of(asset.tensor_info.name)] = asset.filename

    def _object_graph(self, og: Any) -> None:
        for name, fn in og.concrete_functions.items():
            self.concrete.add(name)
            self.bound[name] = list(fn.bound_inputs)
        for i, obj in enumerate(og.nodes):
            kind = obj.WhichOneof("kind")
            self.object_kinds[i] = (kind or "", getattr(obj, kind) if kind else None)
        for obj in og.nodes:
            for child in obj.children:
                if child.local_name not in _LOAD_TIME_CHILDREN:
                    continue
                if not 0 <= child.node_id < len(og.nodes):
                    continue
                target = og.nodes[child.node_id]
                kind = target.WhichOneof("kind")
                if kind == "function":
                    self.load_functions.update(target.function.concrete_functions)
                elif kind == "bare_concrete_function":
                    self.load_functions.add(target.bare_concrete_function.concrete_function_name)

    def object_source(self, object_id: int, arg: str, fname: str) -> Source:
        kind, value = self.object_kinds.get(object_id, ("", None))
        if kind == "asset" and value is not None:
            index = value.asset_file_def_index
            if 0 <= index < len(self.asset_by_index):
                filename = self.asset_by_index[index]
                return Source("asset", filename, None, fname, escapes=_asset_escapes(filename))
            return Source("computed", f"asset #{index}, which the SavedModel does not list")
        if kind == "variable":
            return Source("variable", f"a variable captured by {fname}", None, fname)
        if kind == "constant":
            return Source("computed", f"a constant captured by {fname} (argument {arg})")
        return Source("computed", f"a {kind or 'captured'} object captured by {fname}")

    @property
    def is_savedmodel_graph(self) -> bool:
        return bool(self.signature_nodes or self.init_roots)


def _called(node: Any, functions: dict[str, _Scope]) -> Iterator[tuple[str, str]]:
    """``(function, attr key)`` for each function a node calls or names ("" = a direct call)."""
    if node.op in functions:
        yield node.op, ""
    for key, attr in node.attr.items():
        kind = attr.WhichOneof("value")
        if kind == "func":
            yield attr.func.name, key
        elif kind == "list":
            for f in attr.list.func:
                yield f.name, key


def _closure(scope: _Scope, roots: Iterable[str]) -> set[str]:
    """Top-level nodes the roots depend on (data and control inputs), roots included."""
    seen: set[str] = set()
    stack = [r for r in roots if r in scope.nodes]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for ref in scope.nodes[name].input:
            parent = node_of(ref.lstrip("^"))
            if parent in scope.nodes and parent not in seen:
                stack.append(parent)
    return seen


def _functions_from(graph: _Graph, nodes: Iterable[Any], extra: Iterable[str] = ()) -> set[str]:
    """Functions the nodes (and the functions in ``extra``) call, transitively."""
    seen: set[str] = set()
    stack = [f for node in nodes for f, _ in _called(node, graph.fns)] + list(extra)
    while stack:
        name = stack.pop()
        if name in seen or name not in graph.fns:
            continue
        seen.add(name)
        for node in graph.fns[name].nodes.values():
            stack.extend(f for f, _ in _called(node, graph.fns))
        stack.extend(graph.gradients.get(name, ()))  # a gradient runs when its function does
    return seen


# ---- argument provenance --------------------------------------------------------------------
class _Tracer:
    """Traces a tensor back to where its value comes from (``Source`` records)."""

    def __init__(self, graph: _Graph) -> None:
        self.g = graph
        self._arg_memo: dict[tuple[str, int], list[Source]] = {}
        self._active: set[tuple[Any, ...]] = set()
        self._budget = _TRACE_BUDGET

    def sources(self, scope: _Scope, ref: str) -> list[Source]:
        self._budget = _TRACE_BUDGET
        return _dedup(self._trace(scope, ref, (), 0))

    def _trace(
        self, scope: _Scope, ref: str, stack: tuple[tuple[_Scope, Any, int], ...], depth: int
    ) -> list[Source]:
        if depth > _MAX_DEPTH or self._budget <= 0:
            return [Source("computed", "not traced further (too deep)", function=scope.name)]
        self._budget -= 1
        key = (scope.name, ref, tuple((s.name, n.name) for s, n, _ in stack))
        if key in self._active:
            return []  # a cycle (a loop variable): adds nothing new
        self._active.add(key)
        try:
            return self._trace_node(scope, ref, stack, depth)
        finally:
            self._active.discard(key)

    def _trace_node(
        self, scope: _Scope, ref: str, stack: tuple[tuple[_Scope, Any, int], ...], depth: int
    ) -> list[Source]:
        arg, name, index = scope.ref(ref)
        if arg is not None:
            return self._arg(scope, scope.args[arg], stack, depth)
        node = scope.nodes.get(name)
        fname = scope.name
        if node is None:
            return [Source("computed", f"node {name!r}, which is missing", name, fname)]
        if fname is None and name in self.g.saver_filename:
            return [Source("saver", "the file name the loader passes to the saver", name)]
        if fname is None and name in self.g.assets:
            filename = self.g.assets[name]
            return [Source("asset", filename, name, escapes=_asset_escapes(filename))]
        op = node.op
        inputs = data_inputs(node)
        if op == "Const":
            raw = const_strings(node)
            if raw is None:
                return [Source("computed", f"a non-string constant {name!r}", name, fname)]
            values = tuple(_text(v) for v in raw[:_MAX_VALUES])
            return [Source("constant", name, name, fname, values)]
        if op in _PLACEHOLDERS:
            return [Source("input", f"input {name!r} (fed by the caller)", name, fname)]
        if op == "PlaceholderWithDefault":
            out = [Source("input", f"input {name!r} (fed by the caller)", name, fname)]
            return out + self._follow(scope, inputs[:1], stack, depth)
        if op == "StringFormat":  # a template attribute with values formatted into it
            template = (_attr_strings(node, "template") or [""])[0]
            out = [Source("constant", f"{name} (format template)", name, fname, (template,))]
            if inputs:
                out.append(Source("computed", f"values formatted by {name!r}", name, fname))
            return out
        if op in _PASS_THROUGH:
            return self._follow(scope, _through(op, inputs, index), stack, depth)
        if op in _READ_VARIABLE_OPS and inputs:
            return self._variable(scope, inputs[0], stack, depth)
        if op in _CALL_OPS or op in self.g.fns:
            callee = op if op in self.g.fns else _func_attr(node, "f")
            return self._into(scope, node, callee, index, ref, 0, stack, depth)
        if op in _IF_OPS:
            out = []
            for key in ("then_branch", "else_branch"):
                out += self._into(scope, node, _func_attr(node, key), index, ref, 1, stack, depth)
            return out
        if op in _CASE_OPS:
            out = []
            for branch in node.attr["branches"].list.func if "branches" in node.attr else []:
                out += self._into(scope, node, branch.name, index, ref, 1, stack, depth)
            return out
        if op in _WHILE_OPS:
            out = self._follow(scope, inputs[index : index + 1], stack, depth)
            body = _func_attr(node, "body")
            return out + self._into(scope, node, body, index, ref, 0, stack, depth)
        return [Source("computed", f"the output of {op} {name!r}", name, fname)]

    def _follow(
        self, scope: _Scope, refs: list[str], stack: tuple[Any, ...], depth: int
    ) -> list[Source]:
        out: list[Source] = []
        for ref in refs:
            out += self._trace(scope, ref, stack, depth + 1)
        return out

    def _into(
        self,
        scope: _Scope,
        node: Any,
        callee: str | None,
        index: int,
        ref: str,
        offset: int,
        stack: tuple[Any, ...],
        depth: int,
    ) -> list[Source]:
        """The value a call returns: the callee's output, its arguments bound to this call."""
        fn = self.g.fns.get(callee or "")
        if fn is None:
            return [Source("computed", f"the output of {node.op} {node.name!r}", node.name)]
        out_name = scope.out_name(ref)
        if out_name is not None and out_name in fn.outputs and node.op in self.g.fns:
            index = fn.outputs.index(out_name) + index  # a direct call names its outputs
        if not 0 <= index < len(fn.outputs):
            return [Source("computed", f"output {index} of {callee}", node.name)]
        inner = fn.rets.get(fn.outputs[index])
        if inner is None:
            return [Source("computed", f"output {index} of {callee}", node.name)]
        return self._trace(fn, inner, (*stack, (scope, node, offset)), depth + 1)

    def _arg(self, scope: _Scope, index: int, stack: tuple[Any, ...], depth: int) -> list[Source]:
        if stack:  # the call this function was entered through
            caller, node, offset = stack[-1]
            inputs = data_inputs(node)
            position = index + offset
            if position < len(inputs):
                return self._trace(caller, inputs[position], stack[:-1], depth + 1)
            return [Source("computed", f"argument {index} of {scope.name}", None, scope.name)]
        assert scope.name is not None
        memo_key = (scope.name, index)
        if memo_key in self._arg_memo:
            return self._arg_memo[memo_key]
        self._arg_memo[memo_key] = []  # a recursive call sees no sources yet
        out = self._arg_sources(scope, index, depth)
        self._arg_memo[memo_key] = out
        return out

    def _arg_sources(self, scope: _Scope, index: int, depth: int) -> list[Source]:
        name = scope.name or ""
        arg = next((a for a, i in scope.args.items() if i == index), str(index))
        out: list[Source] = []
        bound = self.g.bound.get(name)
        n_args = len(scope.args)
        captured = bound is not None and index >= n_args - len(bound)
        if bound is not None and captured:
            out.append(self.g.object_source(bound[index - (n_args - len(bound))], arg, name))
        elif name in self.g.concrete:
            out.append(
                Source(
                    "input",
                    f"argument {arg!r} of {name}, callable after tf.saved_model.load",
                    None,
                    name,
                )
            )
        for caller, node, key in self.g.callers.get(name, []):
            out += self._from_caller(scope, index, arg, caller, node, key, depth)
        if not out:
            detail = f"argument {arg!r} of {name}, which nothing calls"
            out.append(Source("uncalled", detail, None, name))
        return out

    def _from_caller(
        self, scope: _Scope, index: int, arg: str, caller: _Scope, node: Any, key: str, depth: int
    ) -> list[Source]:
        inputs = data_inputs(node)
        op = node.op
        position: int | None = None
        extra: list[Source] = []
        branch = (op in _IF_OPS and key in ("then_branch", "else_branch")) or (
            op in _CASE_OPS and key == "branches"
        )
        if key == "" or (op in _CALL_OPS and key == "f") or (op == "SymbolicGradient"):
            position = index
        elif branch:  # input 0 picks the branch
            position = index + 1
        elif op in _WHILE_OPS and key in ("cond", "body"):
            position = index
            if key == "body" and index < len(scope.outputs):  # the previous iteration
                ret = scope.rets.get(scope.outputs[index])
                if ret is not None:
                    extra = self._trace(scope, ret, (), depth + 1)
        elif op == "RemoteCall" and key == "f":
            position = index + 1
        if position is None or position >= len(inputs):
            where = f"{op} {node.name!r}" + (f" in {caller.name}" if caller.name else "")
            return [Source("computed", f"argument {arg!r} passed by {where}", node.name)]
        return self._trace(caller, inputs[position], (), depth + 1) + extra

    def _variable(
        self, scope: _Scope, handle_ref: str, stack: tuple[Any, ...], depth: int
    ) -> list[Source]:
        """A variable's value: what the graph assigns to it (the asset path of a TF2 graph
        lives in a variable initialised from the asset placeholder)."""
        handle = self._root_node(scope, handle_ref)
        if handle is None:
            return [Source("variable", "a variable's value", None, scope.name)]
        out: list[Source] = []
        for node in scope.nodes.values():
            inputs = data_inputs(node)
            if node.op in _ASSIGN_VARIABLE_OPS and len(inputs) > 1:
                target = self._root_node(scope, inputs[0])
                if target is not None and target.name == handle.name:
                    out += self._trace(scope, inputs[1], stack, depth + 1)
        return out or [Source("variable", f"variable {handle.name!r}", handle.name, scope.name)]

    def _root_node(self, scope: _Scope, ref: str) -> Any | None:
        for _ in range(64):
            arg, name, _i = scope.ref(ref)
            node = scope.nodes.get(name) if arg is None else None
            if node is None:
                return None
            if node.op not in ("Identity", "Snapshot") or not data_inputs(node):
                return node
            ref = data_inputs(node)[0]
        return None


def _through(op: str, inputs: list[str], index: int) -> list[str]:
    how = _PASS_THROUGH[op]
    if how == "all":
        return inputs
    if how == "out":
        return inputs[index : index + 1]
    if how == "concat2":  # ConcatV2: values..., axis
        return inputs[:-1]
    if how == "concat1":  # Concat: axis, values...
        return inputs[1:]
    assert isinstance(how, tuple)
    return [inputs[i] for i in how if i < len(inputs)]


def _func_attr(node: Any, key: str) -> str | None:
    if key in node.attr and node.attr[key].WhichOneof("value") == "func":
        return str(node.attr[key].func.name)
    return None


def _dedup(sources: list[Source]) -> list[Source]:
    """One source per distinct origin (the same asset reached through the graph and through
    the object graph is one)."""
    seen: dict[tuple[Any, ...], Source] = {}
    for s in sources:
        seen.setdefault((s.kind, s.detail, s.values, s.escapes), s)
    return list(seen.values())


# ---- the scan -------------------------------------------------------------------------------
class _Scanner:
    def __init__(self, graph: _Graph, options: ScanOptions, depth: int = 0) -> None:
        self.g = graph
        self.options = options
        self.depth = depth
        self.tracer = _Tracer(graph)
        self.findings: list[Finding] = []
        self.info: list[Finding] = []
        self.stats = GraphStats()
        self._plan()

    def _plan(self) -> None:
        g = self.g
        top = list(g.top.nodes.values())
        scope = self.options.scope
        self.top_nodes = [n for n in top if in_scope(n.name, scope)]
        self.saver_closure = _closure(g.top, g.saver_roots)
        saver_nodes = [g.top.nodes[n] for n in self.saver_closure]
        other_nodes = [n for n in top if n.name not in self.saver_closure]
        from_saver = _functions_from(g, saver_nodes)
        entry = set(g.concrete) | set(g.load_functions)
        self.reachable = _functions_from(g, top, entry)
        from_others = _functions_from(g, other_nodes, entry)
        self.saver_functions = from_saver - from_others
        load_nodes = _closure(g.top, [*g.init_roots, *g.saver_restore])
        self.load_nodes = load_nodes
        self.load_functions = _functions_from(
            g, [g.top.nodes[n] for n in load_nodes], g.load_functions
        )
        self.live = _closure(g.top, [*g.signature_nodes, *g.init_roots, *g.saver_roots])
        if scope:
            self.functions = sorted(_functions_from(g, self.top_nodes))
        else:
            self.functions = sorted(g.fns)  # every function, called or not

    def run(self) -> None:
        self.stats.nodes = len(self.top_nodes)
        self.stats.functions = len(self.functions)
        for node in self.top_nodes:
            self._check(self.g.top, node)
        for name in self.functions:
            fn = self.g.fns[name]
            self.stats.nodes += len(fn.nodes)
            for node in fn.nodes.values():
                self._check(fn, node)

    def _runs(self, scope: _Scope, node: Any) -> str:
        if self.g.runs_override is not None:
            return self.g.runs_override
        if scope.name is None:
            return AT_LOAD if node.name in self.load_nodes else WHEN_CALLED
        if scope.name in self.load_functions:
            return AT_LOAD
        return WHEN_CALLED if scope.name in self.reachable else NEVER

    def _record(
        self,
        scope: _Scope,
        node: Any,
        capability: str,
        severity: str,
        why: str,
        sources: list[Source],
    ) -> Finding:
        finding = Finding(
            op=node.op,
            node=node.name,
            function=scope.name,
            capability=capability,
            severity=severity,
            why=why,
            file=self.g.file,
            tags=self.g.tags,
            runs=self._runs(scope, node),
            sources=sources,
            nested=list(self.g.nested),
        )
        (self.info if severity == "info" else self.findings).append(finding)
        return finding

    def _sources(self, scope: _Scope, node: Any, rule: OpRule) -> list[Source]:
        out: list[Source] = []
        inputs = data_inputs(node)
        for where in rule.path:
            if isinstance(where, int):
                if where < len(inputs):
                    out += self.tracer.sources(scope, inputs[where])
            else:
                values = _attr_strings(node, where)
                if values is not None:
                    out.append(Source("attr", where, node.name, scope.name, tuple(values)))
        return _dedup(out)

    def _check(self, scope: _Scope, node: Any) -> None:
        op = node.op
        options = self.options
        table = classify(op)
        denied_by = options.denied_by(op)
        in_default = options.default and table is not None and table.reported
        if not in_default and denied_by is None:
            return
        rule = table if table is not None else OpRule("denied", "an op the deny list names")
        sources = self._sources(scope, node, rule)
        if rule.capability == "checkpoint" and self._is_saver(scope, node, sources):
            return  # the model's own saver, in TensorFlow's shape
        capability, severity, why = rule.capability, rule.severity, rule.reason
        verdict: str | None = None  # None: a finding; else the reason it is only info
        if op in GRAPH_INPUT_OPS:
            verdict = self._nested(scope, node, sources)
            sources = [_graph_source(s) for s in sources]
        elif rule.benign is not None and _all_match(sources, rule.benign):
            if denied_by is None:
                return  # e.g. decode_proto with the built-in descriptor pool
        elif rule.urls:
            values = [v for s in sources if s.kind in ("attr", "constant") for v in s.values]
            caps = {url_capability(v, rule.capability) for v in values}
            for cap in ("file-write", "network"):
                if cap in caps:
                    capability, severity = cap, "high"
                    break
        if verdict is None and rule.capability == "checkpoint":
            verdict = self._default_saver(scope, node, sources)
        if verdict is None and _only(sources, "uncalled", rule.capability == "checkpoint"):
            verdict = "its file name would come from the caller of a function nothing calls"
        if (
            verdict is None
            and capability == "file-read"
            and _only(sources, "asset")
            and not any(s.escapes for s in sources)
        ):
            verdict = "reads a file shipped in the SavedModel's assets/"
        if denied_by is not None:  # named by the user: a finding, whatever made it info
            verdict = None
            why = f"{why} (the deny list names {denied_by!r})"
            if not rule.reported:
                capability, severity = "denied", "high"
        allowed_by = options.allowed_by(op)
        if allowed_by is not None:
            verdict = verdict or f"allowed by the policy ({allowed_by!r}): {why}"
        if verdict is not None:
            why = verdict if verdict.startswith("allowed by") else f"{verdict}; {why}"
            severity = "info"
        self._record(scope, node, capability, severity, why, sources)

    # -- savers --
    def _is_saver(self, scope: _Scope, node: Any, sources: list[Source]) -> bool:
        """Exactly TensorFlow's saver: reached from the SaverDef, writing to the loader's file
        name (plus TF's shard suffixes) and nothing else."""
        if not sources or not any(s.kind == "saver" for s in sources):
            return False
        for s in sources:
            if s.kind == "saver":
                continue
            if _is_suffix(s):
                continue
            return False
        if scope.name is None:
            return node.name in self.saver_closure
        return scope.name in self.saver_functions

    def _default_saver(self, scope: _Scope, node: Any, sources: list[Source]) -> str | None:
        """A saver TensorFlow built in a default scope (``save``, ``save_1``) that the
        SaverDef does not name: the graph's own saver in a GraphDef or training .meta, a
        leftover nothing runs in a SavedModel. None when it is anything else."""
        if scope.name is not None or self.g.nested:
            return None
        match = DEFAULT_SAVER_SCOPE_RE.match(node.name)
        if not match or not sources:
            return None
        prefix = node.name.split("/", 1)[0] + "/"
        roots = 0
        for s in sources:
            if _is_suffix(s):
                continue
            in_saver = s.node is not None and s.node.startswith(prefix)
            default_name = s.kind == "constant" and s.values == (_DEFAULT_SAVER_FILENAME,)
            if not (in_saver and (s.kind == "input" or default_name)):
                return None
            roots += 1
        if not roots:
            return None
        if self.g.is_savedmodel_graph and node.name in self.live:
            return None  # a signature or the init op reaches it: not a leftover
        if self.g.saver_roots:
            return f"a second saver ({prefix[:-1]}/) the SaverDef does not name; nothing runs it"
        return f"the graph's saver ({prefix[:-1]}/), writing where the caller's feed says"

    # -- graphs given as data --
    def _nested(self, scope: _Scope, node: Any, sources: list[Source]) -> str | None:
        """Scan the GraphDefs a graph-taking op runs; None when one cannot be scanned (then
        the op itself is the finding)."""
        from tfckpt import protos

        if not sources or any(s.kind != "constant" or s.node is None for s in sources):
            return None
        if self.depth >= MAX_NESTING:
            return None
        scanned = 0
        for s in sources:
            holder = (self.g.fns[s.function] if s.function else self.g.top).nodes.get(s.node or "")
            raw = const_strings(holder) if holder is not None else None
            if not raw:
                return None
            for i, data in enumerate(raw):
                try:
                    graph_def = protos.GraphDef.FromString(data)
                except Exception:
                    return None
                if not (len(graph_def.node) or len(graph_def.library.function)):
                    return None
                label = f"{node.op} {node.name!r}" + (f" in {scope.name}" if scope.name else "")
                label += f" (constant {s.node!r}" + (f"[{i}]" if len(raw) > 1 else "") + ")"
                nested = _Graph(
                    graph_def,
                    None,
                    self.g.file,
                    self.g.tags,
                    [*self.g.nested, label],
                    self._runs(scope, node),
                )
                inner = _Scanner(nested, replace(self.options, scope=None), self.depth + 1)
                inner.run()
                self.findings += inner.findings
                self.info += inner.info
                self.stats.nodes += inner.stats.nodes
                self.stats.functions += inner.stats.functions
                self.stats.nested_graphs += 1 + inner.stats.nested_graphs
                scanned += 1
        return f"runs the GraphDef in a constant, scanned ({scanned} graph(s))" if scanned else None


def _graph_source(source: Source) -> Source:
    """A constant holding a serialized GraphDef, shown by size rather than as bytes."""
    if source.kind != "constant":
        return source
    return replace(source, values=("<a serialized GraphDef>",))


def _is_suffix(source: Source) -> bool:
    return (
        source.kind == "constant"
        and bool(source.values)
        and all(SAVER_SUFFIX_RE.match(v) for v in source.values)
    )


def _only(sources: list[Source], kind: str, suffixes: bool = False) -> bool:
    """Every source is of ``kind`` (TensorFlow's saver suffixes aside when ``suffixes``)."""
    rest = [s for s in sources if not (suffixes and _is_suffix(s))]
    return bool(rest) and all(s.kind == kind for s in rest)


def _all_match(sources: list[Source], pattern: str) -> bool:
    regex = re.compile(pattern)
    values = [v for s in sources for v in s.values]
    kinds_ok = all(s.kind in ("attr", "constant") for s in sources)
    return bool(sources) and kinds_ok and all(regex.search(v) for v in values)


def scan_graph(
    graph_def: Any,
    meta: Any | None,
    file: str,
    tags: list[str] | None,
    options: ScanOptions,
) -> tuple[list[Finding], list[Finding], GraphStats]:
    """Findings and info of one GraphDef (with its MetaGraphDef, if any)."""
    scanner = _Scanner(_Graph(graph_def, meta, file, tags, []), options)
    scanner.run()
    return scanner.findings, scanner.info, scanner.stats


__all__ = [
    "AT_LOAD",
    "GRAPH_INPUT_OPS",
    "NEVER",
    "WHEN_CALLED",
    "Finding",
    "GraphStats",
    "ScanOptions",
    "Source",
    "scan_graph",
]
