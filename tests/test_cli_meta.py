"""Contracts about the CLI as a whole: help, README, exit codes, layering, lazy TensorFlow."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tfckpt import errors
from tfckpt.cli import app
from tfckpt.cli.app import COMMANDS as REGISTERED
from tfckpt.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tfckpt"
runner = CliRunner()
COMMANDS = sorted(REGISTERED)


def test_the_commands_of_the_design_card_exist() -> None:
    assert {"ls", "vars", "graph", "diff", "rename", "prune", "convert-pbtxt"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output
    assert f"tfckpt {command} " in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_examples_stay_whole_at_80_columns(command: str) -> None:
    """Every example command in a help text fits one line of an 80-column terminal."""
    callback = next(c.callback for name, c in REGISTERED.items() if name == command)
    examples = [
        line.strip() for line in (inspect.getdoc(callback) or "").splitlines()
        if line.strip().startswith("tfckpt ")
    ]  # fmt: skip
    assert examples, command
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    shown = [line.strip() for line in result.output.splitlines()]
    for example in examples:
        assert example in shown, (command, example)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "help"])
def test_every_command_is_in_the_readme_tour(command: str) -> None:
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("<!-- TOUR -->") : readme.index("<!-- /TOUR -->")]
    assert f"### `{command}`" in tour
    assert re.search(rf"^\$ tfckpt {re.escape(command)} ", tour, re.MULTILINE)


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    commands = [line for line in first_block.splitlines()[1:] if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_exit_codes_are_pinned_and_documented() -> None:
    assert {c.name: c.value for c in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "ERROR": 2,
        "INTERRUPTED": 130,
    }
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {code.value} \|", readme, re.MULTILINE), code
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.TfckptError)
    ]
    assert len(classes) > 5
    for cls in classes:
        assert cls.exit_code in (ExitCode.FAILED, ExitCode.ERROR), cls
        assert cls.__doc__, cls


def _imports(path: Path) -> set[str]:
    """Top-level (module-scope) imports of one file; lazy imports inside functions excluded."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _all_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


# The layers, bottom up. A module may import (at module scope or lazily) only tfckpt modules of
# its own layer or of the layers this table allows it; STYLE.md's picture:
# cli -> render / api -> ops / transfer / graph -> bundle -> storage.
BASE = {"errors", "progress", "dtypes", "protos", "_protogen", "_descriptors", "names"}
ALLOWED = {
    "storage": set(),
    "bundle": {"storage"},
    "graph": {"bundle", "storage"},
    "ops": {"bundle", "graph", "storage"},
    "transfer": {"ops", "bundle", "graph", "storage"},
    "tf_engine": {"ops", "graph", "bundle", "storage"},
    "api": {"ops", "transfer", "graph", "bundle", "storage", "tf_engine"},
    "render": set(),  # plain data in: never reads files or checkpoints
    "cli": {"api", "render"},
}
# Imports still waiting for their library function (being moved by the work in progress).
PENDING: set[tuple[str, str]] = set()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_import_downward_only() -> None:
    """Each layer imports only the layers below it (ALLOWED); only render imports rich; only
    tf_engine imports TensorFlow; nothing below the CLI imports typer."""
    problems = []
    pending_used = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        everything = _all_imports(path)
        if not rel.startswith("tf_engine/"):
            assert not {m for m in everything if m.split(".")[0] == "tensorflow"}, rel
        if not rel.startswith(("render/", "cli/")):
            assert not {m for m in everything if m.split(".")[0] == "rich"}, rel
        if not rel.startswith("cli/") and rel != "__main__.py":
            assert not {m for m in everything if m.split(".")[0] == "typer"}, rel
        own = rel.split("/")[0] if "/" in rel else None
        if own is None or own not in ALLOWED:
            continue  # top-level modules: the public namespace and the base
        for module in everything:
            if not module.startswith("tfckpt."):
                continue
            layer = _layer(module)
            if layer == own or layer in BASE or layer in ALLOWED[own]:
                continue
            if (rel, layer) not in PENDING:
                problems.append(f"{rel} imports {module}")
            pending_used.add((rel, layer))
    assert not problems, problems
    assert pending_used >= PENDING, f"no longer pending, remove: {PENDING - pending_used}"


def test_the_base_modules_import_nothing_above_them() -> None:
    for name in BASE:
        path = PACKAGE / f"{name}.py"
        if not path.exists():
            continue
        layers = {_layer(m) for m in _all_imports(path) if m.startswith("tfckpt.")}
        assert layers <= BASE, (name, layers)


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from tfckpt.cli import main; sys.argv = ['tfckpt', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'numpy', 'google.protobuf') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vars"], "Missing argument 'path'"),
        (["vars", "x", "--bogus"], "No such option: --bogus"),
        (["nope"], "No such command 'nope'"),
        (["vars", "x", "--engine", "nope"], "Invalid value for '--engine'"),
        (["vars", "/no/such/checkpoint"], "no such file or checkpoint"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfckpt: error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_exit_codes_through_the_console_script(nfx: Any) -> None:
    def code(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "tfckpt", *args], check=False).returncode

    multi = nfx["tf1_multi"].path
    assert code("--help") == 0
    assert code("diff", str(multi / "model.ckpt-10"), str(multi / "model.ckpt-10"), "-q") == 0
    assert code("diff", str(multi / "model.ckpt-10"), str(multi / "model.ckpt-20"), "-q") == 1
    assert code("verify", str(multi), "-q") == 0


NATIVE_COMMANDS = [
    ["diff", "{a}", "{b}"],
    ["verify", "{a}", "--no-nan"],
    ["rename", "{a}", "{out}/r", "--add-prefix", "x/", "--meta"],
    ["prune", "{a}", "{out}/p", "--no-optimizer"],
    ["merge", "{a}:a/", "{b}:b/", "-o", "{out}/m"],
    ["graph", "{a}", "--check", "{b}"],
    ["convert-pbtxt", "{a}.meta", "{out}/g.pbtxt"],
    ["export", "{a}", "{out}/e.safetensors"],
    ["import", "{out}/e.safetensors", "{out}/i", "--like", "{a}"],
    ["cast", "{a}", "{out}/c", "--dtype", "bfloat16"],
]


def test_writing_and_checking_commands_never_import_tensorflow(nfx: Any, tmp_path: Path) -> None:
    multi = nfx["tf1_multi"].path
    names = {"a": str(multi / "model.ckpt-10"), "b": str(multi / "model.ckpt-20")}
    code = (
        "import runpy, sys\n"
        "sys.argv = ['tfckpt', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('tfckpt', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'tensorflow']\n"
        "print('EXIT', code, 'TF', len(loaded))"
    )
    for template in NATIVE_COMMANDS:
        args = [a.format(out=tmp_path, **names) for a in template]
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
        )
        last = proc.stdout.strip().splitlines()[-1]
        assert last in ("EXIT 0 TF 0", "EXIT 1 TF 0"), (template, last, proc.stderr[-500:])


def test_a_bug_is_one_line_and_exit_2_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("boom\fsecond line")

    monkeypatch.setattr("tfckpt.bundle.discover.discover", broken)
    monkeypatch.delenv("TFCKPT_DEBUG", raising=False)
    result = runner.invoke(app, ["ls", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("tfckpt: internal error: ZeroDivisionError: boom\\x0csecond")
    assert result.stderr.count("\n") == 1 and "TFCKPT_DEBUG=1" in result.stderr
    monkeypatch.setenv("TFCKPT_DEBUG", "1")
    result = runner.invoke(app, ["ls", str(tmp_path)])
    assert isinstance(result.exception, ZeroDivisionError)


def _built_by(args: list[str]) -> list[str]:
    """The commands Typer builds (inspecting their parameters) while ``tfckpt ARGS`` runs."""
    code = (
        "import sys, typer.main\n"
        "built = []\n"
        "make = typer.main.get_command_from_info\n"
        "def spy(info, **kw):\n"
        "    built.append(info.name)\n"
        "    return make(info, **kw)\n"
        "typer.main.get_command_from_info = spy\n"
        "from tfckpt.cli import main\n"
        f"sys.argv = ['tfckpt', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('BUILT=' + ','.join(sorted(built)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].removeprefix("BUILT=").split(",")


def test_a_run_builds_only_its_command_and_help_lists_all() -> None:
    assert _built_by(["presets"]) == ["presets"]
    assert _built_by(["vars", "--help"]) == ["vars"]
    assert _built_by(["--help"]) == sorted(REGISTERED)
