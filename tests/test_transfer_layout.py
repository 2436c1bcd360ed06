"""Where export/import code lives: one module per file format, drivers that dispatch once, and
the layers above and below them (the rules of issue 11 that keep it that way)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tfckpt"
TRANSFER = PACKAGE / "transfer"
FORMAT_MODULES = ("safetensors", "npz", "npy")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_one_module_per_format_and_no_leftovers() -> None:
    modules = {p.stem for p in TRANSFER.glob("*.py")}
    assert set(FORMAT_MODULES) <= modules
    assert not {"readers", "fileformats", "errors"} & modules  # folded into the format modules


def test_format_modules_do_not_reach_up_into_the_drivers() -> None:
    allowed = {
        "tfckpt.transfer.columns",
        "tfckpt.transfer.common",
        "tfckpt.transfer.formats",
        "tfckpt.transfer.npy",
    }
    for name in FORMAT_MODULES:
        used = {m for m in imports(TRANSFER / f"{name}.py") if m.startswith("tfckpt.transfer")}
        assert used <= allowed, (name, used - allowed)


def test_drivers_dispatch_through_the_format_object() -> None:
    """export.py and importer.py never branch on a format: they ask ``file_format(fmt)``."""
    for name in ("export", "importer"):
        source = (TRANSFER / f"{name}.py").read_text()
        for fmt in FORMAT_MODULES:
            assert f"Format.{fmt}" not in source, (name, fmt)
        assert "file_format(" in source, name


def test_transfer_and_api_stay_below_rendering_and_the_cli() -> None:
    for directory in ("transfer", "api"):
        for path in (PACKAGE / directory).glob("*.py"):
            used = imports(path)
            bad = {
                m
                for m in used
                if m.startswith(("tfckpt.render", "tfckpt.cli"))
                or m.split(".")[0] in ("rich", "typer")
            }
            if directory == "transfer":
                bad |= {m for m in used if m.startswith("tfckpt.api")}
            assert not bad, (path.name, bad)


def test_transfer_errors_live_in_the_error_module() -> None:
    from tfckpt import errors

    for name in ("CheckFailed", "UnrepresentableTensor", "MismatchError"):
        assert getattr(errors, name).__module__ == "tfckpt.errors"
    assert errors.MismatchError.exit_code == errors.ExitCode.FAILED
