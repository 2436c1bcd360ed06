"""Applying rename / prune / merge plans: new prefixes written with BundleWriter.

Tensor bytes are never decoded for V2 inputs: ``rename`` and ``merge`` adopt the source data
files as shards (copied in-kernel or hard-linked) and write only a new index; ``prune`` streams
each kept tensor's raw bytes, in bounded chunks, into one compacted data file and reuses its
stored checksum. TF2 object graphs are rewritten to match (see objgraph.py) and stored in an
extra shard so the source files stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tfckpt import objgraph
from tfckpt.bundle.reader import BundleReader, Entry
from tfckpt.bundle.slices import encode_slice_key
from tfckpt.bundle.writer import BundleWriter
from tfckpt.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.dtypes import STRING, dtype_from_enum
from tfckpt.ops.merge import MergePlan
from tfckpt.ops.prune import PrunePlan
from tfckpt.ops.rename import RenamePlan

Progress = Callable[[int], None]


@dataclass
class WriteResult:
    prefix: str
    shards: int
    tensors: int
    bytes_written: int = 0
    notes: list[str] = field(default_factory=list)


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def add_object_graph(writer: BundleWriter, raw: bytes) -> None:
    """Store a serialized TF2 object graph as the scalar string tensor TF reads it from."""
    import numpy as np

    value = np.empty((), dtype=object)
    value[()] = raw
    writer.add_array(_key(OBJECT_GRAPH_KEY), value, dtype_from_enum(STRING))


def _copy_entry(entry: Entry, shard_offset: int = 0):  # type: ignore[no-untyped-def]
    proto = type(entry.proto)()
    proto.CopyFrom(entry.proto)
    if shard_offset and not entry.slices:
        proto.shard_id = entry.shard_id + shard_offset
    return proto


def _add_with_slices(
    writer: BundleWriter, bundle: BundleReader, entry: Entry, new_name: str, shard_offset: int = 0
) -> None:
    """Index entries for one tensor under a new name (a partitioned tensor's slices re-keyed)."""
    writer.add_entry(_key(new_name), _copy_entry(entry, shard_offset))
    for spec in entry.slices:
        part = bundle.slice_entry(entry, spec)
        writer.add_entry(encode_slice_key(_key(new_name), spec), _copy_entry(part, shard_offset))


def _write_decoded(writer: BundleWriter, ckpt: Checkpoint, name: str, new_name: str) -> None:
    info = ckpt.get(name)
    writer.add_array(_key(new_name), ckpt.read(name), info.dtype)


# ---- rename ---------------------------------------------------------------------------------
def apply_rename(
    ckpt: Checkpoint,
    dst: str,
    plan: RenamePlan,
    link: bool = False,
    force: bool = False,
    on_bytes: Progress | None = None,
    sync: bool = False,
    keep_meta: bool = False,
) -> WriteResult:
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force, sync=sync, keep_meta=keep_meta) as writer:
            for info in ckpt.tensors():
                _write_decoded(writer, ckpt, info.name, plan.new_name(info.name))
            writer.commit()
        return WriteResult(dst, 1, len(ckpt.tensors()), notes=["V1 input: written as V2"])
    bundle = ckpt.bundle
    n = bundle.num_shards
    new_graph = plan.object_graph  # TF2: edited by plan_renames, stored in an extra shard
    shards = n + 1 if new_graph is not None else n
    with BundleWriter(
        dst,
        shards,
        force,
        own_shard=n if new_graph is not None else None,
        sync=sync,
        keep_meta=keep_meta,
    ) as w:
        for shard in range(n):
            w.adopt_shard(bundle.data_path(shard), shard, link, on_bytes)
        count = 0
        for entry in bundle.entries.values():
            if entry.is_slice_key:
                continue
            count += 1
            if entry.name == OBJECT_GRAPH_KEY and new_graph is not None:
                add_object_graph(w, new_graph)
                continue
            _add_with_slices(w, bundle, entry, plan.new_name(entry.name))
        w.commit()
    return WriteResult(dst, shards, count)


# ---- prune ----------------------------------------------------------------------------------
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
) -> WriteResult:
    """Kept tensors' stored bytes go, unchanged and with their checksums, into one compacted data
    file; neighbours in the source are copied together, in the kernel, in file order."""
    kept = set(plan.keep)
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force, sync=sync) as writer:
            for name in sorted(kept):
                _write_decoded(writer, ckpt, name, name)
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
                header = _copy_entry(entry)
                header.shard_id = header.offset = header.size = 0
                writer.add_entry(entry.key, header)
                parts = [bundle.slice_entry(entry, spec) for spec in entry.slices]
                pieces.extend((part.key, part) for part in parts)
            else:
                pieces.append((entry.key, entry))
        pieces.sort(key=lambda item: (item[1].shard_id, item[1].offset))
        written = 0
        for shard, start, end, run in _runs(pieces):
            for _, entry in run:
                bundle.raw(entry)  # bounds-checked against the shard: refuses truncated sources
            new_start = writer.add_range(bundle.data_path(shard), start, end - start, on_bytes)
            written += end - start
            for key, entry in run:
                proto = _copy_entry(entry)
                proto.shard_id, proto.offset = 0, new_start + entry.offset - start
                writer.add_entry(key, proto)
        if new_graph is not None:
            add_object_graph(writer, new_graph)
        writer.commit()
    return WriteResult(dst, 1, len(tensors), bytes_written=written)


# ---- merge ----------------------------------------------------------------------------------
def apply_merge(
    inputs: list[Checkpoint],
    dst: str,
    plan: MergePlan,
    link: bool = False,
    force: bool = False,
    on_bytes: Progress | None = None,
    sync: bool = False,
) -> WriteResult:
    """Every V2 input's data files become shards of the output; V1 inputs are decoded into one
    extra shard. Only inputs that contribute a tensor are included."""
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
    with BundleWriter(
        dst, shards, force, own_shard=total if needs_own else None, sync=sync
    ) as writer:
        for index, offset in offsets.items():
            bundle = inputs[index].bundle
            for shard in range(bundle.num_shards):
                writer.adopt_shard(bundle.data_path(shard), offset + shard, link, on_bytes)
        count = 0
        for new_name, (index, name) in sorted(plan.sources.items()):
            ckpt = inputs[index]
            count += 1
            if ckpt.format == "V1":
                _write_decoded(writer, ckpt, name, new_name)
                continue
            bundle = ckpt.bundle
            entry = bundle.entries[_key(name)]
            _add_with_slices(writer, bundle, entry, new_name, offsets[index])
        if plan.object_graph is not None:
            add_object_graph(writer, plan.object_graph)
        writer.commit()
    return WriteResult(dst, shards, count, notes=list(plan.notes))
