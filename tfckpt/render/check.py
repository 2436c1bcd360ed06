"""Rendering for ``diff`` and ``verify``."""

from __future__ import annotations

import sys
from typing import Any

from rich.markup import escape
from rich.table import Table

from tfckpt.render import emit_json, err_console, out_console, shape_text


def _shape(shape: list[int] | None) -> str:
    return "" if shape is None else shape_text(shape)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def diff_summary_line(summary: dict[str, Any]) -> str:
    verdict = "no differences" if summary["equal"] else "differences found"
    parts = [
        f"{summary[k]} {label}"
        for k, label in (
            ("same", "same"),
            ("values", "values changed"),
            ("shape", "shape changed"),
            ("dtype", "dtype changed"),
            ("only_a", "only in A"),
            ("only_b", "only in B"),
        )
    ]
    return f"{verdict}: {summary['compared']} compared, " + ", ".join(parts)


def render_diff(report: Any, as_json: bool, show_all: bool, quiet: bool = False) -> None:
    summary = report.summary()
    variables = [v for v in report.variables if show_all or v.status != "same"]
    if as_json:
        emit_json("diff", report.to_dict(show_all))
        if not quiet:
            err_console().print(diff_summary_line(summary), highlight=False)
        return
    console = out_console()
    if variables:
        table = Table(show_edge=False, header_style="bold")
        table.add_column(
            "name", overflow="fold", ratio=1, min_width=min(48, max(len(v.name) for v in variables))
        )
        table.add_column("status", no_wrap=True)
        table.add_column("A", no_wrap=True)
        table.add_column("B", no_wrap=True)
        table.add_column("max abs", justify="right", no_wrap=True)
        table.add_column("max rel", justify="right", no_wrap=True)
        table.add_column("differing", justify="right", no_wrap=True)
        styles = {"same": "dim", "values": "yellow", "only_a": "red", "only_b": "green"}
        for v in variables:
            a = f"{v.dtype_a or ''} {_shape(v.shape_a)}".strip()
            b = f"{v.dtype_b or ''} {_shape(v.shape_b)}".strip()
            differing = ""
            if v.n_diff is not None and v.size:
                differing = f"{v.n_diff:,} ({100 * (v.frac_diff or 0):.3g}%)"
            table.add_row(
                v.name,
                v.status,
                a,
                b,
                _num(v.max_abs),
                _num(v.max_rel),
                differing,
                style=styles.get(v.status, "magenta"),
            )
        console.print(table)
    console.print(diff_summary_line(summary), highlight=False)


def render_verify(report: Any, as_json: bool, quiet: bool = False) -> None:
    if as_json:
        emit_json("verify", report.to_dict())
        return
    console = out_console()
    if report.problems:
        table = Table(show_edge=False, header_style="bold")
        table.add_column("check", no_wrap=True)
        table.add_column("variable", overflow="fold")
        table.add_column("problem", overflow="fold", ratio=1)
        for p in report.problems:
            table.add_row(p.check, p.name or "", p.message, style="red")
        console.print(table)
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
