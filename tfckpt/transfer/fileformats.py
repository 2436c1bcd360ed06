"""Byte-level helpers for safetensors headers and .npy headers (reading and writing).

A safetensors file: an 8-byte little-endian header length N, N bytes of JSON (``{name: {"dtype",
"shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, offsets relative to the
end of the header, padded with spaces), then the tensor bytes, little-endian and row-major.
Writing the header first from the planned sizes lets tensors be streamed one by one afterwards.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from tfckpt.bundle.reader import num_elements
from tfckpt.errors import CorruptCheckpoint
from tfckpt.transfer.formats import ST_ITEMSIZE

if TYPE_CHECKING:
    import numpy as np

# safetensors refuses headers above 100 MB.
MAX_ST_HEADER = 100_000_000
METADATA_KEY = "__metadata__"


# ---- safetensors ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StTensor:
    name: str
    dtype: str  # safetensors dtype, e.g. "BF16"
    shape: tuple[int, ...]
    begin: int  # offset from the start of the data area
    end: int


# The data area can be placed at a chosen offset modulo this by padding the header.
ALIGN_GRANULE = 1 << 20


def build_st_header(
    tensors: list[StTensor], metadata: dict[str, str], residue: int | None = None
) -> bytes:
    """The 8-byte length and JSON header, padded with spaces so the data starts 8-aligned, and
    (given ``residue``, a multiple of 8) at that offset modulo ``ALIGN_GRANULE``."""
    body: dict[str, Any] = {}
    if metadata:
        body[METADATA_KEY] = dict(metadata)
    for t in tensors:
        body[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.begin, t.end]}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    if residue is not None:
        raw += b" " * ((residue - 8 - len(raw)) % ALIGN_GRANULE)
    return struct.pack("<Q", len(raw)) + raw


@dataclass
class StHeader:
    tensors: list[StTensor]
    metadata: dict[str, str]
    data_start: int  # absolute file offset of the data area


def read_st_header(fp: BinaryIO, file_size: int, where: str) -> StHeader:
    """Parse and validate a safetensors header; every offset is checked against the file size."""
    head = fp.read(8)
    if len(head) < 8:
        raise CorruptCheckpoint(f"{where}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", head)
    if length > MAX_ST_HEADER or length > file_size - 8:
        raise CorruptCheckpoint(f"{where}: safetensors header length {length} is impossible")
    try:
        body = json.loads(fp.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"{where}: unreadable safetensors header ({exc})") from None
    if not isinstance(body, dict):
        raise CorruptCheckpoint(f"{where}: safetensors header is not a JSON object")
    data_size = file_size - 8 - length
    metadata_raw = body.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata_raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()
    ):
        raise CorruptCheckpoint(f"{where}: __metadata__ must map strings to strings")
    tensors = []
    for name, spec in body.items():
        tensors.append(_st_tensor(name, spec, data_size, f"{where}: {name!r}"))
    return StHeader(sorted(tensors, key=lambda t: t.name), dict(metadata_raw), 8 + length)


def _st_tensor(name: str, spec: Any, data_size: int, where: str) -> StTensor:
    if not isinstance(spec, dict):
        raise CorruptCheckpoint(f"{where}: entry is not an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(dtype, str):
        raise CorruptCheckpoint(f"{where}: missing dtype")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise CorruptCheckpoint(f"{where}: bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_size
    ):
        raise CorruptCheckpoint(f"{where}: data_offsets {offsets!r} outside the data area")
    dims = tuple(shape)
    itemsize = ST_ITEMSIZE.get(dtype)
    if itemsize is not None and num_elements(dims) * itemsize != offsets[1] - offsets[0]:
        raise CorruptCheckpoint(
            f"{where}: {offsets[1] - offsets[0]} bytes for shape {shape} of {dtype}"
        )
    return StTensor(name, dtype, dims, offsets[0], offsets[1])


# ---- .npy -------------------------------------------------------------------------------------
def npy_descr(dtype: np.dtype) -> str:
    """numpy's descriptor for ``dtype`` if numpy can read it back as the same dtype, else raw
    bytes ``|V<itemsize>`` (ml_dtypes types such as bfloat16 have no readable descriptor)."""
    from numpy.lib import format as npformat

    descr = npformat.dtype_to_descr(dtype)
    try:
        if isinstance(descr, str) and npformat.descr_to_dtype(descr) == dtype:
            return descr
    except (ValueError, TypeError):
        pass
    return f"|V{dtype.itemsize}"


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A .npy header (format 1.0, or 2.0 when the header is too long) for a C-order array."""
    from numpy.lib import format as npformat

    header = {
        "descr": descr,
        "fortran_order": False,
        "shape": tuple(shape),
    }
    buf = io.BytesIO()
    try:
        npformat.write_array_header_1_0(buf, header)
    except ValueError:
        buf = io.BytesIO()
        npformat.write_array_header_2_0(buf, header)
    return buf.getvalue()


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype


def read_npy_header(fp: BinaryIO, where: str) -> NpyHeader:
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp, max_header_size=1 << 20)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp, max_header_size=1 << 20)
        else:
            reader = getattr(npformat, "_read_array_header", None)
            if reader is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = reader(fp, version, max_header_size=1 << 20)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptCheckpoint(f"{where}: not a readable .npy array ({exc})") from None
    if any(d < 0 for d in shape):
        raise CorruptCheckpoint(f"{where}: negative dimension in {shape}")
    return NpyHeader(tuple(int(d) for d in shape), bool(fortran), dtype)
