"""Command-line interface: one thin module per command group, registered on a shared Typer app.

Each ``cmd_*`` module only parses options, calls the library, and hands plain data to
``tfckpt.render``. Heavy modules are imported inside the command functions so that
``tfckpt --help`` stays fast and never imports TensorFlow.
"""

from __future__ import annotations

from tfckpt.cli import (  # noqa: F401  (imported to register their commands)
    cmd_check,
    cmd_graph,
    cmd_inspect,
    cmd_scan,
    cmd_surgery,
    cmd_transfer,
)
from tfckpt.cli.app import app, defer_commands

defer_commands()


def main() -> None:
    """The console script: usage errors as one line (``tfckpt: error: ...``), exit code 2."""
    import gc
    import sys

    import typer

    # One short-lived command: reference counting frees what it makes, while the cyclic
    # collector would walk the 10^5-10^6 objects of a large listing again and again (half the
    # time of a diff of 200,000 tensors). tfckpt builds no reference cycles at scale.
    gc.disable()

    _normalize_completion_instruction()
    try:
        code = app(prog_name="tfckpt", standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors: bad option, missing argument
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "tfckpt"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when the help was printed instead (no arguments at all)
            sys.stderr.write(f"tfckpt: error: {message} (see '{where} --help')\n")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except typer.Abort:
        sys.stderr.write("tfckpt: interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _normalize_completion_instruction() -> None:
    """Accept Click's ``_TFCKPT_COMPLETE=bash_source`` as well as Typer's ``source_bash``."""
    import os

    value = os.environ.get("_TFCKPT_COMPLETE", "")
    shell, _, instruction = value.partition("_")
    if shell in ("bash", "zsh", "fish", "powershell", "pwsh") and instruction:
        os.environ["_TFCKPT_COMPLETE"] = f"{instruction}_{shell}"


__all__ = ["app", "main"]
