"""The native reader against TensorFlow: names, dtypes, shapes and values, bit for bit.

Every fixture written by TensorFlow (examples/make_fixtures.py) and every checkpoint in
../shared/corpus is read both ways. Also the bad-input contract: one clear error per problem
(on a corpus checkpoint and on one written by tfckpt, so it also runs without TF or corpus).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_fixtures import NATIVE

from tfckpt.bundle.checkpoint import open_checkpoint, resolve_prefix
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint, UnsupportedCheckpoint

from fixtures import CORPUS, corpus_checkpoints


def same_value(native: np.ndarray, expected: object) -> bool:
    """Bit-identical for numeric tensors, element-wise equal bytes for strings."""
    if isinstance(expected, bytes):  # TF returns a scalar string tensor as bytes
        return native.shape == () and native.reshape(-1)[0] == expected
    exp = np.asarray(expected)
    if native.shape != exp.shape:
        return False
    if native.dtype == object or exp.dtype == object:
        return [bytes(x) for x in native.reshape(-1)] == [bytes(x) for x in exp.reshape(-1)]
    if native.dtype.itemsize != exp.dtype.itemsize:
        return False
    return native.tobytes() == exp.tobytes()


def assert_matches_tf(path: str) -> int:
    from tfckpt.tf_engine.checkpoint import list_variables, read_tensor

    path = resolve_prefix(path)[0]  # TF itself takes prefixes, not SavedModel directories
    expected = list_variables(path)
    with open_checkpoint(path) as ckpt:
        infos = ckpt.tensors()
        assert [i.name for i in infos] == [v.name for v in expected]
        for info, tf_info in zip(infos, expected):
            assert info.dtype.name == tf_info.dtype, info.name
            assert info.shape == tuple(tf_info.shape), info.name
            if info.dtype.name == "variant":
                # Neither side turns variants into numpy; both read and check their bytes.
                ckpt.bundle.check_crc(ckpt.entry(info.name))
                with pytest.raises(UnsupportedCheckpoint, match="variant tensors are opaque"):
                    ckpt.read(info.name)
                continue
            value = ckpt.read(info.name)
            assert same_value(value, read_tensor(path, info.name)), info.name
    return len(infos)


CORPUS_CHECKPOINTS = corpus_checkpoints()


@pytest.mark.tf
@pytest.mark.parametrize(
    "prefix", CORPUS_CHECKPOINTS, ids=[str(p.relative_to(CORPUS)) for p in CORPUS_CHECKPOINTS]
)
def test_corpus_checkpoint_matches_tensorflow(prefix: Path, tf: object) -> None:
    assert assert_matches_tf(str(prefix)) > 0


def _fixture_prefixes(fx: dict) -> list[tuple[str, str]]:
    out = []
    for name, fixture in fx.items():
        if not fixture.intact or fixture.path is None:
            continue
        out.append((name, str(fixture.path)))
    return out


@pytest.mark.tf
def test_every_fixture_matches_tensorflow(fx: dict, tf: object) -> None:
    checked = {}
    for name, path in _fixture_prefixes(fx):
        checked[name] = assert_matches_tf(path)
    for must in (
        "tf1_adam",
        "sharded",
        "partitioned",
        "dtypes",
        "tf2_keras",
        "tf2_iterator",
        "savedmodel_tf2",
    ):
        assert checked.get(must, 0) > 0, must


def test_partitioned_slices_are_hidden_and_assembled(nfx: Any) -> None:
    with open_checkpoint(nfx["partitioned"].path) as ckpt:
        infos = ckpt.tensors()
        assert all(not i.name.startswith("\x00") for i in infos)
        partitioned = [i for i in infos if i.num_slices > 1]
        assert partitioned, "the fixture must hold partitioned variables"
        for info in partitioned:
            assert ckpt.read(info.name).shape == info.shape


def test_sharded_checkpoint_has_two_shards(nfx: Any) -> None:
    with open_checkpoint(nfx["sharded"].path) as ckpt:
        assert ckpt.num_shards == 2
        assert {e.shard_id for e in ckpt.bundle.entries.values()} == {0, 1}


# ---- path resolution -------------------------------------------------------------------------
def test_resolves_every_kind_of_path(tmp_path: Path) -> None:
    src = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
    if not src.exists():
        pytest.skip("corpus not present")
    prefix = str(src / "model.ckpt-1000")
    assert resolve_prefix(str(src))[0] == prefix  # latest per the state file
    for p in (prefix, prefix + ".index", prefix + ".meta", prefix + ".data-00000-of-00001"):
        assert resolve_prefix(p) == (prefix, "V2")
    saved = CORPUS / "tensorflow__rust/examples/regression_savedmodel"
    assert resolve_prefix(str(saved))[0] == str(saved / "variables" / "variables")
    assert resolve_prefix(str(saved / "saved_model.pb"))[0] == str(saved / "variables/variables")
    # Without a state file: the newest prefix.
    for name in ("model.ckpt-0", "model.ckpt-999"):
        for f in src.glob(name + ".*"):
            shutil.copy(f, tmp_path / f.name)
    os.utime(tmp_path / "model.ckpt-0.index", (1, 1))
    assert resolve_prefix(str(tmp_path))[0] == str(tmp_path / "model.ckpt-999")


def test_stale_state_file_is_reported_not_fatal() -> None:
    d = (
        CORPUS
        / "tensorflow__serving/tensorflow_serving/servables/tensorflow/testdata"
        / "bad_half_plus_two/00000123"
    )
    if not d.exists():
        pytest.skip("corpus not present")
    with open_checkpoint(str(d)) as ckpt:
        assert ckpt.format == "V1"
        assert any("does not exist" in n for n in ckpt.notes)
        assert len(ckpt.tensors()) == 2


def test_savedmodel_without_variables_is_a_clear_error() -> None:
    d = CORPUS / "tensorflow__serving/tensorflow_serving/batching/testdata/matrix_half_plus_two/1"
    if not d.exists():
        pytest.skip("corpus not present")
    with pytest.raises(CheckpointNotFound, match="no variables"):
        open_checkpoint(str(d))


# ---- bad input ---------------------------------------------------------------------------------
@pytest.fixture(params=["corpus", "native"])
def ckpt_copy(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of a corpus checkpoint (an Estimator's), or of the ``many`` native kind (2,000
    tensors, 32 KB of data) under the same name."""
    if request.param == "native":
        prefix = tmp_path / "model.ckpt-1000"
        NATIVE["many"](prefix)
        return prefix
    src = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
    if not src.exists():
        pytest.skip("corpus not present")
    for f in src.glob("model.ckpt-1000.*"):
        if not f.name.endswith(".meta"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path / "model.ckpt-1000"


def _read_all(path: Path) -> None:
    with open_checkpoint(str(path)) as ckpt:
        for info in ckpt.tensors():
            ckpt.read(info.name)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="no such file"):
        open_checkpoint(str(tmp_path / "nope"))


def test_directory_without_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(CheckpointNotFound, match="no checkpoint in this directory"):
        open_checkpoint(str(tmp_path))


def test_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\x00" * 100)
    with pytest.raises(CorruptCheckpoint, match="not a checkpoint"):
        open_checkpoint(str(f))


def test_truncated_index(ckpt_copy: Path) -> None:
    index = Path(str(ckpt_copy) + ".index")
    index.write_bytes(index.read_bytes()[:-20])
    with pytest.raises(CorruptCheckpoint, match=r"model\.ckpt-1000\.index"):
        open_checkpoint(str(ckpt_copy))


def test_flipped_byte_in_index(ckpt_copy: Path) -> None:
    index = Path(str(ckpt_copy) + ".index")
    data = bytearray(index.read_bytes())
    data[40] ^= 0x01
    index.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="checksum mismatch"):
        open_checkpoint(str(ckpt_copy))


def test_flipped_byte_in_tensor(ckpt_copy: Path) -> None:
    data_file = Path(str(ckpt_copy) + ".data-00000-of-00001")
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0x10
    data_file.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match=r"checksum mismatch for '.+'"):
        _read_all(ckpt_copy)


def test_missing_data_shard(ckpt_copy: Path) -> None:
    Path(str(ckpt_copy) + ".data-00000-of-00001").unlink()
    with pytest.raises(CorruptCheckpoint, match="data shard is missing"):
        _read_all(ckpt_copy)


def test_truncated_data_shard(ckpt_copy: Path) -> None:
    data_file = Path(str(ckpt_copy) + ".data-00000-of-00001")
    data_file.write_bytes(data_file.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpoint, match="truncated"):
        _read_all(ckpt_copy)


def test_big_endian_header_is_unsupported(tmp_path: Path) -> None:
    from tfckpt import protos
    from tfckpt.bundle.table import TableWriter

    header = protos.BundleHeaderProto(num_shards=1, endianness=1)
    with open(tmp_path / "be.index", "wb") as f:
        writer = TableWriter(f)
        writer.add(b"", header.SerializeToString())
        writer.finish()
    with pytest.raises(UnsupportedCheckpoint, match="big-endian"):
        open_checkpoint(str(tmp_path / "be"))


def test_newest_checkpoint_breaks_mtime_ties_by_step(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    for step in (999, 1000):
        for f in src.parent.glob(src.name + ".*"):
            target = tmp_path / f.name.replace(src.name, f"model.ckpt-{step}")
            shutil.copy(f, target)
            os.utime(target, (1_700_000_000, 1_700_000_000))
    with open_checkpoint(str(tmp_path)) as ckpt:
        assert ckpt.prefix == str(tmp_path / "model.ckpt-1000")
