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


# ---- real servers on 127.0.0.1 for remote storage (tests/remote_servers.py) -----------------
@pytest.fixture(scope="session")
def s3() -> Any:
    """moto's S3 server with bucket ``ckpts``; the process environment points s3fs at it (through
    the counting forwarder ``s3.proxy``)."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (tfckpt[test])")
    pytest.importorskip("s3fs", reason="s3fs is not installed (tfckpt[s3])")
    from remote_servers import S3Server

    server = S3Server()
    patch = pytest.MonkeyPatch()
    for key, value in server.env().items():
        patch.setenv(key, value)
    server.client().create_bucket(Bucket="ckpts")
    yield server
    patch.undo()
    server.stop()


@pytest.fixture(scope="session")
def gcs() -> Any:
    """gcp-storage-emulator with bucket ``ckpts``; gcsfs pointed at it through ``gcs.proxy``."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed")
    pytest.importorskip("gcsfs", reason="gcsfs is not installed (tfckpt[gcs])")
    from remote_servers import GCSServer

    server = GCSServer("ckpts")
    patch = pytest.MonkeyPatch()
    for key, value in server.env().items():
        patch.setenv(key, value)
    yield server
    patch.undo()
    server.stop()


@pytest.fixture(scope="session")
def nfx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """TF-free twins of the TF-made fixtures: ``nfx[name]`` is a Fixture like ``fx[name]`` (same
    names, dtypes, shapes and layout; values of their own). See tests/native_fixtures.py."""
    from native_fixtures import NativeFixtures

    return NativeFixtures(tmp_path_factory.mktemp("twins"))


@pytest.fixture(params=["native", "tf"])
def any_fx(request: pytest.FixtureRequest) -> Any:
    """``nfx``, and ``fx`` too when TensorFlow is installed: the test runs once per origin."""
    return request.getfixturevalue("nfx" if request.param == "native" else "fx")


@pytest.fixture(scope="session")
def hf_nfx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Twins of ``hf_fx`` written by tfckpt's own writer (no TF): tests/native_fixtures.py."""
    from native_fixtures import build_hf_twins

    return build_hf_twins(tmp_path_factory.mktemp("hf_twins"))
