"""The legacy V1 checkpoint format: one or more table files of SavedTensorSlices. FORMAT.md §8.

Values live inside protobufs (typed repeated fields), so V1 tensors are decoded whole; V1
checkpoints are small in practice (TF stopped writing them by default long ago).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfckpt import storage
from tfckpt.bundle.reader import num_elements, shape_of
from tfckpt.bundle.slices import (
    Slice,
    encode_slice_key,
    format_slice,
    slice_from_proto,
    slice_index,
    slice_shape,
)
from tfckpt.bundle.table import TableReader
from tfckpt.dtypes import DType, dtype_from_enum
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint, UnsupportedCheckpoint

if TYPE_CHECKING:
    import numpy as np


def v1_files(prefix: str) -> list[str]:
    """The table files of a V1 checkpoint: the file itself, or its ``-?????-of-?????`` shards."""
    if storage.isfile(prefix):
        return [prefix]
    directory = storage.dirname(prefix)
    shard = re.compile(re.escape(storage.basename(prefix)) + r"-[0-9]{5}-of-[0-9].*", re.DOTALL)
    try:
        names = storage.listdir(directory or ".")
    except OSError:
        return []
    return sorted(storage.join(directory, n) for n in names if shard.fullmatch(n))


def looks_like_v1(path: str) -> bool:
    """A cheap test: a table file whose header key holds SavedTensorSliceMeta."""
    from google.protobuf.message import DecodeError

    from tfckpt import protos

    try:
        with TableReader.open(path) as reader:
            for key, value in reader:
                if key != b"":
                    return False
                msg = protos.SavedTensorSlices.FromString(value)
                return msg.HasField("meta")
    except (CorruptCheckpoint, CheckpointNotFound, DecodeError, OSError):
        return False
    return False


@dataclass
class V1Tensor:
    name: str
    dtype: DType
    shape: tuple[int, ...]
    slices: list[Slice]
    # (file path, key) per slice, in the order of ``slices``
    locations: list[tuple[str, bytes]]


# Which TensorProto field holds each dtype's values in V1 files.
_FIELDS = {
    "float32": "float_val",
    "float64": "double_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "qint8": "int_val",
    "quint8": "int_val",
    "qint16": "int_val",
    "quint16": "int_val",
    "qint32": "int_val",
    "string": "string_val",
    "complex64": "scomplex_val",
    "int64": "int64_val",
    "bool": "bool_val",
    "complex128": "dcomplex_val",
    "float16": "half_val",
    "bfloat16": "half_val",
}


class V1Reader:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.files = v1_files(prefix)
        if not self.files:
            raise CheckpointNotFound(f"{prefix}: no such checkpoint")
        self.tensors: dict[str, V1Tensor] = {}
        # (file, slice key) -> (parsed record, its size in the file)
        self._values: dict[tuple[str, bytes], tuple[Any, int]] = {}
        for path in self.files:
            self._load(path)

    def _load(self, path: str) -> None:
        from google.protobuf.message import DecodeError

        from tfckpt import protos

        meta_seen = False
        with TableReader.open(path) as table:
            pairs = list(table)
        for key, value in pairs:
            try:
                msg = protos.SavedTensorSlices.FromString(value)
            except DecodeError:
                raise CorruptCheckpoint(f"{path}: unreadable V1 record") from None
            if key == b"":
                meta_seen = True
                for t in msg.meta.tensor:
                    self._add_meta(path, t)
            else:
                self._values[(path, key)] = (msg, len(value))
        if not meta_seen:
            raise CorruptCheckpoint(f"{path}: not a V1 checkpoint (no slice metadata)")

    def _add_meta(self, path: str, t: Any) -> None:
        where = f"{path}: {t.name!r}"
        try:
            dtype = dtype_from_enum(int(t.type))
        except UnsupportedCheckpoint as exc:
            raise UnsupportedCheckpoint(f"{where}: {exc}") from None
        shape = shape_of(t.shape, where)
        try:
            specs = [slice_from_proto(s, len(shape)) for s in t.slice]
        except ValueError as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        tensor = self.tensors.get(t.name)
        if tensor is None:
            tensor = V1Tensor(t.name, dtype, shape, [], [])
            self.tensors[t.name] = tensor
        elif tensor.dtype != dtype or tensor.shape != shape:
            raise CorruptCheckpoint(f"{where}: shards disagree on dtype or shape")
        for spec in specs:
            tensor.slices.append(spec)
            tensor.locations.append((path, encode_slice_key(t.name.encode(), spec)))

    def nbytes(self, tensor: V1Tensor) -> int:
        if tensor.dtype.numpy is None:
            return sum(self._values[loc][1] for loc in tensor.locations if loc in self._values)
        return num_elements(tensor.shape) * tensor.dtype.itemsize

    def read(self, name: str) -> np.ndarray:
        tensor = self.tensors[name]
        dt = tensor.dtype
        if dt.name not in _FIELDS:
            raise UnsupportedCheckpoint(f"{self.prefix}: {name!r}: V1 {dt.name} is not supported")
        import numpy as np

        # Decode every slice first: values live in the file, so their count is bounded by its
        # size, and the full tensor is only allocated once they are known to cover its shape.
        parts = []
        covered = 0
        for spec, loc in zip(tensor.slices, tensor.locations):
            record = self._values.get(loc)
            if record is None:
                raise CorruptCheckpoint(
                    f"{loc[0]}: no data for {name!r} slice {format_slice(spec)}"
                )
            data = record[0].data.data
            try:
                part_shape = slice_shape(spec, tensor.shape)
                index = slice_index(spec, tensor.shape)
            except ValueError as exc:
                raise CorruptCheckpoint(f"{loc[0]}: {name!r}: {exc}") from None
            n = num_elements(part_shape)
            values = _decode_values(data, dt, n, f"{loc[0]}: {name!r}")
            parts.append((index, values.reshape(part_shape)))
            covered += n
        if covered < num_elements(tensor.shape):
            raise CorruptCheckpoint(f"{self.prefix}: slices of {name!r} do not cover its shape")
        out = np.zeros(tensor.shape, dtype=object if dt.numpy is None else dt.numpy)
        for index, values in parts:
            out[index] = values
        return out


def _decode_values(data: Any, dt: DType, n: int, where: str) -> np.ndarray:
    import numpy as np

    field = _FIELDS[dt.name]
    raw = getattr(data, field)
    complex_pairs = field in ("scomplex_val", "dcomplex_val")
    count = len(raw) // 2 if complex_pairs else len(raw)
    if count != n or (complex_pairs and len(raw) % 2):
        stored = f"{len(raw)} floats" if complex_pairs else f"{count} values"
        raise CorruptCheckpoint(f"{where}: {stored} stored, {n} values expected")
    target = dt.numpy
    if dt.name == "string" or target is None:
        arr = np.empty(n, dtype=object)
        for i, v in enumerate(raw):
            arr[i] = bytes(v)
        return arr
    if field == "half_val":
        # 16-bit patterns stored in int32 fields; anything outside 0..65535 is corrupt.
        bits = np.array(raw, dtype=np.int64)
        if bits.size and (bits.min() < 0 or bits.max() > 0xFFFF):
            raise CorruptCheckpoint(f"{where}: half value bits outside 0..65535")
        return bits.astype(np.uint16).view(target)
    if field in ("scomplex_val", "dcomplex_val"):
        flat = np.array(raw, dtype=np.float32 if field == "scomplex_val" else np.float64)
        return flat.view(target)
    return np.array(raw).astype(target)
