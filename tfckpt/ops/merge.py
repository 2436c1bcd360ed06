"""Merge plans: inputs under scopes, duplicates resolved or reported."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from tfckpt.bundle.checkpoint import Checkpoint
from tfckpt.bundle.writer import BundleWriter
from tfckpt.errors import GraphMergeError, RenameConflict, UsageError
from tfckpt.ops.writing import (
    Progress,
    WriteResult,
    add_object_graph,
    add_tensors,
    adopt_checked,
    keys_of,
    shard_checks,
    write_decoded,
)

if TYPE_CHECKING:
    import numpy as np


@dataclass
class MergeInput:
    path: str
    scope: str


@dataclass
class MergePlan:
    duplicates: list[str] = field(default_factory=list)
    object_graph: bytes | None = None  # TF2 inputs' object graphs, merged under their scopes
    notes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # the input paths, for reports
    # Per input: its names and scope. Without duplicates the output takes every name of every
    # input, and ``sources`` is only built when asked for (10^6 names cost ~100 MB as a dict).
    names: list[list[str]] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    _sources: dict[str, tuple[int, str]] | None = field(default=None, repr=False)

    @property
    def sources(self) -> dict[str, tuple[int, str]]:
        """new name -> (input index, source name)."""
        if self._sources is None:
            self._sources = {}
            for index, (names, scope) in enumerate(zip(self.names, self.scopes)):
                self._sources.update(zip(_scoped(scope, names), zip(repeat(index), names)))
        return self._sources

    def taken(self, index: int) -> tuple[list[str], list[str]]:
        """The names the output takes from input ``index`` and their new names."""
        if self._sources is None:
            return self.names[index], _scoped(self.scopes[index], self.names[index])
        origins = list(self._sources.values())
        mine = list(map(index.__eq__, map(itemgetter(0), origins)))
        names = list(map(itemgetter(1), compress(origins, mine)))
        return names, list(compress(self._sources, mine))

    def first(self, limit: int) -> list[tuple[str, int, str]]:
        """The first ``limit`` (new name, input index, source name) in new-name order, without
        building ``sources`` when it has not been built (each input's names are sorted)."""
        if self._sources is not None:
            return [(n, i, s) for n, (i, s) in sorted(self._sources.items())[:limit]]
        streams = [
            zip(_scoped(scope, names), repeat(index), names)
            for index, (names, scope) in enumerate(zip(self.names, self.scopes))
        ]
        return list(islice(heapq.merge(*streams), limit))

    def __len__(self) -> int:
        """How many variables the output holds."""
        if self._sources is None:
            return sum(map(len, self.names))
        return len(self._sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variables": [
                {"name": n, "input": i, "source": s} for n, (i, s) in sorted(self.sources.items())
            ],
            "duplicates": self.duplicates,
            "inputs": self.inputs,
        }


def _scoped(scope: str, names: list[str]) -> list[str]:
    return list(map(scope.__add__, names)) if scope else names


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
    plan = MergePlan(names=names_per_input, scopes=scopes)
    # Names from two inputs can only meet when one scope starts the other (or they are equal).
    if any(a.startswith(b) for i, a in enumerate(scopes) for b in scopes[:i] + scopes[i + 1 :]):
        sources: dict[str, tuple[int, str]] = {}
        for index, (names, scope) in enumerate(zip(names_per_input, scopes)):
            news = _scoped(scope, names)
            duplicates = [new for new in news if new in sources] if sources else []
            plan.duplicates += duplicates
            origins = zip(repeat(index), names)
            if duplicates and prefer != "last":  # the first input naming a variable keeps it
                seen = set(duplicates)
                sources.update((new, o) for new, o in zip(news, origins) if new not in seen)
            else:
                sources.update(zip(news, origins))
        plan._sources = sources
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
    taken = [plan.taken(index)[0] for index in range(len(inputs))]
    used = [index for index, names in enumerate(taken) if names]
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
    rows = {index: _rows_of(inputs[index], taken[index]) for index in offsets}
    checks = {
        index: shard_checks(inputs[index].bundle, rows[index], verify, on_bytes)
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
        for index in used:
            ckpt = inputs[index]
            names, news = plan.taken(index)
            if ckpt.format == "V1":
                for name, new_name in zip(names, news):
                    write_decoded(writer, ckpt, name, new_name)
                continue
            keys = keys_of(news)
            del news
            add_tensors(writer, ckpt.bundle, rows[index], keys, offsets[index])
        if plan.object_graph is not None:
            add_object_graph(writer, plan.object_graph)
        writer.commit()
    return WriteResult(dst, shards, len(plan), notes=list(plan.notes))


def _rows_of(ckpt: Checkpoint, names: list[str]) -> np.ndarray:
    """The rows of a V2 checkpoint's index columns holding these tensors."""
    import numpy as np

    listing = ckpt.listing()
    assert listing.source is not None
    if names == listing.names:
        return listing.np("source")
    row_of = dict(zip(listing.names, listing.source))
    return np.fromiter(map(row_of.__getitem__, names), dtype=np.int64, count=len(names))
