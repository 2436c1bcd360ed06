"""Session fixtures: TensorFlow (skipped when absent) and the TF-made checkpoint fixtures."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from fixtures import Fixture, build_fixtures

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
