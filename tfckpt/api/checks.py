"""The checks CI runs on model artifacts: ``diff`` two checkpoints and ``verify`` one.

Both return a report whose ``ok`` says whether the check passed (the CLI's exit code 0 or 1);
a path that is not a checkpoint at all raises (exit 2).

Example::

    import tfckpt

    report = tfckpt.diff("run1/model.ckpt-1000", "run2/model.ckpt-1000", atol=1e-6)
    if not report.ok:
        for v in report.variables:
            if v.status != "same":
                print(v.name, v.status, v.max_abs)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from tfckpt.api.surgery import PathLike, build_name_rules
from tfckpt.names import display_name
from tfckpt.ops.diff import DiffReport
from tfckpt.ops.verify import VerifyReport
from tfckpt.progress import Progress, or_none

ENGINES = ("native", "tf")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        from tfckpt.errors import UsageError

        raise UsageError(f"engine {engine!r}: choose 'native' or 'tf'")


def diff(
    a: PathLike,
    b: PathLike,
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    equal_nan: bool = False,
    names_only: bool = False,
    sub: Iterable[tuple[str, str]] = (),
    mapping: Mapping[str, str] | PathLike | None = None,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    object_graph: bool = False,
    engine: str = "native",
    progress: Progress | None = None,
) -> DiffReport:
    """Compare two checkpoints variable by variable; ``report.ok`` is True when they are equal.

    Reports variables only in A, only in B, with another dtype or shape, and with other values
    (max abs / rel difference, how many elements differ). Tolerances follow numpy.allclose:
    ``|a - b| <= atol + rtol * |b|``. ``sub`` / ``mapping`` rename A's names first (as in
    ``rename``); ``match`` (globs) / ``regex`` restrict which names are compared;
    ``names_only`` compares names, dtypes and shapes (index only). ``engine="tf"`` reads both
    through ``tf.train.load_checkpoint``.

    >>> tfckpt.diff("old", "new", atol=1e-6).ok
    True
    """
    from tfckpt.ops.diff import DiffOptions, diff_checkpoints
    from tfckpt.ops.rules import name_selector

    _check_engine(engine)
    if atol < 0 or rtol < 0:
        from tfckpt.errors import UsageError

        raise UsageError("atol and rtol must not be negative")
    rules = build_name_rules(sub, mapping)
    options = DiffOptions(atol, rtol, equal_nan, names_only, object_graph)
    names_filter = name_selector(list(match), list(regex))
    # Filters see the compared key and, for TF2, its object path.
    select = (lambda name: names_filter([name, display_name(name)])) if names_filter else None
    progress = or_none(progress)
    # Names, dtypes and shapes come from the index: --names-only works without the data.
    need = not names_only
    with open_engine(a, engine, need) as ca, open_engine(b, engine, need) as cb:
        notes = ca.notes + cb.notes
        listing = getattr(ca, "listing", None)  # native: the column, not an info per tensor
        total = sum(listing().nbytes) if listing else sum(i.nbytes for i in ca.tensors())
        progress.start("diff", 0 if names_only else total)
        report = diff_checkpoints(
            ca, cb, rules, options, select, on_tensor=lambda _n, nbytes: progress.advance(nbytes)
        )
    report.notes = notes
    return report


def verify(
    path: PathLike,
    *,
    no_nan: bool = False,
    no_inf: bool = False,
    max_abs: float | None = None,
    engine: str = "native",
    progress: Progress | None = None,
) -> VerifyReport:
    """Check a checkpoint's integrity; ``report.ok`` is True when every check passes.

    Checks index block checksums, the header version, every data shard present and long
    enough, every entry's range, every tensor's CRC32C (strings: also their length checksum)
    and that partitioned slices cover their tensors exactly once. Value checks: ``no_nan``,
    ``no_inf``, ``max_abs``. ``engine="tf"`` reads every tensor with TensorFlow's reader.

    >>> report = tfckpt.verify("model.ckpt-1000", no_nan=True)
    >>> report.ok, [p.message for p in report.problems]
    (True, [])
    """
    from tfckpt.bundle.checkpoint import data_bytes_on_disk, resolve_prefix
    from tfckpt.ops.verify import VerifyOptions, verify_checkpoint

    _check_engine(engine)
    options = VerifyOptions(no_nan, no_inf, max_abs)
    progress = or_none(progress)
    path = os.fspath(path)
    progress.start("verify", data_bytes_on_disk(resolve_prefix(path)[0]))
    if engine == "tf":
        from tfckpt.tf_engine.verify import verify_with_tf

        return verify_with_tf(path, options, progress.advance)
    return verify_checkpoint(path, options, progress.advance)


def open_engine(path: PathLike, engine: str = "native", need_data: bool = True) -> Any:
    """A checkpoint read natively (``tfckpt.open``) or, with ``engine="tf"``, through
    ``tf.train.load_checkpoint`` behind the same interface. ``need_data=False``: for a listing,
    which works (with a warning in ``notes``) when data shards are missing."""
    _check_engine(engine)
    if engine == "tf":
        from tfckpt.tf_engine.adapter import open_tf_checkpoint

        return open_tf_checkpoint(os.fspath(path))
    from tfckpt.bundle.checkpoint import open_checkpoint

    return open_checkpoint(path, need_data=need_data)


__all__ = ["diff", "open_engine", "verify"]
