"""Checkpoints written by tfckpt's own writer: fixture registries that need no TensorFlow.

Two registries, so that most of the suite also runs where TensorFlow is not installed. TF-made
fixtures (examples/make_fixtures.py) stay the oracle: tests/test_native_fixtures.py checks, when
TF is installed, that TF reads every checkpoint here as written and that each twin has the
structure of its TF-made fixture.

``NATIVE[kind](prefix)`` writes one small, explicit kind of checkpoint at ``prefix`` and returns
what it holds (``{name: numpy value}``). The ``native`` pytest fixture (conftest.py) builds one on
demand: ``native("tf1")`` -> prefix. Kinds:

- ``tf1``: a name-based checkpoint as tf.compat.v1 Saver writes it with Adam (dense layers,
  global_step, ``/Adam`` and ``/Adam_1`` slots, ``beta1_power``/``beta2_power``);
- ``sharded``: the same tensors spread over two data shards;
- ``partitioned``: a variable saved as three slices plus a plain one;
- ``dtypes``: one tensor per dtype family, strings and bfloat16 included;
- ``tf2``: an object-based checkpoint with a ``_CHECKPOINTABLE_OBJECT_GRAPH`` (model, Adam-style
  optimizer with slot variables, save_counter);
- ``many``: ``count`` small float32 tensors (default 2,000), for scale tests.

``TWINS[name]`` builds the *twin* of the TF-made fixture ``name``: the same tensor names, dtypes,
shapes, shards, slices, prefix name and (TF2) object graph, with values of its own. The TF1
Saver twins (``tf1_adam``, ``tf1_slots``, ``tf1_multi`` and the copies of ``tf1_adam``) have a
``.meta`` too: a minimal Saver graph of their variables (``_write_meta``), which TF imports and
restores through; the other ``.meta`` files (model graphs, partitioned and sharded savers) are
TF's alone. The ``nfx`` pytest fixture is ``{name: Fixture}`` like ``fx``,
each twin built on first use; ``any_fx`` is ``nfx``, and ``fx`` too when TF is installed (one run
per origin). So a test written against ``fx["tf1_adam"]`` runs unchanged on ``nfx["tf1_adam"]``.
Twins (see each builder's docstring): ``tf1_adam``, ``tf1_slots``, ``tf1_multi``, ``sharded``,
``partitioned``, ``dtypes``, ``tf2_module``, ``tf2_keras``, ``tf2_nested_optimizer``, ``v1`` and
the damaged copies ``damaged_truncated``, ``damaged_bitflip``, ``damaged_swapped``,
``index_only``, ``index_half`` (their ``unreadable`` lists come from tfckpt's reader here and are
confirmed by TF's in test_native_fixtures.py). Not twinned: SavedModels, graphs,
``estimator_cf`` (they are graphs) and ``tf2_iterator`` (a tf.data variant).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfckpt import protos
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY
from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.slices import encode_slice_key, slice_to_proto
from tfckpt.bundle.state import record_latest
from tfckpt.bundle.table import TableWriter
from tfckpt.bundle.writer import BundleWriter, make_entry
from tfckpt.dtypes import DType, dtype_from_name

from fixtures import EXAMPLES, Fixture, HfFixture, read_hf_manifest

Values = dict[str, np.ndarray]
ATTR = "/.ATTRIBUTES/VARIABLE_VALUE"
DATA = ".data-00000-of-00001"


def _rng(seed: int = 20261201) -> np.random.Generator:
    return np.random.default_rng(seed)


def _dtype_of(value: np.ndarray, name: str | None = None) -> DType:
    if name is not None:
        return dtype_from_name(name)
    if value.dtype == object:
        return dtype_from_name("string")
    return dtype_from_name(value.dtype.name)  # bfloat16, float8 and int4 as ml_dtypes names them


def _write(
    prefix: Path,
    values: Values,
    shards: int = 1,
    dtypes: dict[str, str] | None = None,
    state: bool = True,
) -> Values:
    """Write ``values`` at ``prefix`` in name order, as TF's SaveV2 does (``dtypes``: TF dtype
    names where the numpy type does not say it, e.g. ``qint8``); with ``shards`` > 1, shard i
    holds every shards-th tensor. ``state``: name the prefix in its directory's state file."""
    names = sorted(values)
    _write_parts(prefix, [{n: values[n] for n in names[i::shards]} for i in range(shards)], dtypes)
    if state:
        record_latest(str(prefix))
    return values


def _write_parts(prefix: Path, parts: list[Values], dtypes: dict[str, str] | None = None) -> None:
    """One data shard per part: each part is written as a one-shard bundle elsewhere, whose data
    file is then adopted as shard i of ``prefix``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    dtypes = dtypes or {}
    if len(parts) == 1:
        with BundleWriter(str(prefix), force=True) as writer:
            for name in sorted(parts[0]):
                writer.add_array(name, parts[0][name], _dtype_of(parts[0][name], dtypes.get(name)))
            writer.commit()
        return
    with tempfile.TemporaryDirectory() as tmp:
        entries: list[tuple[bytes, Any]] = []
        for i, part in enumerate(parts):
            part_prefix = Path(tmp) / f"part{i}" / prefix.name
            _write_parts(part_prefix, [part], dtypes)
            reader = BundleReader(str(part_prefix))
            for entry in reader.entries.values():
                proto = type(entry.proto)()
                proto.CopyFrom(entry.proto)
                proto.shard_id = i
                entries.append((entry.key, proto))
            reader.close()
        with BundleWriter(str(prefix), len(parts), force=True, own_shard=None) as writer:
            for i in range(len(parts)):
                writer.adopt_shard(str(Path(tmp) / f"part{i}" / f"{prefix.name}{DATA}"), i)
            for name, proto in entries:
                writer.add_entry(name, proto)
            writer.commit()


def flip_stored_byte(prefix: Path, key: str, at: int, mask: int = 0x01) -> None:
    """Damage a single-shard checkpoint in place: byte ``at`` of ``key``'s stored bytes XORed
    with ``mask``, the index left as it was (its checksum no longer matches)."""
    data = Path(str(prefix) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    reader = BundleReader(str(prefix))
    cols = reader.columns
    raw[cols.offset[cols.keys.index(key.encode())] + at] ^= mask
    reader.close()
    data.write_bytes(bytes(raw))


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


# ---- twins of the TF-made fixtures ------------------------------------------------------------
def _fixture(name: str, kind: str, path: Path, **info: Any) -> Fixture:
    meta = Path(f"{path}.meta")
    return Fixture(
        name=name,
        kind=kind,
        path=path,
        meta=meta if meta.exists() else None,
        info={"kind": kind, **info},
    )


def _tf1_values(seed: int, width: int, step: int, slots: tuple[str, ...]) -> Values:
    """The variables of examples/make_fixtures.py's ``_tf1_model`` (two dense layers under
    ``model/``, ``global_step``) with optimizer ``slots``; Adam adds its beta powers."""
    rng = _rng(seed)
    shapes = {
        "model/dense0/kernel": (5, width),
        "model/dense0/bias": (width,),
        "model/dense1/kernel": (width, 1),
        "model/dense1/bias": (1,),
    }
    values: Values = {}
    for name, shape in shapes.items():
        values[name] = rng.standard_normal(shape).astype(np.float32)
        for slot in slots:
            values[f"{name}/{slot}"] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
    if "Adam" in slots:
        values["beta1_power"] = np.array(0.9 ** (step + 1), np.float32)
        values["beta2_power"] = np.array(0.999 ** (step + 1), np.float32)
    values["global_step"] = np.array(step, np.int64)
    return values


def _write_meta(prefix: Path, values: Values, trainable: Callable[[str], bool]) -> Path:
    """``prefix.meta``: the MetaGraphDef a tf.compat.v1 Saver exports for resource variables
    holding ``values`` (names, dtypes, shapes) and nothing else: per variable a VarHandleOp, an
    initializer (zeros) and a read; the Saver's SaveV2 / RestoreV2 subgraph and SaverDef; the
    ``variables``, ``trainable_variables`` and ``global_step`` collections. TF imports it and
    restores the checkpoint through it (test_native_fixtures.py)."""
    graph = protos.GraphDef()
    graph.versions.producer = 1286

    def node(name: str, op: str, inputs: list[str] = (), **attrs: Any) -> Any:  # type: ignore[assignment]
        n = graph.node.add(name=name, op=op, input=list(inputs))
        for key, value in attrs.items():
            if isinstance(value, DType):
                n.attr[key].type = value.enum
            elif isinstance(value, tuple):  # a shape
                n.attr[key].shape.SetInParent()
                for size in value:
                    n.attr[key].shape.dim.add(size=size)
            elif isinstance(value, list):  # a list of dtypes
                n.attr[key].list.type.extend(d.enum for d in value)
            elif isinstance(value, protos.TensorProto):
                n.attr[key].tensor.CopyFrom(value)
            else:
                n.attr[key].s = value.encode()
        return n

    def const(name: str, dtype: DType, shape: tuple[int, ...], field: str, items: list[Any]) -> str:
        tensor = protos.TensorProto(dtype=dtype.enum)
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        getattr(tensor, field).extend(items)
        node(name, "Const", dtype=dtype, value=tensor)
        return name

    string = dtype_from_name("string")
    names = sorted(values)
    dtypes = [_dtype_of(values[n]) for n in names]
    meta = protos.MetaGraphDef()
    zero = {"float32": "float_val", "int64": "int64_val"}
    for name, dtype in zip(names, dtypes):
        shape = tuple(values[name].shape)
        node(name, "VarHandleOp", dtype=dtype, shape=shape, container="", shared_name=name)
        initial = const(f"{name}/Initializer/zeros", dtype, shape, zero[dtype.name], [0])
        node(f"{name}/Assign", "AssignVariableOp", [name, initial], dtype=dtype)
        node(f"{name}/Read/ReadVariableOp", "ReadVariableOp", [name], dtype=dtype)
        variable = protos.VariableDef(
            variable_name=f"{name}:0",
            initial_value_name=f"{initial}:0",
            initializer_name=f"{name}/Assign",
            snapshot_name=f"{name}/Read/ReadVariableOp:0",
            trainable=trainable(name),
            is_resource=True,
        )
        keys = ["variables"] + (["trainable_variables"] if trainable(name) else [])
        keys += ["global_step"] if name == "global_step" else []
        for key in keys:
            meta.collection_def[key].bytes_list.value.append(variable.SerializeToString())
    node("init", "NoOp", [f"^{name}/Assign" for name in names])
    filename = const("save/filename/input", string, (), "string_val", [b"model"])
    node("save/filename", "PlaceholderWithDefault", [filename], dtype=string, shape=())
    node("save/Const", "PlaceholderWithDefault", ["save/filename"], dtype=string, shape=())
    keys = [n.encode() for n in names]
    for op in ("SaveV2", "RestoreV2"):
        const(f"save/{op}/tensor_names", string, (len(names),), "string_val", keys)
        const(f"save/{op}/shape_and_slices", string, (len(names),), "string_val", [b""] * len(keys))
    common = ["save/Const", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices"]
    reads = [f"{n}/Read/ReadVariableOp" for n in names]
    node("save/SaveV2", "SaveV2", common + reads, dtypes=dtypes)
    node("save/control_dependency", "Identity", ["save/Const", "^save/SaveV2"], T=string)
    restore = ["save/Const", "save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"]
    node("save/RestoreV2", "RestoreV2", restore, dtypes=dtypes)
    assigns = []
    for i, (name, dtype) in enumerate(zip(names, dtypes)):
        suffix = f"_{i}" if i else ""
        node(f"save/Identity{suffix}", "Identity", [f"save/RestoreV2:{i}"], T=dtype)
        node(
            f"save/AssignVariableOp{suffix}",
            "AssignVariableOp",
            [name, f"save/Identity{suffix}"],
            dtype=dtype,
        )
        assigns.append(f"^save/AssignVariableOp{suffix}")
    node("save/restore_all", "NoOp", assigns)
    meta.graph_def.CopyFrom(graph)
    meta.saver_def.filename_tensor_name = "save/Const:0"
    meta.saver_def.save_tensor_name = "save/control_dependency:0"
    meta.saver_def.restore_op_name = "save/restore_all"
    meta.saver_def.max_to_keep = 5
    meta.saver_def.keep_checkpoint_every_n_hours = 10000
    meta.saver_def.version = protos.SaverDef.V2
    path = Path(f"{prefix}.meta")
    path.write_bytes(meta.SerializeToString())
    return path


def _model_variable(name: str) -> bool:
    """The trainable ones of a TF1 model: not its optimizer's slots and counters."""
    return name.startswith("model/") and name.count("/") == 2


def twin_tf1_adam(twins: NativeFixtures, d: Path) -> Fixture:
    """TF1 Saver, Adam, two steps: ``model.ckpt-2`` with its state file (15 tensors)."""
    values = _write(d / "model.ckpt-2", _tf1_values(1, 8, 2, ("Adam", "Adam_1")))
    _write_meta(d / "model.ckpt-2", values, _model_variable)
    return _fixture("tf1_adam", "tf1", d / "model.ckpt-2", values=values)


def twin_tf1_slots(twins: NativeFixtures, d: Path) -> Fixture:
    """RMSProp and Momentum slots on the same variables, no beta powers (17 tensors)."""
    slots = ("Momentum", "RMSProp", "RMSProp_1")
    values = _write(d / "model.ckpt-1", _tf1_values(2, 8, 1, slots))
    _write_meta(d / "model.ckpt-1", values, _model_variable)
    return _fixture("tf1_slots", "tf1", d / "model.ckpt-1", values=values)


def twin_tf1_multi(twins: NativeFixtures, d: Path) -> Fixture:
    """A training directory: ``model.ckpt-10``, ``-20`` and ``-30`` (narrower layers, Adam;
    every value differs from step to step) and a state file naming all three, latest last."""
    values = {}
    for step in (10, 20, 30):
        prefix = d / f"model.ckpt-{step}"
        values[step] = _write(prefix, _tf1_values(step, 4, step, ("Adam", "Adam_1")))
        _write_meta(prefix, values[step], _model_variable)
    return _fixture("tf1_multi", "dir", d, steps=[10, 20, 30], values=values[30])


def twin_sharded(twins: NativeFixtures, d: Path) -> Fixture:
    """Two devices, two data shards: ``dev0/*`` (float32, string) in shard 0, ``dev1/*`` (int64,
    float64) in shard 1."""
    parts: list[Values] = [
        {
            "dev0/a": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
            "dev0/s": np.array([b"x", b"yy"], dtype=object),
        },
        {"dev1/b": np.arange(6, dtype=np.int64), "dev1/c": np.ones((3, 2), np.float64)},
    ]
    _write_parts(d / "model.ckpt", parts)
    record_latest(str(d / "model.ckpt"))
    return _fixture("sharded", "tf1", d / "model.ckpt", values={**parts[0], **parts[1]})


def _add_partitioned(
    writer: BundleWriter, name: str, full: np.ndarray, axis: int, sizes: list[int]
) -> None:
    """``full`` saved as a partitioned variable cut along ``axis``: a header entry listing the
    slices (every extent explicit, as TF's Saver writes them) and one entry per slice."""
    dtype = _dtype_of(full)
    specs = []
    start = 0
    for size in sizes:
        spec = tuple((start, size) if i == axis else (0, n) for i, n in enumerate(full.shape))
        specs.append(spec)
        start += size
    slice_protos = [slice_to_proto(s, protos.TensorSliceProto()) for s in specs]
    writer.add_entry(name, make_entry(dtype, full.shape, slices=slice_protos))
    for spec in specs:
        part = np.ascontiguousarray(full[tuple(slice(s, s + n) for s, n in spec)])
        offset, size, crc = writer.add_bytes(part.tobytes())
        writer.add_entry(
            encode_slice_key(name.encode(), spec),
            make_entry(dtype, part.shape, 0, offset, size, crc),
        )


def twin_partitioned(twins: NativeFixtures, d: Path) -> Fixture:
    """``emb/rows`` [10, 4] cut in 3 along axis 0, ``emb/cols`` [4, 9] in 3 along axis 1, and a
    plain ``plain`` [3]."""
    rng = _rng(3)
    values: Values = {
        "emb/cols": rng.standard_normal((4, 9)).astype(np.float32),
        "emb/rows": rng.standard_normal((10, 4)).astype(np.float32),
        "plain": rng.standard_normal(3).astype(np.float32),
    }
    prefix = d / "model.ckpt"
    d.mkdir(parents=True, exist_ok=True)
    with BundleWriter(str(prefix), force=True) as writer:
        _add_partitioned(writer, "emb/cols", values["emb/cols"], 1, [3, 3, 3])
        _add_partitioned(writer, "emb/rows", values["emb/rows"], 0, [4, 3, 3])
        writer.add_array("plain", values["plain"], _dtype_of(values["plain"]))
        writer.commit()
    record_latest(str(prefix))
    return _fixture(
        "partitioned", "tf1", prefix, partitioned=["emb/cols", "emb/rows"], values=values
    )


def twin_dtypes(twins: NativeFixtures, d: Path) -> Fixture:
    """``dt/<dtype>`` [3, 4] for every numeric dtype TF saves (quantized, float8 and 4-bit
    included), ``dt/bool``, ``dt/string_2d`` (empty, short, long and non-UTF-8 strings),
    ``dt/string_scalar`` and ``shapes/*`` (scalar, empty, empty 2-D, rank 5); the values of
    examples/make_fixtures.py. At ``dtypes/tensors``, without a state file, as TF wrote it."""
    import ml_dtypes

    base = np.arange(-3, 9).reshape(3, 4)
    values: Values = {}
    names: dict[str, str] = {}
    for dtype in (
        "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "complex64", "complex128",
    ):  # fmt: skip
        numpy_type = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
        if dtype.startswith(("float", "b")):
            values[f"dt/{dtype}"] = (base * 0.75).astype(numpy_type)
        elif dtype.startswith("uint"):
            values[f"dt/{dtype}"] = np.abs(base).astype(numpy_type)
        elif dtype.startswith("complex"):
            values[f"dt/{dtype}"] = (base + 0.5j * base).astype(numpy_type)
        else:
            values[f"dt/{dtype}"] = base.astype(numpy_type)
    for qtype, plain in (
        ("qint8", "int8"), ("quint8", "uint8"), ("qint16", "int16"), ("quint16", "uint16"),
        ("qint32", "int32"),
    ):  # fmt: skip
        values[f"dt/{qtype}"] = np.abs(base).astype(plain)
        names[f"dt/{qtype}"] = qtype
    for ftype in ("float8_e5m2", "float8_e4m3fn"):
        values[f"dt/{ftype}"] = (base * 0.5).astype(getattr(ml_dtypes, ftype))
    for itype in ("int4", "uint4"):
        values[f"dt/{itype}"] = (np.abs(base) % 7).astype(getattr(ml_dtypes, itype))
    values["dt/bool"] = np.array([[True, False], [False, True]])
    values["dt/string_2d"] = np.array(
        [[b"", b"a"], [b"hello world", b"\xff\x00" + b"z" * 200]], dtype=object
    )
    values["dt/string_scalar"] = np.array(b"scalar string", dtype=object)
    values["shapes/scalar"] = np.array(3.5, np.float32)
    values["shapes/empty"] = np.zeros([0], np.float32)
    values["shapes/empty_2d"] = np.zeros([3, 0], np.int32)
    values["shapes/rank5"] = np.arange(24, dtype=np.float32).reshape(2, 3, 1, 2, 2)
    prefix = d / "tensors"
    _write(prefix, values, dtypes=names, state=False)
    kinds = {n: names.get(n) or _dtype_of(v).name for n, v in values.items()}
    return _fixture(
        "dtypes", "raw", prefix, names=sorted(values), dtypes=kinds, skipped={}, values=values
    )


class _Obj:
    """A trackable object of a TF2 object graph: named children (edges), in TF's order."""

    def __init__(self, **children: _Obj) -> None:
        self.children = children


class _Var(_Obj):
    def __init__(self, full_name: str, value: np.ndarray) -> None:
        super().__init__()
        self.full_name = full_name
        self.value = value


def _object_graph_checkpoint(prefix: Path, root: _Obj) -> Values:
    """Write the variables reachable from ``root`` with their TrackableObjectGraph, as
    ``tf.train.Checkpoint.save`` does: nodes numbered breadth-first along the children in order,
    each variable keyed by the path it is first reached by, ``has_checkpoint_values`` set on
    every node with a variable at or below it."""
    graph = protos.TrackableObjectGraph()
    ids: dict[int, int] = {}
    order: list[tuple[_Obj, str]] = [(root, "")]
    ids[id(root)] = 0
    graph.nodes.add()
    values: Values = {}
    for obj, path in order:  # grows while it is walked: breadth first
        node = graph.nodes[ids[id(obj)]]
        for local, child in obj.children.items():
            if id(child) not in ids:
                ids[id(child)] = len(graph.nodes)
                graph.nodes.add()
                order.append((child, f"{path}{local}/"))
            node.children.add(node_id=ids[id(child)], local_name=local)
        if isinstance(obj, _Var):
            key = path + ".ATTRIBUTES/VARIABLE_VALUE"
            node.attributes.add(name="VARIABLE_VALUE", full_name=obj.full_name, checkpoint_key=key)
            values[key] = obj.value

    def holds(node_id: int, seen: set[int]) -> bool:
        node = graph.nodes[node_id]
        seen.add(node_id)
        return bool(node.attributes) or any(
            holds(c.node_id, seen) for c in node.children if c.node_id not in seen
        )

    for node_id, node in enumerate(graph.nodes):
        node.has_checkpoint_values.value = holds(node_id, set())
    values[OBJECT_GRAPH_KEY] = np.array(graph.SerializeToString(), dtype=object)
    return _write(prefix, values)


def twin_tf2_module(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf.train.Checkpoint(net=Net())`` of examples/fixture_models.py's ``make_net``: ``net/enc``
    (w [4, 3], b [3]), ``net/dec`` (w [3, 2], b [2]) and ``save_counter``."""
    rng = _rng(4)

    def block(n_in: int, n_out: int) -> _Obj:
        w = rng.standard_normal((n_in, n_out)).astype(np.float32)
        return _Obj(w=_Var("w", w), b=_Var("b", np.zeros(n_out, np.float32)))

    net = _Obj(enc=block(4, 3), dec=block(3, 2))
    root = _Obj(net=net, save_counter=_Var("save_counter", np.array(1, np.int64)))
    values = _object_graph_checkpoint(d / "ckpt-1", root)
    return _fixture("tf2_module", "tf2", d / "ckpt-1", values=values)


def _keras_objects(
    seed: int, model_name: str, dense: tuple[str, str], adam: str
) -> tuple[_Obj, _Obj]:
    """A Keras 3 Sequential model (Input, Dense(4, relu), Dense(2)) on 3 inputs and its Adam
    optimizer after one step: ``(model, optimizer)``. The optimizer tracks the model's weights
    under ``_trainable_variables``, its state under ``_variables`` (``_iterations``,
    ``_learning_rate``, then momentum and velocity per weight) and again under ``_momentums`` /
    ``_velocities``; the model reaches its weights through ``_functional/_operations``."""
    rng = _rng(seed)
    weights: list[_Var] = []
    for layer, shape in (
        (dense[0], (3, 4)),
        (dense[0], (4,)),
        (dense[1], (4, 2)),
        (dense[1], (2,)),
    ):
        part = "kernel" if len(shape) == 2 else "bias"
        value = rng.standard_normal(shape).astype(np.float32)
        weights.append(_Var(f"{model_name}/{layer}/{part}", value))
    iterations = _Var(f"{adam}/iteration", np.array(1, np.int64))
    learning_rate = _Var(f"{adam}/learning_rate", np.array(0.01, np.float32))
    momentums, velocities = [], []
    for weight in weights:
        stem = weight.full_name.replace("/", "_")
        shape = weight.value.shape
        momentums.append(_Var(f"{adam}/{stem}_momentum", np.full(shape, 0.001, np.float32)))
        velocities.append(_Var(f"{adam}/{stem}_velocity", np.full(shape, 1e-6, np.float32)))
    state = [iterations, learning_rate]
    for m, v in zip(momentums, velocities):
        state += [m, v]
    optimizer = _Obj(
        _variables=_Obj(**{str(i): v for i, v in enumerate(state)}),
        _trainable_variables=_Obj(**{str(i): w for i, w in enumerate(weights)}),
        _trainable_variables_indices=_Obj(),
        _iterations=iterations,
        _learning_rate=learning_rate,
        _momentums=_Obj(**{str(i): m for i, m in enumerate(momentums)}),
        _velocities=_Obj(**{str(i): v for i, v in enumerate(velocities)}),
    )
    empty = (
        "_tracked", "_inbound_nodes", "_outbound_nodes", "_losses", "_losses_override",
        "call_signature_parameters", "_call_has_context_arg",
    )  # fmt: skip
    operations = _Obj(
        **{
            "0": _Obj(),  # the InputLayer
            "1": _Obj(_kernel=weights[0], bias=weights[1]),
            "2": _Obj(_kernel=weights[2], bias=weights[3]),
        }
    )
    functional = _Obj(**{name: _Obj() for name in empty}, _operations=operations)
    return _Obj(_functional=functional), optimizer


def twin_tf2_keras(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf.train.Checkpoint(model=model, optimizer=Adam)`` of a Keras 3 model after one step:
    the model's weights are keyed through the optimizer (``optimizer/_trainable_variables/N``),
    its Adam state is ``optimizer/_variables/2..9`` (16 tensors with the object graph)."""
    model, optimizer = _keras_objects(5, "sequential", ("dense", "dense_1"), "adam")
    counter = _Var("save_counter", np.array(1, np.int64))
    root = _Obj(model=model, optimizer=optimizer, save_counter=counter)
    values = _object_graph_checkpoint(d / "ckpt-1", root)
    return _fixture("tf2_keras", "tf2", d / "ckpt-1", values=values)


def twin_tf2_nested_optimizer(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf.train.Checkpoint(net=model)`` of a compiled and fitted Keras 3 model: its optimizer is
    tracked below the root, at ``net/optimizer`` (4 model and 10 optimizer variables)."""
    model, optimizer = _keras_objects(6, "sequential_1", ("dense_2", "dense_3"), "adam_1")
    net = _Obj(
        _functional=model.children["_functional"],
        optimizer=optimizer,
        _compiled_trainable_state=_Obj(),
    )
    root = _Obj(net=net, save_counter=_Var("save_counter", np.array(1, np.int64)))
    values = _object_graph_checkpoint(d / "ckpt-1", root)
    return _fixture(
        "tf2_nested_optimizer",
        "tf2",
        d / "ckpt-1",
        model_variables=4,
        optimizer_variables=10,
        values=values,
    )


_V1_FIELDS = {"float32": "float_val", "int64": "int64_val"}


def _write_v1(prefix: Path, values: Values) -> None:
    """A legacy V1 checkpoint (FORMAT.md §8): one table file at ``prefix`` whose ``""`` key holds
    the slice metadata and whose other keys hold each tensor as one full slice."""
    meta = protos.SavedTensorSlices()
    pairs: list[tuple[bytes, bytes]] = []
    for name in sorted(values):
        value = values[name]
        dtype = _dtype_of(value)
        tensor = meta.meta.tensor.add(name=name, type=dtype.enum)
        for n in value.shape:
            tensor.shape.dim.add(size=n)
        spec = tuple((0, -1) for _ in value.shape)
        slice_to_proto(spec, tensor.slice.add())
        saved = protos.SavedTensorSlices()
        saved.data.name = name
        slice_to_proto(spec, saved.data.slice)
        getattr(saved.data.data, _V1_FIELDS[dtype.name]).extend(value.reshape(-1).tolist())
        pairs.append((encode_slice_key(name.encode(), spec), saved.SerializeToString()))
    meta.meta.versions.producer = 1
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix, "wb") as f:
        table = TableWriter(f)
        for key, value in sorted([(b"", meta.SerializeToString()), *pairs]):
            table.add(key, value)
        table.finish()


def twin_v1(twins: NativeFixtures, d: Path) -> Fixture:
    """A legacy V1 checkpoint (TF1 Saver with ``write_version=V1``): ``v1/a`` float32 [2, 2] and
    ``v1/n`` int64 [3] in the table file ``model.ckpt``, with a state file."""
    values: Values = {
        "v1/a": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
        "v1/n": np.array([5, 6, 7], np.int64),
    }
    _write_v1(d / "model.ckpt", values)
    record_latest(str(d / "model.ckpt"))
    return _fixture("v1", "v1", d / "model.ckpt", values=values)


def _copy(prefix: Path, d: Path, suffixes: tuple[str, ...], name: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        shutil.copyfile(f"{prefix}{suffix}", d / f"{name or prefix.name}{suffix}")
    return d / (name or prefix.name)


def _unreadable(prefix: Path) -> list[str]:
    """The tensors tfckpt's reader refuses to read (TF's reader agrees: test_native_fixtures)."""
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.errors import CorruptCheckpoint

    bad = []
    with open_checkpoint(str(prefix)) as ckpt:
        for info in ckpt.tensors():
            try:
                ckpt.read(info.name)
            except CorruptCheckpoint:
                bad.append(info.name)
    return bad


def twin_damaged_truncated(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf1_adam`` with its data shard cut 100 bytes short: the last tensors are unreadable."""
    prefix = _copy(twins["tf1_adam"].path, d, (".index", DATA, ".meta"))
    with open(f"{prefix}{DATA}", "r+b") as f:
        f.truncate(f.seek(0, 2) - 100)
    return _fixture(
        "damaged_truncated",
        "damaged",
        prefix,
        damage="truncated",
        source="tf1_adam",
        unreadable=_unreadable(prefix),
    )


def twin_damaged_bitflip(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf1_adam`` with one bit flipped in the middle of ``model/dense0/kernel`` (a model weight,
    which every writer, prune included, must copy)."""
    prefix = _copy(twins["tf1_adam"].path, d, (".index", DATA, ".meta"))
    reader = BundleReader(str(prefix))
    entry = reader.entries[b"model/dense0/kernel"]
    reader.close()
    data = Path(f"{prefix}{DATA}")
    raw = bytearray(data.read_bytes())
    raw[entry.offset + entry.size // 2] ^= 0x10
    data.write_bytes(bytes(raw))
    unreadable = _unreadable(prefix)
    assert unreadable == ["model/dense0/kernel"], unreadable
    return _fixture(
        "damaged_bitflip",
        "damaged",
        prefix,
        damage="bitflip",
        source="tf1_adam",
        unreadable=unreadable,
    )


def twin_damaged_swapped(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf1_multi``'s step-10 index paired with the step-20 data (same layout, other values):
    every checksum fails."""
    multi = twins["tf1_multi"].path
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(multi / "model.ckpt-10.index", d / "model.ckpt-10.index")
    shutil.copyfile(multi / f"model.ckpt-20{DATA}", d / f"model.ckpt-10{DATA}")
    prefix = d / "model.ckpt-10"
    return _fixture(
        "damaged_swapped",
        "damaged",
        prefix,
        damage="swapped",
        source="tf1_multi/model.ckpt-10",
        unreadable=_unreadable(prefix),
    )


def twin_index_only(twins: NativeFixtures, d: Path) -> Fixture:
    """``tf1_adam``'s index without its data file."""
    source = twins["tf1_adam"]
    prefix = _copy(source.path, d, (".index", ".meta"))
    return _fixture("index_only", "index_only", prefix, names=sorted(source.info["values"]))


def twin_index_half(twins: NativeFixtures, d: Path) -> Fixture:
    """``sharded``'s index with data shard 0 of 2 only."""
    prefix = _copy(twins["sharded"].path, d, (".index", ".data-00000-of-00002"))
    return _fixture("index_half", "index_only", prefix, missing_shards=[1])


TWINS: dict[str, Callable[[NativeFixtures, Path], Fixture]] = {
    "tf1_adam": twin_tf1_adam,
    "tf1_slots": twin_tf1_slots,
    "tf1_multi": twin_tf1_multi,
    "sharded": twin_sharded,
    "partitioned": twin_partitioned,
    "dtypes": twin_dtypes,
    "tf2_module": twin_tf2_module,
    "tf2_keras": twin_tf2_keras,
    "tf2_nested_optimizer": twin_tf2_nested_optimizer,
    "v1": twin_v1,
    "damaged_truncated": twin_damaged_truncated,
    "damaged_bitflip": twin_damaged_bitflip,
    "damaged_swapped": twin_damaged_swapped,
    "index_only": twin_index_only,
    "index_half": twin_index_half,
}


class NativeFixtures(Mapping[str, Fixture]):
    """``{name: Fixture}`` of the twins (``TWINS``) under ``root``, each built on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, Fixture] = {}

    def __getitem__(self, name: str) -> Fixture:
        if name not in self._built:
            if name not in TWINS:
                raise KeyError(name)
            self._built[name] = TWINS[name](self, self.root / name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(TWINS)

    def __len__(self) -> int:
        return len(TWINS)


# ---- twins of the TF-made Hugging Face release layouts ------------------------------------------
def _save_hf(prefix: Path, values: Values, dtype: str = "float32", step: int | None = None) -> str:
    """examples/make_hf_checkpoints.py's ``save`` with tfckpt's writer: the values as ``dtype``,
    ``global_step`` (int64) and ``-<step>`` on the prefix when ``step`` is given, a state file."""
    import ml_dtypes

    numpy_type = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    values = {name: value.astype(numpy_type) for name, value in values.items()}
    if step is not None:
        values["global_step"] = np.array(step, np.int64)
        prefix = prefix.with_name(f"{prefix.name}-{step}")
    _write(prefix, values)
    return str(prefix)


def build_hf_twins(dest: Path) -> dict[str, HfFixture]:
    """Twins of the checkpoints examples/make_hf_checkpoints.py makes with TF (BERT, ALBERT,
    ELECTRA, T5 release layouts; configs and manifest alike), written by tfckpt's writer: the
    same names, dtypes, shapes and values (the script draws them with numpy)."""
    sys.path.insert(0, str(EXAMPLES))
    import make_hf_checkpoints

    make_hf_checkpoints.write_all(dest, _save_hf)
    return read_hf_manifest(dest)


def fixtures_of(request: Any, origin: str) -> Mapping[str, Fixture]:
    """The fixtures of one origin for a test parametrized over origins by hand: ``"native"``
    (``nfx``) or ``"tf"`` (``fx``, skipped without TensorFlow)."""
    return request.getfixturevalue({"native": "nfx", "tf": "fx"}[origin])
