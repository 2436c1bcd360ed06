"""Prune plans: which tensors go (``--drop``/``--keep`` regexes, ``--optimizer``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tfckpt.bundle import objgraph
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.reader import Entry
from tfckpt.bundle.writer import BundleWriter
from tfckpt.errors import UsageError
from tfckpt.names import TF2_SLOT_MARK, display_name, is_tf1_slot, tf1_slot_flags  # noqa: F401
from tfckpt.ops.writing import (
    Progress,
    ShardCheck,
    WriteResult,
    add_object_graph,
    copy_entry,
    write_decoded,
)

GLOBAL_STEP_NAMES = ("global_step",)


@dataclass
class PrunePlan:
    keep: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    # TF2: the serialized object graph as planning read it (for --optimizer), so apply_prune
    # edits it without reading it again; None when planning did not need it.
    source_graph: bytes | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # stored bytes per name

    def to_dict(self) -> dict[str, Any]:
        return {
            "drop": sorted(self.drop),
            "keep": len(self.keep),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_saved": self.bytes_before - self.bytes_after,
        }


def _compile(patterns: list[str], option: str) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"bad {option} regex: {exc}") from None


def plan_prune(
    sizes: dict[str, int],
    drop: list[str] | None = None,
    keep: list[str] | None = None,
    optimizer: bool = False,
    drop_global_step: bool = False,
    object_graph: bytes | None = None,
    only: Callable[[str], bool] | None = None,
) -> PrunePlan:
    """Decide per name; ``--keep`` wins over everything; the object graph is always kept.

    ``object_graph`` is a TF2 checkpoint's serialized object graph: with ``optimizer``, the keys
    only an optimizer reaches go too (``objgraph.optimizer_keys``).
    """
    tf2_optimizer_keys: set[str] = set()
    if optimizer and object_graph is not None:
        tf2_optimizer_keys = objgraph.optimizer_keys(object_graph)
    drops = _compile(drop or [], "drop")
    keeps = _compile(keep or [], "keep")
    plan = PrunePlan(source_graph=object_graph, sizes=sizes)
    for name in sorted(sizes):
        plan.bytes_before += sizes[name]
        shown = display_name(name)  # patterns see the key and, for TF2, the object path
        gone = any(p.search(name) or p.search(shown) for p in drops)
        if optimizer:
            gone = gone or is_tf1_slot(name) or TF2_SLOT_MARK in name
            gone = gone or name in tf2_optimizer_keys
        if drop_global_step and name.split("/")[-1] in GLOBAL_STEP_NAMES:
            gone = True
        if only is not None and not only(name):
            gone = True
        if name == OBJECT_GRAPH_KEY or any(p.search(name) or p.search(shown) for p in keeps):
            gone = False
        if gone:
            plan.drop.append(name)
        else:
            plan.keep.append(name)
            plan.bytes_after += sizes[name]
    return plan


def _runs(
    pieces: list[tuple[bytes, Entry]],
) -> Iterator[tuple[int, int, int, list[tuple[bytes, Entry]]]]:
    """Group stored pieces (sorted by shard and offset) into contiguous byte ranges:
    (shard, start, end, pieces) — one in-kernel copy each."""
    run: list[tuple[bytes, Entry]] = []
    shard = start = end = 0
    for key, entry in pieces:
        if run and entry.shard_id == shard and start <= entry.offset <= end:
            run.append((key, entry))
            end = max(end, entry.offset + entry.size)
            continue
        if run:
            yield shard, start, end, run
        run = [(key, entry)]
        shard, start, end = entry.shard_id, entry.offset, entry.offset + entry.size
    if run:
        yield shard, start, end, run


def apply_prune(
    ckpt: Checkpoint,
    dst: str,
    plan: PrunePlan,
    force: bool = False,
    on_bytes: Progress | None = None,
    sync: bool = False,
    verify: bool = True,
) -> WriteResult:
    """Kept tensors' stored bytes go, unchanged and with their checksums, into one compacted data
    file; neighbours in the source are copied together, in the kernel, in file order.

    Every kept tensor's byte range is checked against its shard before anything is written and,
    with ``verify`` (the default), its bytes against their CRC32C while they are copied; damage
    raises CorruptCheckpoint and nothing is written."""
    kept = set(plan.keep)
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force, sync=sync) as writer:
            for name in sorted(kept):
                write_decoded(writer, ckpt, name, name)
            writer.commit()
        return WriteResult(dst, 1, len(kept), notes=["V1 input: written as V2"])
    bundle = ckpt.bundle
    new_graph: bytes | None = None
    raw_graph: bytes | None = None
    if plan.drop:  # the graph planning read (--optimizer), else read now
        raw_graph = ckpt.object_graph_bytes() if plan.source_graph is None else plan.source_graph
    if raw_graph is not None:
        new_graph = objgraph.drop_keys(raw_graph, set(plan.drop))
    tensors = [e for e in bundle.entries.values() if not e.is_slice_key and e.name in kept]
    pieces: list[tuple[bytes, Entry]] = []
    with BundleWriter(dst, 1, force, sync=sync) as writer:
        for entry in tensors:
            if entry.name == OBJECT_GRAPH_KEY and new_graph is not None:
                continue
            if entry.slices:
                header = copy_entry(entry)
                header.shard_id = header.offset = header.size = 0
                writer.add_entry(entry.key, header)
                parts = [bundle.slice_entry(entry, spec) for spec in entry.slices]
                pieces.extend((part.key, part) for part in parts)
            else:
                pieces.append((entry.key, entry))
        pieces.sort(key=lambda item: (item[1].shard_id, item[1].offset))
        runs = list(_runs(pieces))
        # Each run's byte range is checked against its shard before anything is copied.
        checks = [
            ShardCheck(bundle, shard, [e for _, e in run], verify, start, on_bytes)
            for shard, start, _, run in runs
        ]
        written = 0
        for (shard, start, end, run), check in zip(runs, checks):
            new_start = writer.add_range(bundle.data_path(shard), start, end - start, check.advance)
            check.finish()
            written += end - start
            for key, entry in run:
                proto = copy_entry(entry)
                proto.shard_id, proto.offset = 0, new_start + entry.offset - start
                writer.add_entry(key, proto)
        if new_graph is not None:
            add_object_graph(writer, new_graph)
        writer.commit()
    return WriteResult(dst, 1, len(tensors), bytes_written=written)
