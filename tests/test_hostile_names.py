"""Variable names are data: Rich markup, scope names that look like record keys, odd bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tfckpt.bundle.writer import BundleWriter
from tfckpt.cli import app
from tfckpt.dtypes import dtype_from_name

runner = CliRunner()
NAMES = ["emb[/red]/w", "x/[bold]y", "x/dtype", "x/shape", "x/size", "plain"]


@pytest.fixture()
def ckpt(tmp_path: Path) -> str:
    prefix = str(tmp_path / "odd" / "model.ckpt")
    with BundleWriter(prefix) as writer:
        for i, name in enumerate(NAMES):
            writer.add_array(name, np.full((2,), i, np.float32), dtype_from_name("float32"))
        writer.commit()
    return prefix


def test_names_print_literally_in_tables_and_trees(ckpt: str) -> None:
    for args in (["vars", ckpt], ["vars", ckpt, "--tree"], ["vars", ckpt, "--tree", "--stats"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        # The tree splits names at '/': "emb[/", "red]/", "w".
        for part in ("emb[/", "red]/", "[bold]y", "dtype", "shape", "size"):
            assert part in result.stdout, (args, part)
    tree = runner.invoke(app, ["vars", ckpt, "--tree"]).stdout
    assert "x/  4 vars, 8 params" in tree


def test_names_print_literally_in_diff_and_rename_plans(ckpt: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["diff", ckpt, ckpt, "--all"])
    assert result.exit_code == 0 and "emb[/red]/w" in result.stdout
    result = runner.invoke(app, ["rename", ckpt, str(tmp_path / "r"), "--sub", "^x/", "y/", "-n"])
    assert result.exit_code == 0 and "y/[bold]y" in result.stdout
    result = runner.invoke(app, ["vars", ckpt, "--show", "emb[/red]/w"])
    assert result.exit_code == 0 and "emb[/red]/w" in result.stdout
    records = json.loads(runner.invoke(app, ["vars", ckpt, "--json"]).stdout)["tensors"]
    assert sorted(r["name"] for r in records) == sorted(NAMES)
