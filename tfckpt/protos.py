"""Protobuf message classes for the checkpoint formats.

Most TensorFlow protos ship compiled in ``tensorboard.compat.proto`` (imports in milliseconds
without TensorFlow). The few that do not (the bundle header/entry, tensor slices, the V1 slice
table, the ``checkpoint`` state file, SavedModel and its fingerprint) are declared here as
descriptors, with field numbers from FORMAT.md, and registered under the package ``tfckpt`` so
they never clash with TensorFlow's own classes when both are loaded in one process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorboard.compat.proto import (
    graph_pb2,
    meta_graph_pb2,
    saver_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    trackable_object_graph_pb2,
    types_pb2,
    versions_pb2,
)

_F = descriptor_pb2.FieldDescriptorProto
_PKG = "tfckpt"

# Field spec: (name, number, type, label, type_name or None, oneof_index or None)
_FieldSpec = tuple[str, int, int, int, str | None, int | None]

_OPT = _F.LABEL_OPTIONAL
_REP = _F.LABEL_REPEATED


def _msg(
    name: str,
    fields: list[_FieldSpec],
    oneofs: tuple[str, ...] = (),
    nested: tuple[descriptor_pb2.DescriptorProto, ...] = (),
    enums: tuple[descriptor_pb2.EnumDescriptorProto, ...] = (),
) -> descriptor_pb2.DescriptorProto:
    d = descriptor_pb2.DescriptorProto(name=name)
    for oneof in oneofs:
        d.oneof_decl.add(name=oneof)
    for fname, number, ftype, label, type_name, oneof_index in fields:
        f = d.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if oneof_index is not None:
            f.oneof_index = oneof_index
    d.nested_type.extend(nested)
    d.enum_type.extend(enums)
    return d


def _file(
    name: str, deps: list[str], messages: list[descriptor_pb2.DescriptorProto]
) -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name=name, package=_PKG, syntax="proto3")
    fd.dependency.extend(deps)
    fd.message_type.extend(messages)
    return fd


_SHAPE = "." + tensor_shape_pb2.TensorShapeProto.DESCRIPTOR.full_name
_DTYPE = "." + types_pb2.DataType.DESCRIPTOR.full_name
_VERSION = "." + versions_pb2.VersionDef.DESCRIPTOR.full_name
_TENSOR = "." + tensor_pb2.TensorProto.DESCRIPTOR.full_name
_METAGRAPH = "." + meta_graph_pb2.MetaGraphDef.DESCRIPTOR.full_name

_MSG = _F.TYPE_MESSAGE
_ENUM = _F.TYPE_ENUM

_slice_file = _file(
    "tfckpt/tensor_slice.proto",
    [],
    [
        _msg(
            "TensorSliceProto",
            [("extent", 1, _MSG, _REP, ".tfckpt.TensorSliceProto.Extent", None)],
            nested=(
                _msg(
                    "Extent",
                    [
                        ("start", 1, _F.TYPE_INT64, _OPT, None, None),
                        ("length", 2, _F.TYPE_INT64, _OPT, None, 0),
                    ],
                    oneofs=("has_length",),
                ),
            ),
        )
    ],
)

_endianness = descriptor_pb2.EnumDescriptorProto(name="Endianness")
_endianness.value.add(name="LITTLE", number=0)
_endianness.value.add(name="BIG", number=1)

_bundle_file = _file(
    "tfckpt/tensor_bundle.proto",
    [
        "tfckpt/tensor_slice.proto",
        tensor_shape_pb2.DESCRIPTOR.name,
        types_pb2.DESCRIPTOR.name,
        versions_pb2.DESCRIPTOR.name,
    ],
    [
        _msg(
            "BundleHeaderProto",
            [
                ("num_shards", 1, _F.TYPE_INT32, _OPT, None, None),
                ("endianness", 2, _ENUM, _OPT, ".tfckpt.BundleHeaderProto.Endianness", None),
                ("version", 3, _MSG, _OPT, _VERSION, None),
            ],
            enums=(_endianness,),
        ),
        _msg(
            "BundleEntryProto",
            [
                ("dtype", 1, _ENUM, _OPT, _DTYPE, None),
                ("shape", 2, _MSG, _OPT, _SHAPE, None),
                ("shard_id", 3, _F.TYPE_INT32, _OPT, None, None),
                ("offset", 4, _F.TYPE_INT64, _OPT, None, None),
                ("size", 5, _F.TYPE_INT64, _OPT, None, None),
                ("crc32c", 6, _F.TYPE_FIXED32, _OPT, None, None),
                ("slices", 7, _MSG, _REP, ".tfckpt.TensorSliceProto", None),
            ],
        ),
    ],
)

_v1_file = _file(
    "tfckpt/saved_tensor_slice.proto",
    [
        "tfckpt/tensor_slice.proto",
        tensor_shape_pb2.DESCRIPTOR.name,
        types_pb2.DESCRIPTOR.name,
        versions_pb2.DESCRIPTOR.name,
        tensor_pb2.DESCRIPTOR.name,
    ],
    [
        _msg(
            "SavedSliceMeta",
            [
                ("name", 1, _F.TYPE_STRING, _OPT, None, None),
                ("shape", 2, _MSG, _OPT, _SHAPE, None),
                ("type", 3, _ENUM, _OPT, _DTYPE, None),
                ("slice", 4, _MSG, _REP, ".tfckpt.TensorSliceProto", None),
            ],
        ),
        _msg(
            "SavedTensorSliceMeta",
            [
                ("tensor", 1, _MSG, _REP, ".tfckpt.SavedSliceMeta", None),
                ("versions", 2, _MSG, _OPT, _VERSION, None),
            ],
        ),
        _msg(
            "SavedSlice",
            [
                ("name", 1, _F.TYPE_STRING, _OPT, None, None),
                ("slice", 2, _MSG, _OPT, ".tfckpt.TensorSliceProto", None),
                ("data", 3, _MSG, _OPT, _TENSOR, None),
            ],
        ),
        _msg(
            "SavedTensorSlices",
            [
                ("meta", 1, _MSG, _OPT, ".tfckpt.SavedTensorSliceMeta", None),
                ("data", 2, _MSG, _OPT, ".tfckpt.SavedSlice", None),
            ],
        ),
    ],
)

_state_file = _file(
    "tfckpt/checkpoint_state.proto",
    [],
    [
        _msg(
            "CheckpointState",
            [
                ("model_checkpoint_path", 1, _F.TYPE_STRING, _OPT, None, None),
                ("all_model_checkpoint_paths", 2, _F.TYPE_STRING, _REP, None, None),
                ("all_model_checkpoint_timestamps", 3, _F.TYPE_DOUBLE, _REP, None, None),
                ("last_preserved_timestamp", 4, _F.TYPE_DOUBLE, _OPT, None, None),
            ],
        )
    ],
)

_saved_model_file = _file(
    "tfckpt/saved_model.proto",
    [meta_graph_pb2.DESCRIPTOR.name, versions_pb2.DESCRIPTOR.name],
    [
        _msg(
            "SavedModel",
            [
                ("saved_model_schema_version", 1, _F.TYPE_INT64, _OPT, None, None),
                ("meta_graphs", 2, _MSG, _REP, _METAGRAPH, None),
            ],
        ),
        _msg(
            "FingerprintDef",
            [
                ("saved_model_checksum", 1, _F.TYPE_UINT64, _OPT, None, None),
                ("graph_def_program_hash", 2, _F.TYPE_UINT64, _OPT, None, None),
                ("signature_def_hash", 3, _F.TYPE_UINT64, _OPT, None, None),
                ("saved_object_graph_hash", 4, _F.TYPE_UINT64, _OPT, None, None),
                ("checkpoint_hash", 5, _F.TYPE_UINT64, _OPT, None, None),
                ("version", 6, _MSG, _OPT, _VERSION, None),
            ],
        ),
    ],
)


def _register() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    for fd in (_slice_file, _bundle_file, _v1_file, _state_file, _saved_model_file):
        try:
            pool.FindFileByName(fd.name)
        except KeyError:
            pool.Add(fd)
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

# Compiled classes re-exported so the rest of tfckpt imports protos from one place.
TensorShapeProto = tensor_shape_pb2.TensorShapeProto
TensorProto = tensor_pb2.TensorProto
VersionDef = versions_pb2.VersionDef
GraphDef = graph_pb2.GraphDef
MetaGraphDef = meta_graph_pb2.MetaGraphDef
SaverDef = saver_pb2.SaverDef
TrackableObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
DataTypeEnum = types_pb2.DataType

__all__ = [
    "BundleEntryProto",
    "BundleHeaderProto",
    "CheckpointState",
    "DataTypeEnum",
    "FingerprintDef",
    "GraphDef",
    "MetaGraphDef",
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
    "VersionDef",
]
