"""What ``vars`` lists: tensors selected, split into model and optimizer state, ranked, totalled.

Works on a ``Listing`` (the index as columns), so 10^6 tensors cost a few passes over arrays
and no object per tensor; ``VarsResult.records()`` yields the JSON records one at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, pairwise
from typing import Any

from tfckpt.bundle.checkpoint import Listing
from tfckpt.dtypes import dtype_from_enum
from tfckpt.errors import CorruptCheckpoint, UsageError
from tfckpt.names import OBJECT_GRAPH_KEY

SORTS = ("name", "size", "bytes", "dtype")
STAT_KEYS = ("min", "max", "mean", "std", "nan", "inf", "zeros")


@dataclass
class VarsResult:
    """The tensors ``vars`` shows: ``rows`` index ``listing`` in display order; ``optimizer[i]``
    is 1 when listing row ``i`` is optimizer state. ``totals`` cover every selected tensor (also
    those ``top`` leaves out); ``stats`` holds the value statistics (``--stats``) as columns:
    ``stats["mean"][i]`` for listing row ``i`` (``row_stats(i)`` as one dict)."""

    prefix: str
    format: str
    listing: Listing
    rows: list[int]
    optimizer: bytearray
    totals: dict[str, int]
    stats: dict[str, list[Any]] | None = None
    notes: list[str] = field(default_factory=list)

    def row_stats(self, i: int) -> dict[str, Any] | None:
        if self.stats is None:
            return None
        return {k: self.stats[k][i] for k in STAT_KEYS}

    def records(self) -> Iterator[dict[str, Any]]:
        """One JSON record per shown tensor: name (the key), dtype, shape, size, nbytes, and
        optimizer (true for optimizer state), path (TF2 object path), slices (partitioned) and
        the statistics when present."""
        lst = self.listing
        for i in self.rows:
            yield record(lst, i, bool(self.optimizer[i]), self.row_stats(i))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.prefix, "tensors": list(self.records()), "totals": self.totals}


def record(
    lst: Listing, i: int, optimizer: bool, stats: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": lst.names[i],
        "dtype": dtype_from_enum(lst.dtype[i]).name,
        "shape": list(lst.dims[lst.dim_start[i] : lst.dim_start[i + 1]]),
        "size": lst.nelem[i],
        "nbytes": lst.nbytes[i],
    }
    path = lst.paths[i] if lst.paths is not None else None
    if path is not None:
        out["path"] = path
    if lst.nslices[i]:
        out["slices"] = lst.nslices[i]
    out["optimizer"] = optimizer
    if stats is not None:
        out.update(stats)
    return out


def select_rows(lst: Listing, match: list[str] | None, regex: list[str] | None) -> list[int]:
    """Rows whose key or (TF2) object path matches any glob or regex; all rows without any."""
    n = len(lst)
    if not match and not regex:
        return list(range(n))
    from fnmatch import translate

    try:
        patterns = [re.compile(r) for r in regex or []]
    except re.error as exc:
        raise UsageError(f"bad regex: {exc}") from None
    globs = re.compile("|".join(f"(?:{translate(g)})" for g in match)) if match else None

    def hit(name: str) -> bool:
        return bool(globs and globs.match(name)) or any(p.search(name) for p in patterns)

    names = lst.names
    paths = lst.paths if lst.paths is not None else [None] * n
    return [
        i for i, (name, path) in enumerate(zip(names, paths)) if hit(name) or (path and hit(path))
    ]


def optimizer_flags(lst: Listing, object_graph: bytes | None) -> bytearray:
    """1 for each row that is optimizer state, as ``prune --no-optimizer`` decides it: TF1 slot
    names, TF2 slot keys, and the keys only a TF2 optimizer reaches."""
    from tfckpt.names import TF2_SLOT_MARK, tf1_slot_flags

    tf2_keys: set[str] = set()
    if object_graph is not None:
        from tfckpt.bundle import objgraph

        tf2_keys = objgraph.optimizer_keys(object_graph)
    names = lst.names
    flags = tf1_slot_flags(names)
    if tf2_keys or TF2_SLOT_MARK in "\n".join(names):
        for i, name in enumerate(names):
            if TF2_SLOT_MARK in name or name in tf2_keys:
                flags[i] = 1
    return flags


def sort_rows(lst: Listing, rows: list[int], by: str, keys: bool = False) -> list[int]:
    """``rows`` ordered for display: by name (the shown name), by size or bytes (largest
    first, then by name), or by dtype (then by name)."""
    if by not in SORTS:
        raise UsageError(f"sort by {by!r}: choose one of {', '.join(SORTS)}")
    names = lst.names if keys or lst.paths is None else lst.display_names()
    if by == "name":
        if names is lst.names:
            return rows  # listings are sorted by key
        return sorted(rows, key=names.__getitem__)
    by_name = sorted(rows, key=names.__getitem__)
    if by == "size":
        return sorted(by_name, key=lst.nelem.__getitem__, reverse=True)
    if by == "bytes":
        return sorted(by_name, key=lst.nbytes.__getitem__, reverse=True)
    dtype_names = {code: dtype_from_enum(code).name for code in set(lst.dtype)}
    return sorted(by_name, key=lambda i: dtype_names[lst.dtype[i]])


def totals(lst: Listing, rows: list[int], optimizer: bytearray) -> dict[str, int]:
    """Counts over ``rows``: variables, parameters (elements) split into model and optimizer
    state, stored bytes."""
    nelem, nbytes = lst.nelem, lst.nbytes
    if len(rows) == len(lst):  # everything: sums over whole columns
        params = sum(nelem)
        stored = sum(nbytes)
        opt = sum(compress(nelem, optimizer))
    else:
        params = sum(nelem[i] for i in rows)
        stored = sum(nbytes[i] for i in rows)
        opt = sum(nelem[i] for i in rows if optimizer[i])
    return {
        "variables": len(rows),
        "parameters": params,
        "model_parameters": params - opt,
        "optimizer_state": opt,
        "bytes": stored,
    }


def _object_graph(ckpt: Any) -> bytes | None:
    """The serialized TF2 object graph of a native or ``--engine tf`` checkpoint, or None."""
    if hasattr(ckpt, "object_graph_bytes"):
        raw: bytes | None = ckpt.object_graph_bytes()
        return raw
    from tfckpt.errors import VariableNotFound

    try:
        value = ckpt.read(OBJECT_GRAPH_KEY)
    except VariableNotFound:
        return None
    return bytes(value.reshape(-1)[0])


def list_variables(
    ckpt: Any,
    *,
    match: list[str] | None = None,
    regex: list[str] | None = None,
    optimizer: bool | None = None,
    sort: str = "name",
    top: int | None = None,
    include_object_graph: bool = False,
    keys: bool = False,
) -> VarsResult:
    """The plan of a listing: which rows, in which order, with which totals (no values read).

    ``optimizer``: None lists everything, True only optimizer state, False only the model.
    """
    if top is not None and top < 0:
        raise UsageError(f"top {top}: give a positive number")
    if hasattr(ckpt, "listing"):
        lst: Listing = ckpt.listing(include_object_graph)
    else:  # --engine tf
        lst = Listing.from_infos(ckpt.tensors(include_object_graph))
    rows = select_rows(lst, match, regex)
    notes: list[str] = []
    try:
        graph = _object_graph(ckpt) if lst.paths is not None else None
        flags = optimizer_flags(lst, graph)
    except CorruptCheckpoint as exc:
        # A listing needs only the index; a damaged object graph costs only the TF2 split.
        notes.append(f"{exc}: optimizer state recognized by name only")
        flags = optimizer_flags(lst, None)
    if optimizer is not None:
        want = 1 if optimizer else 0
        rows = [i for i in rows if flags[i] == want]
    total = totals(lst, rows, flags)
    rows = sort_rows(lst, rows, sort, keys)
    if top is not None:
        rows = rows[:top]
    return VarsResult(ckpt.prefix, ckpt.format, lst, rows, flags, total, notes=notes)


def stat_rows(ckpt: Any, result: VarsResult, progress: Any = None) -> None:
    """Value statistics of every shown row (``--stats``), in bounded memory: small tensors of
    a V2 checkpoint in batches (one gather, one vectorized pass), the others streamed."""
    from tfckpt.ops.stats import tensor_stats

    lst = result.listing
    stats: dict[str, list[Any]] = {k: [None] * len(lst) for k in STAT_KEYS}
    if progress is not None:
        progress.start("stats", sum(map(lst.nbytes.__getitem__, result.rows)))
    rest = _batched_stats(ckpt, result, stats, progress)
    if hasattr(ckpt, "prefetch"):  # remote checkpoints fetch ahead, several requests in flight
        ckpt.prefetch(lst.names[i] for i in rest)
    for i in rest:
        name = lst.names[i]
        if progress is not None:
            progress.describe(lst.display_name(i))
        got = tensor_stats(ckpt.iter_chunks(name), dtype_from_enum(lst.dtype[i]))
        if got is not None:
            for k, v in got.to_dict().items():
                stats[k][i] = v
        if progress is not None:
            progress.advance(lst.nbytes[i])
    result.stats = stats


BATCH_BYTES = 16 * 1024 * 1024


def _batched_stats(
    ckpt: Any, result: VarsResult, stats: dict[str, list[Any]], progress: Any
) -> list[int]:
    """Statistics of the small, plain, numeric tensors of a V2 checkpoint, many at a time;
    returns the rows left to the streaming path. Should any tensor be damaged, everything is
    left to the streaming path, which reports the first damaged one in display order."""
    from tfckpt.ops.stats import SEGMENT_ELEMENTS

    lst = result.listing
    bundle = getattr(ckpt, "_bundle", None)
    if bundle is None or lst.source is None or len(result.rows) < 64:
        return list(result.rows)
    import numpy as np

    from tfckpt.errors import CorruptCheckpoint
    from tfckpt.ops.stats import segment_columns

    fixed = {
        code
        for code in set(lst.dtype)
        if dtype_from_enum(code).numpy is not None and dtype_from_enum(code).itemsize > 0
    }
    shown = np.asarray(result.rows, dtype=np.int64)
    codes = lst.np("dtype")[shown]
    small = (lst.np("nslices")[shown] == 0) & (lst.np("nelem")[shown] <= SEGMENT_ELEMENTS)
    left = np.ones(shown.size, dtype=bool)
    groups: dict[int, np.ndarray] = {}
    for code in fixed:
        picked = small & (codes == code)
        groups[code] = shown[picked]
        left &= ~picked
    rest: list[int] = shown[left].tolist()
    n = len(lst)
    found = {
        k: np.zeros(n, dtype=np.int64 if k in ("nan", "inf", "zeros") else np.float64)
        for k in STAT_KEYS
    }
    has = np.zeros(n, dtype=bool)  # a finite value to take min/max/mean/std of
    done = np.zeros(n, dtype=bool)
    source = lst.np("source")
    cols = bundle.columns
    shard_col, offset_col = cols.np("shard"), cols.np("offset")
    nelem_col, nbytes_col = lst.np("nelem"), lst.np("nbytes")
    try:
        for code, group in groups.items():
            if group.size == 0:
                continue
            dtype = dtype_from_enum(code)
            rows = group
            src = source[rows]
            rows = rows[np.lexsort((offset_col[src], shard_col[src]))]
            cum = np.cumsum(nbytes_col[rows])
            cuts = [
                0,
                *np.searchsorted(cum, np.arange(BATCH_BYTES, cum[-1], BATCH_BYTES)),
                rows.size,
            ]
            for a, b in pairwise(cuts):
                batch = rows[a:b]
                if batch.size == 0:
                    continue
                raw = bundle.read_many(source[batch], dtype.itemsize)
                got = segment_columns(raw.view(dtype.numpy), nelem_col[batch], dtype)
                if got is None:
                    rest.extend(batch.tolist())
                    continue
                ok = got["ok"]
                for k in STAT_KEYS:
                    found[k][batch] = got[k]
                has[batch] = got["finite"] > 0
                done[batch] = ok
                rest.extend(batch[~ok].tolist())
                if progress is not None:
                    progress.advance(int(nbytes_col[batch].sum()))
    except CorruptCheckpoint:
        return list(result.rows)  # the streaming path names the first damaged tensor
    everywhere = bool(done.all() and has.all())
    for k in STAT_KEYS:
        if everywhere:
            stats[k][:] = found[k].tolist()
            continue
        column = found[k].astype(object)
        column[~done] = None
        if k not in ("nan", "inf", "zeros"):
            column[~has] = None
        stats[k][:] = column.tolist()  # None where not done: the streaming path fills those
    if not rest:
        return rest
    order = {i: k for k, i in enumerate(result.rows)}
    return sorted(rest, key=order.__getitem__)
