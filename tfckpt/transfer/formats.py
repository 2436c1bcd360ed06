"""The foreign formats ``export`` writes and ``import`` reads, and how TF dtypes map onto them.

safetensors names a fixed set of element types. TF dtypes fall into three groups:

- **direct**: the same element type exists (float16 -> F16, bfloat16 -> BF16, float8_e4m3fn ->
  F8_E4M3, complex64 -> C64, ...); bytes are copied unchanged.
- **as integers**: quantized types (qint8, quint8, qint16, quint16, qint32) are stored with their
  plain integer layout, and the 4/2-bit integers (int4, uint4, int2, uint2) are widened to
  I8/U8 with the same values. The TF dtype is recorded in ``__metadata__["tfckpt.dtypes"]`` so
  ``tfckpt import`` restores it exactly; other readers see ordinary integers.
- **as real pairs**: complex128 is stored as F64 with an extra last dimension of 2 (real,
  imaginary), the layout ``torch.view_as_real`` uses; the bytes are the same. Recorded in the
  metadata too.
- **not representable**: string, variant, and the float8/float4 variants safetensors lacks
  (float8_e4m3b11fnuz, float4_e2m1fn). They are skipped with a warning, or refused with
  ``--strict``.

.npz / .npy keep every numeric dtype (ml_dtypes types such as bfloat16 are written with numpy's
raw ``V`` descriptor, their TF dtype recorded beside them) and strings (``S`` arrays, or pickled
object arrays when an element ends in a NUL byte that ``S`` would drop).
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import Enum

from tfckpt.dtypes import DType, dtype_from_name
from tfckpt.errors import UsageError


class Format(str, Enum):
    safetensors = "safetensors"
    npz = "npz"
    npy = "npy"


# Where each format keeps the TF dtype when the stored type does not say it.
ST_DTYPES_KEY = "tfckpt.dtypes"  # safetensors __metadata__: JSON {name: tf dtype}
NPZ_COMMENT_PREFIX = b"tfckpt:dtype="  # .npz: each member's zip comment
NPY_INDEX = "index.json"  # .npy directory: {"format": NPY_FORMAT_MARK, "tensors": {...}}
NPY_FORMAT_MARK = "tfckpt-npy"

# TF dtype name -> safetensors dtype, bytes unchanged.
ST_DIRECT: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "uint32": "U32",
    "int32": "I32",
    "uint64": "U64",
    "int64": "I64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float32": "F32",
    "float64": "F64",
    "complex64": "C64",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
# Quantized types: the integer layout, bytes unchanged.
ST_LAYOUT: dict[str, str] = {
    "qint8": "I8",
    "quint8": "U8",
    "qint16": "I16",
    "quint16": "U16",
    "qint32": "I32",
}
# Sub-byte integers (one element per byte in TF): converted by value to a full byte.
ST_WIDEN: dict[str, str] = {"int4": "I8", "uint4": "U8", "int2": "I8", "uint2": "U8"}
# Complex without a safetensors type: (real, imaginary) pairs along a new last dimension.
ST_PAIRS: dict[str, str] = {"complex128": "F64"}
# safetensors dtype -> the plain TF dtype it reads as.
ST_TO_TF: dict[str, str] = {v: k for k, v in ST_DIRECT.items()}
ST_ITEMSIZE: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E4M3FNUZ": 1,
    "F8_E5M2FNUZ": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "C64": 8,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}


def safetensors_dtype(dtype: DType) -> tuple[str | None, str]:
    """``(safetensors dtype, how)``, how being direct / layout / widen / pairs; or
    ``(None, reason)`` when safetensors cannot hold the dtype."""
    if dtype.name in ST_DIRECT:
        return ST_DIRECT[dtype.name], "direct"
    if dtype.name in ST_LAYOUT:
        return ST_LAYOUT[dtype.name], "layout"
    if dtype.name in ST_WIDEN:
        return ST_WIDEN[dtype.name], "widen"
    if dtype.name in ST_PAIRS:
        return ST_PAIRS[dtype.name], "pairs"
    if dtype.is_string:
        return None, "safetensors has no string type"
    return None, f"safetensors has no {dtype.name} type"


def npy_representable(dtype: DType) -> str | None:
    """None if .npz/.npy can hold the dtype, else the reason it cannot."""
    if dtype.is_string or dtype.numpy is not None:
        return None
    return f"numpy has no {dtype.name} type"


def tf_dtype(name: str) -> DType | None:
    try:
        return dtype_from_name(name)
    except KeyError:
        return None


def detect_format(path: str, explicit: Format | None, reading: bool) -> Format:
    """The format named by ``--to``/``--from``, else by the path: ``.safetensors``, ``.npz``,
    or a directory (existing, or written with a trailing slash)."""
    if explicit is not None:
        return explicit
    lower = path.lower()
    if lower.endswith(".safetensors"):
        return Format.safetensors
    if lower.endswith(".npz"):
        return Format.npz
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        return Format.npy
    if reading and lower.endswith(".npy"):
        raise UsageError(
            f"{path}: a single .npy file; give the directory that holds the .npy files"
        )
    option = "--from" if reading else "--to"
    raise UsageError(
        f"{path}: cannot tell the format from the name (.safetensors, .npz, or a directory/); "
        f"use {option} safetensors|npz|npy"
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILE_STEM = 180


def safe_file_name(name: str, taken: set[str]) -> str:
    """A portable file name for tensor ``name`` (``/`` -> ``.``, other unsafe runs -> ``_``),
    unique in ``taken`` ignoring case (case-insensitive file systems); adds it to ``taken``."""
    stem = _UNSAFE.sub("_", name.replace("/", ".")).strip(".") or "_"
    if len(stem) > _MAX_FILE_STEM:
        digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        stem = f"{stem[:_MAX_FILE_STEM]}-{digest}"
    candidate, n = stem, 1
    while candidate.lower() + ".npy" in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate.lower() + ".npy")
    return candidate + ".npy"
