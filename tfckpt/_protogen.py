"""Dev-time generator for ``tfckpt/_descriptors.py`` (run: ``python -m tfckpt._protogen``).

Declares the TensorFlow protos that ``tensorboard.compat.proto`` does not ship (bundle header and
entry, tensor slices, the V1 slice table, CheckpointState, SavedModel, FingerprintDef, and the
MetaGraphDef collection messages for TF1 control flow and queue runners) with field
numbers from FORMAT.md, and writes them as serialized FileDescriptorProtos, the way generated
``_pb2`` modules embed theirs, so importing tfckpt never pays for ``descriptor_pb2``. A test
checks that the generated file is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2
from tensorboard.compat.proto import (
    meta_graph_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
    versions_pb2,
)

_PKG = "tfckpt"
_F = descriptor_pb2.FieldDescriptorProto

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


# The messages TF1 stores in the ``cond_context`` / ``while_context`` / ``queue_runners``
# collections of a MetaGraphDef (FORMAT.md, "MetaGraphDef collections").
_values_entry = _msg(
    "ExternalValuesEntry",
    [
        ("key", 1, _F.TYPE_STRING, _OPT, None, None),
        ("value", 2, _F.TYPE_STRING, _OPT, None, None),
    ],
)
_values_entry.options.map_entry = True

_control_flow_file = _file(
    "tfckpt/control_flow.proto",
    [],
    [
        _msg(
            "ValuesDef",
            [
                ("values", 1, _F.TYPE_STRING, _REP, None, None),
                ("external_values", 2, _MSG, _REP, ".tfckpt.ValuesDef.ExternalValuesEntry", None),
            ],
            nested=(_values_entry,),
        ),
        _msg(
            "ControlFlowContextDef",
            [
                ("cond_ctxt", 1, _MSG, _OPT, ".tfckpt.CondContextDef", 0),
                ("while_ctxt", 2, _MSG, _OPT, ".tfckpt.WhileContextDef", 0),
            ],
            oneofs=("ctxt",),
        ),
        _msg(
            "CondContextDef",
            [
                ("context_name", 1, _F.TYPE_STRING, _OPT, None, None),
                ("pred_name", 2, _F.TYPE_STRING, _OPT, None, None),
                ("pivot_name", 3, _F.TYPE_STRING, _OPT, None, None),
                ("branch", 4, _F.TYPE_INT32, _OPT, None, None),
                ("values_def", 5, _MSG, _OPT, ".tfckpt.ValuesDef", None),
                ("nested_contexts", 6, _MSG, _REP, ".tfckpt.ControlFlowContextDef", None),
            ],
        ),
        _msg(
            "WhileContextDef",
            [
                ("context_name", 1, _F.TYPE_STRING, _OPT, None, None),
                ("parallel_iterations", 2, _F.TYPE_INT32, _OPT, None, None),
                ("back_prop", 3, _F.TYPE_BOOL, _OPT, None, None),
                ("swap_memory", 4, _F.TYPE_BOOL, _OPT, None, None),
                ("pivot_name", 5, _F.TYPE_STRING, _OPT, None, None),
                ("pivot_for_pred_name", 6, _F.TYPE_STRING, _OPT, None, None),
                ("pivot_for_body_name", 7, _F.TYPE_STRING, _OPT, None, None),
                ("loop_exit_names", 8, _F.TYPE_STRING, _REP, None, None),
                ("values_def", 9, _MSG, _OPT, ".tfckpt.ValuesDef", None),
                ("loop_enter_names", 10, _F.TYPE_STRING, _REP, None, None),
                ("maximum_iterations_name", 11, _F.TYPE_STRING, _OPT, None, None),
                ("nested_contexts", 12, _MSG, _REP, ".tfckpt.ControlFlowContextDef", None),
            ],
        ),
        _msg(
            "QueueRunnerDef",
            [
                ("queue_name", 1, _F.TYPE_STRING, _OPT, None, None),
                ("enqueue_op_name", 2, _F.TYPE_STRING, _REP, None, None),
                ("close_op_name", 3, _F.TYPE_STRING, _OPT, None, None),
                ("cancel_op_name", 4, _F.TYPE_STRING, _OPT, None, None),
                # tensorflow.error.Code values, kept as plain numbers (same wire format)
                ("queue_closed_exception_types", 5, _F.TYPE_INT32, _REP, None, None),
            ],
        ),
    ],
)


FILES = (
    _slice_file,
    _bundle_file,
    _v1_file,
    _state_file,
    _saved_model_file,
    _control_flow_file,
)


def render() -> str:
    lines = [
        '"""Serialized descriptors of tfckpt\'s own proto declarations. GENERATED by',
        '``python -m tfckpt._protogen``; do not edit."""',
        "",
        "FILES: tuple[bytes, ...] = (",
    ]
    for fd in FILES:
        lines.append(f"    {fd.SerializeToString()!r},")
    lines.append(")")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(__file__).with_name("_descriptors.py")
    target.write_text(render())
    print(f"wrote {target}", file=sys.stderr)
