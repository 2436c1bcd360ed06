"""The Typer application object and the one place that turns errors into exit codes."""

from __future__ import annotations

import sys
from typing import Any

import typer
import typer.core

from tfckpt.errors import ExitCode, TfckptError


class TfckptGroup(typer.core.TyperGroup):
    """Reports ``TfckptError`` as one line on stderr with its exit code; no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TfckptError as exc:
            sys.stderr.write(f"tfckpt: error: {exc}\n")
            sys.stderr.flush()
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("tfckpt: interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            raise typer.Exit(int(ExitCode.OK)) from None


app = typer.Typer(
    cls=TfckptGroup,
    name="tfckpt",
    help=(
        "Inspect, compare and edit TensorFlow checkpoints, without loading TensorFlow.\n\n"
        "PATH arguments accept a checkpoint prefix, any of its files (.index, .data-*, .meta), "
        "a directory (the latest checkpoint per its `checkpoint` file, else the newest) or a "
        "SavedModel directory.\n\n"
        "Exit codes: 0 ok, 1 differences found / check failed, 2 usage error or bad input."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
