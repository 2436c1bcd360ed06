"""Rendering for ``ls`` and ``vars``: streamed tables (or TSV/CSV), the scope tree, tensor
values, and JSON documents written item by item.

Nothing here holds a formatted cell per tensor: widths come from the columns of the listing
before the first row is written (``render.stream``), so 10^6 tensors print as fast as they can
be formatted, and Rich is not imported.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from tfckpt.dtypes import dtype_from_enum
from tfckpt.render import human_bytes, shape_text
from tfckpt.render.stream import (
    RESET,
    STYLES,
    Col,
    StreamTable,
    color_enabled,
    emit_json_stream,
    json_value,
    max_width,
    styled,
    terminal_width,
    write_delimited,
)

STAT_KEYS = ("min", "max", "mean", "std", "nan", "inf", "zeros")

if TYPE_CHECKING:
    import numpy as np

# A tfckpt.ops.listing.VarsResult (render takes plain data; it does not import ops).
VarsResult = Any


# ---- ls ------------------------------------------------------------------------------------
def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


LS_COLUMNS = (
    Col("path"),
    Col("step", right=True),
    Col("format"),
    Col("data", right=True),
    Col("meta"),
    Col("modified"),
    Col("latest"),
)


def ls_record(item: Any) -> dict[str, Any]:
    import datetime as _dt

    d: dict[str, Any] = item.to_dict()
    d["mtime_iso"] = (
        _dt.datetime.fromtimestamp(item.mtime, _dt.timezone.utc).isoformat() if item.mtime else None
    )
    return d


def render_ls(
    items: Sequence[Any],
    as_json: bool,
    base: str | None = None,
    *,
    fmt: str = "table",
    headers: bool = True,
    path: str | None = None,
) -> None:
    """``ls``: one row per checkpoint, SavedModel, events file or leftover; the path whole at
    any width. JSON: ``{"kind": "ls", "version": 1, "path": ..., "items": [...]}``."""
    if as_json:
        head = {} if path is None else {"path": path}
        emit_json_stream("ls", head, "items", [[json_value(ls_record(i)) for i in items]])
        return
    rows = [
        [
            _relative(item.path, base),
            "" if item.step is None else str(item.step),
            _format_cell(item),
            "" if item.data_bytes is None else human_bytes(item.data_bytes),
            "yes" if item.has_meta else "",
            _when(item.mtime),
            "*" if item.latest else "",
        ]
        for item in items
    ]
    if fmt != "table":
        write_delimited(LS_COLUMNS, rows, fmt, headers)
        return
    if not items:
        sys.stdout.write("no checkpoints, SavedModels or events files found\n")
        return
    widths = [max_width([r[j] for r in rows]) for j in range(len(LS_COLUMNS))]
    table = StreamTable(LS_COLUMNS, widths, headers=headers)
    table.header()
    for item, row in zip(items, rows):
        table.row(row, {"missing": "red", "temp": "yellow"}.get(item.kind))
    for item, row in zip(items, rows):
        if item.note:  # below the table, so a long note never squeezes the columns
            table.line(styled(row[0], "bold", table.color) + f": {item.note}")
    table.flush()


def _format_cell(item: Any) -> str:
    if item.kind == "checkpoint":
        shards = f" x{item.shards}" if item.shards and item.shards > 1 else ""
        return f"{item.format or '?'}{shards}"
    return "SavedModel" if item.kind == "savedmodel" else item.kind


def _relative(path: str, base: str | None) -> str:
    from tfckpt import storage

    if base is None or not storage.isdir(base):
        return path
    rel = storage.relpath(path, base)
    return path if rel.startswith("..") else rel


# ---- vars ----------------------------------------------------------------------------------
def var_record(info: Any, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON record of one TensorInfo (``vars --show``)."""
    record: dict[str, Any] = {
        "name": info.name,
        "dtype": info.dtype.name,
        "shape": list(info.shape),
        "size": info.size,
        "nbytes": info.nbytes,
    }
    if info.object_path is not None:
        record["path"] = info.object_path
    if info.num_slices:
        record["slices"] = info.num_slices
    if stats is not None:
        record.update(stats)
    return record


def _fmt_num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"


class _Cells:
    """Cell text of listing rows. Whole columns are built at once: each distinct shape, size
    and byte count is formatted once (with numpy when it is loaded, as it is for the large
    listings where this matters)."""

    def __init__(self, result: VarsResult, keys: bool) -> None:
        lst = result.listing
        self.lst = lst
        self.names = lst.names if keys or lst.paths is None else lst.display_names()
        self.dtypes = {c: dtype_from_enum(c).name for c in set(lst.dtype)}
        self._dims = lst.dims.tobytes()
        self._shapes: dict[bytes, str] = {}
        self._bytes: dict[int, str] = {}
        self.np = sys.modules.get("numpy")

    def shape(self, i: int) -> str:
        s, e = self.lst.dim_start[i], self.lst.dim_start[i + 1]
        key = self._dims[8 * s : 8 * e]
        text = self._shapes.get(key)
        if text is None:
            text = self._shapes[key] = shape_text(self.lst.dims[s:e])
        return text

    def nbytes(self, i: int) -> str:
        n = self.lst.nbytes[i]
        text = self._bytes.get(n)
        if text is None:
            text = self._bytes[n] = human_bytes(n)
        return text

    # ---- whole columns for ``rows`` ------------------------------------------------------------
    def name_column(self, rows: list[int]) -> list[str]:
        names = self.names
        if len(rows) == len(names) and (not rows or rows[-1] == len(rows) - 1):
            return names if isinstance(names, list) else list(names)
        return [names[i] for i in rows]

    def _by_value(self, column: Any, rows: list[int], fmt: Any) -> list[str]:
        """``fmt(column[i])`` for each row, each distinct value formatted once."""
        np = self.np
        if np is None or len(rows) < 1000:
            cache: dict[int, str] = {}
            out = []
            for i in rows:
                v = column[i]
                text = cache.get(v)
                if text is None:
                    text = cache[v] = fmt(v)
                out.append(text)
            return out
        values = np.frombuffer(column, dtype=np.int64 if column.itemsize == 8 else np.int32)
        values = values[np.asarray(rows, dtype=np.int64)]
        distinct, inverse = np.unique(values, return_inverse=True)
        texts = np.array([fmt(v) for v in distinct.tolist()], dtype=object)
        return list(texts[inverse.reshape(-1)].tolist())

    def dtype_column(self, rows: list[int]) -> list[str]:
        return self._by_value(self.lst.dtype, rows, self.dtypes.__getitem__)

    def elements_column(self, rows: list[int]) -> list[str]:
        return self._by_value(self.lst.nelem, rows, "{:,}".format)

    def bytes_column(self, rows: list[int]) -> list[str]:
        return self._by_value(self.lst.nbytes, rows, human_bytes)

    def shape_column(self, rows: list[int]) -> list[str]:
        np = self.np
        lst = self.lst
        if np is None or len(rows) < 1000:
            return [self.shape(i) for i in rows]
        idx = np.asarray(rows, dtype=np.int64)
        start = np.frombuffer(lst.dim_start, dtype=np.int64)
        rank = (start[idx + 1] - start[idx]).astype(np.int64)
        width = int(rank.max()) if rank.size else 0
        if width > 8:
            return [self.shape(i) for i in rows]
        dims = np.frombuffer(lst.dims, dtype=np.int64)
        key = np.full((idx.size, width + 1), -1, dtype=np.int64)
        key[:, 0] = rank
        first = start[idx]
        for k in range(width):
            has = rank > k
            key[has, k + 1] = dims[first[has] + k]
        packed = np.ascontiguousarray(key).view(np.dtype((np.void, 8 * (width + 1)))).reshape(-1)
        _, where, inverse = np.unique(packed, return_index=True, return_inverse=True)
        texts = np.array([self.shape(rows[j]) for j in where.tolist()], dtype=object)
        return list(texts[inverse.reshape(-1)].tolist())


def totals_line(totals: dict[str, int], shown: int, color: bool, width: int | None = None) -> str:
    """``N variables, M model parameters + K optimizer state, SIZE (B bytes)``; broken after a
    comma where it would not fit ``width``."""
    n, params, opt = totals["variables"], totals["parameters"], totals["optimizer_state"]
    nbytes = totals["bytes"]
    pieces: list[list[tuple[str, bool]]] = []  # each piece: (text, bold) runs
    head = [(f"showing {shown:,} of ", False)] if shown != n else []
    pieces.append([*head, (f"{n:,}", True), (" variables", False)])
    if opt:
        pieces.append(
            [
                (f"{params - opt:,}", True),
                (" model parameters + ", False),
                (f"{opt:,}", True),
                (" optimizer state", False),
            ]
        )
    else:
        pieces.append([(f"{params:,}", True), (" parameters", False)])
    pieces.append([(human_bytes(nbytes), True), (f" ({nbytes:,} bytes)", False)])
    lines: list[str] = []
    current = ""
    used = 0
    for piece in pieces:
        plain = "".join(text for text, _ in piece)
        text = "".join(styled(t, "bold", color) if bold else t for t, bold in piece)
        if current and width is not None and used + 2 + len(plain) > width:
            lines.append(current + ",")
            current, used = text, len(plain)
        elif current:
            current, used = f"{current}, {text}", used + 2 + len(plain)
        else:
            current, used = text, len(plain)
    lines.append(current)
    return "\n".join(lines)


def _json_records(result: VarsResult, cells: _Cells) -> Iterator[list[str]]:
    """The records of ``VarsResult.records()``, encoded column by column (no dict per tensor):
    each distinct dtype, shape and number encoded once, rows joined by one format per row."""
    lst = result.listing
    rows = result.rows
    simple = lst.paths is None and not any(lst.nslices)
    stats = result.stats
    step = 8192
    dtype_json = {c: encode_basestring(name) for c, name in cells.dtypes.items()}
    for lo in range(0, len(rows), step):
        part = rows[lo : lo + step]
        names = map(encode_basestring, [lst.names[i] for i in part])
        dtypes = cells._by_value(lst.dtype, part, dtype_json.__getitem__)
        shapes = cells.shape_column(part)
        sizes = cells._by_value(lst.nelem, part, str)
        stored = cells._by_value(lst.nbytes, part, str)
        flags = [_TRUE if result.optimizer[i] else _FALSE for i in part]
        if simple and stats is None:
            yield list(map(_RECORD.format, names, dtypes, shapes, sizes, stored, flags))
            continue
        if simple and stats is not None:
            columns = [[_json_number(stats[k][i]) for i in part] for k in STAT_KEYS]
            yield list(
                map(_RECORD_STATS.format, names, dtypes, shapes, sizes, stored, flags, *columns)
            )
            continue
        lines = []
        for k, line in enumerate(map(_HEAD.format, names, dtypes, shapes, sizes, stored)):
            i = part[k]
            if lst.paths is not None and lst.paths[i] is not None:
                line += f', "path": {encode_basestring(lst.paths[i])}'
            if lst.nslices[i]:
                line += f', "slices": {lst.nslices[i]}'
            line += f', "optimizer": {flags[k]}'
            if stats is not None:
                line += "".join(f', "{k}": {_json_number(stats[k][i])}' for k in STAT_KEYS)
            lines.append(line + "}")
        yield lines


_HEAD = '{{"name": {}, "dtype": {}, "shape": {}, "size": {}, "nbytes": {}'
_RECORD = _HEAD + ', "optimizer": {}}}'
_RECORD_STATS = (
    '{{"name": {0}, "dtype": {1}, "shape": {2}, "size": {3}, "nbytes": {4}, "optimizer": {5}'
    + "".join(f', "{k}": {{{n}}}' for n, k in enumerate(STAT_KEYS, start=6))
    + "}}"
)


def _json_number(v: Any) -> str:
    """A statistic as tfckpt's JSON writes it (None -> null, NaN/Inf as strings)."""
    if v is None:
        return "null"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return json_value(v)
    return repr(v) if isinstance(v, float) else str(v)


_TRUE, _FALSE = "true", "false"


def vars_columns(result: VarsResult, keys: bool, with_stats: bool) -> list[Col]:
    lst = result.listing
    name = "object path" if lst.paths is not None and not keys else "name"
    cols = [Col(name), Col("dtype"), Col("shape"), Col("elements", True), Col("bytes", True)]
    if with_stats:
        cols += [Col(k, True, group=1) for k in STAT_KEYS]
    return cols


def render_vars(
    result: VarsResult,
    *,
    as_json: bool = False,
    fmt: str = "table",
    headers: bool = True,
    tree: bool = False,
    depth: int | None = None,
    keys: bool = False,
    quiet: bool = False,
) -> None:
    """``vars``: the listing as a table (streamed), TSV/CSV, a scope tree or one JSON document
    (``{"kind": "vars", "version": 1, "path", "tensors": [...], "totals": {...}}``)."""
    with_stats = result.stats is not None
    if as_json:
        emit_json_stream(
            "vars",
            {"path": result.prefix},
            "tensors",
            _json_records(result, _Cells(result, keys=True)),
            lambda: {"totals": result.totals},
        )
        return
    cells = _Cells(result, keys)
    if tree:
        _render_tree(result, cells, depth)
        return
    columns = vars_columns(result, keys, with_stats)
    rows = result.rows

    color = color_enabled()
    if fmt != "table":
        write_delimited(columns, (_plain_cells(result, cells, i) for i in rows), fmt, headers)
        if not quiet:
            sys.stderr.write(f"tfckpt: {totals_line(result.totals, len(rows), False)}\n")
        return
    sys.stdout.write(styled(result.prefix, "bold", color) + "\n")
    names = cells.name_column(rows)
    shapes = cells.shape_column(rows)
    dtypes = cells.dtype_column(rows)
    elements = cells.elements_column(rows)
    sizes = cells.bytes_column(rows)
    stat_columns = _stat_columns(result, rows) if with_stats else []
    widths = [
        max_width(names),
        max_width(dtypes),
        max_width(shapes),
        max_width(elements),
        max_width(sizes),
        *(max_width(column) for column in stat_columns),
    ]
    ascii_cells = "".join(names).isascii()
    table = StreamTable(columns, widths, headers=headers, color=color, ascii_cells=ascii_cells)
    table.header()
    alarming: set[int] = set()
    if with_stats and result.stats is not None and color:  # rows with NaN or Inf show in red
        nan, inf = result.stats["nan"], result.stats["inf"]
        if any(nan) or any(inf):
            alarming = {k for k, i in enumerate(rows) if nan[i] or inf[i]}
    if table.template is not None and not alarming:
        table.plain_rows([names, dtypes, shapes, elements, sizes, *stat_columns])
    else:
        for k in range(len(rows)):
            cells_k = [names[k], dtypes[k], shapes[k], elements[k], sizes[k]]
            cells_k += [column[k] for column in stat_columns]
            table.row(cells_k, "red" if k in alarming else None)
    table.line(totals_line(result.totals, len(rows), color, table.width))
    table.flush()


def _stat_columns(result: VarsResult, rows: list[int]) -> list[list[str]]:
    """The statistics cells of ``rows``, column by column (floats to 4 significant digits,
    counts with thousands separators, blank where there is no value)."""
    assert result.stats is not None
    out = []
    for key in STAT_KEYS:
        column = result.stats[key]
        values = list(map(column.__getitem__, rows))
        if key in ("nan", "inf", "zeros"):  # counts: a few distinct values, mostly 0
            memo: dict[Any, str] = {v: f"{v:,}" for v in set(values) if v is not None}
            memo[None] = ""
            out.append(list(map(memo.__getitem__, values)))
        elif None in values:
            out.append(["" if v is None else "%.4g" % v for v in values])  # noqa: UP031
        else:  # one % for the column: a fifth faster than one per value
            out.append((("%.4g\x00" * len(values)) % tuple(values)).split("\x00")[:-1])
    return out


def _plain_cells(result: VarsResult, cells: _Cells, i: int) -> list[str]:
    """TSV/CSV cells: numbers without separators or units, for scripts."""
    lst = result.listing
    out = [cells.names[i], cells.dtypes[lst.dtype[i]], cells.shape(i), str(lst.nelem[i])]
    out.append(str(lst.nbytes[i]))
    if result.stats is not None:
        st = result.row_stats(i) or {}
        out += ["" if st.get(k) is None else str(st[k]) for k in STAT_KEYS]
    return out


def _leaf_label(name: str, r: dict[str, Any], color: bool) -> str:
    label = f"{name}  {styled(r['dtype'], 'cyan', color)} {r['shape']}  {r['bytes']}"
    st = r.get("stats")
    if st:
        text = "  ".join(f"{k} {_fmt_num(st.get(k))}" for k in ("min", "max", "mean", "std"))
        label += styled(f"  {text}", "dim", color)
        bad = [f"{k} {st[k]:,}" for k in ("nan", "inf") if st.get(k)]
        if bad:
            label += styled("  " + "  ".join(bad), "red", color)
    return label


def _render_tree(result: VarsResult, cells: _Cells, depth: int | None) -> None:
    """The scope tree, streamed in one pass over the sorted names: every scope is a contiguous
    run of rows, so it opens at its first row, ends where bisection finds its last, and takes
    its subtotals from prefix sums. Leaf labels are built a column at a time, like the table's
    cells."""
    lst = result.listing
    color = color_enabled()
    shown = cells.names
    rows = sorted(result.rows, key=shown.__getitem__)
    in_order = len(rows) == len(shown) and rows == list(range(len(shown)))
    names = shown if in_order else list(map(shown.__getitem__, rows))
    n = len(rows)
    params = list(accumulate(map(lst.nelem.__getitem__, rows), initial=0))
    stored = list(accumulate(map(lst.nbytes.__getitem__, rows), initial=0))
    dtype = cells.dtype_column(rows)
    if color:
        dtype = [styled(d, "cyan", color) for d in dtype]
    shape = cells.shape_column(rows)
    size = cells.bytes_column(rows)
    stats = result.stats is not None
    bold = STYLES["bold"] if color else ""
    dim = STYLES["dim"] if color else ""
    reset = RESET if color else ""
    sizes: dict[int, str] = {}  # human_bytes, once per distinct subtotal

    def scope_label(name: str, lo: int, hi: int) -> str:
        b = stored[hi] - stored[lo]
        text = sizes.get(b)
        if text is None:
            text = sizes[b] = human_bytes(b)
        p = params[hi] - params[lo]
        return f"{bold}{name}{reset}{dim}  {hi - lo} vars, {p:,} params, {text}{reset}"

    def leaf_label(name: str, k: int) -> str:
        if not stats:
            return f"{name}  {dtype[k]} {shape[k]}  {size[k]}"
        leaf = {"dtype": cells.dtypes[lst.dtype[rows[k]]], "shape": shape[k], "bytes": size[k]}
        leaf["stats"] = result.row_stats(rows[k])
        return _leaf_label(name, leaf, color)

    out = [scope_label(result.prefix, 0, n)]
    write = sys.stdout.write
    # The open scopes, innermost last: (prefix with its "/", end row, guide for its lines,
    # depth). Names may nest deeper than Python's recursion limit, so no recursion.
    stack: list[tuple[str, int, str, int]] = [("", n, "", 0)]
    k = 0
    while k < n:
        while stack[-1][1] <= k:
            stack.pop()
        prefix, end, guide, level = stack[-1]
        name = names[k]
        cut = len(prefix)
        slash = name.find("/", cut)
        while slash >= 0 and (depth is None or level < depth):
            scope = name[: slash + 1]
            hi = bisect_left(names, name[:slash] + "0", k, end)  # "0" follows "/"
            last = hi == end
            out.append(f"{guide}{'└── ' if last else '├── '}{scope_label(scope[cut:], k, hi)}")
            guide += "    " if last else "│   "
            level += 1
            prefix, end, cut = scope, hi, slash + 1
            stack.append((prefix, end, guide, level))
            slash = name.find("/", cut)
        if depth is not None and level >= depth:  # the scope's line is out, its rows are not
            k = end
            continue
        branch = "└── " if k + 1 == end else "├── "
        out.append(f"{guide}{branch}{leaf_label(name[cut:], k)}")
        k += 1
        if len(out) >= 8192:
            out.append("")
            write("\n".join(out))
            out.clear()
    out.append(totals_line(result.totals, n, color, terminal_width()))
    out.append("")
    write("\n".join(out))
    sys.stdout.flush()


def _jsonable_values(arr: np.ndarray) -> Any:
    import numpy as np

    if arr.dtype == object:
        return [
            v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
            for v in arr.reshape(-1)
        ]
    if arr.dtype.kind == "c":
        return [[float(v.real), float(v.imag)] for v in arr.reshape(-1)]
    if arr.dtype.kind not in "biuf":  # bfloat16, float8 ...
        arr = arr.astype(np.float64)
    return arr.reshape(-1).tolist()


def render_value(
    record: dict[str, Any], value: np.ndarray, full: bool, as_json: bool, prefix: str = ""
) -> None:
    """``vars --show``: one tensor's values. JSON: the ``vars`` document with that one tensor,
    its flat, row-major ``values`` added (reshape with ``shape``)."""
    if as_json:
        from tfckpt.render import emit_json

        out = dict(record)
        out["values"] = _jsonable_values(value)
        emit_json("vars", {"path": prefix, "tensors": [out]})
        return
    import numpy as np

    threshold = sys.maxsize if full else 1000
    with np.printoptions(threshold=threshold, edgeitems=3, linewidth=120):
        if value.dtype.kind not in "biufcO":
            text = np.array2string(value.astype(np.float32), separator=", ")
        else:
            text = np.array2string(value, separator=", ")
    color = color_enabled()
    shape = shape_text(record["shape"])
    name = styled(record.get("path", record["name"]), "bold", color)
    sys.stdout.write(f"{name}  {record['dtype']} {shape}\n{text}\n")
    if not full and value.size > threshold:
        sys.stdout.write(styled("(truncated; --full prints every value)", "dim", color) + "\n")
    sys.stdout.flush()
