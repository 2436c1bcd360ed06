"""The CLI as a user meets it: 80 columns, one vocabulary, JSON for scripts, no traps (issue 16).

Built on the TF-free fixtures, so it runs wherever tfckpt is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, run
from native_fixtures import _write

import tfckpt

LONG = "encoder/layer_with_a_rather_long_descriptive_name_0/attention/query/kernel"


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two checkpoints of one model at two steps: three tensors changed by known amounts."""
    rng = np.random.default_rng(0)
    base = {
        LONG: rng.standard_normal((4, 4)).astype(np.float32),
        "a/small": np.zeros(3, np.float32),
        "b/medium": np.ones(5, np.float32),
        "c/same": np.arange(4, dtype=np.float32),
    }
    later = dict(base)
    later[LONG] = base[LONG] + np.float32(0.001)
    later["a/small"] = base["a/small"] + np.float32(0.5)
    later["b/medium"] = base["b/medium"] * np.float32(3.0)
    _write(tmp_path / "run" / "model.ckpt-100", base)
    _write(tmp_path / "run" / "model.ckpt-300", later)
    return tmp_path / "run" / "model.ckpt-100", tmp_path / "run" / "model.ckpt-300"


def at(columns: int, *args: Any) -> Any:
    """Run the CLI with the terminal ``columns`` wide."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        return run(*args)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


# ---- the screen --------------------------------------------------------------------------------
@pytest.mark.parametrize("columns", [80, 200])
def test_diff_keeps_the_name_whole_at_any_width(pair: tuple[Path, Path], columns: int) -> None:
    result = at(columns, "diff", *pair)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(LONG in line for line in lines), result.stdout
    assert all(len(line) <= columns for line in lines), result.stdout
    assert "a/small" in result.stdout and "b/medium" in result.stdout


@pytest.mark.parametrize("columns", [80, 200])
def test_writer_plans_keep_names_whole(
    pair: tuple[Path, Path], columns: int, tmp_path: Path
) -> None:
    src = pair[0]
    renamed = at(columns, "rename", src, tmp_path / "r", "--add-prefix", "pretrained/", "-n")
    assert renamed.exit_code == 0 and f"pretrained/{LONG}" in renamed.stdout
    # Only a name longer than the terminal may run past its edge (whole, never wrapped).
    lines = renamed.stdout.splitlines()
    assert all(len(line) <= columns for line in lines if LONG not in line)
    pruned = at(columns, "prune", src, tmp_path / "p", "--drop", "^encoder/", "-n")
    assert pruned.exit_code == 0 and LONG in pruned.stdout
    merged = at(columns, "merge", f"{src}:x", f"{pair[1]}:y", "-o", tmp_path / "m", "-n")
    assert merged.exit_code == 0 and f"x/{LONG}" in merged.stdout


@pytest.mark.parametrize("columns", [80, 200])
def test_verify_problems_name_the_tensor_whole(
    pair: tuple[Path, Path], columns: int, tmp_path: Path
) -> None:
    copy = tmp_path / "bad" / "model.ckpt"
    tfckpt.rename(pair[0], copy, add_prefix="x/")
    data = Path(str(copy) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF  # the first tensor in file order
    data.write_bytes(bytes(raw))
    result = at(columns, "verify", copy)
    assert result.exit_code == 1 and "crc" in result.stdout
    assert any(line.strip().startswith("x/") for line in result.stdout.splitlines())


def test_diff_sort_and_top_find_the_biggest_change(pair: tuple[Path, Path]) -> None:
    doc = json.loads(run("diff", *pair, "--sort", "max-abs", "--top", "2", "--json").stdout)
    assert [v["name"] for v in doc["variables"]] == ["b/medium", "a/small"]
    rel = json.loads(run("diff", *pair, "--sort", "rel", "--json").stdout)
    # Relative to B: a/small went 0 -> 0.5 (1.0), b/medium 1 -> 3 (0.67).
    assert [v["name"] for v in rel["variables"]][:2] == ["a/small", "b/medium"]
    table = run("diff", *pair, "--sort", "max-abs", "--top", "1").stdout
    assert "b/medium" in table and "a/small" not in table
    bad = run("diff", *pair, "--sort", "size")
    assert bad.exit_code == 2 and "--sort 'size'" in bad.stderr


def test_delimited_formats_and_no_headers() -> None:
    from tfckpt.render.table import Column, print_table

    columns = [Column("name", key=True), Column("n", "right")]
    rows = [("a,b", "1"), ("c\td", "2")]
    import contextlib
    import io

    for fmt, headers, expected in (
        ("csv", True, 'name,n\n"a,b",1\nc\td,2\n'),
        ("tsv", False, "a,b\t1\nc d\t2\n"),
    ):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            print_table(columns, rows, fmt=fmt, headers=headers)
        assert out.getvalue() == expected


# ---- one vocabulary ----------------------------------------------------------------------------
def test_merge_takes_inputs_first_and_never_overwrites_one(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = pair
    before = Path(str(a) + ".index").read_bytes()
    # The order a user typed by habit (output first): the output is not positional any more.
    result = run("merge", a, b)
    assert result.exit_code == 2 and "--output" in result.stderr
    result = run("merge", f"{a}:x/", f"{b}:y/", "-o", a, "--force")
    assert result.exit_code == 2 and "is the source checkpoint" in result.stderr
    assert Path(str(a) + ".index").read_bytes() == before
    ok("merge", f"{a}:old", f"{b}:new/", "-o", tmp_path / "m")  # a scope without its slash
    with tfckpt.open(tmp_path / "m") as ckpt:
        assert "old/a/small" in ckpt and "new/a/small" in ckpt


def test_scope_options_take_scopes(pair: tuple[Path, Path], tmp_path: Path) -> None:
    result = ok("rename", pair[0], tmp_path / "r", "--add-prefix", "pretrained")
    assert "taken as the scope 'pretrained/'" in result.stderr
    with tfckpt.open(tmp_path / "r") as ckpt:
        assert "pretrained/a/small" in ckpt and "pretraineda/small" not in ckpt
    ok("rename", tmp_path / "r", tmp_path / "s", "--strip-prefix", "pretrained")
    with tfckpt.open(tmp_path / "s") as ckpt:
        assert "a/small" in ckpt and "/a/small" not in ckpt


def test_a_rename_that_changes_nothing_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    result = run("rename", pair[0], tmp_path / "r", "--sub", "^encodr/", "enc/")
    assert result.exit_code == 2 and "closest names: 'encoder/'" in result.stderr
    assert not Path(str(tmp_path / "r") + ".index").exists()


def test_prune_says_the_meta_is_not_carried_over(pair: tuple[Path, Path], tmp_path: Path) -> None:
    meta = Path(str(pair[0]) + ".meta")
    meta.write_bytes(b"")
    result = ok("prune", pair[0], tmp_path / "p", "--drop", "^a/")
    assert "model.ckpt-100.meta was not carried over" in result.stderr


def test_every_json_document_has_the_envelope(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    cases = {
        "diff": ["diff", a, b],
        "verify": ["verify", a],
        "rename": ["rename", a, tmp_path / "r", "--add-prefix", "x/"],
        "prune": ["prune", a, tmp_path / "p", "--drop", "^a/"],
        "merge": ["merge", a, f"{b}:b/", "-o", tmp_path / "m"],
        "cast": ["cast", a, tmp_path / "c", "--dtype", "float16"],
    }
    for kind, args in cases.items():
        result = run(*args, "--json")
        document = json.loads(result.stdout)
        assert document["kind"] == kind and document["version"] == 1, kind
    assert json.loads(run("diff", a, b, "--json").stdout)["ok"] is False
    assert json.loads(run("verify", a, "--json").stdout)["ok"] is True
    dry = json.loads(run("prune", a, tmp_path / "q", "--drop", "^a/", "-n", "--json").stdout)
    wet = json.loads(run("prune", a, tmp_path / "q", "--drop", "^a/", "--json").stdout)
    assert set(dry) == set(wet) and dry["dry_run"] and wet["written"]


def test_errors_with_json_are_json_on_stdout(tmp_path: Path) -> None:
    result = run("vars", tmp_path / "nothing", "--json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["error"]["type"] == "CheckpointNotFound"
    assert document["error"]["exit_code"] == 2
    assert result.stderr.startswith("tfckpt: error: ") and result.stderr.count("\n") == 1


def test_quiet_silences_everything_but_errors(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    assert run("diff", a, b, "--json", "-q").stderr == ""
    assert ok("rename", a, tmp_path / "r", "--add-prefix", "x", "-q").stderr == ""
    assert ok("ls", a.parent, "-q").stderr == ""
    failed = run("rename", a, tmp_path / "r", "--add-prefix", "x/", "-q")
    assert failed.exit_code == 2 and "exists" in failed.stderr


# ---- the basics --------------------------------------------------------------------------------
def test_version_and_help_command() -> None:
    assert ok("--version").stdout == f"tfckpt {tfckpt.__version__}\n"
    helped = ok("help", "rename").stdout
    assert "Rename variables" in helped and "--add-prefix" in helped
    result = run("help", "renmae")
    assert result.exit_code == 2 and "did you mean 'rename'" in result.stderr
    top = ok("--help").stdout
    order = [line.split()[0] for line in _command_list(top)]
    assert order[:5] == ["ls", "vars", "graph", "diff", "verify"], order


def _command_list(help_text: str) -> list[str]:
    """The lines of the top-level help's command list (each "  name  summary")."""
    listing = help_text[help_text.index("\nCommands:\n") :].splitlines()[2:]
    return [line for line in listing if line.startswith("  ") and line[2] != " "]


def _complete(words: str, cword: int) -> str:
    env = dict(
        os.environ, COMP_WORDS=words, COMP_CWORD=str(cword), _TFCKPT_COMPLETE="complete_bash"
    )
    code = "from tfckpt.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout


def test_shell_completion_scripts_and_names(pair: tuple[Path, Path]) -> None:
    for instruction in ("bash_source", "source_bash"):
        env = dict(os.environ, _TFCKPT_COMPLETE=instruction)
        script = subprocess.run(
            [sys.executable, "-c", "from tfckpt.cli import main; main()"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert "_tfckpt_completion()" in script.stdout, (instruction, script.stderr)
    assert "rename" in _complete("tfckpt ren", 1).split()
    names = _complete(f"tfckpt vars {pair[0]} --show a/sm", 4).split()
    assert names == ["a/small"]
    assert _complete(f"tfckpt vars {pair[0]} --match encoder/layer", 4).split() == [LONG]
    assert _complete("tfckpt vars /no/such --show a", 4).strip() == ""


def test_tf2_tensors_have_one_display_name_and_both_are_accepted(
    native: Any, tmp_path: Path
) -> None:
    src = native("tf2")
    key = "model/out/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    # Shown by object path everywhere by default, by key with --keys.
    plan = ok("prune", src, tmp_path / "p", "--drop", "^model/out/kernel$", "-n").stdout
    assert "model/out/kernel" in plan and ".ATTRIBUTES" not in plan
    assert key in ok("prune", src, tmp_path / "p", "--drop", "out/kernel$", "-n", "--keys").stdout
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"model/out/kernel": "model/head/kernel"}))
    renamed = ok("rename", src, tmp_path / "r", "--mapping", mapping)
    assert "model/head/kernel" in renamed.stdout and ".ATTRIBUTES" not in renamed.stdout
    with tfckpt.open(tmp_path / "r") as ckpt:
        assert "model/head/kernel/.ATTRIBUTES/VARIABLE_VALUE" in ckpt
    diff = run("diff", src, tmp_path / "r")
    assert diff.exit_code == 1 and "model/head/kernel" in diff.stdout
    assert ".ATTRIBUTES" not in diff.stdout
    assert ".ATTRIBUTES/VARIABLE_VALUE" in run("diff", src, tmp_path / "r", "--keys").stdout
    matched = json.loads(
        run("diff", src, tmp_path / "r", "--match", "model/out/*", "--json").stdout
    )
    names = [v["name"] for v in matched["variables"]]  # the kernel and its two Adam slots
    assert (
        key in names and len(names) == 3 and all(n.startswith("model/out/kernel/") for n in names)
    )


def test_diff_as_tsv_and_csv_for_scripts(pair: tuple[Path, Path]) -> None:
    tsv = run("diff", *pair, "--format", "tsv", "--sort", "max-abs")
    assert tsv.exit_code == 1
    lines = tsv.stdout.splitlines()
    assert lines[0].split("\t")[:2] == ["name", "status"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["b/medium", "a/small", LONG]
    assert "│" not in tsv.stdout and "differences found" in tsv.stderr
    bare = run("diff", *pair, "--format", "csv", "--no-headers", "-q")
    assert bare.stdout.splitlines()[0].startswith("a/small,values,") and bare.stderr == ""
    assert run("diff", *pair, "--format", "xml").exit_code == 2


@pytest.mark.tf
@pytest.mark.parametrize("columns", [80, 200])
def test_graph_summary_shows_every_signature_name(fx: Any, columns: int) -> None:
    result = at(columns, "graph", fx["savedmodel_tf2"].path)
    assert result.exit_code == 0
    assert "Signature serving_default" in result.stdout
    assert "serving_default_x:0" in result.stdout and "StatefulPartitionedCall:0" in result.stdout
    assert all(len(line) <= columns for line in result.stdout.splitlines())
    one = at(columns, "graph", fx["savedmodel_tf2"].path, "--signature", "serving_default")
    assert one.exit_code == 0 and "serving_default_x:0" in one.stdout
    typo = at(columns, "graph", fx["savedmodel_tf2"].path, "--signature", "serving_defualt")
    assert typo.exit_code == 2 and "did you mean 'serving_default'" in typo.stderr


def test_the_command_list_is_one_line_each_at_80_columns() -> None:
    from tfckpt.cli.app import COMMANDS, SHORT_HELP, WORKFLOW

    names = set(COMMANDS)
    assert names == set(SHORT_HELP) and names <= set(WORKFLOW)
    top = at(80, "--help").stdout
    panel = _command_list(top)
    assert len(panel) == len(names) and all(len(line) <= 80 for line in panel), panel


def test_a_write_shows_the_start_of_a_long_plan_and_a_dry_run_all_of_it(tmp_path: Path) -> None:
    from tfckpt.render.surgery import PLAN_ROWS

    names = [f"net/layer_{i:03d}/w" for i in range(PLAN_ROWS + 70)]
    src = tmp_path / "src"
    _write(src, {n: np.zeros(2, np.float32) for n in names}, state=False)
    wrote = ok("rename", src, tmp_path / "a", "--sub", "^net/", "body/")
    rows = [line for line in wrote.stdout.splitlines() if "->" in line or "│" in line]
    assert "net/layer_000/w" in wrote.stdout and "net/layer_119/w" not in wrote.stdout
    assert len(rows) == PLAN_ROWS and "... 70 more (--dry-run lists all" in wrote.stdout
    assert wrote.stdout.rstrip().endswith("120 renamed, 0 unchanged")
    dry = ok("rename", src, tmp_path / "b", "--sub", "^net/", "body/", "--dry-run", "-q")
    assert "net/layer_119/w" in dry.stdout and "more" not in dry.stdout
    assert ok("rename", src, tmp_path / "c", "--sub", "^net/", "body/", "-q").stdout == ""
    merged = ok("merge", f"{src}:a/", f"{src}:b/", "-o", tmp_path / "m")
    assert "a/net/layer_000/w" in merged.stdout and "b/net/layer_000/w" not in merged.stdout
    assert "... 190 more" in merged.stdout and "240 variables from 2 inputs" in merged.stdout
    pruned = ok("prune", src, tmp_path / "p", "--drop", "layer_0")
    assert "... 50 more" in pruned.stdout and "100 dropped, 20 kept" in pruned.stdout
