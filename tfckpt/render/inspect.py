"""Rendering for ``ls`` and ``vars``: tables, the scope tree, tensor values, JSON records."""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tfckpt.render import human_bytes, out_console, print_json, shape_text

STAT_KEYS = ("min", "max", "mean", "std", "nan", "inf", "zeros")

if TYPE_CHECKING:
    import numpy as np


# ---- ls ------------------------------------------------------------------------------------
def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def render_ls(items: Sequence[Any], as_json: bool, base: str | None = None) -> None:
    if as_json:
        records = []
        for item in items:
            d = item.to_dict()
            d["mtime_iso"] = (
                _dt.datetime.fromtimestamp(item.mtime, _dt.timezone.utc).isoformat()
                if item.mtime
                else None
            )
            records.append(d)
        print_json(records)
        return
    # Few columns, so a listing fits 80 columns: the kind shows in "format" unless it is a
    # plain checkpoint ("V2", "V2 x3" for three shards).
    table = Table(show_edge=False, header_style="bold")
    table.add_column("path", overflow="fold", ratio=1, min_width=12)
    for col, justify in (
        ("step", "right"),
        ("format", "left"),
        ("data", "right"),
        ("meta", "center"),
        ("modified", "left"),
        ("latest", "center"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    notes = []
    for item in items:
        style = {"missing": "red", "temp": "yellow"}.get(item.kind, "")
        path = _relative(item.path, base)
        table.add_row(
            Text(path, style=style),
            "" if item.step is None else str(item.step),
            _format_cell(item),
            "" if item.data_bytes is None else human_bytes(item.data_bytes),
            "yes" if item.has_meta else "",
            _when(item.mtime),
            "*" if item.latest else "",
        )
        if item.note:
            notes.append(Text.assemble((path, style or "bold"), f": {item.note}"))
    console = out_console()
    if not items:
        console.print("no checkpoints, SavedModels or events files found")
        return
    console.print(table)
    for line in notes:  # below the table, so a long note never squeezes the columns
        console.print(line, soft_wrap=True)


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


def _totals(records: Sequence[dict[str, Any]]) -> tuple[int, int, int]:
    return len(records), sum(r["size"] for r in records), sum(r["nbytes"] for r in records)


def render_vars(
    records: Sequence[dict[str, Any]],
    as_json: bool,
    with_stats: bool,
    tree: bool,
    title: str | None = None,
) -> None:
    if as_json:
        print_json(list(records))
        return
    console = out_console()
    if tree:
        console.print(_scope_tree(records, title or "checkpoint"))
    else:
        use_path = any("path" in r for r in records)
        if title:  # printed above the table, not as its title: a long path must not wrap
            console.print(Text(title, style="bold"), soft_wrap=True)
        table = Table(show_edge=False, header_style="bold")
        # The name column takes whatever width is left; the other columns never wrap.
        longest = max((len(r.get("path", r["name"])) for r in records), default=4)
        table.add_column(
            "object path" if use_path else "name",
            overflow="fold",
            ratio=1,
            min_width=min(longest, 48),
        )
        table.add_column("dtype", no_wrap=True)
        table.add_column("shape", no_wrap=True)
        table.add_column("elements", justify="right", no_wrap=True)
        table.add_column("bytes", justify="right", no_wrap=True)
        if with_stats:
            for key in STAT_KEYS:
                table.add_column(key, justify="right", overflow="fold")
        for r in records:
            row = [
                r.get("path", r["name"]),
                r["dtype"],
                shape_text(r["shape"]),
                f"{r['size']:,}",
                human_bytes(r["nbytes"]),
            ]
            if with_stats:
                row += [_fmt_num(r.get(k)) for k in STAT_KEYS]
            style = "red" if with_stats and (r.get("nan") or r.get("inf")) else None
            table.add_row(*row, style=style)
        console.print(table)
    n, params, nbytes = _totals(records)
    console.print(
        f"[bold]{n:,}[/bold] variables, [bold]{params:,}[/bold] parameters, "
        f"[bold]{human_bytes(nbytes)}[/bold] ({nbytes:,} bytes)",
        markup=True,
    )


class _Leaf:
    """A variable in the scope tree (scopes are plain dicts; a name may be 'shape' or 'dtype')."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record


def _leaf_label(name: str, r: dict[str, Any]) -> Text:
    shape = shape_text(r["shape"])
    label = Text.assemble(name, "  ", (r["dtype"], "cyan"), f" {shape}  {human_bytes(r['nbytes'])}")
    if "mean" in r:
        stats = "  ".join(f"{k} {_fmt_num(r.get(k))}" for k in ("min", "max", "mean", "std"))
        label.append(f"  {stats}", style="dim")
        bad = [f"{k} {r[k]:,}" for k in ("nan", "inf") if r.get(k)]
        if bad:
            label.append("  " + "  ".join(bad), style="red")
    return label


def _scope_tree(records: Sequence[dict[str, Any]], title: str) -> Tree:
    root: dict[str, Any] = {}
    for r in records:
        parts = r.get("path", r["name"]).split("/")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part + "/", {})
        node[parts[-1]] = _Leaf(r)

    def totals(node: dict[str, Any]) -> tuple[int, int, int]:
        n = p = b = 0
        for value in node.values():
            if isinstance(value, _Leaf):
                n, p, b = n + 1, p + value.record["size"], b + value.record["nbytes"]
            else:
                sn, sp, sb = totals(value)
                n, p, b = n + sn, p + sp, b + sb
        return n, p, b

    def label(name: str, node: dict[str, Any]) -> Text:
        n, p, b = totals(node)
        return Text.assemble((name, "bold"), (f"  {n} vars, {p:,} params, {human_bytes(b)}", "dim"))

    def build(tree: Tree, node: dict[str, Any]) -> None:
        for name in sorted(node):
            value = node[name]
            if isinstance(value, _Leaf):
                tree.add(_leaf_label(name, value.record))
            else:
                build(tree.add(label(name, value)), value)

    tree = Tree(label(title, root))
    build(tree, root)
    return tree


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


def render_value(record: dict[str, Any], value: np.ndarray, full: bool, as_json: bool) -> None:
    if as_json:
        out = dict(record)
        out["values"] = _jsonable_values(value)  # flat, row-major; reshape with "shape"
        print_json(out)
        return
    import numpy as np

    threshold = sys.maxsize if full else 1000
    with np.printoptions(threshold=threshold, edgeitems=3, linewidth=120):
        if value.dtype.kind not in "biufcO":
            text = np.array2string(value.astype(np.float32), separator=", ")
        else:
            text = np.array2string(value, separator=", ")
    console = out_console()
    shape = shape_text(record["shape"])
    console.print(
        Text.assemble((record.get("path", record["name"]), "bold"), f"  {record['dtype']} {shape}")
    )
    console.print(text, markup=False, highlight=False)
    if not full and value.size > threshold:
        console.print("(truncated; --full prints every value)", style="dim")
