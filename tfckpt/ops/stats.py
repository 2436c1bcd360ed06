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
        # Mean and variance merged chunk by chunk (Chan et al.), with the sum of squared
        # deviations kept relative to a scale so that values near 1e308 neither overflow nor
        # lose the variance of values around a large mean: M2 = m2 * scale**2.
        self.mean = 0.0
        self.m2 = 0.0
        self.scale = 0.0

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
        self._merge(finite, float(mn), float(mx))

    def add_int(self, c: np.ndarray) -> None:
        n = c.size
        if n == 0:
            return
        self.count += n
        self.finite += n
        self.zeros += n - int(np.count_nonzero(c))
        lo, hi = float(c.min()), float(c.max())
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        self._merge(c, lo, hi)

    def _merge(self, values: np.ndarray, lo: float, hi: float) -> None:
        """Fold finite ``values`` (already counted in ``finite``; ``lo``..``hi`` their range)
        into mean/M2."""
        n_new = values.size
        n_old = self.finite - n_new
        magnitude = max(abs(lo), abs(hi))
        x = values.astype(np.float64)  # a copy: the source may be a read-only mapped view
        if magnitude < 1e100:
            # Deviations from one of the chunk's own values: no cancellation around a large
            # mean, and one subtraction, one sum and one dot product per chunk.
            shift = float(x[0])
            deviations = x
            deviations -= shift
            s1 = float(deviations.sum())
            mean_new = shift + s1 / n_new
            m2_new = max(float(np.dot(deviations, deviations)) - s1 * s1 / n_new, 0.0)
            scale = 1.0
        else:  # near the float64 limit: work on scaled values so squares cannot overflow
            scale = magnitude
            scaled = x / scale
            mean_scaled = float(scaled.mean())
            m2_new = float(np.square(scaled - mean_scaled).sum())
            mean_new = mean_scaled * scale
        if n_old == 0:
            self.mean, self.m2, self.scale = mean_new, m2_new, scale
            return
        big = max(self.scale, scale)
        total = n_old + n_new
        delta = mean_new / big - self.mean / big
        self.m2 = (
            self.m2 * (self.scale / big) ** 2
            + m2_new * (scale / big) ** 2
            + delta * delta * (n_old * n_new / total)
        )
        self.scale = big
        self.mean = self.mean * (n_old / total) + mean_new * (n_new / total)

    def result(self) -> TensorStats:
        stats = TensorStats(
            count=self.count, finite=self.finite, nan=self.nan, inf=self.inf, zeros=self.zeros
        )
        if self.finite:
            stats.min, stats.max = self.min, self.max
            stats.mean = self.mean
            stats.std = math.sqrt(max(self.m2, 0.0) / self.finite) * self.scale
        return stats


def tensor_stats(chunks: Iterable[np.ndarray], dtype: DType) -> TensorStats | None:
    """Statistics over a stream of flat chunks; None for strings and other non-numeric types."""
    if dtype.numpy is None:
        return None
    acc = _Accumulator()
    kind = dtype.numpy.kind
    # Widening casts of extreme values (float64 -> float32 never happens here) stay quiet.
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
