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
    cmd_surgery,
    cmd_transfer,
)
from tfckpt.cli.app import app


def main() -> None:
    app(prog_name="tfckpt")


__all__ = ["app", "main"]
