"""Reading a checkpoint through ``tf.train.load_checkpoint``: the reference for every native read.

TensorFlow errors become tfckpt's one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint
from tfckpt.tf_engine import import_tf


@dataclass(frozen=True)
class TfVarInfo:
    name: str
    dtype: str  # tf.dtypes.DType.name
    shape: tuple[int, ...]


@cache
def _reader(prefix: str) -> Any:
    tf = import_tf()
    try:
        return tf.train.load_checkpoint(prefix)
    except tf.errors.NotFoundError as exc:
        raise CheckpointNotFound(f"{prefix}: {_first_line(exc)}") from None
    except (tf.errors.OpError, ValueError) as exc:
        raise CorruptCheckpoint(f"{prefix}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def list_variables(prefix: str) -> list[TfVarInfo]:
    reader = _reader(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    return [TfVarInfo(n, dtypes[n].name, tuple(int(d) for d in shapes[n])) for n in sorted(dtypes)]


def read_tensor(prefix: str, name: str) -> Any:
    """The tensor as TF returns it: numpy arrays (object arrays of bytes for strings; a scalar
    string comes back as ``bytes``)."""
    tf = import_tf()
    try:
        return _reader(prefix).get_tensor(name)
    except tf.errors.OpError as exc:
        raise CorruptCheckpoint(f"{prefix}: {name}: {_first_line(exc)}") from None


def read_all(prefix: str) -> dict[str, Any]:
    return {v.name: read_tensor(prefix, v.name) for v in list_variables(prefix)}
