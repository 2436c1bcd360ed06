"""Merge plans: inputs under scopes, duplicates resolved or reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfckpt.bundle.checkpoint import Checkpoint
from tfckpt.bundle.writer import BundleWriter
from tfckpt.errors import GraphMergeError, RenameConflict, UsageError
from tfckpt.ops.writing import (
    Progress,
    WriteResult,
    add_object_graph,
    add_with_slices,
    adopt_checked,
    key_bytes,
    shard_checks,
    write_decoded,
)


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
    inputs: list[str] = field(default_factory=list)  # the input paths, for reports

    def to_dict(self) -> dict[str, Any]:
        return {
            "variables": [
                {"name": n, "input": i, "source": s} for n, (i, s) in sorted(self.sources.items())
            ],
            "duplicates": self.duplicates,
            "inputs": self.inputs,
        }


def parse_input(spec: str, notes: list[str] | None = None) -> MergeInput:
    """``PATH`` or ``PATH:SCOPE`` (``PATH:SCOPE/``): names from PATH get ``SCOPE/`` prepended.

    A scope without its trailing ``/`` is a scope all the same (with a note). The split is at
    the last ``:`` whose tail looks like a scope (not ``//...`` as in ``s3://``), so URLs and
    plain paths without a scope pass through.
    """
    head, sep, tail = spec.rpartition(":")
    if not (sep and head and tail and not tail.startswith("//") and "//" not in tail[1:]):
        return MergeInput(path=spec, scope="")
    if tail.startswith("/") or any(part in ("..", ".", "") for part in tail.rstrip("/").split("/")):
        raise UsageError(f"bad scope {tail!r} in {spec!r}: use a plain prefix like 'pretrained/'")
    if not tail.endswith("/"):
        if notes is not None:
            notes.append(f"scope {tail!r} of {head} taken as {tail + '/'!r}")
        tail += "/"
    return MergeInput(path=head, scope=tail)


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
            f"{len(plan.duplicates)} duplicate name(s): {shown}{more}; give the inputs "
            "different scopes",
            fix="prefer",
        )
    if graphs and any(g is not None for g in graphs):
        _merge_object_graphs(plan, scopes, graphs)
    return plan


def _merge_object_graphs(plan: MergePlan, scopes: list[str], graphs: list[bytes | None]) -> None:
    from tfckpt.bundle import objgraph

    kept: list[dict[str, str]] = [{} for _ in graphs]
    for new, (index, name) in plan.sources.items():
        kept[index][name] = new
    parts = [(g, scopes[i], kept[i]) for i, g in enumerate(graphs) if g is not None and kept[i]]
    if not parts:
        return
    try:
        plan.object_graph = objgraph.merge_graphs(parts)
    except GraphMergeError as exc:
        plan.notes.append(
            f"TF2 object graphs not merged ({exc}): the output restores by name "
            "(tf.compat.v1 Saver, tf.train.load_checkpoint), not with tf.train.Checkpoint"
        )


def apply_merge(
    inputs: list[Checkpoint],
    dst: str,
    plan: MergePlan,
    link: bool = False,
    force: bool = False,
    on_bytes: Progress | None = None,
    sync: bool = False,
    verify: bool = True,
) -> WriteResult:
    """Every V2 input's data files become shards of the output; V1 inputs are decoded into one
    extra shard. Only inputs that contribute a tensor are included.

    The tensors taken from each input are checked as in ``apply_rename`` (shard sizes before
    writing; CRC32C while copying unless ``verify`` is False): damage raises CorruptCheckpoint
    and nothing is written."""
    used = sorted({index for index, _ in plan.sources.values()})
    offsets: dict[int, int] = {}
    total = 0
    for index in used:
        if inputs[index].format == "V2":
            offsets[index] = total
            total += inputs[index].bundle.num_shards
    # V1 inputs' tensors and the merged object graph are written into one extra shard, which is
    # also the only shard when no V2 input contributes one.
    needs_own = (
        plan.object_graph is not None or total == 0 or any(inputs[i].format == "V1" for i in used)
    )
    shards = total + 1 if needs_own else total
    taken: dict[int, list[str]] = {}
    for index, name in plan.sources.values():
        taken.setdefault(index, []).append(name)
    checks = {
        index: shard_checks(
            inputs[index].bundle,
            [inputs[index].bundle.entries[key_bytes(name)] for name in taken[index]],
            verify,
            on_bytes,
        )
        for index in offsets
    }
    with BundleWriter(
        dst, shards, force, own_shard=total if needs_own else None, sync=sync
    ) as writer:
        for index, offset in offsets.items():
            bundle = inputs[index].bundle
            for shard in range(bundle.num_shards):
                check = checks[index].get(shard)
                adopt_checked(writer, bundle, shard, offset + shard, check, link, on_bytes)
        count = 0
        for new_name, (index, name) in sorted(plan.sources.items()):
            ckpt = inputs[index]
            count += 1
            if ckpt.format == "V1":
                write_decoded(writer, ckpt, name, new_name)
                continue
            bundle = ckpt.bundle
            entry = bundle.entries[key_bytes(name)]
            add_with_slices(writer, bundle, entry, new_name, offsets[index])
        if plan.object_graph is not None:
            add_object_graph(writer, plan.object_graph)
        writer.commit()
    return WriteResult(dst, shards, count, notes=list(plan.notes))
