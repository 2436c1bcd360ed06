"""Write the test fixtures with TensorFlow: ``python examples/make_fixtures.py OUTDIR``.

Every kind of checkpoint tfckpt must handle, made by TensorFlow itself: TF1 Saver checkpoints
(Adam / Momentum / RMSProp slots, global step, .meta, several steps with a state file), a
two-device sharded save, partitioned variables, one tensor of every dtype (strings, bfloat16,
quantized, float8, empty and rank-5 shapes), TF2 ``tf.train.Checkpoint``s of a Keras model with
its optimizer and of a ``tf.Module``, SavedModels (TF1 and TF2), GraphDefs and a legacy V1
checkpoint. ``OUTDIR/manifest.json`` describes them; ``OUTDIR/.complete`` is written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixture_models

Manifest = dict[str, dict[str, Any]]


def _tf1_model(tf: Any, optimizer: str = "adam", width: int = 8) -> tuple[Any, Any, Any]:
    tf1 = tf.compat.v1
    x = tf1.placeholder(tf.float32, [None, 5], name="x")
    step = tf1.train.get_or_create_global_step()
    with tf1.variable_scope("model"):
        with tf1.variable_scope("dense0"):
            w0 = tf1.get_variable("kernel", [5, width])
            b0 = tf1.get_variable("bias", [width], initializer=tf1.zeros_initializer())
        with tf1.variable_scope("dense1"):
            w1 = tf1.get_variable("kernel", [width, 1])
            b1 = tf1.get_variable("bias", [1], initializer=tf1.zeros_initializer())
    out = tf.identity(tf.matmul(tf.nn.relu(tf.matmul(x, w0) + b0), w1) + b1, name="y")
    loss = tf.reduce_mean(tf.square(out - 1.0))
    opt = {
        "adam": lambda: tf1.train.AdamOptimizer(0.01),
        "momentum": lambda: tf1.train.MomentumOptimizer(0.01, 0.9),
        "rmsprop": lambda: tf1.train.RMSPropOptimizer(0.01),
    }[optimizer]()
    train = opt.minimize(loss, global_step=step)
    return x, train, step


def make_tf1(tf: Any, out: Path, manifest: Manifest) -> None:
    import numpy as np

    tf1 = tf.compat.v1
    feed = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    for name, optimizer, steps in (("tf1_adam", "adam", [2]), ("tf1_slots", "rmsprop", [1])):
        g = tf.Graph()
        with g.as_default():
            tf1.set_random_seed(1)
            x, train, _ = _tf1_model(tf, optimizer)
            if name == "tf1_slots":  # a second optimizer on the same variables: Momentum slots
                loss2 = tf.add_n([tf.reduce_sum(v) for v in tf1.trainable_variables()])
                mom = tf1.train.MomentumOptimizer(0.01, 0.9).minimize(loss2)
            saver = tf1.train.Saver()
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                for _ in range(steps[0]):
                    sess.run(train, {x: feed})
                if name == "tf1_slots":
                    sess.run(mom)
                prefix = saver.save(sess, str(out / name / "model.ckpt"), global_step=steps[0])
        manifest[name] = {"kind": "tf1", "path": prefix, "meta": prefix + ".meta"}

    g = tf.Graph()
    with g.as_default():
        tf1.set_random_seed(2)
        x, train, _ = _tf1_model(tf, "adam", width=4)
        saver = tf1.train.Saver(max_to_keep=5)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for step in (10, 20, 30):
                sess.run(train, {x: feed})
                saver.save(sess, str(out / "tf1_multi" / "model.ckpt"), global_step=step)
    manifest["tf1_multi"] = {
        "kind": "dir",
        "path": str(out / "tf1_multi"),
        "meta": None,
        "steps": [10, 20, 30],
    }


def make_sharded(tf: Any, out: Path, manifest: Manifest) -> None:
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        with tf.device("/cpu:0"):
            a = tf1.get_variable("dev0/a", initializer=tf.constant([[1.0, 2.0], [3.0, 4.0]]))
            s = tf1.get_variable("dev0/s", initializer=tf.constant([b"x", b"yy"]), dtype=tf.string)
        with tf.device("/cpu:1"):
            b = tf1.get_variable("dev1/b", initializer=tf.range(6, dtype=tf.int64))
            c = tf1.get_variable("dev1/c", initializer=tf.ones([3, 2], tf.float64))
        saver = tf1.train.Saver([a, s, b, c], sharded=True)
        config = tf1.ConfigProto(device_count={"CPU": 2})
        with tf1.Session(config=config) as sess:
            sess.run(tf1.global_variables_initializer())
            prefix = saver.save(sess, str(out / "sharded" / "model.ckpt"))
    data = sorted(p.name for p in (out / "sharded").glob("model.ckpt.data-*"))
    if len(data) != 2:
        raise SystemExit(f"sharded fixture has {len(data)} data files, expected 2: {data}")
    manifest["sharded"] = {"kind": "tf1", "path": prefix, "meta": prefix + ".meta"}


def save_partitioned(tf: Any, path: Path, scope: str | None = None) -> str:
    """Two variables cut in 3 along different axes and a plain one (under ``scope`` if given),
    saved by a TF1 Saver to ``path``; returns the prefix."""
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        tf1.set_random_seed(3)
        with tf1.variable_scope(scope) if scope else contextlib.nullcontext():
            rows = tf1.get_variable(
                "emb/rows", [10, 4], partitioner=tf1.fixed_size_partitioner(3, axis=0)
            )
            cols = tf1.get_variable(
                "emb/cols", [4, 9], partitioner=tf1.fixed_size_partitioner(3, axis=1)
            )
            plain = tf1.get_variable("plain", [3])
        tf.identity(tf.reduce_sum(rows) + tf.reduce_sum(cols) + tf.reduce_sum(plain), name="out")
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return str(saver.save(sess, str(path)))


def make_partitioned(tf: Any, out: Path, manifest: Manifest) -> None:
    prefix = save_partitioned(tf, out / "partitioned" / "model.ckpt")
    manifest["partitioned"] = {
        "kind": "tf1",
        "path": prefix,
        "meta": prefix + ".meta",
        "partitioned": ["emb/cols", "emb/rows"],
    }


def make_dtypes(tf: Any, out: Path, manifest: Manifest) -> None:
    import numpy as np

    tensors: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    base = np.arange(-3, 9).reshape(3, 4)
    for dtype in (
        "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "complex64", "complex128",
    ):  # fmt: skip
        values = base.astype(np.float64) * 0.75 if dtype.startswith(("float", "b")) else base
        if dtype.startswith("uint"):
            values = np.abs(base)
        if dtype.startswith("complex"):
            values = base + 0.5j * base
        tensors[f"dt/{dtype}"] = tf.cast(tf.constant(values), getattr(tf, dtype))
    tensors["dt/bool"] = tf.constant([[True, False], [False, True]])
    tensors["dt/string_2d"] = tf.constant([[b"", b"a"], [b"hello world", b"\xff\x00" + b"z" * 200]])
    tensors["dt/string_scalar"] = tf.constant(b"scalar string")
    for qtype, plain in (
        ("qint8", "int8"),
        ("quint8", "uint8"),
        ("qint16", "int16"),
        ("quint16", "uint16"),
        ("qint32", "int32"),
    ):
        try:
            tensors[f"dt/{qtype}"] = tf.bitcast(
                tf.constant(np.abs(base).astype(plain)), getattr(tf, qtype)
            )
        except Exception as exc:
            skipped[qtype] = f"{type(exc).__name__}: {exc}"[:200]
    for ftype in ("float8_e5m2", "float8_e4m3fn"):
        try:
            tensors[f"dt/{ftype}"] = tf.cast(
                tf.constant(base * 0.5, tf.float32), tf.dtypes.as_dtype(ftype)
            )
        except Exception as exc:
            skipped[ftype] = f"{type(exc).__name__}: {exc}"[:200]
    for itype in ("int4", "uint4"):
        try:
            tensors[f"dt/{itype}"] = tf.cast(
                tf.constant(np.abs(base) % 7), tf.dtypes.as_dtype(itype)
            )
        except Exception as exc:
            skipped[itype] = f"{type(exc).__name__}: {exc}"[:200]
    tensors["shapes/scalar"] = tf.constant(3.5)
    tensors["shapes/empty"] = tf.zeros([0], tf.float32)
    tensors["shapes/empty_2d"] = tf.zeros([3, 0], tf.int32)
    tensors["shapes/rank5"] = tf.reshape(
        tf.range(2 * 3 * 1 * 2 * 2, dtype=tf.float32), [2, 3, 1, 2, 2]
    )
    names = sorted(tensors)
    prefix = str(out / "dtypes" / "tensors")
    (out / "dtypes").mkdir(parents=True, exist_ok=True)
    # Save one by one to find which dtypes this TF can write; then save all that work at once.
    writable = []
    for name in names:
        probe = str(out / "dtypes" / "probe")
        try:
            tf.raw_ops.SaveV2(
                prefix=probe, tensor_names=[name], shape_and_slices=[""], tensors=[tensors[name]]
            )
            writable.append(name)
        except Exception as exc:
            skipped[name.split("/")[-1]] = f"SaveV2: {type(exc).__name__}: {exc}"[:200]
    for p in (out / "dtypes").glob("probe*"):
        p.unlink()
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=writable,
        shape_and_slices=[""] * len(writable),
        tensors=[tensors[n] for n in writable],
    )
    manifest["dtypes"] = {
        "kind": "raw",
        "path": prefix,
        "meta": None,
        "names": writable,
        "dtypes": {n: tensors[n].dtype.name for n in writable},
        "skipped": skipped,
    }


def make_tf2(tf: Any, out: Path, manifest: Manifest) -> None:
    import numpy as np

    tf.random.set_seed(4)
    model = fixture_models.build_keras_model(tf)
    optimizer = tf.keras.optimizers.Adam(0.01)
    x = np.random.default_rng(1).standard_normal((8, fixture_models.KERAS_INPUT)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x)))
    optimizer.apply_gradients(
        zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    )
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(
        str(out / "tf2_keras" / "ckpt")
    )
    manifest["tf2_keras"] = {"kind": "tf2", "path": prefix, "meta": None}

    net = fixture_models.make_net(tf)
    prefix = tf.train.Checkpoint(net=net).save(str(out / "tf2_module" / "ckpt"))
    manifest["tf2_module"] = {"kind": "tf2", "path": prefix, "meta": None}

    # A tf.data iterator saves its state as a DT_VARIANT tensor (FORMAT.md §5).
    iterator = iter(tf.data.Dataset.range(10).batch(3))
    next(iterator)
    state = tf.train.Checkpoint(iterator=iterator, step=tf.Variable(7, dtype=tf.int64))
    prefix = state.save(str(out / "tf2_iterator" / "ckpt"))
    manifest["tf2_iterator"] = {"kind": "tf2", "path": prefix, "meta": None, "variant": True}


def make_savedmodels(tf: Any, out: Path, manifest: Manifest) -> None:
    class Regressor(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[0.5], [-1.0]], name="w")
            self.b = tf.Variable([2.0], name="b")
            self.steps = tf.Variable(7, dtype=tf.int64, name="steps")

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return {"y": tf.matmul(x, self.w) + self.b}

    module = Regressor()
    path = out / "savedmodel_tf2"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    manifest["savedmodel_tf2"] = {"kind": "savedmodel", "path": str(path), "meta": None}

    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w = tf1.get_variable("w", initializer=tf.constant([[1.0], [2.0], [3.0]]))
        y = tf.identity(tf.matmul(x, w), name="y")
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            path = out / "savedmodel_tf1"
            tf1.saved_model.simple_save(sess, str(path), inputs={"x": x}, outputs={"y": y})
    manifest["savedmodel_tf1"] = {"kind": "savedmodel", "path": str(path), "meta": None}


def make_graphs(tf: Any, out: Path, manifest: Manifest) -> None:
    """Graph files for ``tfckpt graph`` / ``convert-pbtxt`` (all under ``graphs/``; the manifest
    entry's ``files`` are relative to it): the tf1_adam graph as a GraphDef (.pb, .pbtxt) and as
    a MetaGraphDef saved as .pb and as text; partitioned variables under an extra scope with
    their checkpoint (for --check prefix suggestions); a TF1 GraphDef and a TF2 SavedModel using
    file / print ops at top level and inside library functions (for --deny-ops), with a TF2
    checkpoint of the same module rooted at ``model/``."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = Path(manifest["tf1_adam"]["meta"])
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        tf1.train.import_meta_graph(str(meta))
        graph_def = g.as_graph_def()
    d = out / "graphs"
    tf.io.write_graph(graph_def, str(d), "graph.pb", as_text=False)
    tf.io.write_graph(graph_def, str(d), "graph.pbtxt", as_text=True)
    (d / "metagraph.pb").write_bytes(meta.read_bytes())
    meta_def = meta_graph_pb2.MetaGraphDef.FromString(meta.read_bytes())
    (d / "metagraph.pbtxt").write_text(text_format.MessageToString(meta_def))

    # The partitioned fixture's variables, one scope deeper, with their own checkpoint.
    scoped = save_partitioned(tf, d / "scoped" / "model.ckpt", scope="pretrained")

    # A TF1 GraphDef reading and writing files, printing inside a library function.
    g = tf.Graph()
    with g.as_default():
        path = tf1.placeholder(tf.string, [], name="path")
        data = tf.io.read_file(path, name="read")

        @tf.function
        def leak(x: Any) -> Any:
            tf.print("leak", x)
            return tf.strings.length(x)

        length = leak(data)
        tf.io.write_file(path + ".copy", data, name="write")
        tf.identity(length, name="length")
    tf.io.write_graph(g.as_graph_def(), str(d), "denied.pb", as_text=False)

    class Reader(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(2.0, name="scale")

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
        def __call__(self, path: Any) -> Any:
            tf.print("reading", path)
            size = tf.cast(tf.strings.length(tf.io.read_file(path)), tf.float32)
            return {"size": size * self.scale}

    reader = Reader()
    tf.saved_model.save(reader, str(d / "denied_savedmodel"))
    tf2_ckpt = tf.train.Checkpoint(model=reader).save(str(d / "tf2_ckpt" / "ckpt"))
    files = {
        "graph_pb": "graph.pb",
        "graph_pbtxt": "graph.pbtxt",
        "metagraph_pb": "metagraph.pb",
        "metagraph_pbtxt": "metagraph.pbtxt",
        "scoped_ckpt": os.path.relpath(scoped, d),
        "denied_pb": "denied.pb",
        "denied_savedmodel": "denied_savedmodel",
        "tf2_ckpt": os.path.relpath(tf2_ckpt, d),
    }
    manifest["graphs"] = {"kind": "graphs", "path": str(d), "meta": None, "files": files}


def make_v1(tf: Any, out: Path, manifest: Manifest) -> None:
    tf1 = tf.compat.v1
    g = tf.Graph()
    try:
        with g.as_default():
            tf1.get_variable("v1/a", initializer=tf.constant([[1.0, 2.0], [3.0, 4.0]]))
            tf1.get_variable("v1/n", initializer=tf.constant([5, 6, 7], tf.int64))
            saver = tf1.train.Saver(write_version=tf1.train.SaverDef.V1)
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                prefix = saver.save(sess, str(out / "v1" / "model.ckpt"), write_meta_graph=False)
        manifest["v1"] = {"kind": "v1", "path": prefix, "meta": None}
    except Exception as exc:
        manifest["_skipped_v1"] = {"reason": f"{type(exc).__name__}: {exc}"[:300]}


def main(out_dir: str) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest: Manifest = {}
    for name in ("tf1_adam", "tf1_slots", "tf1_multi", "sharded", "partitioned", "dtypes", "v1"):
        (out / name).mkdir(exist_ok=True)
    make_tf1(tf, out, manifest)
    make_sharded(tf, out, manifest)
    make_partitioned(tf, out, manifest)
    make_dtypes(tf, out, manifest)
    make_tf2(tf, out, manifest)
    make_savedmodels(tf, out, manifest)
    make_graphs(tf, out, manifest)
    make_v1(tf, out, manifest)
    for entry in manifest.values():  # store paths relative to OUTDIR
        for key in ("path", "meta"):
            if entry.get(key):
                entry[key] = os.path.relpath(entry[key], out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    (out / ".complete").write_text("ok\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/fixtures")
