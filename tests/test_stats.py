"""``vars --stats`` arithmetic: streamed mean/std equal a long-double reference, extremes too."""

from __future__ import annotations

import numpy as np
import pytest

from tfckpt.dtypes import dtype_from_name
from tfckpt.ops.stats import tensor_stats

RNG = np.random.default_rng(7)
CASES = [
    ("float64", np.array([2.0, 1e300]), 1),
    ("float64", np.array([1e308, 1e308, -1e308]), 2),
    ("float64", 1e8 + RNG.standard_normal(10_001), 1000),  # small spread around a large mean
    ("float32", RNG.standard_normal(100_000).astype(np.float32), 4096),
    ("float16", RNG.standard_normal(5_000).astype(np.float16), 333),
    ("int64", np.array([2**62, 2**62 + 2, -5], np.int64), 2),
    ("uint8", np.arange(256, dtype=np.uint8), 7),
    ("bool", np.array([True, False, True]), 2),
]


@pytest.mark.parametrize(("dtype", "values", "chunk"), CASES)
def test_streamed_mean_and_std_match_a_long_double_reference(
    dtype: str, values: np.ndarray, chunk: int
) -> None:
    chunks = [values[i : i + chunk] for i in range(0, values.size, chunk)]
    stats = tensor_stats(chunks, dtype_from_name(dtype))
    assert stats is not None
    reference = values.astype(np.longdouble)
    assert stats.mean == pytest.approx(float(reference.mean()), rel=1e-12, abs=1e-12)
    assert stats.std == pytest.approx(float(reference.std()), rel=1e-9, abs=1e-12)
    assert (stats.min, stats.max) == (float(values.min()), float(values.max()))


def test_nan_inf_and_zeros_are_counted_not_averaged() -> None:
    values = np.array([np.nan, 0.0, np.inf, -np.inf, 3.0, 0.0], np.float32)
    stats = tensor_stats([values[:3], values[3:]], dtype_from_name("float32"))
    assert stats is not None
    assert (stats.nan, stats.inf, stats.zeros, stats.finite) == (1, 2, 2, 3)
    assert (stats.min, stats.max, stats.mean) == (0.0, 3.0, 1.0)


def test_strings_have_no_stats() -> None:
    assert tensor_stats([np.array([b"x"], object)], dtype_from_name("string")) is None


@pytest.mark.parametrize(("dtype", "values", "chunk"), CASES)
def test_whole_small_tensors_match_the_reference_too(
    dtype: str, values: np.ndarray, chunk: int
) -> None:
    """One chunk takes the vectorized path (the one ``vars --stats`` batches)."""
    stats = tensor_stats([values], dtype_from_name(dtype))
    assert stats is not None
    reference = values.astype(np.longdouble)
    assert stats.mean == pytest.approx(float(reference.mean()), rel=1e-12, abs=1e-12)
    assert stats.std == pytest.approx(float(reference.std()), rel=1e-9, abs=1e-12)
    assert (stats.min, stats.max) == (float(values.min()), float(values.max()))


def test_a_batch_of_tensors_gives_each_its_own_statistics() -> None:
    from tfckpt.ops.stats import segment_stats

    parts = [
        np.array([np.nan, 0.0, np.inf, -np.inf, 3.0, 0.0], np.float32),
        np.array([], np.float32),
        np.array([np.nan, np.nan], np.float32),
        (1e8 + RNG.standard_normal(1000)).astype(np.float32),
        np.array([-1.5], np.float32),
    ]
    dtype = dtype_from_name("float32")
    batch = segment_stats(np.concatenate(parts), np.array([p.size for p in parts]), dtype)
    alone = [tensor_stats([p], dtype) for p in parts]
    assert batch == alone
    assert batch[1] is not None and batch[1].count == 0 and batch[1].mean is None
    assert batch[2] is not None and (batch[2].nan, batch[2].finite, batch[2].min) == (2, 0, None)
    assert batch[4] is not None and (batch[4].mean, batch[4].std) == (-1.5, 0.0)
