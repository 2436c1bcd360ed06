"""Prune plans: which tensors go (``--drop``/``--keep`` regexes, ``--optimizer``)."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import compress, pairwise, repeat
from operator import gt, not_, or_, truth
from typing import TYPE_CHECKING, Any

from tfckpt.bundle import objgraph
from tfckpt.bundle.bulk import encode_rows, entry_ends, span_groups
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.writer import BundleWriter
from tfckpt.errors import UsageError
from tfckpt.names import TF2_SLOT_MARK, display_name, is_tf1_slot, tf1_slot_flags  # noqa: F401
from tfckpt.ops.writing import (
    Progress,
    ShardCheck,
    WriteResult,
    add_object_graph,
    check_reach,
    check_rows,
    copied_rows,
    copy_checked,
    copy_entry,
    tensor_rows,
    write_decoded,
)
from tfckpt.storage import STEP

if TYPE_CHECKING:
    import numpy as np

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
    # Each rule runs over every name at once (flags per name): no Python step per name.
    names = sorted(sizes)
    # Patterns see the key and, for TF2, the object path.
    shown = list(map(display_name, names)) if "/.ATTRIBUTES/" in "\n".join(names) else names
    gone = _matching(drops, names, shown)
    if optimizer:
        gone = _any(gone, tf1_slot_flags(names))
        gone = _any(gone, map(str.__contains__, names, repeat(TF2_SLOT_MARK)))
        if tf2_optimizer_keys:
            gone = _any(gone, map(tf2_optimizer_keys.__contains__, names))
    if drop_global_step:
        last = (name.rpartition("/")[2] for name in names)
        gone = _any(gone, map(GLOBAL_STEP_NAMES.__contains__, last))
    if only is not None:
        gone = _any(gone, map(not_, map(only, names)))
    kept = _matching(keeps, names, shown)
    if OBJECT_GRAPH_KEY in sizes:
        kept[bisect_left(names, OBJECT_GRAPH_KEY)] = True
    gone = list(map(gt, gone, kept))  # dropped unless kept
    plan.drop = list(compress(names, gone))
    plan.keep = list(compress(names, map(not_, gone)))
    sized = list(map(sizes.__getitem__, names))
    plan.bytes_before = sum(sized)
    plan.bytes_after = plan.bytes_before - sum(compress(sized, gone))
    return plan


def _any(flags: list[bool], more: Iterable[Any]) -> list[bool]:
    """``flags[i] or more[i]`` for every i, as booleans."""
    return list(map(or_, flags, map(truth, more)))


def _matching(patterns: list[re.Pattern[str]], names: list[str], shown: list[str]) -> list[bool]:
    """Per name: whether any pattern finds a match in it or in what is shown for it."""
    flags = [False] * len(names)
    for pattern in patterns:
        flags = _any(flags, map(pattern.search, names))
        if shown is not names:
            flags = _any(flags, map(pattern.search, shown))
    return flags


# Runs of kept bytes at least this long are copied in the kernel (checked as the copy passes
# them); shorter ones, read a span of neighbours at a time, checked and written from memory.
KERNEL_COPY_FROM = 1 << 16


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
    import numpy as np

    bundle = ckpt.bundle
    new_graph: bytes | None = None
    raw_graph: bytes | None = None
    if plan.drop:  # the graph planning read (--optimizer), else read now
        raw_graph = ckpt.object_graph_bytes() if plan.source_graph is None else plan.source_graph
    if raw_graph is not None:
        new_graph = objgraph.drop_keys(raw_graph, set(plan.drop))
    names = ckpt.listing().names
    taken = np.fromiter(map(kept.__contains__, names), dtype=bool, count=len(names))
    if new_graph is not None and OBJECT_GRAPH_KEY in kept:
        taken[bisect_left(names, OBJECT_GRAPH_KEY)] = False  # written anew
    rows = tensor_rows(bundle)[taken]
    cols = bundle.columns
    with BundleWriter(dst, 1, force, sync=sync) as writer:
        for row in rows.tolist():
            if row in cols.slices:  # a partitioned tensor's header: its slices hold the bytes
                header = copy_entry(bundle.entries.entry(row))
                header.shard_id = header.offset = header.size = 0
                writer.add_entry(cols.keys[row], header)
        pieces = copied_rows(bundle, rows)
        offset = cols.np("offset")[pieces]
        order = np.lexsort((offset, cols.np("shard")[pieces]))
        pieces = pieces[order]
        written, offsets = _copy_pieces(writer, bundle, pieces, verify, on_bytes)
        _add_moved(writer, bundle, pieces, offsets)
        if new_graph is not None:
            add_object_graph(writer, new_graph)
        writer.commit()
    return WriteResult(dst, 1, rows.size + (new_graph is not None), bytes_written=written)


def _copy_pieces(
    writer: BundleWriter,
    bundle: BundleReader,
    pieces: np.ndarray,
    verify: bool,
    on_bytes: Progress | None,
) -> tuple[int, np.ndarray]:
    """Copy the stored bytes of ``pieces`` (rows sorted by shard and offset) into the writer's
    shard in that order, neighbours (contiguous or overlapping) as one run: returns the bytes
    written and each piece's new offset. Every shard is checked to hold its pieces before
    anything is written, and (with ``verify``) each piece's bytes against its CRC32C."""
    import numpy as np

    cols = bundle.columns
    shard = cols.np("shard")[pieces]
    start = cols.np("offset")[pieces]
    end = entry_ends(start, cols.np("size")[pieces])
    first = np.flatnonzero(np.append(True, shard[1:] != shard[:-1]))
    # Runs: a piece starting past everything before it in its shard starts a new one.
    reach = np.zeros(pieces.size, dtype=np.int64)
    for a, b in pairwise([*first.tolist(), pieces.size]):
        check_reach(bundle, pieces[a:b])
        reach[a:b] = np.maximum.accumulate(end[a:b])
    new_run = np.ones(pieces.size, dtype=bool)
    new_run[1:] = (shard[1:] != shard[:-1]) | (start[1:] > reach[:-1])
    run_piece = np.append(np.flatnonzero(new_run), pieces.size)  # each run's first piece
    run_lo, run_shard = start[run_piece[:-1]], shard[run_piece[:-1]]
    run_hi = np.maximum.reduceat(end, run_piece[:-1]) if pieces.size else run_lo
    big = run_hi - run_lo >= KERNEL_COPY_FROM
    cut = np.ones(run_lo.size, dtype=bool)
    cut[1:] = (run_shard[1:] != run_shard[:-1]) | big[1:] | big[:-1]
    written = 0
    for a, b in pairwise([*np.flatnonzero(cut).tolist(), run_lo.size]):
        sid = int(run_shard[a])
        if big[a]:  # one long run, copied in the kernel and checked as the copy passes it
            lo, hi = int(run_lo[a]), int(run_hi[a])
            rows = pieces[run_piece[a] : run_piece[a + 1]]
            check = ShardCheck(bundle, sid, rows, verify, lo, on_bytes)
            path = bundle.data_path(sid)
            copy_checked(check, partial(writer.add_range, path, lo, hi - lo), path)
            written += hi - lo
            continue
        for i, j in span_groups(run_lo[a:b], run_hi[a:b], STEP):
            lo, hi = int(run_lo[a + i]), int(run_hi[a + j - 1])
            data = bundle.read_span(sid, lo, hi)
            rows = pieces[run_piece[a + i] : run_piece[a + j]]
            if verify:
                failing = ~bundle.bulk_checkable(rows)
                failing[~failing] = bundle.crc_failures(rows[~failing], data, lo)
                check_rows(bundle, rows, failing)
            parts = map(
                slice, (run_lo[a + i : a + j] - lo).tolist(), (run_hi[a + i : a + j] - lo).tolist()
            )
            size = writer.append(b"".join(map(data.__getitem__, parts)))
            written += size
            if on_bytes is not None:
                on_bytes(size)
    # Where each piece landed: its run's place in the output plus its place in the run.
    run_of = np.repeat(np.arange(run_lo.size), np.diff(run_piece))
    out_start = np.cumsum(run_hi - run_lo) - (run_hi - run_lo)
    return written, out_start[run_of] + start - run_lo[run_of]


def _add_moved(
    writer: BundleWriter, bundle: BundleReader, pieces: np.ndarray, offsets: np.ndarray
) -> None:
    """Index entries for stored pieces now at ``offsets`` of the writer's only shard, under
    their own keys: encoded in bulk, but for the few protobuf decoded."""
    import numpy as np

    cols = bundle.columns
    keys = list(map(cols.keys.__getitem__, pieces.tolist()))
    if cols.unusual:
        odd = np.isin(pieces, np.fromiter(cols.unusual, dtype=np.int64))
        for i in np.flatnonzero(odd).tolist():
            moved = copy_entry(bundle.entries.entry(int(pieces[i])))
            moved.shard_id, moved.offset = 0, int(offsets[i])
            writer.add_entry(keys[i], moved)
        keys = list(compress(keys, (~odd).tolist()))
        pieces, offsets = pieces[~odd], offsets[~odd]
    values, bounds = encode_rows(cols, pieces, np.zeros(pieces.size, np.int64), offsets)
    writer.add_entries(keys, values, bounds[:-1], bounds[1:])
