"""Readable names for the tensors of TF2 checkpoints: object paths that prefer the model.

A TF2 key is derived from the first breadth-first path to its object (FORMAT.md §9), and that
path can run through the optimizer: Keras 3 optimizers track the model's variables in
``optimizer/_trainable_variables``, so a kernel's key may read
``optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE``. For export the name should say
where the weight lives in the model, so the path is searched avoiding optimizer objects first
(``objgraph.optimizer_nodes``: wherever they are in the graph); objects reachable only
through an optimizer keep their own path, and slot variables (not reachable by edges) the path
their key spells.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from tfckpt.bundle.checkpoint import Checkpoint, object_path_of
from tfckpt.bundle.objgraph import optimizer_nodes
from tfckpt.errors import RenameConflict

VALUE_ATTRIBUTE = "VARIABLE_VALUE"


def _bfs(graph: Any, blocked: set[int], found: dict[int, list[str]]) -> None:
    queue = deque(found)
    while queue:
        node_id = queue.popleft()
        for child in graph.nodes[node_id].children:
            target = child.node_id
            if 0 <= target < len(graph.nodes) and target not in found and target not in blocked:
                found[target] = [*found[node_id], child.local_name]
                queue.append(target)


def model_paths(graph: Any) -> dict[str, str]:
    """checkpoint key -> object path (local names joined by '/'), model routes first."""
    if graph is None or not graph.nodes:
        return {}
    optimizers = optimizer_nodes(graph)  # at the root or nested (bundle/objgraph.py)
    found: dict[int, list[str]] = {0: []}
    _bfs(graph, optimizers, found)  # through the model only
    _bfs(graph, set(), found)  # then everything else, continuing from what was found
    out: dict[str, str] = {}
    for node_id, node in enumerate(graph.nodes):
        for attr in node.attributes:
            if found.get(node_id):
                path = "/".join(found[node_id])
                if attr.name != VALUE_ATTRIBUTE:
                    path += f"/.ATTRIBUTES/{attr.name}"
            else:
                path = object_path_of(attr.checkpoint_key)
            out.setdefault(attr.checkpoint_key, path)
    return out


def checkpoint_paths(ckpt: Checkpoint) -> dict[str, str]:
    """key -> readable path for every tensor of a TF2 checkpoint ({} for name-based ones)."""
    if not ckpt.is_object_based:
        return {}
    paths = model_paths(ckpt.object_graph())
    for info in ckpt.tensors(include_object_graph=False):
        if info.name not in paths and info.object_path:
            paths[info.name] = info.object_path
    return paths


def check_names(sources: dict[str, list[str]], reserved: Mapping[str, str] | None = None) -> None:
    """Refuse output names given by more than one source name, empty names, and names in
    ``reserved`` (name -> who reserves it); ``sources`` maps output name -> source names."""
    problems = []
    for name, names in sorted(sources.items()):
        if len(names) > 1:
            problems.append(f"{', '.join(repr(n) for n in names)} -> {name!r}")
        if not name:
            problems.append(f"{names[0]!r} -> an empty name")
        if reserved and name in reserved:
            problems.append(f"{names[0]!r} -> {name!r} (reserved by {reserved[name]})")
    if problems:
        raise RenameConflict(
            f"{len(problems)} name conflict(s), nothing written: " + "; ".join(problems[:10])
        )
