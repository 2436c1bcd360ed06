"""Streaming value statistics of a tensor (``vars --stats``), computed chunk by chunk.

min / max / mean / std are over the finite values; NaN, +-Inf and zeros are counted. Complex
tensors are summarized by magnitude; bool and integer tensors as numbers; strings have no stats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tfckpt.dtypes import DType


@dataclass
class TensorStats:
    count: int = 0
    finite: int = 0
    nan: int = 0
    inf: int = 0
    zeros: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "nan": self.nan,
            "inf": self.inf,
            "zeros": self.zeros,
        }


class _Accumulator:
    def __init__(self) -> None:
        self.count = 0
        self.finite = 0
        self.nan = 0
        self.inf = 0
        self.zeros = 0
        self.min = math.inf
        self.max = -math.inf
        self.total = 0.0
        self.total_sq = 0.0

    def add_float(self, c: np.ndarray) -> None:
        n = c.size
        if n == 0:
            return
        self.count += n
        self.zeros += n - int(np.count_nonzero(c))
        mn = c.min()
        mx = c.max()
        if np.isfinite(mn) and np.isfinite(mx):
            finite = c
        else:
            nan_count = int(np.count_nonzero(np.isnan(c)))
            inf_count = int(np.count_nonzero(np.isinf(c)))
            self.nan += nan_count
            self.inf += inf_count
            finite = c[np.isfinite(c)]
            if finite.size == 0:
                return
            mn = finite.min()
            mx = finite.max()
        self.finite += finite.size
        self.min = min(self.min, float(mn))
        self.max = max(self.max, float(mx))
        # float64 accumulation keeps mean/std accurate over billions of elements.
        f64 = finite.astype(np.float64, copy=False)
        self.total += float(f64.sum())
        self.total_sq += float(np.dot(f64, f64))

    def add_int(self, c: np.ndarray) -> None:
        n = c.size
        if n == 0:
            return
        self.count += n
        self.finite += n
        self.zeros += n - int(np.count_nonzero(c))
        self.min = min(self.min, float(c.min()))
        self.max = max(self.max, float(c.max()))
        f64 = c.astype(np.float64)
        self.total += float(f64.sum())
        self.total_sq += float(np.dot(f64, f64))

    def result(self) -> TensorStats:
        stats = TensorStats(
            count=self.count, finite=self.finite, nan=self.nan, inf=self.inf, zeros=self.zeros
        )
        if self.finite:
            mean = self.total / self.finite
            var = max(self.total_sq / self.finite - mean * mean, 0.0)
            stats.min, stats.max = self.min, self.max
            stats.mean, stats.std = mean, math.sqrt(var)
        return stats


def tensor_stats(chunks: Iterable[np.ndarray], dtype: DType) -> TensorStats | None:
    """Statistics over a stream of flat chunks; None for strings and other non-numeric types."""
    if dtype.numpy is None:
        return None
    acc = _Accumulator()
    kind = dtype.numpy.kind
    # Values near the float64 limit overflow the sums (std becomes inf/nan, as it should read);
    # numpy's overflow warnings would only add noise on stderr.
    with np.errstate(over="ignore", invalid="ignore"):
        for chunk in chunks:
            if dtype.is_complex:
                acc.add_float(np.abs(chunk))
            elif dtype.name in ("float32", "float64"):
                acc.add_float(chunk)
            elif dtype.is_floating:  # float16, bfloat16, float8: widen for numpy's reductions
                acc.add_float(chunk.astype(np.float32))
            elif kind == "b":
                acc.add_int(chunk.view(np.uint8))
            elif kind in "iu" or dtype.name.startswith(("q", "int", "uint")):
                acc.add_int(chunk.astype(np.int64) if kind not in "iu" else chunk)
            else:
                return None
        return acc.result()
