"""Running the CLI from tests: in process through Typer's runner, or in a fresh interpreter to
see which modules a command imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from typer.testing import CliRunner

from tfckpt.cli import app

runner = CliRunner()


def run(*args: Any) -> Any:
    """Invoke ``tfckpt ARGS`` (each argument passed through ``str``)."""
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: Any) -> Any:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def ok_json(*args: Any) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def modules_after(args: list[str], exit_codes: tuple[int, ...] = (0,)) -> set[str]:
    """The modules ``sys.modules`` holds after ``tfckpt ARGS`` ran in a fresh interpreter, which
    must exit with one of ``exit_codes``."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['tfckpt', *{args!r}]\n"
        "status = 0\n"
        "try:\n"
        "    runpy.run_module('tfckpt', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    status = exc.code or 0\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert proc.returncode in exit_codes, (args, proc.returncode, proc.stderr[-2000:])
    return set(proc.stderr.split())


def imports_tensorflow(modules: set[str]) -> bool:
    return any(m == "tensorflow" or m.startswith("tensorflow.") for m in modules)
