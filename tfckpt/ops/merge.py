"""Merge plans: inputs under scopes, duplicates resolved or reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import RenameConflict, UsageError


@dataclass
class MergeInput:
    path: str
    scope: str


@dataclass
class MergePlan:
    # new name -> (input index, source name)
    sources: dict[str, tuple[int, str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    object_graph: bytes | None = None  # TF2 inputs' object graphs, merged under their scopes
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variables": [
                {"name": n, "input": i, "source": s} for n, (i, s) in sorted(self.sources.items())
            ],
            "duplicates": self.duplicates,
        }


def parse_input(spec: str) -> MergeInput:
    """``PATH`` or ``PATH:SCOPE/`` (a scope ends with ``/``); scopes must stay plain prefixes."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail.endswith("/"):
        path, scope = head, tail
    else:
        path, scope = spec, ""
    if scope.startswith("/") or any(part in ("..", ".") for part in scope.split("/")[:-1]):
        raise UsageError(f"bad scope {scope!r} in {spec!r}: use a plain prefix like 'pretrained/'")
    return MergeInput(path=path, scope=scope)


def plan_merge(
    names_per_input: list[list[str]],
    scopes: list[str],
    prefer: str | None,
    graphs: list[bytes | None] | None = None,
) -> MergePlan:
    """Decide where every output name comes from. ``graphs`` holds each input's serialized TF2
    object graph (None for name-based inputs); they are merged so the output restores with
    ``tf.train.Checkpoint``, each input's objects under its scope."""
    plan = MergePlan()
    for index, (names, scope) in enumerate(zip(names_per_input, scopes)):
        for name in names:
            new = scope + name
            if new in plan.sources:
                plan.duplicates.append(new)
                if prefer == "last":
                    plan.sources[new] = (index, name)
                continue
            plan.sources[new] = (index, name)
    if plan.duplicates and prefer is None:
        shown = ", ".join(repr(d) for d in plan.duplicates[:10])
        more = f" and {len(plan.duplicates) - 10} more" if len(plan.duplicates) > 10 else ""
        raise RenameConflict(
            f"{len(plan.duplicates)} duplicate name(s): {shown}{more}; give inputs different "
            "scopes (IN:SCOPE/) or --prefer first|last"
        )
    if graphs and any(g is not None for g in graphs):
        _merge_object_graphs(plan, scopes, graphs)
    return plan


def _merge_object_graphs(plan: MergePlan, scopes: list[str], graphs: list[bytes | None]) -> None:
    from tfckpt import objgraph

    kept: list[dict[str, str]] = [{} for _ in graphs]
    for new, (index, name) in plan.sources.items():
        kept[index][name] = new
    parts = [(g, scopes[i], kept[i]) for i, g in enumerate(graphs) if g is not None and kept[i]]
    if not parts:
        return
    try:
        plan.object_graph = objgraph.merge_graphs(parts)
    except objgraph.GraphMergeError as exc:
        plan.notes.append(
            f"TF2 object graphs not merged ({exc}): the output restores by name "
            "(tf.compat.v1 Saver, tf.train.load_checkpoint), not with tf.train.Checkpoint"
        )
