"""TensorFlow DataType numbers, their display names (as ``tf.dtypes.DType.name``) and numpy types.

FORMAT.md section 7. Quantized types are stored with their plain integer layout; float8 and
4-bit types come from ``ml_dtypes`` where it has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING

from tfckpt.errors import UnsupportedCheckpoint

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DType:
    enum: int
    name: str
    itemsize: int  # bytes per element; 0 for string / variant / resource
    _spec: str | None = field(default=None, repr=False)

    @cached_property
    def numpy(self) -> np.dtype | None:
        """The numpy dtype (None for string / variant / resource); numpy is imported lazily so
        that listing a checkpoint never pays for it."""
        return _numpy_dtype(self._spec)

    @property
    def is_string(self) -> bool:
        return self.enum == STRING

    @property
    def is_floating(self) -> bool:
        return self.name in FLOAT_NAMES

    @property
    def is_complex(self) -> bool:
        return self.name in ("complex64", "complex128")

    def __str__(self) -> str:
        return self.name


STRING = 7
VARIANT = 21
RESOURCE = 20

FLOAT_NAMES = frozenset(
    {
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e4m3b11fnuz",
        "float8_e5m2fnuz",
        "float4_e2m1fn",
    }
)

# enum -> (tf name, numpy dtype name or ml_dtypes attribute or None)
_TABLE: dict[int, tuple[str, str | None]] = {
    1: ("float32", "float32"),
    2: ("float64", "float64"),
    3: ("int32", "int32"),
    4: ("uint8", "uint8"),
    5: ("int16", "int16"),
    6: ("int8", "int8"),
    7: ("string", None),
    8: ("complex64", "complex64"),
    9: ("int64", "int64"),
    10: ("bool", "bool"),
    11: ("qint8", "int8"),
    12: ("quint8", "uint8"),
    13: ("qint32", "int32"),
    14: ("bfloat16", "ml:bfloat16"),
    15: ("qint16", "int16"),
    16: ("quint16", "uint16"),
    17: ("uint16", "uint16"),
    18: ("complex128", "complex128"),
    19: ("float16", "float16"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "uint32"),
    23: ("uint64", "uint64"),
    24: ("float8_e5m2", "ml:float8_e5m2"),
    25: ("float8_e4m3fn", "ml:float8_e4m3fn"),
    26: ("float8_e4m3fnuz", "ml:float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", "ml:float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", "ml:float8_e5m2fnuz"),
    29: ("int4", "ml:int4"),
    30: ("uint4", "ml:uint4"),
    31: ("int2", "ml:int2"),
    32: ("uint2", "ml:uint2"),
    33: ("float4_e2m1fn", "ml:float4_e2m1fn"),
}


def _numpy_dtype(spec: str | None) -> np.dtype | None:
    if spec is None:
        return None
    import numpy as np

    if spec.startswith("ml:"):
        import ml_dtypes

        attr = getattr(ml_dtypes, spec[3:], None)
        return None if attr is None else np.dtype(attr)
    return np.dtype(spec)


@cache
def dtype_from_enum(enum: int) -> DType:
    """The DType for a DataType number; unknown numbers are an unsupported checkpoint."""
    if enum not in _TABLE:
        raise UnsupportedCheckpoint(f"unknown TensorFlow dtype number {enum}")
    name, spec = _TABLE[enum]
    return DType(enum, name, _itemsize(name, spec), spec)


def _itemsize(name: str, spec: str | None) -> int:
    if spec is None:
        return 0
    if name.startswith(("float8", "int4", "uint4", "int2", "uint2", "float4")):
        return 1  # ml_dtypes stores sub-byte and 8-bit floats one element per byte
    digits = "".join(ch for ch in spec if ch.isdigit())
    if name in ("bool", "uint8", "int8", "qint8", "quint8"):
        return 1
    if name == "bfloat16":
        return 2
    return int(digits) // 8


@cache
def dtype_from_name(name: str) -> DType:
    """The DType for a tf-style name (``float32``, ``half``, ``float``, ``bfloat16`` ...)."""
    aliases = {"half": "float16", "float": "float32", "double": "float64"}
    name = aliases.get(name, name)
    for enum, (tf_name, _) in _TABLE.items():
        if tf_name == name:
            return dtype_from_enum(enum)
    raise KeyError(name)


def dtype_from_numpy(dt: np.dtype) -> DType:
    """The DType for a numpy dtype (``object``/bytes map to string)."""
    import numpy as np

    dt = np.dtype(dt)
    if dt.kind in ("O", "S", "U"):
        return dtype_from_enum(STRING)
    for enum in sorted(_TABLE):
        if enum in (11, 12, 13, 15, 16):  # quantized types share layouts; prefer plain ints
            continue
        d = dtype_from_enum(enum)
        if d.numpy is not None and d.numpy == dt:
            return d
    raise UnsupportedCheckpoint(f"numpy dtype {dt} has no TensorFlow equivalent")
