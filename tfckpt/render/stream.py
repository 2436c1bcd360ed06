"""Output that streams: tables whose column widths are known before the first row, JSON
documents written item by item, and a pager for long output on a terminal.

A Rich table measures every cell before it prints anything, which at 200,000 rows takes most of
a minute; these tables print each row as it comes, in the same borderless style
(``name ┃ dtype`` header, ``━━━╇━━━`` rule, ``│`` between cells). When the identifying column
cannot be shown whole beside the others, every row becomes a block: the name whole on its own
line, the other columns aligned on indented lines below it (as few as the width allows), so
the name is never truncated or wrapped away. Rich is not imported.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain
from typing import Any, TextIO

from tfckpt.render import JSON_VERSION

INDENT = "    "
FLUSH_EVERY = 2048  # rows per write
ROWS_PER_BATCH = 8192  # rows per write of plain_rows


@dataclass(frozen=True)
class Col:
    header: str
    right: bool = False  # right-justified (numbers)
    group: int = 0  # in blocks, a new group starts a new line


_PAGING_COLOR: list[bool] = []  # set while stdout goes to a pager: the terminal's answer


def color_enabled(stream: TextIO | None = None) -> bool:
    """ANSI styles on a terminal only (NO_COLOR and TERM=dumb turn them off, FORCE_COLOR on)."""
    if _PAGING_COLOR:
        return _PAGING_COLOR[-1]
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def terminal_width() -> int:
    """The terminal's width; off a terminal, COLUMNS or 200 (like the Rich tables)."""
    if sys.stdout.isatty() or _PAGING_COLOR:
        return shutil.get_terminal_size((80, 24)).columns
    try:
        return max(int(os.environ.get("COLUMNS", "200")), 40)
    except ValueError:
        return 200


STYLES = {"bold": "\x1b[1m", "dim": "\x1b[2m", "red": "\x1b[31m", "cyan": "\x1b[36m"}
RESET = "\x1b[0m"


def styled(text: str, style: str | None, color: bool) -> str:
    if not color or not style:
        return text
    return "".join(STYLES.get(s, "") for s in style.split()) + text + RESET


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes (wide East Asian characters take two; marks none)."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return width


def max_width(texts: Iterable[str], at_least: int = 0) -> int:
    texts = list(texts) if not isinstance(texts, list) else texts
    if not texts:
        return at_least
    if "".join(texts).isascii():
        return max(at_least, max(map(len, texts)))
    return max(at_least, max(map(cell_width, texts)))


def pad(text: str, width: int, right: bool = False) -> str:
    fill = width - cell_width(text)
    if fill <= 0:
        return text
    return " " * fill + text if right else text + " " * fill


class StreamTable:
    """Rows of strings written as they come, with widths fixed up front (see the module doc).

    ``widths`` are the widest cell of each column (the name column first); the layout is
    chosen once: one line per row if it fits ``width``, else blocks.
    """

    def __init__(
        self,
        columns: Sequence[Col],
        widths: Sequence[int],
        *,
        width: int | None = None,
        headers: bool = True,
        out: TextIO | None = None,
        color: bool | None = None,
        ascii_cells: bool = False,
    ) -> None:
        self.columns = list(columns)
        self.headers = headers
        self.out = out or sys.stdout
        self.color = color_enabled(self.out) if color is None else color
        self.width = width or terminal_width()
        shown = [max(w, cell_width(c.header) if headers else 0) for c, w in zip(columns, widths)]
        self.widths = shown
        # one line: " a │ b │ c " -> each cell takes its width plus 3 (padding and rule)
        self.flat = sum(shown) + 3 * len(shown) - 1 <= self.width
        self.groups: list[list[int]] = []
        if not self.flat:
            self.groups = self._fold(list(range(1, len(shown))))
        self._pending: list[str] = []
        # With ASCII cells (one character, one cell) a row is one printf-style template.
        self.template: str | None = None
        if ascii_cells:
            self.template = self._template()

    def _template(self) -> str:
        """A printf-style template of one row (one line, or a block) taking the cells in
        column order, without trailing blanks: the last cell of a line is not padded when it
        is left-justified. (``%`` formats a batch of rows in one call, several times faster
        than ``str.format`` row by row.)"""

        def line(idx: list[int], sep: str) -> str:
            specs = []
            for n, j in enumerate(idx):
                last = n == len(idx) - 1
                if self.columns[j].right:
                    specs.append(f"%{self.widths[j]}s")
                elif last:
                    specs.append("%s")
                else:
                    specs.append(f"%-{self.widths[j]}s")
            return sep.join(specs)

        # The groups of a block hold columns 1.. in order, so both layouts take cells in order.
        if self.flat:
            return " " + line(list(range(len(self.widths))), " │ ")
        head = styled("%s", "bold", self.color)
        return "\n".join([head] + [INDENT + line(group, "  ") for group in self.groups])

    def _fold(self, rest: list[int]) -> list[list[int]]:
        """The non-name columns packed into as few indented lines as fit the width, each group
        of columns starting a line of its own."""
        room = max(self.width - len(INDENT), 20)
        groups: list[list[int]] = []
        line: list[int] = []
        used = 0
        group = None
        for j in rest:
            need = self.widths[j] + (2 if line else 0)
            if line and (used + need > room or self.columns[j].group != group):
                groups.append(line)
                line, used = [], 0
                need = self.widths[j]
            line.append(j)
            used += need
            group = self.columns[j].group
        if line:
            groups.append(line)
        return groups

    # ---- writing ------------------------------------------------------------------------
    def _cells(self, cells: Sequence[str], idx: list[int], sep: str) -> str:
        cols, widths = self.columns, self.widths
        return sep.join(pad(cells[j], widths[j], cols[j].right) for j in idx)

    def header(self) -> None:
        if not self.headers:
            return
        names = [c.header for c in self.columns]
        if self.flat:
            line = " " + self._cells(names, list(range(len(names))), " ┃ ") + " "
            rule = "╇".join("━" * (w + 2) for w in self.widths)
            self._emit(styled(line.rstrip(), "bold", self.color))
            self._emit(rule)
            return
        self._emit(styled(names[0], "bold", self.color))
        for group in self.groups:
            self._emit(
                styled(INDENT + self._cells(names, group, "  ").rstrip(), "bold", self.color)
            )
        self._emit("━" * min(self.width, max(self._block_width(), cell_width(names[0]))))

    def _block_width(self) -> int:
        return max(
            (len(INDENT) + sum(self.widths[j] for j in g) + 2 * (len(g) - 1) for g in self.groups),
            default=0,
        )

    def row(self, cells: Sequence[str], style: str | None = None) -> None:
        if self.template is not None and not style:
            self._emit(self.template % tuple(cells))
            return
        if self.flat:
            line = " " + self._cells(cells, list(range(len(cells))), " │ ")
            self._emit(styled(line.rstrip(), style, self.color))
            return
        self._emit(styled(cells[0], f"bold {style or ''}".strip(), self.color))
        for group in self.groups:
            text = INDENT + self._cells(cells, group, "  ")
            self._emit(styled(text.rstrip(), style, self.color))

    def plain_rows(self, columns: Sequence[Sequence[str]]) -> None:
        """Unstyled rows given column by column (``template`` must be set: ASCII cells),
        formatted a batch at a time by one ``%`` of the row template repeated: no Python step
        per row or cell."""
        assert self.template is not None
        self.flush()
        row = self.template + "\n"
        total = len(columns[0]) if columns else 0
        for lo in range(0, total, ROWS_PER_BATCH):
            part = [c[lo : lo + ROWS_PER_BATCH] for c in columns]
            self.out.write((row * len(part[0])) % tuple(chain.from_iterable(zip(*part))))

    def line(self, text: str) -> None:
        """A line of its own (a note, a total) after the rows written so far."""
        self._emit(text)

    def _emit(self, text: str) -> None:
        self._pending.append(text)
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.out.write("\n".join(self._pending) + "\n")
            self._pending = []
        self.out.flush()


def write_delimited(
    columns: Sequence[Col], rows: Iterable[Sequence[str]], fmt: str, headers: bool
) -> None:
    """``--format tsv|csv``: plain cells for scripts, streamed (TSV cannot quote: tabs and
    newlines inside cells become spaces)."""
    out = sys.stdout
    if fmt == "tsv":

        def clean(cell: str) -> str:
            return cell.replace("\t", " ").replace("\n", " ")

        lines: list[str] = []
        if headers:
            lines.append("\t".join(clean(c.header) for c in columns))
        for row in rows:
            lines.append("\t".join(map(clean, row)))
            if len(lines) >= FLUSH_EVERY:
                out.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            out.write("\n".join(lines) + "\n")
    else:
        import csv

        writer = csv.writer(out, lineterminator="\n")
        if headers:
            writer.writerow([c.header for c in columns])
        writer.writerows(rows)
    out.flush()


# ---- JSON --------------------------------------------------------------------------------------
def json_value(obj: Any) -> str:
    """One JSON value as tfckpt writes them (NaN/Inf as the strings "nan"/"inf"/"-inf")."""
    from tfckpt.render import _jsonable

    return json.dumps(_jsonable(obj), ensure_ascii=False)


def emit_json_stream(
    kind: str,
    head: dict[str, Any],
    key: str,
    chunks: Iterable[Sequence[str]],
    tail: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """The command's one JSON document, ``{"kind", "version", **head, key: [...], **tail()}``,
    written as the items come, in chunks of already-encoded items, one item per line. ``tail``
    is called after the last item (totals known only then)."""
    out = sys.stdout
    start = {"kind": kind, "version": JSON_VERSION, **head}
    opening = json.dumps(start, ensure_ascii=False)[:-1]
    out.write(f"{opening}, {json.dumps(key)}: [")
    first = True
    for chunk in chunks:
        if chunk:
            out.write(("\n  " if first else ",\n  ") + ",\n  ".join(chunk))
            first = False
    out.write("]" if first else "\n]")
    for name, value in (tail() if tail else {}).items():
        out.write(f", {json.dumps(name)}: {json_value(value)}")
    out.write("}\n")
    out.flush()


def finite_or_text(v: float) -> Any:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


# ---- pager -------------------------------------------------------------------------------------
@contextmanager
def pager(lines: int) -> Iterator[None]:
    """Send stdout through a pager (``$TFCKPT_PAGER``, ``$PAGER``, else ``less -FRX``) when it is
    a terminal and ``lines`` would not fit on one screen; a no-op otherwise. An empty pager
    command, or ``cat``, turns it off."""
    command = os.environ.get("TFCKPT_PAGER", os.environ.get("PAGER", "less"))
    if (
        not sys.stdout.isatty()
        or not sys.stdin.isatty()
        or command.strip() in ("", "cat")
        or lines < shutil.get_terminal_size((80, 24)).lines
    ):
        yield
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env, text=True)
    except OSError:
        yield
        return
    assert proc.stdin is not None
    _PAGING_COLOR.append(color_enabled())  # the pipe is not a TTY; the pager shows styles
    saved = sys.stdout
    sys.stdout = proc.stdin
    try:
        yield
    except BrokenPipeError:  # the user quit the pager early
        pass
    finally:
        sys.stdout = saved
        _PAGING_COLOR.pop()
        with suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait()
