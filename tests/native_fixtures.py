"""Checkpoints written by tfckpt's own writer: a fixture registry that needs no TensorFlow.

``NATIVE[name](prefix)`` writes one kind of checkpoint at ``prefix`` and returns what it holds
(``{name: numpy value}``), so most of the suite also runs where TensorFlow is not installed.
TF-made fixtures (examples/make_fixtures.py) stay the oracle; these are the quick, explicit ones.
The ``native`` pytest fixture (conftest.py) builds one on demand: ``native("tf1")`` -> prefix.

Kinds:
- ``tf1``: a name-based checkpoint as tf.compat.v1 Saver writes it with Adam (dense layers,
  global_step, ``/Adam`` and ``/Adam_1`` slots, ``beta1_power``/``beta2_power``);
- ``sharded``: the same tensors spread over two data shards;
- ``partitioned``: a variable saved as three slices plus a plain one;
- ``dtypes``: one tensor per dtype family, strings and bfloat16 included;
- ``tf2``: an object-based checkpoint with a ``_CHECKPOINTABLE_OBJECT_GRAPH`` (model, Adam-style
  optimizer with slot variables, save_counter);
- ``many``: ``count`` small float32 tensors (default 2,000), for scale tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfckpt import protos
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY
from tfckpt.bundle.slices import encode_slice_key, slice_to_proto
from tfckpt.bundle.state import record_latest
from tfckpt.bundle.writer import BundleWriter, make_entry
from tfckpt.dtypes import DType, dtype_from_name

Values = dict[str, np.ndarray]
ATTR = "/.ATTRIBUTES/VARIABLE_VALUE"


def _rng() -> np.random.Generator:
    return np.random.default_rng(20261201)


def _dtype_of(value: np.ndarray) -> DType:
    if value.dtype == object:
        return dtype_from_name("string")
    if value.dtype.name == "bfloat16":
        return dtype_from_name("bfloat16")
    return dtype_from_name(value.dtype.name)


def _write(prefix: Path, values: Values, shards: int = 1) -> Values:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if shards == 1:
        with BundleWriter(str(prefix), force=True) as writer:
            for name, value in values.items():
                writer.add_array(name, value, _dtype_of(value))
            writer.commit()
    else:
        # Shard i holds every shards-th tensor: written as separate one-shard bundles, whose data
        # files are then adopted as the shards of the real prefix.
        parts = [dict(list(values.items())[i::shards]) for i in range(shards)]
        entries: list[tuple[str, Any]] = []
        for i, part in enumerate(parts):
            part_prefix = prefix.parent / f".part{i}" / prefix.name
            _write(part_prefix, part)
            from tfckpt.bundle.reader import BundleReader

            reader = BundleReader(str(part_prefix))
            for entry in reader.entries.values():
                proto = type(entry.proto)()
                proto.CopyFrom(entry.proto)
                proto.shard_id = i
                entries.append((entry.name, proto))
            reader.close()
        with BundleWriter(str(prefix), shards, force=True, own_shard=None) as writer:
            for i in range(shards):
                part_data = prefix.parent / f".part{i}" / f"{prefix.name}.data-00000-of-00001"
                writer.adopt_shard(str(part_data), i)
            for name, proto in entries:
                writer.add_entry(name, proto)
            writer.commit()
    record_latest(str(prefix))
    return values


def tf1(prefix: Path) -> Values:
    rng = _rng()
    values: Values = {}
    for layer, (n_in, n_out) in (("dense", (4, 3)), ("dense_1", (3, 2))):
        kernel = rng.standard_normal((n_in, n_out)).astype(np.float32)
        bias = rng.standard_normal(n_out).astype(np.float32)
        for var, value in (("kernel", kernel), ("bias", bias)):
            values[f"{layer}/{var}"] = value
            values[f"{layer}/{var}/Adam"] = (value * 0.1).astype(np.float32)
            values[f"{layer}/{var}/Adam_1"] = (value * value).astype(np.float32)
    values["beta1_power"] = np.array(0.9**10, np.float32)
    values["beta2_power"] = np.array(0.999**10, np.float32)
    values["global_step"] = np.array(10, np.int64)
    return _write(prefix, values)


def sharded(prefix: Path) -> Values:
    values = {k: v for k, v in tf1(prefix.parent / ".unsharded" / prefix.name).items()}
    return _write(prefix, values, shards=2)


def partitioned(prefix: Path) -> Values:
    rng = _rng()
    full = rng.standard_normal((10, 4)).astype(np.float32)
    plain = np.arange(6, dtype=np.float32)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    specs = [((0, 4), (0, -1)), ((4, 3), (0, -1)), ((7, 3), (0, -1))]
    f32 = dtype_from_name("float32")
    with BundleWriter(str(prefix), force=True) as writer:
        slice_protos = [slice_to_proto(s, protos.TensorSliceProto()) for s in specs]
        writer.add_entry("emb/weights", make_entry(f32, full.shape, slices=slice_protos))
        for spec in specs:
            start, length = spec[0]
            part = np.ascontiguousarray(full[start : start + length])
            offset, size, crc = writer.add_bytes(part.tobytes())
            writer.add_entry(
                encode_slice_key(b"emb/weights", spec),
                make_entry(f32, part.shape, 0, offset, size, crc),
            )
        writer.add_array("plain/bias", plain, f32)
        writer.commit()
    record_latest(str(prefix))
    return {"emb/weights": full, "plain/bias": plain}


def dtypes(prefix: Path) -> Values:
    import ml_dtypes

    rng = _rng()
    values: Values = {
        "f16": rng.standard_normal(5).astype(np.float16),
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f64": rng.standard_normal(4),
        "bf16": rng.standard_normal(6).astype(ml_dtypes.bfloat16),
        "i8": np.arange(-3, 3, dtype=np.int8),
        "i32": np.arange(7, dtype=np.int32),
        "i64": np.array([-(2**62), 2**62], np.int64),
        "u8": np.arange(9, dtype=np.uint8).reshape(3, 3),
        "bool": np.array([True, False, True]),
        "c64": np.array([1 + 2j, -3j], np.complex64),
        "scalar": np.array(3.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "str": np.array([b"", b"hello", b"\xff\x00"], dtype=object),
        "str_scalar": np.array(b"vocab.txt", dtype=object),
    }
    return _write(prefix, values)


def object_graph(paths: dict[str, str], slots: dict[str, dict[str, str]] | None = None) -> bytes:
    """A TrackableObjectGraph whose variables sit at ``paths`` (object path -> full_name) and
    whose ``optimizer`` object holds ``slots`` (variable path -> {slot name: slot path}).

    Intermediate objects are created along each path; slot variables hang under the optimizer
    as TF2 keys them (``<var>/.OPTIMIZER_SLOT/optimizer/<slot>``)."""
    graph = protos.TrackableObjectGraph()
    graph.nodes.add()  # the root
    ids: dict[str, int] = {"": 0}

    def node(path: str) -> int:
        if path in ids:
            return ids[path]
        parent_path, _, local = path.rpartition("/")
        parent = node(parent_path)
        graph.nodes.add()
        ids[path] = len(graph.nodes) - 1
        ref = graph.nodes[parent].children.add()
        ref.node_id, ref.local_name = ids[path], local
        return ids[path]

    for path, full_name in paths.items():
        attr = graph.nodes[node(path)].attributes.add()
        attr.name, attr.full_name, attr.checkpoint_key = "VARIABLE_VALUE", full_name, path + ATTR
    for var_path, var_slots in (slots or {}).items():
        optimizer = node("optimizer")
        for slot_name, slot_path in var_slots.items():
            graph.nodes.add()
            slot_id = len(graph.nodes) - 1
            attr = graph.nodes[slot_id].attributes.add()
            attr.name, attr.full_name = "VARIABLE_VALUE", slot_path
            attr.checkpoint_key = f"{var_path}/.OPTIMIZER_SLOT/optimizer/{slot_name}{ATTR}"
            ref = graph.nodes[optimizer].slot_variables.add()
            ref.original_variable_node_id = ids[var_path]
            ref.slot_name = slot_name
            ref.slot_variable_node_id = slot_id
    for n in graph.nodes:
        n.has_checkpoint_values.value = True
    return graph.SerializeToString()


def tf2(prefix: Path) -> Values:
    rng = _rng()
    variables = {
        "model/dense/kernel": rng.standard_normal((4, 3)).astype(np.float32),
        "model/dense/bias": rng.standard_normal(3).astype(np.float32),
        "model/out/kernel": rng.standard_normal((3, 1)).astype(np.float32),
        "optimizer/iter": np.array(10, np.int64),
        "save_counter": np.array(1, np.int64),
    }
    trainable = [p for p in variables if p.startswith("model/")]
    slots = {p: {"m": f"{p}/m", "v": f"{p}/v"} for p in trainable}
    values: Values = {path + ATTR: value for path, value in variables.items()}
    for path in trainable:
        for slot in ("m", "v"):
            key = f"{path}/.OPTIMIZER_SLOT/optimizer/{slot}{ATTR}"
            values[key] = np.zeros_like(variables[path])
    graph = object_graph({p: p.split("/", 1)[-1] for p in variables}, slots)
    values[OBJECT_GRAPH_KEY] = np.array(graph, dtype=object)
    return _write(prefix, values)


def many(prefix: Path, count: int = 2000) -> Values:
    values = {
        f"layer_{i // 100:04d}/unit_{i % 100:02d}/w": np.full(4, i, np.float32)
        for i in range(count)
    }
    return _write(prefix, values)


NATIVE: dict[str, Callable[[Path], Values]] = {
    "tf1": tf1,
    "sharded": sharded,
    "partitioned": partitioned,
    "dtypes": dtypes,
    "tf2": tf2,
    "many": many,
}
