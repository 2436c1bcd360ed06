"""Name rules shared by rename, diff, export and import: order of application and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfckpt.cli import app
from tfckpt.errors import UsageError
from tfckpt.ops.rules import build_rules, load_mapping

runner = CliRunner()


def test_mapping_wins_then_subs_in_order_then_prefixes(tmp_path: Path) -> None:
    mapping = tmp_path / "m.json"
    mapping.write_text('{"a/exact": "kept/as/is"}')
    rules = build_rules([("^a/", "b/"), ("^b/", "c/")], str(mapping), "c/", "top/")
    assert rules.apply("a/exact") == "kept/as/is"
    assert rules.apply("a/x") == "top/x"  # a/ -> b/ -> c/, stripped, then prefixed
    assert rules.apply("z") == "top/z"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b'{"a": 1}', "must be strings"),
        (b"{not json", "bad JSON at line 1"),
        (b"a,b,c\n", "expected two columns"),
        (b"a,b\na,c\n", "mapped twice"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "map.txt"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        load_mapping(str(path))


def test_csv_header_comments_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("old,new\n# a comment\n\na, b\n")
    assert load_mapping(str(path)) == {"a": "b"}
    path.write_text("x\ty\n")
    assert load_mapping(str(path)) == {"x": "y"}


@pytest.mark.parametrize(
    "sub", [("(", "x"), ("x", r"\g<name>"), ("x", r"\9"), ("(?P<a>x)", r"\g<b>")]
)
def test_bad_subs_are_one_line_exit_2(sub: tuple[str, str], tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["rename", str(tmp_path / "nope"), str(tmp_path / "o"), "--sub", *sub]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("tfckpt: error: bad sub") and result.stderr.count("\n") == 1


def test_bad_mapping_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_bytes(b"\xff\xfe")
    for command in (["diff", "a", "b"], ["rename", "a", "b"]):
        result = runner.invoke(app, [*command, "--mapping", str(path)])
        assert result.exit_code == 2 and "not UTF-8" in result.stderr, command
