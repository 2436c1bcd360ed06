"""Protobuf message classes for the checkpoint formats.

Most TensorFlow protos ship compiled in ``tensorboard.compat.proto`` (imports in milliseconds
without TensorFlow). The few that do not (the bundle header/entry, tensor slices, the V1 slice
table, the ``checkpoint`` state file, SavedModel and its fingerprint) are declared here as
descriptors, with field numbers from FORMAT.md, and registered under the package ``tfckpt`` so
they never clash with TensorFlow's own classes when both are loaded in one process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool, message_factory
from tensorboard.compat.proto import (
    graph_pb2,
    meta_graph_pb2,
    saver_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    trackable_object_graph_pb2,
    types_pb2,
    variable_pb2,
    versions_pb2,
)

from tfckpt._descriptors import FILES

_PKG = "tfckpt"
# The compiled dependencies above must be registered before our files that refer to them.
_DEPENDENCIES = (meta_graph_pb2, tensor_pb2, tensor_shape_pb2, types_pb2, versions_pb2)


def _register() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    for serialized in FILES:
        pool.AddSerializedFile(serialized)
    names = [
        "TensorSliceProto",
        "BundleHeaderProto",
        "BundleEntryProto",
        "SavedSliceMeta",
        "SavedTensorSliceMeta",
        "SavedSlice",
        "SavedTensorSlices",
        "CheckpointState",
        "SavedModel",
        "FingerprintDef",
        "ValuesDef",
        "ControlFlowContextDef",
        "CondContextDef",
        "WhileContextDef",
        "QueueRunnerDef",
    ]
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.{n}")) for n in names
    }


_classes = _register()

TensorSliceProto: Any = _classes["TensorSliceProto"]
BundleHeaderProto: Any = _classes["BundleHeaderProto"]
BundleEntryProto: Any = _classes["BundleEntryProto"]
SavedSliceMeta: Any = _classes["SavedSliceMeta"]
SavedTensorSliceMeta: Any = _classes["SavedTensorSliceMeta"]
SavedSlice: Any = _classes["SavedSlice"]
SavedTensorSlices: Any = _classes["SavedTensorSlices"]
CheckpointState: Any = _classes["CheckpointState"]
SavedModel: Any = _classes["SavedModel"]
FingerprintDef: Any = _classes["FingerprintDef"]
ValuesDef: Any = _classes["ValuesDef"]
ControlFlowContextDef: Any = _classes["ControlFlowContextDef"]
CondContextDef: Any = _classes["CondContextDef"]
WhileContextDef: Any = _classes["WhileContextDef"]
QueueRunnerDef: Any = _classes["QueueRunnerDef"]

# Compiled classes re-exported so the rest of tfckpt imports protos from one place.
TensorShapeProto = tensor_shape_pb2.TensorShapeProto
TensorProto = tensor_pb2.TensorProto
VersionDef = versions_pb2.VersionDef
GraphDef = graph_pb2.GraphDef
MetaGraphDef = meta_graph_pb2.MetaGraphDef
AssetFileDef = meta_graph_pb2.AssetFileDef
SaverDef = saver_pb2.SaverDef
VariableDef = variable_pb2.VariableDef
TrackableObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
DataTypeEnum = types_pb2.DataType

__all__ = [
    "AssetFileDef",
    "BundleEntryProto",
    "BundleHeaderProto",
    "CheckpointState",
    "CondContextDef",
    "ControlFlowContextDef",
    "DataTypeEnum",
    "FingerprintDef",
    "GraphDef",
    "MetaGraphDef",
    "QueueRunnerDef",
    "SavedModel",
    "SavedSlice",
    "SavedSliceMeta",
    "SavedTensorSliceMeta",
    "SavedTensorSlices",
    "SaverDef",
    "TensorProto",
    "TensorShapeProto",
    "TensorSliceProto",
    "TrackableObjectGraph",
    "ValuesDef",
    "VariableDef",
    "VersionDef",
    "WhileContextDef",
]
