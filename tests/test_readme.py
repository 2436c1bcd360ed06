"""The README's Python examples run, in order, on the demo checkpoint (as a user would paste
them): a stale example is a failing test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API") : readme.index("## Tour")]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_readme_has_python_examples() -> None:
    blocks = python_examples()
    assert len(blocks) >= 5
    joined = "\n".join(blocks)
    for function in ("open", "load_checkpoint", "rename", "prune", "merge", "cast", "diff",
                     "verify", "list_checkpoints"):  # fmt: skip
        assert f"tfckpt.{function}(" in joined, function


@pytest.mark.tf
def test_the_readme_python_examples_run(tmp_path: Path, tf: Any, monkeypatch: Any) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_demo.py"), str(tmp_path / "demo")],
        check=True,
        env=env,
        capture_output=True,
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for i, block in enumerate(python_examples()):
        try:
            exec(compile(block, f"README.md python example {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"README python example {i + 1} failed: {exc!r}\n{block}")
    assert (tmp_path / "out" / "merged" / "model.ckpt.index").exists()
