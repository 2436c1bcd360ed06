"""The constants of a GraphDef as tensors: a frozen graph keeps its weights in ``Const`` nodes,
so ``check --policy`` looks there for dtypes, parameter counts and NaN / Inf when an artifact
has no checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tfckpt.dtypes import DType, dtype_from_enum
from tfckpt.errors import TfckptError

# Which TensorProto field holds each dtype's values when there is no tensor_content.
_FIELDS = {
    "float32": "float_val",
    "float64": "double_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
    "float16": "half_val",
    "bfloat16": "half_val",
}


@dataclass
class GraphTensor:
    name: str  # the node (``function/node`` inside a library function)
    dtype: DType
    shape: tuple[int, ...]
    proto: Any

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(d, 0)
        return n

    def values(self) -> Any | None:
        """The stored values as a flat numpy array (a splat constant stores fewer values than
        its size), or None when numpy cannot hold the dtype."""
        import numpy as np

        np_dtype = self.dtype.numpy
        if np_dtype is None or self.dtype.is_string:
            return None
        t = self.proto
        if t.tensor_content:
            usable = len(t.tensor_content) // max(np_dtype.itemsize, 1) * np_dtype.itemsize
            return np.frombuffer(t.tensor_content[:usable], dtype=np_dtype)
        field = _FIELDS.get(self.dtype.name)
        if field is None:
            return None
        raw = list(getattr(t, field))
        if field == "half_val":
            return np.array(raw, dtype=np.uint16).view(np_dtype)
        if self.dtype.is_complex:
            pairs = np.array(raw, dtype=np.float64).reshape(-1, 2)
            return (pairs[:, 0] + 1j * pairs[:, 1]).astype(np_dtype)
        return np.array(raw).astype(np_dtype)


def graph_constants(graph_def: Any) -> Iterator[GraphTensor]:
    """Every ``Const`` node's tensor, top level and in library functions."""
    scopes = [(None, graph_def.node)]
    scopes += [(f.signature.name, f.node_def) for f in graph_def.library.function]
    for fname, nodes in scopes:
        for node in nodes:
            if node.op != "Const" or "value" not in node.attr:
                continue
            t = node.attr["value"].tensor
            try:
                dtype = dtype_from_enum(t.dtype)
            except TfckptError:
                continue
            shape = tuple(int(d.size) for d in t.tensor_shape.dim)
            name = f"{fname}/{node.name}" if fname else node.name
            yield GraphTensor(name, dtype, shape, t)


__all__ = ["GraphTensor", "graph_constants"]
