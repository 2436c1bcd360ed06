"""Comparing two checkpoints tensor by tensor, in bounded memory.

For each compared name: only in A, only in B, dtype changed, shape changed, values changed, or
the same. Values are compared with numpy ``allclose`` semantics (``|a - b| <= atol + rtol*|b|``);
strings and bools exactly. Tensors whose stored bytes are identical are known equal without
decoding; others are compared in lockstep chunks so memory does not grow with tensor size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from itertools import compress, pairwise
from typing import TYPE_CHECKING, Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint, TensorInfo
from tfckpt.dtypes import dtype_from_enum
from tfckpt.errors import CorruptCheckpoint, RenameConflict
from tfckpt.ops.rules import NameRules

if TYPE_CHECKING:
    import numpy as np

STATUSES = ("only_a", "only_b", "dtype", "shape", "values", "same")
# Bytes compared per step on the raw fast path.


@dataclass(slots=True)
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


class DiffReport:
    """Every compared variable of A and B (``variables``) and whether they are all the same.

    A diff of two large checkpoints that agree almost everywhere keeps its identical tensors
    as rows of A's listing until ``variables`` is read: ``counts``, ``differences()`` and the
    JSON without ``show_all`` never build a VarDiff per identical tensor."""

    def __init__(
        self,
        a: str,
        b: str,
        variables: list[VarDiff] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.a = a
        self.b = b
        self._variables = variables if variables is not None else []
        self.notes = notes if notes is not None else []
        # Set by the aligned path: the listing, which of its rows are identical, how many.
        self._identical: tuple[Any, bytearray, int] | None = None

    @property
    def variables(self) -> list[VarDiff]:
        if self._identical is not None:
            self._variables = _merged(self._variables, *self._identical)
            self._identical = None
        return self._variables

    def differences(self) -> list[VarDiff]:
        """The variables whose status is not ``same``, in name order."""
        return [v for v in self._variables if v.status != "same"]

    @property
    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for v in self._variables:
            counts[v.status] += 1
        if self._identical is not None:
            counts["same"] += self._identical[2]
        return counts

    @property
    def equal(self) -> bool:
        return all(v.status == "same" for v in self._variables)

    @property
    def ok(self) -> bool:
        """No differences (the check passed): the same as ``equal``."""
        return self.equal

    def summary(self) -> dict[str, Any]:
        counts = self.counts
        return {**counts, "compared": sum(counts.values()), "equal": self.equal}

    def to_dict(self, show_all: bool = False) -> dict[str, Any]:
        """The JSON payload; identical variables only with ``show_all``."""
        shown = self.variables if show_all else self.differences()
        return {
            "ok": self.ok,
            "a": self.a,
            "b": self.b,
            "summary": self.summary(),
            "variables": [v.to_dict() for v in shown],
        }


def _merged(compared: list[VarDiff], listing: Any, identical: bytearray, _n: int) -> list[VarDiff]:
    """Every row of ``listing`` in order: a "same" VarDiff for each identical row (rows of one
    shape share its list), the next of ``compared`` for each other row."""
    dtype_names = {code: dtype_from_enum(code).name for code in set(listing.dtype)}
    dims, starts, nelem, dtype = listing.dims, listing.dim_start, listing.nelem, listing.dtype
    shapes: dict[tuple[int, ...], list[int]] = {}
    others = iter(compared)
    out: list[VarDiff] = []
    append = out.append
    for i, name in enumerate(listing.names):
        if not identical[i]:
            append(next(others))
            continue
        key = tuple(dims[starts[i] : starts[i + 1]])
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = list(key)
        append(_identical(name, dtype_names[dtype[i]], shape, nelem[i]))
    return out


def diff_checkpoints(
    a: Checkpoint,
    b: Checkpoint,
    rules: NameRules | None = None,
    options: DiffOptions | None = None,
    select: Callable[[str], bool] | None = None,
    on_tensor: Callable[[str, int], None] | None = None,
) -> DiffReport:
    """Compare ``a`` (names mapped through ``rules``) with ``b``.

    ``select`` filters by the compared name; ``on_tensor(name, nbytes)`` is called as tensors
    are compared, with the bytes compared since the previous call (for progress).
    """
    options = options or DiffOptions()
    rules = rules or NameRules()
    if rules.empty and select is None and not options.names_only:
        aligned = _aligned_report(a, b, options, on_tensor)
        if aligned is not None:
            return aligned

    def keep(info: TensorInfo) -> bool:
        return options.include_object_graph or info.name != OBJECT_GRAPH_KEY

    a_list = [info for info in a.tensors() if keep(info)]
    renames: Mapping[str, str] = {}  # A's names the rules change (never the object graph key)
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
    names = sorted(a_infos.keys() | b_infos.keys())
    if select is not None:
        names = [name for name in names if select(name)]
    identical = set() if options.names_only else _bulk_identical(a, b, names, a_infos, b_infos)
    both = [n for n in names if n in a_infos and n in b_infos and n not in identical]
    if not options.names_only:
        a.prefetch(a_infos[n].name for n in both)  # remote inputs fetch ahead, in this order
        b.prefetch(b_infos[n].name for n in both)
    variables = report.variables
    for name in names:
        ia, ib = a_infos.get(name), b_infos.get(name)
        if name in identical:
            assert ia is not None and ib is not None
            variables.append(
                _identical(name, ia.dtype.name, list(ia.shape), ia.size, ia.name, ib.name)
            )
        else:
            variables.append(_compare(a, b, name, ia, ib, options))
        if on_tensor is not None:
            on_tensor(name, max(ia.nbytes if ia else 0, ib.nbytes if ib else 0))
    return report


def _aligned_report(
    a: Checkpoint,
    b: Checkpoint,
    options: DiffOptions,
    on_tensor: Callable[[str, int], None] | None,
) -> DiffReport | None:
    """The report for two large native checkpoints holding the same names (a copy, the next
    step of a run): rows paired by position, identical small tensors found a batch at a time
    (``_identical_rows``), the rest compared one by one. None when the names differ."""
    if not (isinstance(a, Checkpoint) and isinstance(b, Checkpoint)):
        return None
    if a.format != "V2" or b.format != "V2":
        return None
    la = a.listing(options.include_object_graph)
    lb = b.listing(options.include_object_graph)
    if len(la) < 1000 or la.names != lb.names or la.source is None or lb.source is None:
        return None
    identical = _identical_rows(a, b, la, lb)
    report = DiffReport(a=a.prefix, b=b.prefix)
    compared = report._variables
    nbytes_a, nbytes_b = la.nbytes, lb.nbytes
    if on_tensor is not None:  # the identical tensors at once (their bytes are equal)
        on_tensor("", sum(compress(nbytes_a, identical)))
    for i in (i for i, same in enumerate(identical) if not same):
        compared.append(_compare(a, b, la.names[i], la.info(i), lb.info(i), options))
        if on_tensor is not None:
            on_tensor(la.names[i], max(nbytes_a[i], nbytes_b[i]))
    report._identical = (la, identical, identical.count(1))
    return report


def _identical_rows(a: Checkpoint, b: Checkpoint, la: Any, lb: Any) -> bytearray:
    """1 for each row pair whose small, plain, numeric tensors have byte-identical stored
    values matching their (equal) stored checksums."""
    import numpy as np

    from tfckpt.dtypes import dtype_from_enum

    n = len(la)
    ca, cb = a.bundle.columns, b.bundle.columns
    src_a, src_b = la.np("source"), lb.np("source")
    dtype = la.np("dtype")
    numeric = np.zeros(dtype.size, dtype=bool)
    for code in set(la.dtype):
        dt = dtype_from_enum(code)
        numeric[dtype == code] = dt.numpy is not None and dt.itemsize > 0
    starts_a = la.np("dim_start")
    starts_b = lb.np("dim_start")
    same_shapes = bool(np.array_equal(starts_a, starts_b)) and la.dims == lb.dims
    size_a, size_b = ca.np("size")[src_a], cb.np("size")[src_b]
    ok = (
        numeric
        & (dtype == lb.np("dtype"))
        & (la.np("nslices") == 0)
        & (lb.np("nslices") == 0)
        & (size_a == size_b)
        & (size_a <= BULK_BYTES)
        & (ca.np("crc")[src_a] == cb.np("crc")[src_b])
    )
    if not same_shapes:
        ok &= np.array([la.shape(i) == lb.shape(i) for i in range(n)], dtype=bool)
    same = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(ok)
    same[rows] = _same_stored(a, b, src_a[rows], src_b[rows])
    return bytearray(same.view(np.uint8))


def _same_stored(
    a: Checkpoint, b: Checkpoint, rows_a: np.ndarray, rows_b: np.ndarray
) -> np.ndarray:
    """For each pair of entries (rows of A's and B's index columns, of equal sizes and equal
    stored checksums): whether their stored bytes are equal and match A's checksum. Read and
    compared a span at a time (``stored_ranges``), no Python step per pair; a shard that cannot
    be read leaves its pairs False (``_compare`` reports them)."""
    import numpy as np

    from tfckpt.bundle.bulk import entry_ends

    ca, cb = a.bundle.columns, b.bundle.columns
    shard_a, shard_b = ca.np("shard")[rows_a], cb.np("shard")[rows_b]
    off_a, off_b = ca.np("offset")[rows_a], cb.np("offset")[rows_b]
    size, crc_a = ca.np("size")[rows_a], ca.np("crc")[rows_a]
    same = np.zeros(rows_a.size, dtype=bool)
    order = np.lexsort((shard_b, shard_a))  # pairs grouped by (shard in A, shard in B)
    cut = np.flatnonzero(np.diff(shard_a[order]) | np.diff(shard_b[order])) + 1
    for here in np.split(order, cut) if order.size else []:
        sa, sb = int(shard_a[here[0]]), int(shard_b[here[0]])
        cum = np.cumsum(size[here])
        by_bytes = np.searchsorted(cum, np.arange(BULK_BATCH, int(cum[-1]), BULK_BATCH))
        by_count = np.arange(BULK_COUNT, here.size, BULK_COUNT)  # bounds the per-batch arrays
        cuts = sorted({0, *by_bytes.tolist(), *by_count.tolist(), here.size})
        for lo, hi in pairwise(cuts):
            batch = here[lo:hi]
            sz = size[batch]
            try:
                data_a, got_a = a.bundle.stored_ranges(
                    sa, off_a[batch], entry_ends(off_a[batch], sz)
                )
                # equal bytes and equal stored checksums: B's bytes pass when A's do
                end_b = entry_ends(off_b[batch], sz)
                data_b, _ = b.bundle.stored_ranges(sb, off_b[batch], end_b, False)
            except CorruptCheckpoint:
                continue  # a missing or truncated shard: _compare says so
            same[batch] = (got_a == crc_a[batch]) & ~_ranges_differ(data_a != data_b, sz)
    return same


def _ranges_differ(unequal: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """For consecutive ranges of ``sizes`` bytes over ``unequal`` (one flag per byte): whether
    any byte of each differs."""
    import numpy as np

    out = np.zeros(sizes.size, dtype=bool)
    filled = np.flatnonzero(sizes > 0)
    if filled.size:
        starts = np.cumsum(sizes) - sizes
        out[filled] = np.logical_or.reduceat(unequal, starts[filled])
    return out


# Tensors up to this size are compared many at a time (``_bulk_identical``).
BULK_BYTES = 1 << 20
BULK_BATCH = 16 << 20
BULK_COUNT = 8192


def _bulk_identical(
    a: Checkpoint,
    b: Checkpoint,
    names: list[str],
    a_infos: dict[str, TensorInfo],
    b_infos: dict[str, TensorInfo],
) -> set[str]:
    """The names whose small, plain, numeric tensors have byte-identical stored values in A and
    B and match their (equal) stored checksums, checked a span at a time (``_same_stored``).
    Everything else, including any tensor failing a check, is left to ``_compare``, which
    reports it."""
    if not (
        isinstance(a, Checkpoint)
        and isinstance(b, Checkpoint)
        and a.format == "V2"
        and b.format == "V2"
    ):
        return set()
    import numpy as np

    la, lb = a.listing(), b.listing()
    if la.source is None or lb.source is None:
        return set()
    ca, cb = a.bundle.columns, b.bundle.columns
    picked: list[str] = []
    rows_a: list[int] = []
    rows_b: list[int] = []
    for name in names:
        ia, ib = a_infos.get(name), b_infos.get(name)
        if (
            ia is None
            or ib is None
            or ia.num_slices
            or ib.num_slices
            or ia.dtype != ib.dtype
            or ia.shape != ib.shape
            or ia.dtype.numpy is None
            or ia.nbytes > BULK_BYTES
        ):
            continue
        row_a, row_b = la.row(ia.name), lb.row(ib.name)
        if row_a is None or row_b is None:
            continue
        ra, rb = la.source[row_a], lb.source[row_b]
        if ca.size[ra] == cb.size[rb] and ca.crc[ra] == cb.crc[rb]:
            picked.append(name)
            rows_a.append(ra)
            rows_b.append(rb)
    same = _same_stored(a, b, np.array(rows_a, dtype=np.int64), np.array(rows_b, dtype=np.int64))
    return set(compress(picked, same.tolist()))


def _identical(
    name: str,
    dtype: str,
    shape: list[int],
    size: int,
    name_a: str | None = None,
    name_b: str | None = None,
) -> VarDiff:
    """The VarDiff ``_compare`` makes for a numeric tensor with identical stored bytes (the
    same dtype and shape on both sides, one ``shape`` list for both; A's and B's keys default
    to the compared name)."""
    return VarDiff(
        name,
        "same",
        name if name_a is None else name_a,
        name if name_b is None else name_b,
        dtype,
        dtype,
        shape,
        shape,
        size,
        0,
        0,
        0.0,
        0.0,
        0.0,
        True,
        True,
    )


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
