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


# Tensors up to this many elements, read whole, take the vectorized path (``segment_stats``),
# so a tensor has the same statistics whether it arrives alone or with 10^5 others.
SEGMENT_ELEMENTS = 1 << 18
# Beyond this magnitude squares could overflow; such tensors take the scaled streaming path.
_SEGMENT_MAGNITUDE = 1e100


def _widen(values: np.ndarray, dtype: DType) -> tuple[np.ndarray, bool] | None:
    """The values as numpy reduces them, and whether they are floating (NaN/Inf possible);
    None for types without statistics."""
    kind = dtype.numpy.kind if dtype.numpy is not None else ""
    if dtype.is_complex:
        return np.abs(values), True
    if dtype.name in ("float32", "float64"):
        return values, True
    if dtype.is_floating:  # float16, bfloat16, float8: widen for numpy's reductions
        return values.astype(np.float32), True
    if kind == "b":
        return values.view(np.uint8), False
    if kind in "iu":
        return values, False
    if dtype.name.startswith(("q", "int", "uint")):
        return values.astype(np.int64), False
    return None


def segment_stats(values: np.ndarray, counts: np.ndarray, dtype: DType) -> list[TensorStats | None]:
    """Statistics of many small tensors at once (``segment_columns``), one TensorStats each."""
    cols = segment_columns(values, counts, dtype)
    if cols is None:
        return [None] * len(counts)
    out: list[TensorStats | None] = []
    lists = {k: v.tolist() for k, v in cols.items()}
    for k, ok in enumerate(lists["ok"]):
        if not ok:
            out.append(None)
            continue
        has = lists["finite"][k] > 0
        out.append(
            TensorStats(
                count=lists["count"][k],
                finite=lists["finite"][k],
                nan=lists["nan"][k],
                inf=lists["inf"][k],
                zeros=lists["zeros"][k],
                min=lists["min"][k] if has else None,
                max=lists["max"][k] if has else None,
                mean=lists["mean"][k] if has else None,
                std=lists["std"][k] if has else None,
            )
        )
    return out


def segment_columns(
    values: np.ndarray, counts: np.ndarray, dtype: DType
) -> dict[str, np.ndarray] | None:
    """Statistics of many small tensors at once, as arrays (one item per tensor): ``values``
    is their flat concatenation, ``counts`` their element counts. ``ok[k]`` is False for a
    tensor that needs the streaming path (magnitudes near the float64 limit); min, max, mean and
    std mean nothing where ``finite`` is 0. None for a type without statistics.

    Per tensor: counts of NaN, Inf and zeros; min/max over the finite values; mean and standard
    deviation by the corrected two-pass formula (the sum of squared deviations from the mean,
    minus the squared sum of deviations over n), all with numpy's pairwise sums.
    """
    counts = np.asarray(counts, dtype=np.int64)
    widened = _widen(values, dtype) if dtype.numpy is not None else None
    if widened is None:
        return None
    x, floating = widened
    n_all = counts.size
    cols: dict[str, np.ndarray] = {
        "ok": np.ones(n_all, dtype=bool),
        "count": counts,
        **{k: np.zeros(n_all, dtype=np.int64) for k in ("finite", "nan", "inf", "zeros")},
        **{k: np.zeros(n_all, dtype=np.float64) for k in ("min", "max", "mean", "std")},
    }
    live = np.flatnonzero(counts > 0)
    if live.size == 0:
        return cols
    lc = counts[live]
    starts = np.concatenate(([0], np.cumsum(lc)[:-1]))
    with np.errstate(over="ignore", invalid="ignore"):
        zeros = np.add.reduceat(x == 0, starts, dtype=np.int64)
        finite = np.isfinite(x) if floating else None
        if finite is not None and bool(finite.all()):
            finite = None  # the usual case: nothing to count or mask
        if finite is not None:
            nan = np.add.reduceat(np.isnan(x), starts, dtype=np.int64)
            inf = np.add.reduceat(np.isinf(x), starts, dtype=np.int64)
            nf = np.add.reduceat(finite, starts, dtype=np.int64)
            lo = np.minimum.reduceat(np.where(finite, x, np.inf), starts)
            hi = np.maximum.reduceat(np.where(finite, x, -np.inf), starts)
        else:
            nan = inf = np.zeros(live.size, dtype=np.int64)
            nf = lc
            lo = np.minimum.reduceat(x, starts)
            hi = np.maximum.reduceat(x, starts)
        lo_f = lo.astype(np.float64)
        hi_f = hi.astype(np.float64)
        big = (nf > 0) & ~(np.maximum(np.abs(lo_f), np.abs(hi_f)) < _SEGMENT_MAGNITUDE)
        xf = x.astype(np.float64)
        if finite is not None:
            xf = np.where(finite, xf, 0.0)
        n = np.maximum(nf, 1).astype(np.float64)
        mean = np.add.reduceat(xf, starts) / n
        dev = xf - np.repeat(mean, lc)
        if finite is not None:
            dev[~finite] = 0.0
        s1 = np.add.reduceat(dev, starts)
        s2 = np.add.reduceat(dev * dev, starts)
        mean = mean + s1 / n
        std = np.sqrt(np.maximum(s2 - s1 * s1 / n, 0.0) / n)
    for name, column in (
        ("finite", nf),
        ("nan", nan),
        ("inf", inf),
        ("zeros", zeros),
        ("min", lo_f),
        ("max", hi_f),
        ("mean", mean),
        ("std", std),
    ):
        cols[name][live] = column
    cols["ok"][live[big]] = False
    return cols


def tensor_stats(chunks: Iterable[np.ndarray], dtype: DType) -> TensorStats | None:
    """Statistics over a stream of flat chunks; None for strings and other non-numeric types.

    A tensor that arrives as one small chunk takes the vectorized path (``segment_stats``), so
    its statistics are the same whether it is summarized alone or in a batch."""
    if dtype.numpy is None:
        return None
    it = iter(chunks)
    first = next(it, None)
    second = next(it, None) if first is not None else None
    if first is not None and second is None and first.size <= SEGMENT_ELEMENTS:
        got = segment_stats(first, np.array([first.size]), dtype)[0]
        if got is not None:
            return got
    acc = _Accumulator()
    kind = dtype.numpy.kind
    stream = [c for c in (first, second) if c is not None]
    # Widening casts of extreme values (float64 -> float32 never happens here) stay quiet.
    with np.errstate(over="ignore", invalid="ignore"):
        for chunk in _chain(stream, it):
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


def _chain(head: list[np.ndarray], rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield from head
    yield from rest
