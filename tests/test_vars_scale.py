"""``vars`` and ``ls`` as issue 13 and 16 shape them: optimizer split, --sort/--top, TSV/CSV, the
name whole at 80 and 200 columns, streamed JSON, the scope tree's --depth, a pager; and the
many-tensor paths (batched statistics, bulk verify and diff, streamed plan tables) giving what
the one-tensor-at-a-time paths give."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, run
from native_fixtures import _write, flip_stored_byte

import tfckpt
from tfckpt.errors import CorruptCheckpoint

LONG = "encoder/layer_with_a_rather_long_descriptive_name_0/attention/query/kernel"


def at(columns: int, *args: Any) -> Any:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        return run(*args)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


@pytest.fixture()
def tf1(native: Any) -> Path:
    return Path(native("tf1"))


@pytest.fixture()
def long_names(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    values = {
        LONG: rng.standard_normal((4, 4)).astype(np.float32),
        LONG + "/Adam": np.zeros((4, 4), np.float32),
        "b/medium": np.array([1.0, np.nan, np.inf, 0.0], np.float32),
        "c/big": np.arange(1000, dtype=np.int64),
    }
    return _write(tmp_path / "run" / "model.ckpt-7", values) and tmp_path / "run" / "model.ckpt-7"


@pytest.fixture()
def many(tmp_path: Path) -> Path:
    """1,500 small tensors of three dtypes and several shapes (the batched paths start at 1,000)."""
    rng = np.random.default_rng(5)
    values: dict[str, np.ndarray] = {}
    for i in range(1500):
        kind = i % 3
        name = f"layer_{i // 30:03d}/unit_{i % 30:02d}/" + ("w", "w/Adam", "step")[kind]
        if kind == 0:
            values[name] = rng.standard_normal((i % 5 + 1, 3)).astype(np.float32)
        elif kind == 1:
            values[name] = rng.standard_normal(i % 7 + 1)
        else:
            values[name] = np.array(i, np.int64)
    values["layer_000/unit_00/w"][0, 0] = np.nan
    prefix = tmp_path / "many" / "model.ckpt"
    _write(prefix, values)
    return prefix


# ---- totals and filters ----------------------------------------------------------------------
def test_totals_split_model_parameters_from_optimizer_state(tf1: Path) -> None:
    doc = json.loads(ok("vars", tf1, "--json").stdout)
    assert doc["totals"] == {
        "variables": 15,
        "parameters": 72,
        "model_parameters": 24,
        "optimizer_state": 48,
        "bytes": 292,
    }
    flagged = {r["name"] for r in doc["tensors"] if r["optimizer"]}
    assert flagged == {
        r["name"] for r in doc["tensors"] if r["name"].endswith(("Adam", "Adam_1"))
    } | {
        "beta1_power",
        "beta2_power",
    }
    text = ok("vars", tf1).stdout
    assert "15 variables, 24 model parameters + 48 optimizer state" in text
    only_model = json.loads(ok("vars", tf1, "--no-optimizer", "--json").stdout)
    assert only_model["totals"]["optimizer_state"] == 0
    assert only_model["totals"]["variables"] == 5
    assert all(not r["optimizer"] for r in only_model["tensors"])
    only_opt = json.loads(ok("vars", tf1, "--optimizer", "--json").stdout)
    assert only_opt["totals"]["variables"] == 10
    assert all(r["optimizer"] for r in only_opt["tensors"])


def test_sort_and_top(tf1: Path) -> None:
    doc = json.loads(ok("vars", tf1, "--sort", "size", "--top", "3", "--json").stdout)
    assert [r["name"] for r in doc["tensors"]] == [
        "dense/kernel",
        "dense/kernel/Adam",
        "dense/kernel/Adam_1",
    ]
    assert doc["totals"]["variables"] == 15  # totals cover every selected tensor
    by_bytes = json.loads(ok("vars", tf1, "--sort", "bytes", "--json").stdout)["tensors"]
    assert [r["nbytes"] for r in by_bytes] == sorted((r["nbytes"] for r in by_bytes), reverse=True)
    by_dtype = json.loads(ok("vars", tf1, "--sort", "dtype", "--json").stdout)["tensors"]
    assert [r["dtype"] for r in by_dtype] == sorted(r["dtype"] for r in by_dtype)
    assert by_dtype[-1]["name"] == "global_step"  # int64 after float32
    table = ok("vars", tf1, "--sort", "bytes", "--top", "1").stdout
    assert "dense/kernel " in table and "dense_1" not in table
    assert "showing 1 of 15 variables" in table
    bad = run("vars", tf1, "--sort", "elements")
    assert bad.exit_code == 2 and "--sort 'elements'" in bad.stderr
    assert run("vars", tf1, "--depth", "2").exit_code == 2  # --depth goes with --tree


def test_tsv_csv_and_no_headers(tf1: Path) -> None:
    result = ok("vars", tf1, "--format", "tsv", "--sort", "size", "--top", "2")
    lines = result.stdout.splitlines()
    assert lines[0] == "name\tdtype\tshape\telements\tbytes"
    assert lines[1] == "dense/kernel\tfloat32\t[4, 3]\t12\t48"
    assert "15 variables" in result.stderr and "15 variables" not in result.stdout
    quiet = ok("vars", tf1, "--format", "csv", "--no-headers", "-q")
    assert quiet.stderr == ""
    rows = quiet.stdout.splitlines()
    assert len(rows) == 15 and rows[0].startswith("beta1_power,float32,[],1,4")
    listed = ok("ls", tf1.parent, "--format", "tsv", "--no-headers").stdout.splitlines()
    assert listed and listed[0].split("\t")[0] == tf1.name
    assert ok("ls", tf1.parent, "--format", "csv").stdout.startswith("path,step,format,data")
    assert run("vars", tf1, "--format", "xml").exit_code == 2
    assert run("vars", tf1, "--tree", "--format", "tsv").exit_code == 2


# ---- the screen -------------------------------------------------------------------------------
@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("extra", [[], ["--stats"], ["--tree"], ["--keys"]])
def test_vars_keeps_the_name_whole(long_names: Path, columns: int, extra: list[str]) -> None:
    result = at(columns, "vars", long_names, *extra)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    leaf = LONG.rsplit("/", 1)[-1] if "--tree" in extra else LONG
    assert any(leaf in line for line in lines), result.stdout
    # Only a line holding a long name (whole) may run past the edge; nothing is folded.
    longest = max(LONG.split("/"), key=len)
    assert all(
        len(line) <= columns
        for line in lines
        if LONG not in line
        and leaf not in line
        and longest not in line
        and str(long_names) not in line  # the title: the checkpoint's path, whole
    )
    if "--stats" in extra:
        assert "nan" in result.stdout and "zeros" in result.stdout
    if columns == 200 and not extra:
        assert lines[1].startswith(" name") and "┃" in lines[1]  # one row per tensor
    if columns == 80 and not extra:
        assert lines[1] == "name" and lines[2].split() == ["dtype", "shape", "elements", "bytes"]


@pytest.mark.parametrize("columns", [80, 200])
def test_ls_keeps_the_path_whole(long_names: Path, columns: int, tmp_path: Path) -> None:
    deep = tmp_path / "a_rather_long_directory_name_for_runs" / "experiment_with_a_long_name_42"
    _write(deep / "model.ckpt-1000", {"w": np.zeros(3, np.float32)})
    for args in (["ls", deep], ["ls", "-R", tmp_path]):
        result = at(columns, *args)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert any(line.strip().startswith(("model.ckpt-1000", "a_rather")) for line in lines)
        whole = [line for line in lines if "model.ckpt-1000" in line]
        assert whole and all("model.ckpt-1000" in line for line in whole)
        assert all(len(line) <= columns for line in lines if "model.ckpt" not in line)


def test_tree_depth_collapses_scopes(tf1: Path) -> None:
    full = ok("vars", tf1, "--tree").stdout
    assert "Adam_1  float32" in full
    shallow = ok("vars", tf1, "--tree", "--depth", "1").stdout
    assert "dense/  6 vars, 45 params" in shallow and "kernel" not in shallow
    assert shallow.splitlines()[-1].startswith("15 variables")


def test_tree_of_awkward_names_at_every_depth(tmp_path: Path, monkeypatch: Any) -> None:
    """Leaves and scopes of one name ("a" and "a/"), "-" sorting between them, an empty
    component ("a//d"), single-child chains; --depth shows a scope's line, not its rows."""
    monkeypatch.setenv("NO_COLOR", "1")
    names = ["a", "a/b", "a/b/c", "a/b-x", "a//d", "z/y/x/w", "z/y/v"]
    prefix = tmp_path / "m"
    _write(prefix, {n: np.arange(i + 1, dtype=np.float32) for i, n in enumerate(names)})
    full = [
        f"{prefix}  7 vars, 28 params, 112 B",
        "├── a  float32 [1]  4 B",
        "├── a/  4 vars, 14 params, 56 B",
        "│   ├── /  1 vars, 5 params, 20 B",
        "│   │   └── d  float32 [5]  20 B",
        "│   ├── b  float32 [2]  8 B",
        "│   ├── b-x  float32 [4]  16 B",
        "│   └── b/  1 vars, 3 params, 12 B",
        "│       └── c  float32 [3]  12 B",
        "└── z/  2 vars, 13 params, 52 B",
        "    └── y/  2 vars, 13 params, 52 B",
        "        ├── v  float32 [7]  28 B",
        "        └── x/  1 vars, 6 params, 24 B",
        "            └── w  float32 [6]  24 B",
        "7 variables, 28 parameters, 112 B (112 bytes)",
    ]
    assert ok("vars", prefix, "--tree").stdout.splitlines() == full
    two = [line for line in full if _depth(line) <= 2]
    assert ok("vars", prefix, "--tree", "--depth", "2").stdout.splitlines() == two


def _depth(line: str) -> int:
    """How deep a tree line sits (1: a child of the root; 0: the root and total lines)."""
    head = line.split("── ", 1)[0]
    return 0 if "── " not in line else len(head) // 4 + 1


# ---- JSON -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tf1", "tf2", "partitioned", "dtypes"])
def test_streamed_json_is_the_library_result(native: Any, kind: str) -> None:
    prefix = native(kind)
    for extra in ([], ["--stats"], ["--all", "--sort", "bytes"]):
        document = json.loads(ok("vars", prefix, "--json", *extra).stdout)
        result = tfckpt.variables(
            prefix,
            stats="--stats" in extra,
            include_object_graph="--all" in extra,
            sort="bytes" if "--sort" in extra else "name",
        )
        expected = json.loads(json.dumps({"kind": "vars", "version": 1, **result.to_dict()}))
        assert document == expected, (kind, extra)
    if kind == "tf2":
        assert all(
            "path" in r for r in document["tensors"] if r["name"] != "_CHECKPOINTABLE_OBJECT_GRAPH"
        )
        assert document["totals"]["optimizer_state"] > 0
    if kind == "partitioned":
        assert any(r.get("slices") == 3 for r in document["tensors"])


def test_ls_json_envelope_streams_items(tf1: Path) -> None:
    document = json.loads(ok("ls", tf1.parent, "--json").stdout)
    assert (document["kind"], document["version"], document["path"]) == ("ls", 1, str(tf1.parent))
    assert [Path(i["path"]).name for i in document["items"]] == [tf1.name]
    empty = tf1.parent.parent / "empty_dir"
    empty.mkdir()
    assert json.loads(ok("ls", empty, "--json").stdout)["items"] == []


# ---- a pager on a terminal ----------------------------------------------------------------------
def test_pager_takes_long_output_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfckpt.render.stream import pager

    target = tmp_path / "paged.txt"
    monkeypatch.setenv("TFCKPT_PAGER", f"cat > {target}")
    fake = io.StringIO()
    fake.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdout", fake)
    monkeypatch.setattr("sys.stdin", io.StringIO())
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    import sys

    with pager(10_000):
        sys.stdout.write("line\n" * 3)
    assert target.read_text() == "line\n" * 3
    assert fake.getvalue() == ""
    with pager(1):  # fits one screen: no pager
        sys.stdout.write("short\n")
    assert fake.getvalue() == "short\n"


# ---- the many-tensor paths agree with the one-at-a-time paths -----------------------------------
def test_batched_statistics_equal_per_tensor_statistics(many: Path) -> None:
    from tfckpt.ops.stats import tensor_stats

    doc = json.loads(ok("vars", many, "--stats", "--json").stdout)
    with tfckpt.open(many) as ckpt:
        for record in doc["tensors"]:
            alone = tensor_stats(ckpt.iter_chunks(record["name"]), ckpt.info(record["name"]).dtype)
            assert alone is not None
            assert {k: record[k] for k in alone.to_dict()} == alone.to_dict(), record["name"]
    assert sum(r["nan"] for r in doc["tensors"]) == 1


def test_batched_statistics_report_damage_like_the_streaming_path(many: Path) -> None:
    data = Path(str(many) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    result = run("vars", many, "--stats")
    assert result.exit_code == 2 and "checksum mismatch" in result.stderr


def test_bulk_verify_reports_what_the_per_tensor_checks_report(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfckpt.ops import verify

    data = Path(str(many) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    for at_byte in (40, len(raw) // 3, len(raw) - 3):
        raw[at_byte] ^= 0x10
    data.write_bytes(bytes(raw[:-2]))  # and truncated: the last tensor is cut short
    fast = tfckpt.verify(many).to_dict()
    monkeypatch.setattr(verify, "_bulk_clean", lambda *a: None)
    slow = tfckpt.verify(many).to_dict()
    assert fast == slow
    assert not fast["ok"] and {p["check"] for p in fast["problems"]} == {"crc", "range"}


def test_bulk_diff_reports_what_the_per_tensor_comparison_reports(
    many: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfckpt.ops import diff

    copy = tmp_path / "copy" / "model.ckpt"
    with tfckpt.open(many) as ckpt:
        values = {name: ckpt[name] for name in ckpt}
    values["layer_010/unit_03/w"] = values["layer_010/unit_03/w"] + 1
    _write(copy, values)
    report = tfckpt.diff(many, copy)
    brief = report.to_dict()  # before anything builds a VarDiff per identical tensor
    assert report._identical is not None and len(brief["variables"]) == 1
    fast = report.to_dict(show_all=True)
    assert brief == {**fast, "variables": [v for v in fast["variables"] if v["status"] != "same"]}
    monkeypatch.setattr(diff, "_aligned_report", lambda *a: None)
    monkeypatch.setattr(diff, "_bulk_identical", lambda *a: set())
    slow = tfckpt.diff(many, copy).to_dict(show_all=True)
    assert fast == slow
    assert fast["summary"]["values"] == 1 and fast["summary"]["same"] == 1499
    # A flipped byte in B under an unchanged index: equal stored checksums, unequal bytes.
    monkeypatch.undo()
    flip_stored_byte(copy, "layer_020/unit_06/w", 2)
    with pytest.raises(CorruptCheckpoint, match="checksum mismatch for 'layer_020/unit_06/w'"):
        tfckpt.diff(many, copy)
    monkeypatch.setattr(diff, "_aligned_report", lambda *a: None)
    monkeypatch.setattr(diff, "_bulk_identical", lambda *a: set())
    with pytest.raises(CorruptCheckpoint, match="checksum mismatch for 'layer_020/unit_06/w'"):
        tfckpt.diff(many, copy)


def test_long_plan_tables_stream_with_the_same_layouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tfckpt.render import table

    columns = [
        table.Column("old", key=True),
        table.Column(""),
        table.Column("new", key=True, label="->"),
    ]
    rows = [(f"scope/{i:03d}/w", "->", f"x/scope/{i:03d}/w") for i in range(30)]

    def printed(width: int) -> list[str]:
        out = io.StringIO()
        monkeypatch.setenv("COLUMNS", str(width))
        with contextlib.redirect_stdout(out):
            table.print_table(columns, rows)
        return [line.rstrip() for line in out.getvalue().splitlines()]

    rich = {w: printed(w) for w in (80, 30)}
    monkeypatch.setattr(table, "STREAM_ROWS", 0)
    streamed = {w: printed(w) for w in (80, 30)}
    assert streamed == rich


def test_a_damaged_object_graph_costs_only_the_optimizer_split(tmp_path: Path) -> None:
    attr = "/.ATTRIBUTES/VARIABLE_VALUE"
    prefix = tmp_path / "tf2" / "ckpt-1"
    _write(
        prefix,
        {
            "model/w" + attr: np.ones(3, np.float32),
            "model/w/.OPTIMIZER_SLOT/optimizer/m" + attr: np.zeros(3, np.float32),
            "_CHECKPOINTABLE_OBJECT_GRAPH": np.array(1.5, np.float32),  # not a string
        },
    )
    result = ok("vars", prefix, "--json")
    assert "not one string" in result.stderr and "by name only" in result.stderr
    document = json.loads(result.stdout)
    assert [r["optimizer"] for r in document["tensors"]] == [False, True]
    assert run("verify", prefix).exit_code == 0


def test_copies_check_many_tensors_at_once_and_name_the_damaged_one(
    many: Path, tmp_path: Path
) -> None:
    with tfckpt.open(many) as ckpt:
        cols = ckpt.bundle.columns
        row = len(cols) // 2
        name, where = cols.keys[row].decode(), cols.offset[row] + 1
    data = Path(str(many) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[where] ^= 0x40
    data.write_bytes(bytes(raw))
    for args in (
        ["rename", many, tmp_path / "r" / "ckpt", "--add-prefix", "x/"],
        ["prune", many, tmp_path / "p" / "ckpt", "--drop", "step$"],
        ["merge", f"{many}:a/", f"{many}:b/", "-o", tmp_path / "m" / "ckpt"],
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stdout)
        assert (
            f"checksum mismatch for '{name}'" in result.stderr
            and "nothing written" in result.stderr
        )
        assert (
            not any((tmp_path / args[0][0]).glob("*")) if (tmp_path / args[0][0]).exists() else True
        )


def test_stats_table_with_tensors_that_have_no_statistics(native: Any) -> None:
    """Strings have no min/max or NaN counts: their cells stay blank, the numbers line up."""
    result = ok("vars", native("dtypes"), "--stats")
    lines = result.stdout.splitlines()
    text = next(line for line in lines if line.split()[0] == "str")
    assert [c.strip() for c in text.split("│")[-7:]] == [""] * 7
    scalar = next(line for line in lines if line.split()[0] == "scalar")
    assert [c.strip() for c in scalar.split("│")[-7:]] == ["3.5", "3.5", "3.5", "0", "0", "0", "0"]
