"""Shared pieces of applying rename / prune / merge plans with BundleWriter.

Tensor bytes are never decoded for V2 inputs: ``rename`` and ``merge`` adopt the source data
files as shards (copied in-kernel or hard-linked) and write only a new index; ``prune`` streams
each kept tensor's raw bytes into one compacted data file and reuses its stored checksum. TF2
object graphs are rewritten to match (see bundle/objgraph.py) and stored in an extra shard so the
source files stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.reader import BundleReader, Entry
from tfckpt.bundle.slices import encode_slice_key
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import STRING, dtype_from_enum

Progress = Callable[[int], None]


@dataclass
class WriteResult:
    prefix: str
    shards: int
    tensors: int
    bytes_written: int = 0
    notes: list[str] = field(default_factory=list)


def key_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def add_object_graph(writer: BundleWriter, raw: bytes) -> None:
    """Store a serialized TF2 object graph as the scalar string tensor TF reads it from."""
    import numpy as np

    value = np.empty((), dtype=object)
    value[()] = raw
    writer.add_array(key_bytes(OBJECT_GRAPH_KEY), value, dtype_from_enum(STRING))


def copy_entry(entry: Entry, shard_offset: int = 0) -> Any:
    proto = type(entry.proto)()
    proto.CopyFrom(entry.proto)
    if shard_offset and not entry.slices:
        proto.shard_id = entry.shard_id + shard_offset
    return proto


def add_with_slices(
    writer: BundleWriter, bundle: BundleReader, entry: Entry, new_name: str, shard_offset: int = 0
) -> None:
    """Index entries for one tensor under a new name (a partitioned tensor's slices re-keyed)."""
    writer.add_entry(key_bytes(new_name), copy_entry(entry, shard_offset))
    for spec in entry.slices:
        part = bundle.slice_entry(entry, spec)
        writer.add_entry(
            encode_slice_key(key_bytes(new_name), spec), copy_entry(part, shard_offset)
        )


def write_decoded(writer: BundleWriter, ckpt: Checkpoint, name: str, new_name: str) -> None:
    info = ckpt.info(name)
    writer.add_array(key_bytes(new_name), ckpt.read(name), info.dtype)
