"""Rendering for ``diff`` and ``verify``."""

from __future__ import annotations

import sys
from typing import Any

from rich.markup import escape

from tfckpt.names import display_name
from tfckpt.render import emit_json, err_console, out_console, shape_text
from tfckpt.render.table import Column, print_table


def _shape(shape: list[int] | None) -> str:
    return "" if shape is None else shape_text(shape)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def diff_summary_line(summary: dict[str, Any]) -> str:
    verdict = "no differences" if summary["equal"] else "differences found"
    parts = [f"{summary['compared']:,} compared", f"{summary['same']:,} same"]
    parts += [  # kinds of difference that occurred (the JSON summary has every count)
        f"{summary[k]:,} {label}"
        for k, label in (
            ("values", "values changed"),
            ("shape", "shape changed"),
            ("dtype", "dtype changed"),
            ("only_a", "only in A"),
            ("only_b", "only in B"),
        )
        if summary[k]
    ]
    return f"{verdict}: " + ", ".join(parts)


DIFF_SORTS = ("name", "max-abs", "rel")


def sorted_differences(
    variables: list[Any], sort: str = "name", top: int | None = None
) -> list[Any]:
    """Variables ordered for reading: by name, or the biggest change first (``max-abs``: the
    largest absolute difference; ``rel``: the largest relative one; variables with no value
    difference, e.g. only in A, come last); the first ``top`` of them."""
    if sort == "name":
        ordered = sorted(variables, key=lambda v: v.name)
    else:
        field = "max_abs" if sort == "max-abs" else "max_rel"

        def key(v: Any) -> tuple[int, float, str]:
            value = getattr(v, field)
            return (value is None, -(value or 0.0), v.name)

        ordered = sorted(variables, key=key)
    return ordered if top is None else ordered[:top]


def render_diff(
    report: Any,
    as_json: bool,
    show_all: bool,
    quiet: bool = False,
    sort: str = "name",
    top: int | None = None,
    keys: bool = False,
    fmt: str = "table",
    headers: bool = True,
) -> None:
    summary = report.summary()
    variables = report.variables if show_all else report.differences()
    variables = sorted_differences(variables, sort, top)
    if as_json:
        document = report.to_dict(show_all)
        document["variables"] = [v.to_dict() for v in variables]
        emit_json("diff", document)
        if not quiet:
            err_console().print(diff_summary_line(summary), highlight=False)
        return
    console = out_console()
    if variables:
        styles = {"same": "dim", "values": "yellow", "only_a": "red", "only_b": "green"}
        rows = []
        for v in variables:
            differing = ""
            if v.n_diff is not None and v.size:
                differing = f"{v.n_diff:,} ({100 * (v.frac_diff or 0):.3g}%)"
            rows.append(
                (
                    v.name if keys else display_name(v.name),
                    v.status,
                    f"{v.dtype_a or ''} {_shape(v.shape_a)}".strip(),
                    f"{v.dtype_b or ''} {_shape(v.shape_b)}".strip(),
                    _num(v.max_abs),
                    _num(v.max_rel),
                    differing,
                )
            )
        print_table(
            [
                Column("name", key=True),
                Column("status"),
                Column("A"),
                Column("B"),
                Column("max abs", "right"),
                Column("max rel", "right"),
                Column("differing", "right"),
            ],
            rows,
            styles=[styles.get(v.status, "magenta") for v in variables],
            fmt=fmt,
            headers=headers,
        )
    if fmt == "table":
        console.print(diff_summary_line(summary), highlight=False)
    elif not quiet:  # stdout holds only the cells
        err_console().print(diff_summary_line(summary), highlight=False)


def render_verify(report: Any, as_json: bool, quiet: bool = False, keys: bool = False) -> None:
    if as_json:
        emit_json("verify", report.to_dict())
        return
    console = out_console()
    if report.problems:
        shown = (lambda n: n) if keys else display_name
        rows = [
            (shown(p.name) if p.name else p.file or "", p.check, p.message) for p in report.problems
        ]
        print_table(
            [Column("variable / file", key=True), Column("check"), Column("problem")],
            rows,
            styles=["red"] * len(rows),
        )
        console.print(
            f"[red]FAILED[/red]: {len(report.problems)} problem(s) in {escape(report.prefix)} "
            f"({report.tensors} tensors, {report.bytes_checked:,} bytes checked)",
            highlight=False,
            markup=True,
        )
    else:
        console.print(
            f"[green]OK[/green]: {escape(report.prefix)} ({report.format}, {report.tensors} "
            f"tensors, {report.bytes_checked:,} bytes checked)",
            highlight=False,
            markup=True,
        )
    sys.stdout.flush()
