"""Checking everything a reader can check about a checkpoint, plus value checks for CI.

Structural checks: the index table (block checksums, order, footer), the header version, every
data shard present and long enough, every entry's byte range inside its shard, every fixed-width
tensor's size matching its shape and dtype, every tensor's CRC32C (string tensors: also their
length checksum), and partitioned tensors' slices covering the full tensor exactly once. Value
checks (optional): no NaN, no Inf, ``|x| <= max_abs``.

A path that is not a checkpoint at all raises (exit 2); a checkpoint that fails any check
produces problems (exit 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from tfckpt.bundle.checkpoint import Checkpoint, resolve_prefix
from tfckpt.bundle.index import slice_key_count
from tfckpt.bundle.reader import BundleReader, Entry, num_elements
from tfckpt.bundle.slices import (
    Slice,
    decode_slice_key,
    encode_slice_key,
    format_slice,
    slice_index,
    slice_shape,
)
from tfckpt.errors import CorruptCheckpoint, UnsupportedCheckpoint
from tfckpt.storage.lfs import LFS_POINTER, MAX_POINTER_BYTES, is_lfs_pointer

# Missing shards listed one by one; beyond this they are counted (a header may claim 10^6).
MAX_LISTED = 20


@dataclass
class Problem:
    check: (
        str  # index | header | shard | range | size | crc | slices | decode | nan | inf | max_abs
    )
    message: str
    name: str | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyOptions:
    no_nan: bool = False
    no_inf: bool = False
    max_abs: float | None = None


@dataclass
class VerifyReport:
    prefix: str
    format: str
    tensors: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "format": self.format,
            "ok": self.ok,
            "tensors": self.tensors,
            "bytes_checked": self.bytes_checked,
            "problems": [p.to_dict() for p in self.problems],
        }


def verify_checkpoint(
    path: str,
    options: VerifyOptions | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> VerifyReport:
    options = options or VerifyOptions()
    prefix, fmt = resolve_prefix(path)  # not a checkpoint at all: raises (exit 2)
    report = VerifyReport(prefix=prefix, format=fmt)
    if fmt == "V1":
        _verify_v1(prefix, options, report)
        return report
    try:
        bundle = BundleReader(prefix)
    except (CorruptCheckpoint, UnsupportedCheckpoint) as exc:
        check = "header" if "version" in str(exc) or "endian" in str(exc) else "index"
        report.problems.append(Problem(check, str(exc), file=prefix + ".index"))
        return report
    try:
        _verify_bundle(bundle, options, report, on_bytes or (lambda n: None))
    finally:
        bundle.close()
    return report


def _verify_bundle(
    bundle: BundleReader,
    options: VerifyOptions,
    report: VerifyReport,
    on_bytes: Callable[[int], None],
) -> None:
    sizes = bundle.present_shards()
    missing = [s for s in range(bundle.num_shards) if s not in sizes]
    # A Git LFS pointer in place of a shard: one line for the shard, not one per tensor in it.
    for shard in sorted(sizes):
        if sizes[shard] <= MAX_POINTER_BYTES and is_lfs_pointer(bundle.data_path(shard)):
            path = bundle.data_path(shard)
            report.problems.append(Problem("shard", f"{path}: {LFS_POINTER}", file=path))
            del sizes[shard]
    # One line per missing shard (not one per tensor in it), saying how many tensors it holds.
    held: dict[int, set[bytes]] = {}
    for entry in bundle.entries.values():
        if not entry.slices and entry.shard_id not in sizes:
            tensor = entry.key
            if entry.is_slice_key:
                with contextlib.suppress(ValueError):
                    tensor = decode_slice_key(entry.key)[0]
            held.setdefault(entry.shard_id, set()).add(tensor)
    for shard in missing[:MAX_LISTED]:
        path = bundle.data_path(shard)
        count = len(held.get(shard, ()))
        what = f" (it holds {count} tensor{'' if count == 1 else 's'})" if count else ""
        report.problems.append(Problem("shard", f"{path}: data shard is missing{what}", file=path))
    if len(missing) > MAX_LISTED:
        report.problems.append(
            Problem(
                "shard",
                f"{bundle.prefix}: {len(missing) - MAX_LISTED} more of {bundle.num_shards} data "
                "shards are missing",
                file=bundle.index_path,
            )
        )
    clean = _bulk_clean(bundle, options)
    if clean is not None:
        first = slice_key_count(bundle.columns.keys)
        total = 0
        for row in clean:
            total += bundle.columns.size[row]
            report.tensors += row >= first
        report.bytes_checked += total
        on_bytes(total)
    entries = bundle.entries
    rest = range(len(entries)) if clean is None else _rows_not_in(len(entries), clean)
    # Remote shards fetch what the loop below reads ahead of it, several requests in flight.
    bundle.prefetch(e for e in map(entries.entry, rest) if not e.slices and e.shard_id in sizes)
    for row in rest:
        entry = entries.entry(row)
        if entry.slices:
            _check_slices(bundle, entry, report)
            continue
        if not entry.is_slice_key:
            report.tensors += 1
        size = sizes.get(entry.shard_id)
        path = bundle.data_path(entry.shard_id)
        if size is None:
            continue  # reported once for its shard, above (missing, or an LFS pointer)
        if entry.offset + entry.size > size:
            report.problems.append(
                Problem(
                    "range",
                    f"{entry.label!r} needs bytes {entry.offset}..{entry.offset + entry.size} but "
                    f"the shard has {size} (truncated?)",
                    entry.label,
                    path,
                )
            )
            continue
        try:
            bundle.check_size(entry)
        except CorruptCheckpoint as exc:
            report.problems.append(Problem("size", str(exc), entry.label, bundle.index_path))
            continue
        _check_values(bundle, entry, options, report)
        report.bytes_checked += entry.size
        on_bytes(entry.size)


def _rows_not_in(n: int, rows: list[int]) -> list[int]:
    taken = bytearray(n)
    for row in rows:
        taken[row] = 1
    return [i for i in range(n) if not taken[i]]


def _bulk_clean(bundle: BundleReader, options: VerifyOptions) -> list[int] | None:
    """The rows that pass every check, checked many at a time: plain fixed-width tensors whose
    values need no NaN/Inf/max-abs check and that ``BundleReader.failing_rows`` passes (inside
    their shard, the size their shape needs, their CRC32C; a span of nearby entries read at a
    time). Rows failing any test, and all others, go through the per-entry checks, which
    report them. None for small indexes (not worth it)."""
    cols = bundle.columns
    n = len(cols.keys)
    if n < 1000:
        return None
    import numpy as np

    from tfckpt.bundle.bulk import distinct
    from tfckpt.dtypes import dtype_from_enum

    codes = cols.np("dtype")
    plain = np.zeros(n, dtype=bool)
    for code in distinct(codes):
        dt = dtype_from_enum(code)
        if dt.numpy is not None and dt.itemsize > 0 and not wants_values(dt, options):
            plain |= codes == code
    rows = np.flatnonzero(plain)  # in a missing or unreadable shard: all failing
    return rows[~bundle.failing_rows(rows)].tolist()


def _check_values(
    bundle: BundleReader, entry: Entry, options: VerifyOptions, report: VerifyReport
) -> None:
    path = bundle.data_path(entry.shard_id)
    value_checks = wants_values(entry.dtype, options)
    try:
        if entry.dtype.is_string:
            bundle.read_entry(entry, verify=True)
            return
        if not value_checks:  # also every dtype numpy cannot hold (wants_values is False)
            bundle.check_crc(entry)
            return
        findings = value_problems(entry.label, path, bundle.iter_chunks(entry), options)
    except (CorruptCheckpoint, UnsupportedCheckpoint) as exc:
        report.problems.append(Problem("crc", str(exc), entry.label, path))
        return
    report.problems.extend(findings)


def wants_values(dtype: Any, options: VerifyOptions) -> bool:
    """Whether a tensor's values must be read: NaN/Inf checks look at floating types, the
    --max-abs bound at every numeric type."""
    if dtype.numpy is None:
        return False
    inexact = dtype.is_floating or dtype.is_complex
    return (inexact and (options.no_nan or options.no_inf)) or options.max_abs is not None


def value_problems(
    name: str, path: str, chunks: Iterable[Any], options: VerifyOptions
) -> list[Problem]:
    """NaN / Inf / max-abs findings over a stream of value chunks of one numeric tensor."""
    import numpy as np

    nan = inf = n = 0
    worst = 0.0
    for chunk in chunks:
        values = chunk if chunk.dtype.kind in "fc" else chunk.astype(np.float64)
        n += values.size
        if options.no_nan:
            nan += int(np.count_nonzero(np.isnan(values)))
        if options.no_inf:
            inf += int(np.count_nonzero(np.isinf(values)))
        if options.max_abs is not None and values.size:
            magnitude = np.abs(values)
            finite = magnitude[np.isfinite(magnitude)]
            if finite.size:
                worst = max(worst, float(finite.max()))
    problems = []
    if nan:
        problems.append(Problem("nan", f"{name!r}: {nan} of {n} values are NaN", name, path))
    if inf:
        problems.append(Problem("inf", f"{name!r}: {inf} of {n} values are Inf", name, path))
    if options.max_abs is not None and worst > options.max_abs:
        message = f"{name!r}: max |value| {worst:.6g} exceeds {options.max_abs:g}"
        problems.append(Problem("max_abs", message, name, path))
    return problems


def _check_slices(bundle: BundleReader, entry: Entry, report: VerifyReport) -> None:
    """Every slice has an entry of the right shape; slices cover the tensor exactly once."""
    report.tensors += 1
    name = entry.label
    covered = 0
    boxes: list[Slice] = []
    for spec in entry.slices:
        try:
            index = slice_index(spec, entry.shape)
        except ValueError as exc:
            report.problems.append(Problem("slices", f"{name!r}: {exc}", name, bundle.index_path))
            return
        key = encode_slice_key(entry.key, spec)
        part = bundle.entries.get(key)
        if part is None:
            report.problems.append(
                Problem(
                    "slices",
                    f"{name!r}: slice {format_slice(spec)} has no entry",
                    name,
                    bundle.index_path,
                )
            )
            continue
        if part.dtype != entry.dtype:
            report.problems.append(
                Problem(
                    "slices",
                    f"{name!r}: slice {format_slice(spec)} is {part.dtype.name}, not "
                    f"{entry.dtype.name}",
                    name,
                    bundle.index_path,
                )
            )
        if part.shape != slice_shape(spec, entry.shape):
            report.problems.append(
                Problem(
                    "slices",
                    f"{name!r}: slice {format_slice(spec)} has shape {list(part.shape)}",
                    name,
                    bundle.index_path,
                )
            )
        covered += num_elements(tuple(s.stop - s.start for s in index))
        boxes.append(tuple((s.start, s.stop) for s in index))
    if _any_overlap(boxes):
        report.problems.append(
            Problem("slices", f"{name!r}: slices overlap", name, bundle.index_path)
        )
        return
    if covered != num_elements(entry.shape):
        report.problems.append(
            Problem(
                "slices",
                f"{name!r}: slices cover {covered} of {num_elements(entry.shape)} elements",
                name,
                bundle.index_path,
            )
        )


def _any_overlap(boxes: list[Slice]) -> bool:
    """Whether any two boxes (``((start, stop), ...)`` per dimension) share an element.

    A sweep along the dimension with the most distinct intervals: TF partitions along one
    dimension, so each box meets only its neighbour (pairwise checks would be quadratic).
    """
    if len(boxes) < 2:
        return False
    rank = len(boxes[0])
    if rank == 0:
        return True  # two slices of a scalar are both the whole scalar
    dim = max(range(rank), key=lambda d: len({box[d] for box in boxes}))
    active: list[Slice] = []
    for box in sorted(boxes, key=lambda b: b[dim][0]):
        start = box[dim][0]
        active = [a for a in active if a[dim][1] > start]
        for other in active:
            if all(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in zip(other, box)):
                return True
        active.append(box)
    return False


def _verify_v1(prefix: str, options: VerifyOptions, report: VerifyReport) -> None:
    """V1 files carry no tensor checksums: table blocks are checked and every value decoded."""
    from tfckpt.bundle.v1 import V1Reader

    try:
        reader = V1Reader(prefix)
    except (CorruptCheckpoint, UnsupportedCheckpoint) as exc:
        report.problems.append(Problem("index", str(exc), file=prefix))
        return
    ckpt = Checkpoint(prefix=prefix, format="V1", _v1=reader)
    for info in ckpt.tensors():
        report.tensors += 1
        try:
            value = ckpt.read(info.name)
        except (CorruptCheckpoint, UnsupportedCheckpoint) as exc:
            report.problems.append(Problem("decode", str(exc), info.name, prefix))
            continue
        report.bytes_checked += info.nbytes
        if wants_values(info.dtype, options):
            report.problems.extend(value_problems(info.name, prefix, [value], options))
