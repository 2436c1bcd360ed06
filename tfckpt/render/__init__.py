"""Rendering: the only package that imports rich. Plain data in, tables / JSON / progress out.

Diagnostics and progress go to stderr so that ``--json | jq`` always works.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def out_console() -> Console:
    """A console on the current stdout (looked up per call so test runners can swap it)."""
    from rich.console import Console  # imported on first use: listings never need Rich

    # Markup off: variable names are data, and TF allows '[' in them ("emb[/red]/w").
    # Styled lines pass markup=True and escape() what they interpolate.
    return Console(file=sys.stdout, soft_wrap=False, width=_width(), markup=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True, width=_width(), markup=False)


def _width() -> int | None:
    # Rich falls back to 80 columns when not on a TTY; piped tables of long names read better
    # wide (and grep better unfolded).
    if sys.stdout.isatty():
        return None
    try:
        return max(int(os.environ.get("COLUMNS", "200")), 40)
    except ValueError:
        return 200


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _jsonable(obj.item())
    return obj


def print_json(obj: Any) -> None:
    """One JSON document on stdout. NaN/Inf become the strings "nan"/"inf"/"-inf"."""
    sys.stdout.write(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


JSON_VERSION = 1


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """The one JSON document of a command: ``{"kind": kind, "version": 1, **payload}``.

    Every ``--json`` output is an object with these two keys first, so scripts can tell what
    they read and which schema version it follows; lists sit under named keys in ``payload``.
    """
    print_json({"kind": kind, "version": JSON_VERSION, **payload})


def print_more(shown: int, total: int, hint: str) -> None:
    """The dim ``  ... N more HINT`` line under a table that shows ``shown`` of ``total`` rows
    (nothing when it shows them all)."""
    if total > shown:
        out_console().print(f"  ... {total - shown:,} more {hint}", style="dim", highlight=False)


def note(message: str, quiet: bool = False) -> None:
    """A diagnostic line on stderr (not part of the output contract)."""
    if not quiet:
        sys.stderr.write(f"tfckpt: {message}\n")
        sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"tfckpt: warning: {message}\n")
    sys.stderr.flush()


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def shape_text(shape: Iterable[int | None]) -> str:
    """``[2, 3]``; an unknown dimension (None) shows as ``?``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


class ProgressReporter:
    """Byte-based progress; a no-op unless stderr is a TTY and not quiet."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, nbytes)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text[-40:])


@contextmanager
def progress(description: str, total: int, quiet: bool = False) -> Iterator[ProgressReporter]:
    """A progress bar on stderr for work measured in bytes; shown only on a TTY.

    Rich's bar appears after its first refresh, so short runs (under a second) flash nothing.
    """
    if quiet or not sys.stderr.isatty() or total <= 0:
        yield ProgressReporter(None, None)
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
        refresh_per_second=5,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield ProgressReporter(bar, task)


class ProgressBar:
    """A ``tfckpt.progress.Progress`` drawn on stderr: a Rich bar per phase, shown only on a TTY
    and not quiet. Use as a context manager around the library call."""

    def __init__(self, quiet: bool = False) -> None:
        self._enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def start(self, description: str, total: int) -> None:
        if not self._enabled or total <= 0:
            return
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
                refresh_per_second=5,
            )
            self._bar.start()
        elif self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, nbytes)

    def describe(self, text: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, description=text[-40:])

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
