"""Many plain tensors as columns: the plan, the copy and the check of an export of 10^5 or 10^6
small tensors at a few microseconds each (issue 13).

When every tensor of an export is a plain tensor of a local V2 bundle whose bytes the format
keeps as they are (``FileFormat.raw_storage``) and no preset is involved, the plan keeps them as
``ExportColumns``: numpy arrays of index rows and sizes, and the lists of names. Laying out,
writing and checking then take a few array operations and a few calls per *run* of tensors
instead of several per tensor:

- ``copy_runs``: tensors adjacent in the source shard (and in the output) are copied as one
  range with ``copy_file_range``; nearby small runs with gaps between them by one read of the
  span. Tensors of ``SMALL`` bytes or more are copied one by one, each handed to the background
  checker as soon as it is written, as the per-tensor path does.
- ``output_crcs``: the small tensors of the output are read back in windows of ``WINDOW`` bytes
  and hashed one call each; every CRC is compared with the index at once, and the first tensor
  that differs is named by the per-tensor ``compare`` (which also tells a corrupt source).

``ExportPlan.items`` builds the per-tensor records from the columns when someone asks for them
(``--dry-run``, ``--json``, the formats that go tensor by tensor).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfckpt.bundle.bulk import masked_crcs
from tfckpt.dtypes import DType
from tfckpt.errors import CheckFailed, CorruptCheckpoint
from tfckpt.transfer import common
from tfckpt.transfer.common import ExportItem, OnBytes, Source, compare, crc_of_file, write_all

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.index import IndexColumns

# Tensors below this size are copied in runs and checked in windows; larger ones one by one.
SMALL = 1 << 20
# Bytes read at once: the output when checking, the source span of gathered small runs.
WINDOW = 8 << 20


@dataclass
class ExportColumns:
    """The items of a plan of plain tensors, in output order: item ``k`` is source tensor
    ``sources[k]`` (row ``rows[k]`` of the bundle's index columns ``index``) written as
    ``names[k]``, ``nbytes[k]`` bytes, stored as ``stored[dtype code]``; ``begin[k]`` is its
    offset in the output's data area once laid out."""

    index: IndexColumns
    rows: np.ndarray  # int64
    sources: list[str]
    names: list[str]
    stored: dict[int, tuple[DType, str]]  # TF dtype enum -> (dtype, stored dtype name)
    nbytes: np.ndarray  # int64
    begin: np.ndarray | None = None  # int64
    header: list[bytes] | None = None  # the output's header as written (for the check)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def total_bytes(self) -> int:
        return int(self.nbytes.sum())

    def column(self, name: str) -> np.ndarray:
        """An index column (``dtype``, ``shard``, ``offset``, ``crc``...) per item."""
        return self.index.np(name)[self.rows]

    def take(self, order: np.ndarray) -> None:
        """Reorder the items (``order``: item numbers in their new order)."""
        listed = order.tolist()
        self.rows = self.rows[order]
        self.nbytes = self.nbytes[order]
        self.sources = [self.sources[k] for k in listed]
        self.names = [self.names[k] for k in listed]
        self.begin = None if self.begin is None else self.begin[order]

    def unique_shapes(self) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """The distinct shapes and, per item, the number of its shape among them."""
        import numpy as np

        dims, start = self.index.np("dims"), self.index.np("dim_start")
        first = start[self.rows]
        rank = start[self.rows + 1] - first
        shapes: list[tuple[int, ...]] = []
        which = np.zeros(len(self), dtype=np.int64)
        if not len(rank):
            return shapes, which
        ranks = [int(rank[0])] if (rank == rank[0]).all() else np.unique(rank).tolist()
        for r in ranks:
            sel = np.flatnonzero(rank == r)
            if r == 0:
                which[sel] = len(shapes)
                shapes.append(())
                continue
            table = dims[first[sel][:, None] + np.arange(r)]
            inverse = _distinct_rows(table)
            which[sel] = inverse + len(shapes)
            rep = np.zeros(int(inverse.max()) + 1, dtype=np.int64)
            rep[inverse[::-1]] = np.arange(len(sel) - 1, -1, -1)  # each one's first row
            shapes += [tuple(s) for s in table[rep].tolist()]
        return shapes, which

    def item(self, k: int) -> ExportItem:
        """Item ``k`` as the per-tensor plan records it."""
        row = int(self.rows[k])
        dtype, stored = self.stored[self.index.dtype[row]]
        out = ExportItem(
            self.sources[k],
            self.names[k],
            dtype,
            self.index.shape(row),
            stored,
            int(self.nbytes[k]),
            "raw",
            src_pos=(self.index.shard[row], self.index.offset[row]),
        )
        if self.begin is not None:
            out.begin = int(self.begin[k])
        return out

    def items(self) -> list[ExportItem]:
        """Every item as the per-tensor plan records it (equal shapes share one tuple)."""
        shapes, which = self.unique_shapes()
        kinds = self.stored
        begins = self.begin.tolist() if self.begin is not None else [0] * len(self)
        return [
            ExportItem(
                source,
                name,
                kinds[code][0],
                shapes[shape],
                kinds[code][1],
                size,
                "raw",
                begin=begin,
                src_pos=(shard, offset),
            )
            for source, name, code, shape, size, begin, shard, offset in zip(
                self.sources,
                self.names,
                self.column("dtype").tolist(),
                which.tolist(),
                self.nbytes.tolist(),
                begins,
                self.column("shard").tolist(),
                self.column("offset").tolist(),
            )
        ]


def _distinct_rows(table: np.ndarray) -> np.ndarray:
    """Per row of a 2-D int array, the number of its value among the distinct rows (sorted):
    each column coded by its distinct values, the codes combined into one number per row."""
    import numpy as np

    if (table == table[0]).all():  # one shape (the usual case)
        return np.zeros(len(table), dtype=np.int64)
    if table.shape[1] == 1:
        return np.unique(table[:, 0], return_inverse=True)[1].reshape(-1)
    code = np.zeros(len(table), dtype=np.int64)
    span = 1
    for column in table.T:
        values, inverse = np.unique(column, return_inverse=True)
        span *= len(values)
        if span >= 1 << 62:  # too many combinations to number: compare whole rows
            return np.unique(table, axis=0, return_inverse=True)[1].reshape(-1)
        code = code * len(values) + inverse.reshape(-1)
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def run_starts(cols: ExportColumns) -> np.ndarray:
    """Where each run starts (plus the end): a run is a tensor of ``SMALL`` bytes or more on
    its own, or consecutive smaller ones that follow each other in the same source shard."""
    import numpy as np

    shard, offset, size = cols.column("shard"), cols.column("offset"), cols.nbytes
    n = len(cols)
    big = size >= SMALL
    cut = np.ones(n + 1, dtype=bool)
    cut[1:n] = (
        (shard[1:] != shard[:-1]) | (offset[1:] != offset[:-1] + size[:-1]) | big[1:] | big[:-1]
    )
    return np.flatnonzero(cut)


def copy_runs(
    src: Source,
    cols: ExportColumns,
    fd: int,
    on_bytes: OnBytes | None,
    written: Callable[[int, int], None] | None = None,
) -> None:
    """Append the items' bytes to ``fd`` in output order (its position ends up after them):
    each run with one in-kernel copy, or, for nearby small runs in the same shard, one read of
    the span they cover. ``written(k, at)`` is told of each item of ``SMALL`` bytes or more as
    soon as it is in the file (``at``: its offset there)."""
    bounds = run_starts(cols)
    first = bounds[:-1]
    last = bounds[1:] - 1
    shard = cols.column("shard")
    offset = cols.column("offset")
    lo = offset[first].tolist()
    hi = (offset[last] + cols.nbytes[last]).tolist()
    run_shard = shard[first].tolist()
    count = len(lo)
    r = 0
    while r < count:
        sfd = src.fd(run_shard[r])
        if hi[r] - lo[r] >= SMALL:  # a large tensor (or a long run of small ones)
            at = os.lseek(fd, 0, os.SEEK_CUR)
            common.copy_to_fd(sfd, lo[r], hi[r] - lo[r], fd, on_bytes)
            k = int(first[r])
            if written is not None and cols.nbytes[k] >= SMALL:
                written(k, at)
            r += 1
            continue
        # Small runs that lie close together in one shard: one read of their span.
        end, total, stop = hi[r], hi[r] - lo[r], r + 1
        while (
            stop < count
            and run_shard[stop] == run_shard[r]
            and lo[stop] >= end
            and hi[stop] - lo[stop] < SMALL
            and hi[stop] - lo[r] <= min(2 * (total + hi[stop] - lo[stop]) + SMALL, 2 * WINDOW)
        ):
            total += hi[stop] - lo[stop]
            end = hi[stop]
            stop += 1
        if stop == r + 1:
            common.copy_to_fd(sfd, lo[r], hi[r] - lo[r], fd, on_bytes)
        else:
            span = os.pread(sfd, end - lo[r], lo[r])
            if len(span) < end - lo[r]:
                raise CorruptCheckpoint("a data shard ended early (truncated?)")
            view = memoryview(span)
            base = lo[r]
            write_all(
                fd, b"".join([view[a - base : b - base] for a, b in zip(lo[r:stop], hi[r:stop])])
            )
            if on_bytes is not None:
                on_bytes(total)
        r = stop


def output_crcs(
    path: str,
    cols: ExportColumns,
    data_start: int,
    on_bytes: OnBytes | None,
    early: dict[str, int],
) -> np.ndarray:
    """The masked CRC32C of every item as read back from the output ``path`` (whose data area
    starts at ``data_start``): items of ``SMALL`` bytes or more from ``early`` (the background
    checker) or read one by one, the others in windows of ``WINDOW`` bytes."""
    import numpy as np

    assert cols.begin is not None
    out = np.zeros(len(cols), dtype=np.uint64)
    size = cols.nbytes
    for k in np.flatnonzero(size >= SMALL).tolist():
        found = early.get(cols.names[k])
        if found is None:
            found = crc_of_file(path, data_start + int(cols.begin[k]), int(size[k]), on_bytes)
        out[k] = found
    small = np.flatnonzero(size < SMALL)
    begin = cols.begin[small]
    end = begin + size[small]
    with open(path, "rb", buffering=0) as f:
        i = 0
        while i < len(small):
            j = max(int(np.searchsorted(end, begin[i] + WINDOW, side="right")), i + 1)
            lo, hi = int(begin[i]), int(end[j - 1])
            data = os.pread(f.fileno(), hi - lo, data_start + lo)
            if len(data) < hi - lo:
                raise CheckFailed("output ended early")
            pieces = map(slice, (begin[i:j] - lo).tolist(), (end[i:j] - lo).tolist())
            out[small[i:j]] = masked_crcs(map(data.__getitem__, pieces), j - i)
            if on_bytes is not None:
                on_bytes(int(size[small[i:j]].sum()))
            i = j
    return out


def compare_all(src: Source, cols: ExportColumns, actual: np.ndarray, where: str) -> None:
    """Every item's CRC as read back against the index; the first that differs (in output
    order) raises as ``compare`` does (CorruptCheckpoint when the source itself is corrupt)."""
    import numpy as np

    wrong = np.flatnonzero(actual != src.expected_crcs(cols))
    if wrong.size:
        k = int(wrong[0])
        compare(src, cols.item(k), int(actual[k]), where)
        raise CheckFailed(f"{where}: {cols.names[k]!r} differs from the source")  # not reached
