"""Session fixtures: TensorFlow (skipped when absent) and the TF-made checkpoint fixtures."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from fixtures import Fixture, HfFixture, build_fixtures, build_hf_checkpoints

HAVE_TF = importlib.util.find_spec("tensorflow") is not None
# Bugs keep their traceback in tests (the CLI otherwise turns them into one line, exit 2).
os.environ.setdefault("TFCKPT_DEBUG", "1")


@pytest.fixture(scope="session")
def tf() -> Any:
    if not HAVE_TF:
        pytest.skip("TensorFlow is not installed")
    from tfckpt.tf_engine import import_tf

    return import_tf()


@pytest.fixture(scope="session")
def fx() -> dict[str, Fixture]:
    if not HAVE_TF:
        pytest.skip("TensorFlow is not installed (needed to make the fixtures)")
    return build_fixtures()


@pytest.fixture(scope="session")
def hf_fx() -> dict[str, HfFixture]:
    """Checkpoints in the BERT / ALBERT / ELECTRA / T5 releases' layouts, made by TensorFlow."""
    if not HAVE_TF:
        pytest.skip("TensorFlow is not installed (needed to make the fixtures)")
    return build_hf_checkpoints()


@pytest.fixture(scope="session")
def native(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``native(kind)`` -> the prefix of a checkpoint written by tfckpt's own writer (no TF);
    built once per session per kind. See tests/native_fixtures.py for the kinds."""
    from native_fixtures import NATIVE

    root = tmp_path_factory.mktemp("native")
    built: dict[str, Any] = {}

    def build(kind: str) -> Any:
        if kind not in built:
            prefix = root / kind / "model.ckpt-10"
            NATIVE[kind](prefix)
            built[kind] = prefix
        return built[kind]

    return build
