"""Write the test fixtures with TensorFlow: ``python examples/make_fixtures.py OUTDIR``.

Every kind of checkpoint tfckpt must handle, made by TensorFlow itself: TF1 Saver checkpoints
(Adam / Momentum / RMSProp slots, global step, .meta, several steps with a state file), a
two-device sharded save, partitioned variables, one tensor of every dtype (strings, bfloat16,
quantized, float8, empty and rank-5 shapes), TF2 ``tf.train.Checkpoint``s of a Keras model with
its optimizer and of a ``tf.Module``, SavedModels (TF1 and TF2), GraphDefs and a legacy V1
checkpoint. Real-world oddities too: an Estimator-style TF1 graph with control flow under
variable names (``global_step/cond``, a ``tf.while_loop`` in a variable's scope), a Keras 3 model
whose optimizer is tracked below the root, an index whose data is missing, and damaged copies
(truncated shard, another checkpoint's data, one flipped bit) whose damage TensorFlow's reader
confirms. ``OUTDIR/manifest.json`` describes them; ``OUTDIR/.complete`` is written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


def make_estimator_cf(tf: Any, out: Path, manifest: Manifest) -> None:
    """A TF1 graph as an Estimator builds it, with TF1 (v1) control flow under variable names:
    ``global_step/cond`` (the initialized-value read Estimators make of the global step), a
    ``tf.while_loop`` holding a ``tf.cond`` inside the ``model`` variable scope that reads a
    variable from outside the loop, and a while loop in the name scope of variable ``model/w``
    itself. Ref variables, as TF 1.x made them; trained one Adam step and saved with its .meta.
    The manifest records the fetched values the restored graph must reproduce."""
    tf1 = tf.compat.v1
    cf_v2 = tf1.control_flow_v2_enabled()
    resource = tf1.resource_variables_enabled()
    tf1.disable_control_flow_v2()
    tf1.disable_resource_variables()
    try:
        g = tf.Graph()
        with g.as_default():
            step = tf1.train.get_or_create_global_step()
            with g.name_scope(None), g.name_scope(step.op.name + "/"):
                step_read = tf.identity(step.initialized_value(), name="step_read")
            with tf1.variable_scope("model"):
                w = tf1.get_variable("w", [3], initializer=tf1.constant_initializer([1, 2, 3]))

                def body(i: Any, acc: Any) -> Any:
                    acc = tf1.cond(tf.equal(i % 2, 0), lambda: acc + w, lambda: acc - 0.5 * w)
                    return i + 1, acc

                _, total = tf1.while_loop(lambda i, a: i < 5, body, [tf.constant(0), tf.zeros([3])])
                with g.name_scope(w.op.name + "/"):
                    _, doubled = tf1.while_loop(
                        lambda i, a: i < 3, lambda i, a: (i + 1, a * 2.0), [tf.constant(0), w]
                    )
            total = tf.identity(total, name="total")
            doubled = tf.identity(doubled, name="doubled")
            loss = tf.reduce_sum(total) + tf.reduce_sum(doubled)
            train = tf1.train.AdamOptimizer(0.1).minimize(loss, global_step=step)
            saver = tf1.train.Saver()
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                sess.run(train)
                prefix = saver.save(sess, str(out / "estimator_cf" / "model.ckpt"), global_step=1)
                values = sess.run({"total": total, "doubled": doubled, "step": step_read})
                sess.run(train)
                after = sess.run(total)
    finally:
        if cf_v2:
            tf1.enable_control_flow_v2()
        if resource:
            tf1.enable_resource_variables()
    manifest["estimator_cf"] = {
        "kind": "tf1",
        "path": prefix,
        "meta": prefix + ".meta",
        "fetch": {
            "total": values["total"].tolist(),
            "doubled": values["doubled"].tolist(),
            "step": int(values["step"]),
            "total_after_train": after.tolist(),
        },
        "tensors": {"total": "total:0", "doubled": "doubled:0", "step": "global_step/step_read:0"},
    }


def make_keras3_nested(tf: Any, out: Path, manifest: Manifest) -> None:
    """``tf.train.Checkpoint(net=model)`` of a compiled and fitted Keras 3 model: its Adam
    optimizer (no slot variables: ``_iterations``, ``_learning_rate``, ``_variables/N``) is
    tracked below the root, at ``net/optimizer``."""
    import numpy as np

    tf.random.set_seed(5)
    model = fixture_models.build_keras_model(tf)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, fixture_models.KERAS_INPUT)).astype(np.float32)
    y = rng.standard_normal((8, fixture_models.KERAS_LAYERS[-1])).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    prefix = tf.train.Checkpoint(net=model).save(str(out / "tf2_nested_optimizer" / "ckpt"))
    manifest["tf2_nested_optimizer"] = {
        "kind": "tf2",
        "path": prefix,
        "meta": None,
        "model_variables": len(model.weights),
        "optimizer_variables": len(model.optimizer.variables),
    }


def _tf_unreadable(tf: Any, prefix: str) -> list[str]:
    """The tensors TensorFlow's own reader refuses to read (checksum or size errors)."""
    reader = tf.train.load_checkpoint(prefix)
    bad = []
    for name in sorted(reader.get_variable_to_shape_map()):
        try:
            reader.get_tensor(name)
        except Exception:
            bad.append(name)
    return bad


def make_damaged(tf: Any, out: Path, manifest: Manifest) -> None:
    """Damaged copies of intact fixtures, as found in the wild: a data shard cut short, an index
    paired with another step's data (same layout, other values), one flipped bit, and an index
    without its data (plus a two-shard checkpoint missing one shard). TensorFlow's reader
    confirms which tensors each damage breaks (``unreadable``)."""
    data = ".data-00000-of-00001"
    src = Path(manifest["tf1_adam"]["path"])

    def copy(name: str, prefix: Path, files: tuple[str, ...]) -> Path:
        (out / name).mkdir(parents=True, exist_ok=True)
        for suffix in files:
            shutil.copyfile(str(prefix) + suffix, out / name / (prefix.name + suffix))
        return out / name / prefix.name

    truncated = copy("damaged_truncated", src, (".index", data, ".meta"))
    shard = Path(str(truncated) + data)
    size = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(size - 100)
    # One bit flipped inside a model weight (which every writer, prune included, must copy):
    # the first byte from the middle on whose flip TensorFlow reports for that tensor alone.
    flipped = copy("damaged_bitflip", src, (".index", data, ".meta"))
    shard = Path(str(flipped) + data)
    pristine = shard.read_bytes()
    for position in [*range(len(pristine) // 2, len(pristine)), *range(len(pristine) // 2)]:
        raw = bytearray(pristine)
        raw[position] ^= 0x10
        shard.write_bytes(bytes(raw))
        if _tf_unreadable(tf, str(flipped)) == ["model/dense0/kernel"]:
            break
    else:
        raise SystemExit("no byte of the data file belongs to model/dense0/kernel")
    multi = out / "tf1_multi"
    (out / "damaged_swapped").mkdir(exist_ok=True)
    swapped = out / "damaged_swapped" / "model.ckpt-10"
    shutil.copyfile(multi / "model.ckpt-10.index", str(swapped) + ".index")
    shutil.copyfile(multi / ("model.ckpt-20" + data), str(swapped) + data)
    for name, prefix, damage in (
        ("damaged_truncated", truncated, "truncated"),
        ("damaged_bitflip", flipped, "bitflip"),
        ("damaged_swapped", swapped, "swapped"),
    ):
        manifest[name] = {
            "kind": "damaged",
            "path": str(prefix),
            "meta": str(prefix) + ".meta" if Path(str(prefix) + ".meta").exists() else None,
            "damage": damage,
            "source": "tf1_multi/model.ckpt-10" if damage == "swapped" else "tf1_adam",
            "unreadable": _tf_unreadable(tf, str(prefix)),
        }
        if not manifest[name]["unreadable"]:
            raise SystemExit(f"{name}: TensorFlow reads every tensor; the damage did not take")
    only = copy("index_only", src, (".index", ".meta"))
    sharded = Path(manifest["sharded"]["path"])
    half = copy("index_half", sharded, (".index", ".data-00000-of-00002", ".meta"))
    names = sorted(tf.train.load_checkpoint(str(src)).get_variable_to_shape_map())
    manifest["index_only"] = {
        "kind": "index_only",
        "path": str(only),
        "meta": str(only) + ".meta",
        "names": names,
    }
    manifest["index_half"] = {
        "kind": "index_only",
        "path": str(half),
        "meta": str(half) + ".meta",
        "missing_shards": [1],
    }


def main(out_dir: str) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest: Manifest = {}
    for name in ("tf1_adam", "tf1_slots", "tf1_multi", "sharded", "partitioned", "dtypes", "v1"):
        (out / name).mkdir(exist_ok=True)
    (out / "estimator_cf").mkdir(exist_ok=True)
    make_tf1(tf, out, manifest)
    make_sharded(tf, out, manifest)
    make_partitioned(tf, out, manifest)
    make_dtypes(tf, out, manifest)
    make_tf2(tf, out, manifest)
    make_savedmodels(tf, out, manifest)
    make_graphs(tf, out, manifest)
    make_v1(tf, out, manifest)
    make_estimator_cf(tf, out, manifest)
    make_keras3_nested(tf, out, manifest)
    make_damaged(tf, out, manifest)
    for entry in manifest.values():  # store paths relative to OUTDIR
        for key in ("path", "meta"):
            if entry.get(key):
                entry[key] = os.path.relpath(entry[key], out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    (out / ".complete").write_text("ok\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/fixtures")
