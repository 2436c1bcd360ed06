"""Session fixtures: TensorFlow (skipped when absent) and the TF-made checkpoint fixtures."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from fixtures import Fixture, build_fixtures

HAVE_TF = importlib.util.find_spec("tensorflow") is not None


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
