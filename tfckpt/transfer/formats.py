"""The foreign file formats ``export`` writes and ``import`` reads, and which one a path names.

Each format lives in its own module with its header code, writer, checker and reader:
``safetensors`` (how TF dtypes map onto its fixed set of types is documented there), ``npz`` and
``npy`` (a directory of .npy files; also the .npy member code ``npz`` uses). ``file_format``
returns the object the drivers dispatch through.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING

from tfckpt.dtypes import DType, dtype_from_name
from tfckpt.errors import UsageError

if TYPE_CHECKING:
    from tfckpt.transfer.common import FileFormat


class Format(str, Enum):
    safetensors = "safetensors"
    npz = "npz"
    npy = "npy"


def file_format(fmt: Format) -> FileFormat:
    """The object that plans, writes, checks and reads ``fmt``."""
    if fmt == Format.safetensors:
        from tfckpt.transfer.safetensors import SAFETENSORS

        return SAFETENSORS
    if fmt == Format.npz:
        from tfckpt.transfer.npz import NPZ

        return NPZ
    from tfckpt.transfer.npy import NPY

    return NPY


def tf_dtype(name: str) -> DType | None:
    try:
        return dtype_from_name(name)
    except KeyError:
        return None


def detect_format(path: str, explicit: Format | None, reading: bool) -> Format:
    """The format named by ``explicit``, else by the path: ``.safetensors``, ``.npz``,
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
    raise UsageError(
        f"{path}: cannot tell the format from the name (.safetensors, .npz, or a directory/)",
        fix="format",
    )
