"""The TF-free fixtures read back as written, and (when TF is installed) TF reads them the same
and each twin has the structure of its TF-made fixture."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_fixtures import ATTR, NATIVE, TWINS

from tfckpt import protos
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint
from tfckpt.errors import CorruptCheckpoint

from fixtures import EXAMPLES

sys.path.insert(0, str(EXAMPLES))
import fixture_models


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_native_fixture_reads_back(kind: str, tmp_path: Path) -> None:
    prefix = tmp_path / kind / "model.ckpt-10"
    values = NATIVE[kind](prefix)
    with open_checkpoint(prefix) as ckpt:
        assert {i.name for i in ckpt.tensors()} == set(values)
        for name, value in values.items():
            got = ckpt.read(name)
            assert got.shape == value.shape, name
            if value.dtype == object:
                assert list(got.reshape(-1)) == list(value.reshape(-1)), name
            else:
                assert got.tobytes() == np.ascontiguousarray(value).tobytes(), name
    if kind == "sharded":
        assert ckpt.num_shards == 2


@pytest.mark.tf
@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_tensorflow_reads_native_fixtures_the_same(kind: str, tmp_path: Path, tf: Any) -> None:
    prefix = tmp_path / kind / "model.ckpt-10"
    values = NATIVE[kind](prefix)
    reader = tf.train.load_checkpoint(str(prefix))
    assert set(reader.get_variable_to_shape_map()) == set(values)
    for name, value in values.items():
        if name == OBJECT_GRAPH_KEY:
            continue
        got = reader.get_tensor(name)
        if value.dtype == object:
            assert list(np.asarray(got).reshape(-1)) == list(value.reshape(-1)), name
        else:
            assert np.asarray(got).tobytes() == np.ascontiguousarray(value).tobytes(), name
    if kind == "tf2":
        model = tf.Module()
        model.dense = tf.Module()
        model.dense.kernel = tf.Variable(tf.zeros((4, 3)))
        model.dense.bias = tf.Variable(tf.zeros(3))
        model.out = tf.Module()
        model.out.kernel = tf.Variable(tf.zeros((3, 1)))
        tf.train.Checkpoint(model=model).restore(str(prefix)).expect_partial()
        assert np.array_equal(
            model.dense.kernel.numpy(), values["model/dense/kernel" + "/.ATTRIBUTES/VARIABLE_VALUE"]
        )


# ---- twins of the TF-made fixtures ------------------------------------------------------------
def _same(got: Any, want: np.ndarray) -> bool:
    got = np.asarray(got, dtype=object) if isinstance(got, bytes) else np.asarray(got)
    if want.dtype == object or got.dtype == object:
        return got.shape == want.shape and list(got.reshape(-1)) == list(want.reshape(-1))
    return got.shape == want.shape and got.tobytes() == np.ascontiguousarray(want).tobytes()


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_reads_back(name: str, nfx: Any) -> None:
    twin = nfx[name]
    assert twin.name == name
    assert (twin.meta is not None) == (
        name in ("tf1_adam", "tf1_slots", "damaged_truncated", "damaged_bitflip", "index_only")
    )
    if twin.intact:
        values = twin.info["values"]
        with open_checkpoint(twin.path) as ckpt:
            assert {i.name for i in ckpt.tensors()} == set(values)
            for key, value in values.items():
                assert _same(ckpt.read(key), value), key
    elif twin.kind == "damaged":  # the damage took, where it was meant to
        with open_checkpoint(twin.path) as ckpt:
            names = [i.name for i in ckpt.tensors()]
        expected = {
            "bitflip": ["model/dense0/kernel"],
            "swapped": names,
            # 100 bytes off a name-ordered data file: the tail of model/dense1/
            "truncated": [n for n in names if n.startswith("model/dense1/")][-4:],
        }[twin.info["damage"]]
        assert twin.info["unreadable"] == expected
    else:
        with pytest.raises(CorruptCheckpoint, match="data shard is missing"):
            open_checkpoint(twin.path)
        with open_checkpoint(twin.path, need_data=False) as ckpt:
            assert ckpt.tensors()


def _structure(path: Path) -> dict[str, Any]:
    """What a twin shares with its TF-made fixture: every index entry but its data (dtype,
    shape, shard, slices), the shard count, the format and the object graph without names."""
    with open_checkpoint(path, need_data=False) as ckpt:
        out: dict[str, Any] = {"format": ckpt.format, "prefix": Path(ckpt.prefix).name}
        if ckpt.format == "V2":
            out["shards"] = ckpt.num_shards
            out["entries"] = {
                e.label: (e.dtype.name, e.shape, e.shard_id, e.slices)
                for e in ckpt.bundle.entries.values()
                if e.key != OBJECT_GRAPH_KEY.encode()
            }
        out["tensors"] = [(i.name, i.dtype.name, i.shape) for i in ckpt.tensors()]
        raw = ckpt.object_graph_bytes() if ckpt.is_object_based else None
    if raw is not None:
        graph = protos.TrackableObjectGraph.FromString(raw)
        for node in graph.nodes:
            for attribute in node.attributes:
                attribute.full_name = ""  # the Keras layer names count up per process
        out["object_graph"] = graph
    return out


def _graph_variables(tf: Any, meta: Path) -> list[tuple[str, str, tuple[int, ...]]]:
    with tf.Graph().as_default():
        tf.compat.v1.train.import_meta_graph(str(meta))
        return sorted(
            (v.op.name, v.dtype.base_dtype.name, tuple(v.shape.as_list()))
            for v in tf.compat.v1.global_variables()
        )


def _restored_through(tf: Any, meta: Path, prefix: Path) -> list[tuple[str, str, tuple[int, ...]]]:
    """import_meta_graph + Saver.restore: every variable's (name, dtype, shape), each value
    checked against the checkpoint."""
    tf1 = tf.compat.v1
    out = []
    with tf.Graph().as_default():
        saver = tf1.train.import_meta_graph(str(meta))
        with tf1.Session() as sess:
            saver.restore(sess, str(prefix))
            with open_checkpoint(prefix) as ckpt:
                for v in tf1.global_variables():
                    value = sess.run(v)
                    assert _same(value, ckpt.read(v.op.name)), v.op.name
                    out.append((v.op.name, v.dtype.base_dtype.name, tuple(value.shape)))
    return sorted(out)


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_matches_its_tf_fixture(name: str, nfx: Any, fx: Any, tf: Any) -> None:
    """The twin has its TF-made fixture's structure, and TF's reader reads it as written (or, when
    damaged, refuses exactly the tensors the twin says it will)."""
    twin, made = nfx[name], fx[name]
    assert twin.kind == made.kind
    for key in ("damage", "source", "steps", "partitioned", "missing_shards", "model_variables"):
        assert twin.info.get(key) == made.info.get(key), key
    if made.kind == "dir":
        assert sorted(p.name for p in twin.path.glob("*.index")) == sorted(
            p.name for p in made.path.glob("*.index")
        )
        twin_path, made_path = twin.path / "model.ckpt-10", made.path / "model.ckpt-10"
    else:
        twin_path, made_path = twin.path, made.path
    ours, theirs = _structure(twin_path), _structure(made_path)
    if name == "dtypes":  # a TF build that cannot write a dtype skips it
        skipped = set(made.info["skipped"])
        ours["tensors"] = [t for t in ours["tensors"] if t[0].split("/")[-1] not in skipped]
        ours["entries"] = {k: v for k, v in ours["entries"].items() if k in theirs["entries"]}
        assert {k: twin.info["dtypes"][k] for k in made.info["dtypes"]} == made.info["dtypes"]
        with open_checkpoint(made.path) as ckpt:  # the very values of make_fixtures.py
            for key in made.info["names"]:
                assert _same(ckpt.read(key), twin.info["values"][key]), key
    assert ours == theirs

    if twin.kind == "index_only":
        names = sorted(n for n, _ in tf.train.list_variables(str(twin.path)))
        with open_checkpoint(twin.path, need_data=False) as ckpt:
            assert names == [i.name for i in ckpt.tensors()]
        return
    path = twin.path / "model.ckpt-30" if twin.kind == "dir" else twin.path
    meta = Path(f"{path}.meta")
    if meta.exists():  # the Saver graph: TF-made ones' variables; TF restores the twin with it
        made_meta = Path(f"{made.path / 'model.ckpt-30' if made.kind == 'dir' else made.path}.meta")
        assert _graph_variables(tf, made_meta) == _graph_variables(tf, meta)
        if twin.intact:
            assert _restored_through(tf, meta, path) == _structure(path)["tensors"]
    reader = tf.train.load_checkpoint(str(path))
    if twin.kind == "damaged":
        bad = []
        for key in sorted(reader.get_variable_to_shape_map()):
            try:
                reader.get_tensor(key)
            except Exception:
                bad.append(key)
        assert bad == twin.info["unreadable"]
        return
    values = twin.info["values"]
    assert set(reader.get_variable_to_shape_map()) == set(values)
    for key, value in values.items():
        if key != OBJECT_GRAPH_KEY:
            assert _same(reader.get_tensor(key), value), key
    if name == "tf2_module":
        net = fixture_models.make_net(tf)
        tf.train.Checkpoint(net=net).restore(str(path)).assert_existing_objects_matched()
        assert _same(net.dec.w.numpy(), values["net/dec/w" + ATTR])
    if name in ("tf2_keras", "tf2_nested_optimizer"):
        model = fixture_models.build_keras_model(tf)
        root = "model" if name == "tf2_keras" else "net"
        status = tf.train.Checkpoint(**{root: model}).restore(str(path))
        status.expect_partial().assert_existing_objects_matched()
        first = "optimizer" if name == "tf2_keras" else "net/optimizer"
        kernel = values[f"{first}/_trainable_variables/0{ATTR}"]
        assert _same(model.weights[0].numpy(), kernel)


@pytest.mark.tf
def test_hf_twins_equal_the_tf_made_checkpoints(hf_nfx: Any, hf_fx: Any, tf: Any) -> None:
    """Same files, configs, names, dtypes, shapes and values as TF's; TF reads each twin."""
    assert sorted(hf_nfx) == sorted(hf_fx)
    for name, twin in hf_nfx.items():
        made = hf_fx[name]
        assert twin.info == made.info, name
        assert twin.config.read_bytes() == made.config.read_bytes(), name
        with open_checkpoint(twin.path) as ours, open_checkpoint(made.path) as theirs:
            assert ours.tensors() == theirs.tensors(), name
            for info in ours.tensors():
                assert _same(ours.read(info.name), theirs.read(info.name)), (name, info.name)
        reader = tf.train.load_checkpoint(str(twin.path))
        with open_checkpoint(twin.path) as ours:
            for info in ours.tensors():
                assert _same(reader.get_tensor(info.name), ours.read(info.name)), info.name
