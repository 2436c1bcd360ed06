"""TF2 object graphs (``_CHECKPOINTABLE_OBJECT_GRAPH``): keys from paths, and consistent edits.

TensorFlow restores TF2 checkpoints by walking ``local_name`` edges from the root object and
reading each attribute's ``checkpoint_key``; the key text itself is derived from the first
(breadth-first) path to the object, FORMAT.md §9. A rename therefore has to change edges, keys
and bundle entries together, and a prune has to drop attributes and slot references with the
entries. Every edit is validated by recomputing all keys from the edited graph.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import CorruptCheckpoint, GraphMergeError, RenameConflict
from tfckpt.names import OBJECT_GRAPH_KEY, OPTIMIZER_SLOT, unescape_local_name

ATTRIBUTES = ".ATTRIBUTES"


def escape_local_name(name: str) -> str:
    return name.replace(".", "..").replace("/", ".S")


def parse(raw: bytes) -> Any:
    """A TrackableObjectGraph; CorruptCheckpoint when the bytes are not one."""
    from google.protobuf.message import DecodeError

    from tfckpt import protos  # imported on use: listing a checkpoint never needs it

    try:
        return protos.TrackableObjectGraph.FromString(raw)
    except (DecodeError, RecursionError):
        raise CorruptCheckpoint(f"unreadable {OBJECT_GRAPH_KEY} (corrupt object graph)") from None


def node_paths(graph: Any) -> dict[int, list[tuple[int, int]]]:
    """The breadth-first path to every reachable node as [(parent id, child index), ...]."""
    paths: dict[int, list[tuple[int, int]]] = {0: []}
    queue = deque([0])
    while queue:
        node_id = queue.popleft()
        for index, child in enumerate(graph.nodes[node_id].children):
            if child.node_id not in paths and 0 <= child.node_id < len(graph.nodes):
                paths[child.node_id] = [*paths[node_id], (node_id, index)]
                queue.append(child.node_id)
    return paths


def _path_string(graph: Any, path: list[tuple[int, int]]) -> str:
    return "/".join(
        escape_local_name(graph.nodes[parent].children[index].local_name) for parent, index in path
    )


def expected_keys(
    graph: Any, paths: dict[int, list[tuple[int, int]]] | None = None
) -> dict[tuple[int, int], str]:
    """The checkpoint key TF would derive for each (node id, attribute index); ``paths`` is
    ``node_paths(graph)`` when the caller has it already."""
    if paths is None:
        paths = node_paths(graph)
    prefixes = {node_id: _path_string(graph, path) for node_id, path in paths.items()}
    for node_id, node in enumerate(graph.nodes):
        for slot in node.slot_variables:
            var, opt = slot.original_variable_node_id, node_id
            if var in prefixes and opt in prefixes:
                prefixes.setdefault(
                    slot.slot_variable_node_id,
                    f"{prefixes[var]}/{OPTIMIZER_SLOT}/{prefixes[opt]}/"
                    f"{escape_local_name(slot.slot_name)}",
                )
    keys = {}
    for node_id, node in enumerate(graph.nodes):
        if node_id not in prefixes:
            continue
        for index, attr in enumerate(node.attributes):
            base = prefixes[node_id]
            suffix = f"{ATTRIBUTES}/{escape_local_name(attr.name)}"
            keys[(node_id, index)] = f"{base}/{suffix}" if base else suffix
    return keys


@dataclass
class GraphRename:
    """The outcome of renaming keys in an object graph."""

    graph: bytes  # the serialized, edited TrackableObjectGraph
    renames: dict[str, str]  # final old -> new bundle keys (changed keys only)
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)  # slot key -> (rule, used)


def rename_keys(raw: bytes, renames: dict[str, str]) -> GraphRename:
    """Rewrite the object graph for renamed keys: edges, checkpoint keys and full names.

    Renamed path components become renamed ``local_name`` edges. Slot-variable keys are not
    taken from the rules but derived again from the edited graph (FORMAT.md §9: a slot key is
    its variable's path, ``.OPTIMIZER_SLOT``, its optimizer's path and the slot name), so they
    always match what TF would write. Raises RenameConflict when the renames cannot be expressed
    as renaming path components consistently.
    """
    graph = parse(raw)
    scope = _added_scope(graph, renames)
    if scope:  # everything moves under new objects: the graph hangs under that path
        keys = {
            a.checkpoint_key: renames[a.checkpoint_key] for n in graph.nodes for a in n.attributes
        }
        return GraphRename(merge_graphs([(raw, scope, keys)]), dict(renames))
    # Renaming edges below changes only local names, never the (parent, child index) steps of
    # the breadth-first paths: they serve the graph before and after the edit alike.
    paths = node_paths(graph)
    before = expected_keys(graph, paths)
    attr_of: dict[str, tuple[int, int]] = {}
    for node_id, node in enumerate(graph.nodes):
        for index, attr in enumerate(node.attributes):
            attr_of[attr.checkpoint_key] = (node_id, index)
    slot_attrs = {where for where, key in before.items() if f"/{OPTIMIZER_SLOT}/" in key}
    edge_renames: dict[tuple[int, int], str] = {}
    problems: list[str] = []
    for old, new in renames.items():
        where = attr_of.get(old)
        if where is None or where in slot_attrs:
            continue  # not an object-graph key, or a slot key (derived below)
        old_parts, new_parts = old.split("/"), new.split("/")
        if len(old_parts) < 2 or old_parts[-2:] != new_parts[-2:] or old_parts[-2] != ATTRIBUTES:
            problems.append(f"{old!r} -> {new!r} changes the '/.ATTRIBUTES/...' suffix")
            continue
        if len(old_parts) != len(new_parts):
            problems.append(
                f"{old!r} -> {new!r} changes the number of path components; TF2 keys follow "
                "object attributes, so only whole components (local names) can be renamed"
            )
            continue
        path = paths.get(where[0], [])
        for position, (a, b) in enumerate(zip(old_parts[:-2], new_parts[:-2])):
            if a == b:
                continue
            if position >= len(path):
                problems.append(f"{old!r}: component {a!r} is not an object edge")
                continue
            edge = path[position]
            name = unescape_local_name(b)
            if edge_renames.get(edge, name) != name:
                problems.append(
                    f"object edge {a!r} would be renamed to both {edge_renames[edge]!r} and "
                    f"{name!r}"
                )
            edge_renames[edge] = name
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise RenameConflict(
            "cannot rename this TF2 checkpoint: " + "; ".join(problems[:3]) + more + " (to put "
            "a whole checkpoint under a scope, add a prefix to every name, or merge it under "
            "a scope)",
            fix="add_prefix",
        )
    for (parent, index), name in edge_renames.items():
        graph.nodes[parent].children[index].local_name = name
    after = expected_keys(graph, paths)
    final: dict[str, str] = {}
    derived: dict[str, tuple[str, str]] = {}
    mismatches = []
    for where, old_expected in before.items():
        attr = graph.nodes[where[0]].attributes[where[1]]
        old = attr.checkpoint_key
        wanted = renames.get(old, old)
        if old != old_expected:
            new = wanted  # a key TF did not derive from its path: the rules decide alone
        elif where in slot_attrs:
            new = after[where]
            if new != wanted:
                derived[old] = (wanted, new)
        else:
            new = wanted
            if new != after[where]:
                mismatches.append(f"{new!r} (the object path now gives {after[where]!r})")
                continue
        if new != old:
            final[old] = new
            attr.checkpoint_key = new  # full_name is the variable's own TF name: unchanged
    if mismatches:
        raise RenameConflict(
            "cannot rename this TF2 checkpoint consistently: renaming an object edge renames "
            "every key below it, so the rules must rename all of them alike; mismatched: "
            + ", ".join(mismatches[:5])
            + (f" and {len(mismatches) - 5} more" if len(mismatches) > 5 else "")
        )
    # Keys outside the object graph (plain extra tensors) follow the rules as given.
    for old, new in renames.items():
        if old not in attr_of:
            final[old] = new
    return GraphRename(bytes(graph.SerializeToString()), final, derived)


def _added_scope(graph: Any, renames: dict[str, str]) -> str | None:
    """``SCOPE/`` when the rules put every object-graph key under one new scope, else None."""
    keys = [a.checkpoint_key for n in graph.nodes for a in n.attributes]
    if not keys or any(k not in renames or not renames[k].endswith(k) for k in keys):
        return None
    scopes = {renames[k][: len(renames[k]) - len(k)] for k in keys}
    scope = scopes.pop()
    if scopes or not scope.endswith("/") or scope.startswith("/") or "//" in scope:
        return None
    return scope


def drop_keys(raw: bytes, dropped: set[str]) -> bytes:
    """Remove the attributes of dropped keys, slot references to emptied slot nodes, and
    recompute ``has_checkpoint_values``."""
    graph = parse(raw)
    for node in graph.nodes:
        _retain(node.attributes, [a for a in node.attributes if a.checkpoint_key not in dropped])
    for node in graph.nodes:
        slots = [
            s
            for s in node.slot_variables
            if 0 <= s.slot_variable_node_id < len(graph.nodes)
            and graph.nodes[s.slot_variable_node_id].attributes
        ]
        _retain(node.slot_variables, slots)
    _update_has_values(graph)
    return bytes(graph.SerializeToString())


def _retain(repeated: Any, kept: list[Any]) -> None:
    """Make a repeated message field hold only ``kept`` (its elements, in order)."""
    if len(kept) == len(repeated):
        return
    copies = [type(m)() for m in kept]
    for copy, message in zip(copies, kept):
        copy.CopyFrom(message)
    del repeated[:]
    repeated.extend(copies)


def _update_has_values(graph: Any) -> None:
    """Recompute ``has_checkpoint_values`` where present, as TensorFlow defines it when saving:
    a node has values if it holds attributes, slot variables or a registered saver, or if any
    node below it (through its children) does. Marked upwards from the holders, so cycles and
    deep chains need no recursion."""
    count = len(graph.nodes)
    parents: dict[int, list[int]] = {}
    marked: set[int] = set()
    for node_id, node in enumerate(graph.nodes):
        if node.attributes or node.slot_variables or node.HasField("registered_saver"):
            marked.add(node_id)
        for child in node.children:
            if 0 <= child.node_id < count:
                parents.setdefault(child.node_id, []).append(node_id)
    todo = list(marked)
    while todo:
        for parent in parents.pop(todo.pop(), ()):
            if parent not in marked:
                marked.add(parent)
                todo.append(parent)
    for node_id, node in enumerate(graph.nodes):
        if node.HasField("has_checkpoint_values"):
            node.has_checkpoint_values.value = node_id in marked


# What an optimizer object's edges say about it. Keras >= 2.11 and Keras 3 optimizers own no
# slot variables: they track ``_iterations`` (Keras 2.11+: also ``iterations``), a learning-rate
# variable (``_learning_rate``) and their state in ``_variables/N`` (Keras 3 also lists the
# moments under ``_momentums`` / ``_velocities``). Keras 2 (OptimizerV2) keeps ``iter`` and
# ``learning_rate`` hyperparameters beside its slot variables.
_ITERATIONS_EDGES = frozenset({"iter", "iterations", "_iterations"})
_LEARNING_RATE_EDGES = frozenset({"lr", "learning_rate", "_learning_rate"})
# A wrapper whose inner optimizer is one (LossScaleOptimizer) is optimizer state as a whole.
_WRAPPED_EDGES = frozenset({"inner_optimizer", "_optimizer"})


def optimizer_nodes(graph: Any) -> set[int]:
    """The node ids of the optimizer objects in a TrackableObjectGraph, wherever they are.

    An optimizer is recognised by what the graph says about it: it owns slot variables (TF1
    and Keras 2 optimizers), or it has both an iteration counter edge (``iter``,
    ``iterations``, ``_iterations``) and a learning-rate edge (``lr``, ``learning_rate``,
    ``_learning_rate``), as Keras >= 2.11 and Keras 3 optimizers have, or it wraps one under
    ``inner_optimizer``; a root edge named like "optimizer" marks one too (the usual
    ``tf.train.Checkpoint(optimizer=...)``).
    """
    count = len(graph.nodes)
    found = {node_id for node_id, node in enumerate(graph.nodes) if node.slot_variables}
    for node_id, node in enumerate(graph.nodes):
        edges = {child.local_name for child in node.children}
        if edges & _ITERATIONS_EDGES and edges & _LEARNING_RATE_EDGES:
            found.add(node_id)
    if count:
        found.update(
            c.node_id
            for c in graph.nodes[0].children
            if "optimizer" in c.local_name.lower() and 0 <= c.node_id < count
        )
    changed = True
    while changed:  # wrappers of wrappers
        changed = False
        for node_id, node in enumerate(graph.nodes):
            if node_id not in found and any(
                c.local_name in _WRAPPED_EDGES and c.node_id in found for c in node.children
            ):
                found.add(node_id)
                changed = True
    found.discard(0)  # the root is never optimizer state as a whole
    return found


def optimizer_keys(raw: bytes) -> set[str]:
    """Keys that belong to optimizer state only.

    A node is optimizer state when it cannot be reached from the root without passing through an
    optimizer (``optimizer_nodes``: at the root or nested anywhere, e.g. a Keras model's
    ``optimizer`` under ``tf.train.Checkpoint(net=model)``). Model variables an optimizer also
    tracks (Keras 3 lists them under ``optimizer/_trainable_variables``, and breadth-first keys
    may even name them that way) stay, because the model reaches them too. Slot variables are
    reachable only through their optimizer, so they go.
    """
    graph = parse(raw)
    if not graph.nodes:
        return set()
    optimizers = optimizer_nodes(graph)
    kept = {0}
    queue = deque([0])
    while queue:
        node_id = queue.popleft()
        for child in graph.nodes[node_id].children:
            target = child.node_id
            if 0 <= target < len(graph.nodes) and target not in kept and target not in optimizers:
                kept.add(target)
                queue.append(target)
    return {
        attr.checkpoint_key
        for node_id, node in enumerate(graph.nodes)
        if node_id not in kept
        for attr in node.attributes
    }


def _child(node: Any, name: str) -> Any | None:
    for child in node.children:
        if child.local_name == name:
            return child
    return None


def merge_graphs(parts: list[tuple[bytes, str, dict[str, str]]]) -> bytes:
    """One object graph holding several, each root hung under its scope's path.

    ``parts`` are (serialized graph, scope like ``"pretrained/"`` or ``""``, kept keys old -> new).
    A scoped input's root becomes the object at that path, so its keys become ``scope + key``
    (FORMAT.md §9) and ``tf.train.Checkpoint(pretrained=...)`` restores it; an unscoped input's
    root objects join the new root. Attributes whose key is not kept are dropped. Raises
    GraphMergeError when two inputs put different objects under one name.
    """
    from tfckpt import protos

    out = protos.TrackableObjectGraph()
    out.nodes.add()  # the new root
    for raw, scope, keys in parts:
        graph = parse(raw)
        base = len(out.nodes)
        for node in graph.nodes:
            copy = out.nodes.add()
            copy.CopyFrom(node)
            for child in copy.children:
                child.node_id += base
            for slot in copy.slot_variables:
                slot.original_variable_node_id += base
                slot.slot_variable_node_id += base
            kept = [a for a in copy.attributes if a.checkpoint_key in keys]
            for attr in kept:
                attr.checkpoint_key = keys[attr.checkpoint_key]
            _retain(copy.attributes, kept)
        # Walk (creating plain nodes) down the scope's path; the last component names the
        # input's root, unless an earlier input already owns that name: then merge into it.
        target = 0
        components = [c for c in scope.split("/") if c]
        for position, component in enumerate(components):
            edge = _child(out.nodes[target], component)
            last = position == len(components) - 1
            if edge is None:
                new_id = base if last else len(out.nodes)
                if not last:
                    out.nodes.add()
                out.nodes[target].children.add(node_id=new_id, local_name=component)
                target = new_id
                if last:
                    break
            else:
                target = edge.node_id
        else:
            _adopt_root(out, target, base, scope)
    _update_has_values(out)
    return bytes(out.SerializeToString())


def _holds_values(graph: Any, node_id: int) -> bool:
    """Whether any attribute is reachable from ``node_id`` (children and slots)."""
    seen = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen or not 0 <= current < len(graph.nodes):
            continue
        seen.add(current)
        node = graph.nodes[current]
        if node.attributes:
            return True
        stack.extend(c.node_id for c in node.children)
        stack.extend(s.slot_variable_node_id for s in node.slot_variables)
    return False


def _adopt_root(out: Any, target: int, root: int, scope: str) -> None:
    """Move the children, attributes and slots of node ``root`` onto node ``target``."""
    if target == root:
        return
    source, dest = out.nodes[root], out.nodes[target]
    for child in source.children:
        if not _holds_values(out, child.node_id):
            continue  # e.g. a save_counter whose key another input won with --prefer
        existing = _child(dest, child.local_name)
        if existing is not None and not _holds_values(out, existing.node_id):
            existing.node_id = child.node_id
            continue
        if existing is not None:
            raise GraphMergeError(
                f"two inputs both hold an object {scope + child.local_name!r}; give them "
                "different scopes (IN:SCOPE/)"
            )
        dest.children.add().CopyFrom(child)
    dest.attributes.extend(source.attributes)
    dest.slot_variables.extend(source.slot_variables)
    del source.children[:]
    del source.attributes[:]
    del source.slot_variables[:]
