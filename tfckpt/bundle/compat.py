"""``load_checkpoint``: a drop-in for ``tf.train.load_checkpoint`` without TensorFlow.

Scripts that read checkpoints through TF's ``CheckpointReader`` switch by changing one import::

    # reader = tf.train.load_checkpoint(path)
    reader = tfckpt.load_checkpoint(path)
    for name, shape in reader.get_variable_to_shape_map().items():
        print(name, reader.get_variable_to_dtype_map()[name].name, shape)
    kernel = reader.get_tensor("dense/kernel")

Values come back as TF's reader returns them: numpy arrays, numpy scalars for 0-d numeric
tensors, ``bytes`` for a 0-d string, object arrays of ``bytes`` for string tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tfckpt.bundle.checkpoint import Checkpoint, open_checkpoint
from tfckpt.dtypes import STRING, DType
from tfckpt.errors import VariableNotFound

# TF's DataType enum names where they are not "DT_" + the upper-case dtype name.
_DT_NAMES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF"}


@dataclass(frozen=True)
class CompatDType:
    """What scripts use of ``tf.dtypes.DType``: ``name``, ``as_numpy_dtype``, ``as_datatype_enum``
    and ``is_floating``."""

    _dtype: DType

    @property
    def name(self) -> str:
        return self._dtype.name

    @property
    def as_numpy_dtype(self) -> Any:
        """The numpy type as TF gives it: a scalar type (``numpy.float32``), ``object`` for
        strings, and for quantized types a one-field structured dtype (``[('qint8', 'i1')]``)."""
        numpy_dtype = self._dtype.numpy
        if numpy_dtype is None:
            return object
        if self._dtype.name.startswith(("qint", "quint")):
            import numpy as np

            return np.dtype([(self._dtype.name, numpy_dtype)])
        return numpy_dtype.type

    @property
    def as_datatype_enum(self) -> int:
        return self._dtype.enum

    @property
    def is_floating(self) -> bool:
        return self._dtype.is_floating

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompatDType):
            return self._dtype.enum == other._dtype.enum
        return getattr(other, "name", other) == self.name

    def __hash__(self) -> int:
        return hash(self._dtype.enum)

    def __repr__(self) -> str:
        return f"tf.{self.name}"


def datatype_name(dtype: DType) -> str:
    """TF's enum name of a dtype: ``DT_FLOAT``, ``DT_BFLOAT16``, ``DT_STRING``..."""
    return _DT_NAMES.get(dtype.name, "DT_" + dtype.name.upper())


class CheckpointReader:
    """The methods of TF's ``CheckpointReader``, read natively. Keys are TF's: TF2 checkpoints
    list ``.../.ATTRIBUTES/VARIABLE_VALUE`` keys and ``_CHECKPOINTABLE_OBJECT_GRAPH``."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._ckpt = checkpoint
        self._keys = frozenset(info.name for info in checkpoint.tensors())

    @property
    def prefix(self) -> str:
        return self._ckpt.prefix

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {info.name: list(info.shape) for info in self._ckpt.tensors()}

    def get_variable_to_dtype_map(self) -> dict[str, CompatDType]:
        return {info.name: CompatDType(info.dtype) for info in self._ckpt.tensors()}

    def has_tensor(self, name: str) -> bool:
        return name in self._keys  # exact keys only, as TF's reader

    def get_tensor(self, name: str) -> Any:
        """The value of tensor ``name`` (an exact key, as TF requires); KeyError-like
        ``VariableNotFound`` (a ``TfckptError``) when there is none."""
        if not self.has_tensor(name):
            raise VariableNotFound(f"Key {name} not found in checkpoint")
        value = self._ckpt.read(name)
        if value.ndim == 0:
            item = value[()]
            return item if self._ckpt.info(name).dtype.enum == STRING else value.dtype.type(item)
        return value

    def debug_string(self) -> bytes:
        """One line per stored entry, as TF prints it: ``name (DT_FLOAT) [5,8]``. For V2 these
        are the index entries in key order, partitioned variables as their slice entries (raw
        slice keys, as TF shows them); for V1, the tensors sorted by name (TF's own order there
        is that of an internal map)."""

        def line(key: bytes, dtype: DType, shape: tuple[int, ...]) -> bytes:
            dims = ",".join(map(str, shape))
            return key + f" ({datatype_name(dtype)}) [{dims}]\n".encode()

        if self._ckpt.format == "V2":
            return b"".join(
                line(e.key, e.dtype, e.shape)
                for e in self._ckpt.bundle.entries.values()
                if not e.slices
            )
        return b"".join(
            line(i.name.encode("utf-8", "surrogateescape"), i.dtype, i.shape)
            for i in self._ckpt.tensors()
        )

    def close(self) -> None:
        self._ckpt.close()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_checkpoint(path: str | os.PathLike[str]) -> CheckpointReader:
    """A ``CheckpointReader`` for the checkpoint at ``path`` (a prefix, any of its files, a
    directory with a ``checkpoint`` state file, or a SavedModel directory), like
    ``tf.train.load_checkpoint`` / ``tf.compat.v1.train.NewCheckpointReader``.

    >>> reader = tfckpt.load_checkpoint("model.ckpt-1000")
    >>> reader.get_variable_to_shape_map()["dense/kernel"]
    [784, 10]
    """
    return CheckpointReader(open_checkpoint(path))
