"""Tables that fit the terminal: the identifying column is never truncated or wrapped away.

``print_table`` takes plain string rows. With ``fmt="table"`` it prints a Rich table when the
identifying (key) column fits whole beside the natural widths of the other columns; otherwise
every row becomes a block: the key on its own line, the other columns below it as
``header: value`` pairs, so a long variable name at 80 columns stays one readable line instead
of a column folded two characters wide. ``fmt="tsv"`` / ``"csv"`` print the same cells for
scripts (no box drawing, optional header line).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tfckpt.render import out_console

FORMATS = ("table", "tsv", "csv")
# Tables longer than this stream (render.stream): Rich measures every cell before printing
# (about a millisecond per row).
STREAM_ROWS = 200
# Columns are separated by " │ " (3 cells) in a borderless Rich table.
_SEPARATOR = 3


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"  # left | right | center
    key: bool = False  # an identifying column: shown whole
    label: str | None = None  # stacked layout: shown before the value instead of "header:"


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    fmt: str = "table",
    headers: bool = True,
    styles: Sequence[str | None] | None = None,
) -> None:
    """Print ``rows`` (one string per column) as a table, TSV or CSV (see the module doc)."""
    if fmt in ("tsv", "csv"):
        _print_delimited(columns, rows, fmt, headers)
        return
    if len(rows) > STREAM_ROWS:
        _print_streamed(columns, rows, headers, styles)
        return
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    console = out_console()
    width = console.width
    natural = [
        max([cell_len(c.header) if headers else 0] + [cell_len(r[i]) for r in rows])
        for i, c in enumerate(columns)
    ]
    needed = sum(natural) + _SEPARATOR * (len(columns) - 1)
    if needed <= width or not any(c.key for c in columns):
        table = Table(show_edge=False, header_style="bold", show_header=headers)
        for column in columns:
            table.add_column(
                column.header,
                justify=column.justify,  # type: ignore[arg-type]
                no_wrap=column.key,
                overflow="fold",
            )
        for i, row in enumerate(rows):
            table.add_row(*row, style=styles[i] if styles else None)
        console.print(table)
        return
    # Stacked: the first key whole on its line, other keys whole on lines of their own, the
    # rest indented below (columns without a header, like an arrow, are left out).
    keys = [i for i, c in enumerate(columns) if c.key]
    for i, row in enumerate(rows):
        style = (styles[i] if styles else None) or ""
        console.print(Text(row[keys[0]], style=f"bold {style}".strip()), soft_wrap=True)
        for j in keys[1:]:
            label = columns[j].label or f"{columns[j].header}:"
            console.print(Text(f"    {label} {row[j]}", style=style), soft_wrap=True)
        for line in _pairs(columns, keys, row, width):
            console.print(Text(line, style=style), soft_wrap=True)


def _pairs(columns: Sequence[Column], keys: list[int], row: Sequence[str], width: int) -> list[str]:
    """The non-key cells of a stacked row as indented ``header: value`` pairs, packed into
    lines of at most ``width`` cells and broken only between pairs (columns without a header,
    like an arrow, are left out)."""
    from tfckpt.render.stream import cell_width

    lines: list[str] = []
    line = ""
    for j, c in enumerate(columns):
        if j in keys or not c.header:
            continue
        pair = f"{c.header}: {row[j]}"
        if line and cell_width(line) + 2 + cell_width(pair) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {pair}" if line else f"    {pair}"
    if line:
        lines.append(line)
    return lines


def _print_streamed(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    headers: bool,
    styles: Sequence[str | None] | None,
) -> None:
    """``print_table`` for long tables: the same layouts, written row by row with widths
    measured once (no Rich)."""
    from tfckpt.render.stream import (
        Col,
        StreamTable,
        cell_width,
        color_enabled,
        max_width,
        styled,
        terminal_width,
    )

    width = terminal_width()
    natural = [
        max_width([r[i] for r in rows], cell_width(c.header) if headers else 0)
        for i, c in enumerate(columns)
    ]
    needed = sum(natural) + _SEPARATOR * (len(columns) - 1)
    color = color_enabled()
    out = sys.stdout
    if needed <= width or not any(c.key for c in columns):
        cols = [Col(c.header, right=c.justify == "right") for c in columns]
        ascii_cells = all("".join(r[i] for r in rows).isascii() for i in range(len(columns)))
        table = StreamTable(
            cols, natural, width=10**9, headers=headers, color=color, ascii_cells=ascii_cells
        )
        table.header()
        if table.template is not None and not any(styles or ()):
            table.plain_rows(list(zip(*rows)))
        else:
            for i, row in enumerate(rows):
                table.row(row, styles[i] if styles else None)
        table.flush()
        return
    keys = [i for i, c in enumerate(columns) if c.key]
    lines: list[str] = []
    for i, row in enumerate(rows):
        style = (styles[i] if styles else None) or ""
        lines.append(styled(row[keys[0]], f"bold {style}".strip(), color))
        for j in keys[1:]:
            label = columns[j].label or f"{columns[j].header}:"
            lines.append(styled(f"    {label} {row[j]}", style, color))
        lines.extend(styled(line, style, color) for line in _pairs(columns, keys, row, width))
        if len(lines) > 8192:
            out.write("\n".join(lines) + "\n")
            lines = []
    if lines:
        out.write("\n".join(lines) + "\n")
    out.flush()


def _print_delimited(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], fmt: str, headers: bool
) -> None:
    if fmt == "tsv":
        # TSV cannot quote: tabs and newlines inside cells become spaces.
        def clean(cell: str) -> str:
            return cell.replace("\t", " ").replace("\n", " ")

        if headers:
            sys.stdout.write("\t".join(clean(c.header) for c in columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(clean(cell) for cell in row) + "\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if headers:
            writer.writerow([c.header for c in columns])
        writer.writerows(rows)
    sys.stdout.flush()
