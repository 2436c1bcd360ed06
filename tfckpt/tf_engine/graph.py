"""``graph --engine tf``: graphs loaded by TensorFlow itself, the reference for the native reader.

The file is found and its message type detected as natively (TensorFlow has no detector); then
TensorFlow parses it with its own protobuf classes and imports it: a GraphDef through
``tf.graph_util.import_graph_def``, every MetaGraphDef (a ``.meta`` or each meta graph of a
SavedModel) through ``tf.compat.v1.train.import_meta_graph``. What the summary sees comes back
from TensorFlow: the graph from ``tf.Graph.as_graph_def()``, the collections from
``tf.compat.v1.train.export_meta_graph`` of the imported graph, the SaverDef from the Saver
``import_meta_graph`` returns. Metadata TensorFlow does not import (meta_info_def, signatures,
the object graph) is taken from TensorFlow's parse of the file.
"""

from __future__ import annotations

import os
from typing import Any

from tfckpt import protos
from tfckpt.errors import GraphError
from tfckpt.graph.load import (
    GRAPH_TYPES,
    GRAPHDEF,
    METAGRAPH,
    SAVEDMODEL,
    LoadedMessage,
    parse_bytes,
    read_limited,
    resolve_graph_path,
)
from tfckpt.tf_engine import import_tf


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _tf_parse(tf: Any, cls: Any, data: bytes, encoding: str, where: str) -> Any:
    from google.protobuf import text_format

    message = cls()
    try:
        if encoding == "text":
            text_format.Parse(data.decode("utf-8"), message)
        else:
            message.ParseFromString(data)
    except Exception as exc:
        raise GraphError(f"{where}: TensorFlow cannot parse it: {_first_line(exc)}") from None
    return message


def _import_graph_def(tf: Any, graph_def: Any, where: str) -> bytes:
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
    except Exception as exc:
        raise GraphError(
            f"{where}: TensorFlow cannot import the graph: {_first_line(exc)}"
        ) from None
    return graph.as_graph_def().SerializeToString()


def _version_ok(version: str) -> bool:
    # TF 2.21's import_meta_graph parses tensorflow_version with packaging and raises on
    # versions like '0.12.head' (written by TF 0.12); such a version is cleared before import.
    if not version:
        return True
    try:
        from packaging.version import Version

        Version(version)
    except Exception:
        return False
    return True


def _import_meta_graph(tf: Any, meta: Any, where: str, notes: list[str]) -> bytes:
    tf1 = tf.compat.v1
    to_import = type(meta)()
    to_import.CopyFrom(meta)
    if not _version_ok(meta.meta_info_def.tensorflow_version):
        notes.append(
            f"{where}: tensorflow_version {meta.meta_info_def.tensorflow_version!r} cleared "
            "for import_meta_graph (TensorFlow cannot parse it)"
        )
        to_import.meta_info_def.tensorflow_version = ""
    graph = tf.Graph()
    try:
        with graph.as_default():
            if meta.HasField("saver_def") or not _has_variables(meta):
                saver = tf1.train.import_meta_graph(to_import, clear_devices=False)
            else:
                # Without a SaverDef, import_meta_graph would add a new Saver (more nodes).
                from tensorflow.python.framework import meta_graph as tf_meta_graph

                tf_meta_graph.import_scoped_meta_graph(to_import, clear_devices=False)
                saver = None
            exported = tf1.train.export_meta_graph(
                graph=graph,
                saver_def=saver.saver_def if saver is not None else None,
                clear_devices=False,
            )
    except Exception as exc:
        raise GraphError(
            f"{where}: TensorFlow cannot import the graph: {_first_line(exc)}"
        ) from None
    out = type(meta)()
    out.CopyFrom(meta)
    out.graph_def.CopyFrom(graph.as_graph_def())
    out.ClearField("collection_def")
    for key, value in exported.collection_def.items():
        out.collection_def[key].CopyFrom(value)
    if exported.HasField("saver_def"):
        out.saver_def.CopyFrom(exported.saver_def)
    else:
        out.ClearField("saver_def")
    return out.SerializeToString()


def _has_variables(meta: Any) -> bool:
    return any(n.op in ("VariableV2", "Variable", "VarHandleOp") for n in meta.graph_def.node)


def tf_load_graph(path: str, type_name: str | None = None) -> LoadedMessage:
    """Like ``tfckpt.graph.load_graph``, with the graph parsed and imported by TensorFlow."""
    tf = import_tf()
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    notes: list[str] = []
    file_path, sm_dir = resolve_graph_path(os.fspath(path), notes)
    data = read_limited(file_path)
    if type_name is None and sm_dir is not None:
        type_name = SAVEDMODEL
    kind, encoding, _ = parse_bytes(data, file_path, type_name, GRAPH_TYPES, notes)
    if kind == GRAPHDEF:
        graph_def = _tf_parse(tf, tf.compat.v1.GraphDef, data, encoding, file_path)
        message = protos.GraphDef.FromString(_import_graph_def(tf, graph_def, file_path))
    elif kind == METAGRAPH:
        meta = _tf_parse(tf, meta_graph_pb2.MetaGraphDef, data, encoding, file_path)
        message = protos.MetaGraphDef.FromString(_import_meta_graph(tf, meta, file_path, notes))
    else:
        saved = _tf_parse(tf, saved_model_pb2.SavedModel, data, encoding, file_path)
        message = protos.SavedModel(saved_model_schema_version=saved.saved_model_schema_version)
        for i, meta in enumerate(saved.meta_graphs):
            where = f"{file_path} (meta graph {i})"
            message.meta_graphs.add().ParseFromString(_import_meta_graph(tf, meta, where, notes))
    return LoadedMessage(file_path, kind, encoding, message, notes, sm_dir)
