"""The ``--json`` contract: every command's document, pinned key by key (tests/golden/).

Scripts and CI parse these documents; a renamed or vanished key breaks them silently. The keys
of each document (nested objects and the items of lists included, values ignored) must equal
tests/golden/json_schema.json, and the README's "JSON output" table must list the same
top-level keys. After an intended change: ``TFCKPT_UPDATE_GOLDEN=1 pytest
tests/test_json_schema.py`` rewrites both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from clitools import run

from tfckpt import protos

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "json_schema.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- JSON -->", "<!-- /JSON -->"
UPDATE = bool(os.environ.get("TFCKPT_UPDATE_GOLDEN"))


def shape(value: Any) -> Any:
    """The keys of a JSON value: objects as {key: shape}, lists as [shape of the items merged],
    anything else as null."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                for k, v in shape(item).items():
                    merged[k] = merged.get(k) or v
        return [dict(sorted(merged.items()))] if merged else []
    return None


def _meta_graph(path: Path) -> Path:
    """A small MetaGraphDef built from protos (no TensorFlow): a variable, its initializer, a
    file read (what scan reports) and a Saver."""
    meta = protos.MetaGraphDef()
    meta.meta_info_def.tensorflow_version = "2.21.0"
    nodes = meta.graph_def.node
    nodes.add(name="dense/kernel", op="VariableV2")
    nodes.add(name="dense/kernel/Initializer/zeros", op="Const")
    nodes.add(
        name="dense/kernel/Assign",
        op="Assign",
        input=["dense/kernel", "dense/kernel/Initializer/zeros"],
    )
    nodes.add(name="filename", op="Const")
    nodes.add(name="read", op="ReadFile", input=["filename"])
    meta.saver_def.filename_tensor_name = "save/Const:0"
    meta.saver_def.version = 2
    path.write_bytes(meta.SerializeToString())
    return path


def _cases(native: Any, tmp: Path) -> dict[str, list[Any]]:
    tf1, tf2 = native("tf1"), native("tf2")
    out = tmp / "out"
    meta = _meta_graph(tmp / "model.meta")
    policy = tmp / "policy.toml"
    policy.write_text('deny_ops = ["ReadFile"]\nno_optimizer_state = true\n')
    return {
        "ls": ["ls", Path(tf1).parent],
        "vars": ["vars", tf1],
        "vars --tree": ["vars", tf1, "--tree"],
        "vars --stats": ["vars", tf1, "--stats"],
        "vars --show": ["vars", tf1, "--show", "dense/bias"],
        "graph": ["graph", meta],
        "graph --check": ["graph", meta, "--check", tf1],
        "diff": ["diff", tf1, tf2, "--all"],
        "verify": ["verify", tf1],
        "scan": ["scan", meta],
        "check": ["check", tf1, meta, "--policy", policy],
        "rename": ["rename", tf1, out / "r", "--add-prefix", "x/"],
        "prune": ["prune", tf1, out / "p", "--no-optimizer"],
        "merge": ["merge", f"{tf1}:a/", f"{tf2}:b/", "-o", out / "m"],
        "cast": ["cast", tf1, out / "c", "--dtype", "float16"],
        "export": ["export", tf1, out / "w.safetensors"],
        "import": ["import", out / "w.safetensors", out / "i", "--like", tf1],
        "presets": ["presets"],
        "convert-pbtxt": ["convert-pbtxt", meta, out / "model.pbtxt"],
        "error": ["vars", tmp / "no-such-checkpoint"],
    }


def _documents(native: Any, tmp: Path) -> dict[str, Any]:
    documents = {}
    for name, args in _cases(native, tmp).items():
        result = run(*args, "--json")
        assert result.exit_code in (0, 1, 2), (name, result.stderr)
        documents[name] = shape(json.loads(result.stdout))
    return documents


def _readme_table(golden: dict[str, Any]) -> str:
    lines = ["| command | top-level keys (after `kind`, `version`) |", "|---|---|"]
    for name, keys in golden.items():
        rest = [k for k in keys if k not in ("kind", "version")]
        lines.append(f"| `{name}` | {', '.join(f'`{k}`' for k in rest)} |")
    return "\n".join(lines)


def test_every_document_matches_its_golden_keys(native: Any, tmp_path: Path) -> None:
    documents = _documents(native, tmp_path)
    for name, document in documents.items():
        assert document.get("kind", "absent") is None and "version" in document, name
    if UPDATE:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(documents, indent=1) + "\n")
        text = README.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + _readme_table(documents) + "\n" + text[end:])
    golden = json.loads(GOLDEN.read_text())
    assert documents == golden


def test_the_readme_documents_the_same_keys() -> None:
    golden = json.loads(GOLDEN.read_text())
    text = README.read_text()
    assert _readme_table(golden) in text[text.index(BEGIN) : text.index(END)]


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"b": 1, "a": [{"x": 1}, {"y": {"z": 2}}]},
            {"a": [{"x": None, "y": {"z": None}}], "b": None},
        ),
        ([], []),
        ([1, 2], []),
    ],
)
def test_shape(value: Any, expected: Any) -> None:
    assert shape(value) == expected
