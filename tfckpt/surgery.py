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
from tfckpt.bundle.writer import COPY_CHUNK, BundleWriter
from tfckpt.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.dtypes import dtype_from_enum
from tfckpt.ops.merge import MergePlan
from tfckpt.ops.prune import PrunePlan
from tfckpt.ops.rename import RenamePlan

Progress = Callable[[int], None]
STRING = dtype_from_enum(7)


@dataclass
class WriteResult:
    prefix: str
    shards: int
    tensors: int
    bytes_written: int = 0
    notes: list[str] = field(default_factory=list)


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _object_graph_value(raw: bytes):  # type: ignore[no-untyped-def]
    import numpy as np

    value = np.empty((), dtype=object)
    value[()] = raw
    return value


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
) -> WriteResult:
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force) as writer:
            for info in ckpt.tensors():
                _write_decoded(writer, ckpt, info.name, plan.new_name(info.name))
            writer.commit()
        return WriteResult(dst, 1, len(ckpt.tensors()), notes=["V1 input: written as V2"])
    bundle = ckpt.bundle
    n = bundle.num_shards
    new_graph = plan.object_graph  # TF2: edited by plan_renames, stored in an extra shard
    shards = n + 1 if new_graph is not None else n
    with BundleWriter(dst, shards, force, own_shard=n if new_graph is not None else None) as w:
        for shard in range(n):
            w.adopt_shard(bundle.data_path(shard), shard, link, on_bytes)
        count = 0
        for entry in bundle.entries.values():
            if entry.is_slice_key:
                continue
            count += 1
            if entry.name == OBJECT_GRAPH_KEY and new_graph is not None:
                w.add_array(_key(OBJECT_GRAPH_KEY), _object_graph_value(new_graph), STRING)
                continue
            _add_with_slices(w, bundle, entry, plan.new_name(entry.name))
        w.commit()
    return WriteResult(dst, shards, count)


# ---- prune ----------------------------------------------------------------------------------
def _stream_raw(bundle: BundleReader, entry: Entry) -> Iterator[memoryview]:
    raw = bundle.raw(entry)
    for start in range(0, len(raw), COPY_CHUNK):
        chunk = raw[start : start + COPY_CHUNK]
        yield chunk
        bundle.release(entry.shard_id, entry.offset + start, len(chunk))


def _copy_tensor_bytes(writer: BundleWriter, bundle: BundleReader, entry: Entry, key: bytes) -> int:
    offset, size, crc = writer.add_stream(_stream_raw(bundle, entry), crc=entry.crc32c)
    proto = _copy_entry(entry)
    proto.shard_id, proto.offset, proto.size, proto.crc32c = 0, offset, size, crc
    writer.add_entry(key, proto)
    return size


def apply_prune(
    ckpt: Checkpoint,
    dst: str,
    plan: PrunePlan,
    force: bool = False,
    on_bytes: Progress | None = None,
) -> WriteResult:
    kept = set(plan.keep)
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force) as writer:
            for name in sorted(kept):
                _write_decoded(writer, ckpt, name, name)
            writer.commit()
        return WriteResult(dst, 1, len(kept), notes=["V1 input: written as V2"])
    bundle = ckpt.bundle
    new_graph: bytes | None = None
    raw_graph = objgraph.raw_graph(ckpt) if plan.drop else None
    if raw_graph is not None:
        new_graph = objgraph.drop_keys(raw_graph, set(plan.drop))
    written = 0
    with BundleWriter(dst, 1, force) as writer:
        # Copy in file order, so the source is read sequentially.
        entries = sorted(
            (e for e in bundle.entries.values() if not e.is_slice_key and e.name in kept),
            key=lambda e: (e.shard_id, e.offset),
        )
        for entry in entries:
            if entry.name == OBJECT_GRAPH_KEY and new_graph is not None:
                writer.add_array(_key(OBJECT_GRAPH_KEY), _object_graph_value(new_graph), STRING)
                continue
            if entry.slices:
                header = _copy_entry(entry)
                header.shard_id = header.offset = header.size = 0
                writer.add_entry(entry.key, header)
                for spec in entry.slices:
                    part = bundle.slice_entry(entry, spec)
                    written += _copy_tensor_bytes(writer, bundle, part, part.key)
                    if on_bytes:
                        on_bytes(part.size)
                continue
            written += _copy_tensor_bytes(writer, bundle, entry, entry.key)
            if on_bytes:
                on_bytes(entry.size)
        writer.commit()
    return WriteResult(dst, 1, len(entries), bytes_written=written)


# ---- merge ----------------------------------------------------------------------------------
def apply_merge(
    inputs: list[Checkpoint],
    dst: str,
    plan: MergePlan,
    link: bool = False,
    force: bool = False,
    on_bytes: Progress | None = None,
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
    # V1 inputs' tensors and the merged object graph are written into one extra shard.
    needs_own = plan.object_graph is not None or any(inputs[i].format == "V1" for i in used)
    own = total if needs_own else None
    shards = total + (1 if needs_own else 0)
    with BundleWriter(dst, max(shards, 1), force, own_shard=own if shards else 0) as writer:
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
            writer.add_array(_key(OBJECT_GRAPH_KEY), _object_graph_value(plan.object_graph), STRING)
        writer.commit()
    return WriteResult(dst, max(shards, 1), count, notes=list(plan.notes))
