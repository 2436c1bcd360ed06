"""Comparing two checkpoints tensor by tensor, in bounded memory.

For each compared name: only in A, only in B, dtype changed, shape changed, values changed, or
the same. Values are compared with numpy ``allclose`` semantics (``|a - b| <= atol + rtol*|b|``);
strings and bools exactly. Tensors whose stored bytes are identical are known equal without
decoding; others are compared in lockstep chunks so memory does not grow with tensor size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint, TensorInfo
from tfckpt.errors import RenameConflict
from tfckpt.ops.rules import NameRules

if TYPE_CHECKING:
    import numpy as np

STATUSES = ("only_a", "only_b", "dtype", "shape", "values", "same")
# Bytes compared per step on the raw fast path.


@dataclass
class VarDiff:
    name: str  # the compared name (A's name after the rename rules = B's name)
    status: str
    name_a: str | None = None
    name_b: str | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    shape_a: list[int] | None = None
    shape_b: list[int] | None = None
    size: int = 0
    n_diff: int | None = None  # elements that differ at all
    n_outside: int | None = None  # elements outside the tolerance
    frac_diff: float | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    within_tolerance: bool | None = None
    identical_bytes: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DiffOptions:
    atol: float = 0.0
    rtol: float = 0.0
    equal_nan: bool = False
    names_only: bool = False
    include_object_graph: bool = False


@dataclass
class DiffReport:
    """Every compared variable of A and B (``variables``) and whether they are all the same."""

    a: str
    b: str
    variables: list[VarDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for v in self.variables:
            counts[v.status] += 1
        return counts

    @property
    def equal(self) -> bool:
        return all(v.status == "same" for v in self.variables)

    @property
    def ok(self) -> bool:
        """No differences (the check passed): the same as ``equal``."""
        return self.equal

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "compared": len(self.variables), "equal": self.equal}

    def to_dict(self, show_all: bool = False) -> dict[str, Any]:
        """The JSON payload; identical variables only with ``show_all``."""
        return {
            "ok": self.ok,
            "a": self.a,
            "b": self.b,
            "summary": self.summary(),
            "variables": [v.to_dict() for v in self.variables if show_all or v.status != "same"],
        }


def diff_checkpoints(
    a: Checkpoint,
    b: Checkpoint,
    rules: NameRules | None = None,
    options: DiffOptions | None = None,
    select: Callable[[str], bool] | None = None,
    on_tensor: Callable[[str, int], None] | None = None,
) -> DiffReport:
    """Compare ``a`` (names mapped through ``rules``) with ``b``.

    ``select`` filters by the compared name; ``on_tensor(name, nbytes)`` is called after each
    tensor (for progress).
    """
    options = options or DiffOptions()
    rules = rules or NameRules()

    def keep(info: TensorInfo) -> bool:
        return options.include_object_graph or info.name != OBJECT_GRAPH_KEY

    a_list = [info for info in a.tensors() if keep(info)]
    renames: dict[str, str] = {}  # A's names the rules change (never the object graph key)
    if not rules.empty:
        from tfckpt.ops.rename import plan_renames

        plan = plan_renames([info.name for info in a_list], rules)
        if plan.conflicts:
            raise RenameConflict(
                f"the rules map several names of A to one ({len(plan.conflicts)} conflict(s)): "
                + "; ".join(plan.conflicts[:5])
            )
        renames = plan.renames
    a_infos = {renames.get(info.name, info.name): info for info in a_list}
    b_infos = {i.name: i for i in b.tensors() if keep(i)}
    report = DiffReport(a=a.prefix, b=b.prefix)
    names = [n for n in sorted(set(a_infos) | set(b_infos)) if select is None or select(n)]
    both = [n for n in names if n in a_infos and n in b_infos]
    a.prefetch(a_infos[n].name for n in both)  # remote inputs fetch ahead, in this order
    b.prefetch(b_infos[n].name for n in both)
    for name in names:
        ia, ib = a_infos.get(name), b_infos.get(name)
        report.variables.append(_compare(a, b, name, ia, ib, options))
        if on_tensor is not None:
            on_tensor(name, max(ia.nbytes if ia else 0, ib.nbytes if ib else 0))
    return report


def _compare(
    a: Checkpoint,
    b: Checkpoint,
    name: str,
    ia: TensorInfo | None,
    ib: TensorInfo | None,
    options: DiffOptions,
) -> VarDiff:
    d = VarDiff(name=name, status="same")
    if ia is not None:
        d.name_a, d.dtype_a, d.shape_a = ia.name, ia.dtype.name, list(ia.shape)
    if ib is not None:
        d.name_b, d.dtype_b, d.shape_b = ib.name, ib.dtype.name, list(ib.shape)
    if ia is None:
        d.status = "only_b"
        return d
    if ib is None:
        d.status = "only_a"
        return d
    if ia.dtype != ib.dtype:
        d.status = "dtype"
        return d
    if ia.shape != ib.shape:
        d.status = "shape"
        return d
    d.size = ia.size
    if options.names_only:
        return d
    if _same_bytes(a, b, ia, ib):
        d.identical_bytes = True
        d.n_diff = d.n_outside = 0
        d.frac_diff = 0.0
        d.max_abs = d.max_rel = 0.0 if ia.dtype.numpy is not None else None
        d.within_tolerance = True
        return d
    d.identical_bytes = False
    acc = _ValueAccumulator(ia.dtype, options)
    for chunk_a, chunk_b in _lockstep(a, b, ia, ib):
        acc.add(chunk_a, chunk_b)
    acc.finish(d)
    if d.n_outside:
        d.status = "values"
    return d


def _raw_entry(ckpt: Checkpoint, info: TensorInfo) -> Any | None:
    """The V2 entry of a plain (unpartitioned) tensor read natively, or None."""
    if not isinstance(ckpt, Checkpoint) or ckpt.format != "V2" or info.num_slices:
        return None
    return ckpt.entry(info.name)


def _same_bytes(a: Checkpoint, b: Checkpoint, ia: TensorInfo, ib: TensorInfo) -> bool:
    """Stored bytes identical (compared chunk by chunk), both checksums verified."""
    ea, eb = _raw_entry(a, ia), _raw_entry(b, ib)
    if ea is None or eb is None or ea.size != eb.size or ea.crc32c != eb.crc32c:
        return False
    import numpy as np

    from tfckpt.bundle.table import crc32c, mask_crc

    crc = 0
    # Both streams come in the same steps (storage.STEP), wherever each is stored.
    for ca, cb in zip(a.bundle.stream(ea), b.bundle.stream(eb)):
        # numpy compares at memory speed; memoryview == is element by element.
        if not np.array_equal(np.frombuffer(ca, np.uint8), np.frombuffer(cb, np.uint8)):
            return False
        crc = crc32c(ca, crc)
    # Equal bytes and equal stored checksums: one verification covers both sides.
    if ia.dtype.is_string:  # string checksums also cover the lengths; the reader checks them
        a.read(ia.name)
    elif mask_crc(crc) != ea.crc32c:
        a.bundle.check_crc(ea)  # raises CorruptCheckpoint naming the variable and file
    return True


def _lockstep(
    a: Checkpoint, b: Checkpoint, ia: TensorInfo, ib: TensorInfo
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Equal-length flat chunks of both tensors in row-major order."""
    streamable = (
        _raw_entry(a, ia) is not None
        and _raw_entry(b, ib) is not None
        and ia.dtype.numpy is not None
    )
    if streamable:
        chunks_a, chunks_b = a.iter_chunks(ia.name), b.iter_chunks(ib.name)
        yield from zip(chunks_a, chunks_b)
        # zip stops at A's end: run both streams out, so each checks its stored checksum.
        for _ in chunks_a:
            pass
        for _ in chunks_b:
            pass
    else:  # partitioned, V1 or string tensors: whole values (slices are not row-major chunks)
        yield a.read(ia.name).reshape(-1), b.read(ib.name).reshape(-1)


def _bits_differ(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Element-wise: do the stored bits differ?"""
    size = x.dtype.itemsize
    if size in (1, 2, 4, 8):
        return x.view(f"u{size}") != y.view(f"u{size}")
    wide_x = x.view("u8").reshape(x.size, -1)
    return (wide_x != y.view("u8").reshape(y.size, -1)).any(axis=1)


class _ValueAccumulator:
    def __init__(self, dtype: Any, options: DiffOptions) -> None:
        self.dtype = dtype
        self.options = options
        self.n = 0
        self.n_diff = 0
        self.n_outside = 0
        self.max_abs: float | None = None
        self.max_rel: float | None = None

    def add(self, x: Any, y: Any) -> None:
        import numpy as np

        self.n += x.size
        if x.size == 0:
            return
        if x.dtype == object or self.dtype.numpy.kind == "b":
            differ = (
                np.array([bytes(p) != bytes(q) for p, q in zip(x, y)])
                if x.dtype == object
                else x != y
            )
            count = int(np.count_nonzero(differ))
            self.n_diff += count
            self.n_outside += count
            return
        numeric_kind = self.dtype.numpy.kind
        # Elements with identical bits are equal (so a NaN equals the very same NaN, whatever
        # the storage format); +0.0 and -0.0 differ in bits but lie within any tolerance.
        exact_differ = _bits_differ(x, y)
        if numeric_kind in "iu":
            # |x - y| exactly: the wrap-around difference of the larger and the smaller in
            # uint64 is the true distance (int64 extremes would overflow a signed subtraction,
            # and float64 cannot tell 2**60 from 2**60 + 1).
            big, small = np.maximum(x, y), np.minimum(x, y)
            delta = (big.astype(np.uint64) - small.astype(np.uint64)).astype(np.float64)
            yf = y.astype(np.float64)
            both_nan = np.zeros(x.shape, dtype=bool)
        else:
            if numeric_kind == "c" or x.dtype in (np.float32, np.float64):
                xf, yf = x, y
            else:  # float16, bfloat16, float8: widen for arithmetic
                xf, yf = x.astype(np.float32), y.astype(np.float32)
            both_nan = np.isnan(xf) & np.isnan(yf)
            with np.errstate(invalid="ignore", over="ignore"):
                delta = np.abs(xf - yf)
                delta = np.where((xf == yf) & np.isinf(xf), 0, delta)  # equal infinities
        if self.options.equal_nan:
            exact_differ &= ~both_nan
        n_differ = int(np.count_nonzero(exact_differ))
        self.n_diff += n_differ
        if n_differ == 0:
            self._update_max(0.0, 0.0)
            return
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            tolerance = self.options.atol + self.options.rtol * np.abs(yf)
            # NaN deltas (a NaN on either side) are outside, unless the bits are identical.
            outside = ~(delta <= tolerance) & exact_differ
            self.n_outside += int(np.count_nonzero(outside))
            finite = np.isfinite(delta)
            if finite.any():
                d = delta[finite]
                magnitude = np.abs(yf)[finite]
                rel = np.where(
                    magnitude > 0,
                    d / np.where(magnitude > 0, magnitude, 1),
                    np.where(d > 0, np.inf, 0),
                )
                self._update_max(float(d.max()), float(rel.max()))

    def _update_max(self, max_abs: float, max_rel: float) -> None:
        self.max_abs = max_abs if self.max_abs is None else max(self.max_abs, max_abs)
        self.max_rel = max_rel if self.max_rel is None else max(self.max_rel, max_rel)

    def finish(self, d: VarDiff) -> None:
        d.n_diff = self.n_diff
        d.n_outside = self.n_outside
        d.frac_diff = self.n_diff / self.n if self.n else 0.0
        numeric = self.dtype.numpy is not None and self.dtype.numpy.kind not in "bO"
        d.max_abs = self.max_abs if numeric else None
        d.max_rel = self.max_rel if numeric else None
        d.within_tolerance = self.n_outside == 0
