"""The TF-free fixtures read back as written, and (when TF is installed) TF reads them the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_fixtures import NATIVE

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_native_fixture_reads_back(kind: str, tmp_path: Path) -> None:
    prefix = tmp_path / kind / "model.ckpt-10"
    values = NATIVE[kind](prefix)
    with open_checkpoint(prefix) as ckpt:
        assert {i.name for i in ckpt.tensors()} == set(values)
        for name, value in values.items():
            got = ckpt.read(name)
            assert got.shape == value.shape, name
            if value.dtype == object:
                assert list(got.reshape(-1)) == list(value.reshape(-1)), name
            else:
                assert got.tobytes() == np.ascontiguousarray(value).tobytes(), name
    if kind == "sharded":
        assert ckpt.num_shards == 2


@pytest.mark.tf
@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_tensorflow_reads_native_fixtures_the_same(kind: str, tmp_path: Path, tf: Any) -> None:
    prefix = tmp_path / kind / "model.ckpt-10"
    values = NATIVE[kind](prefix)
    reader = tf.train.load_checkpoint(str(prefix))
    assert set(reader.get_variable_to_shape_map()) == set(values)
    for name, value in values.items():
        if name == OBJECT_GRAPH_KEY:
            continue
        got = reader.get_tensor(name)
        if value.dtype == object:
            assert list(np.asarray(got).reshape(-1)) == list(value.reshape(-1)), name
        else:
            assert np.asarray(got).tobytes() == np.ascontiguousarray(value).tobytes(), name
    if kind == "tf2":
        model = tf.Module()
        model.dense = tf.Module()
        model.dense.kernel = tf.Variable(tf.zeros((4, 3)))
        model.dense.bias = tf.Variable(tf.zeros(3))
        model.out = tf.Module()
        model.out.kernel = tf.Variable(tf.zeros((3, 1)))
        tf.train.Checkpoint(model=model).restore(str(prefix)).expect_partial()
        assert np.array_equal(
            model.dense.kernel.numpy(), values["model/dense/kernel" + "/.ATTRIBUTES/VARIABLE_VALUE"]
        )
