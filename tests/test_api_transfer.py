"""``tfckpt.export`` and ``tfckpt.import_weights``: the library behind ``export`` / ``import``,
validating its own inputs, reporting progress through the protocol, writing nothing on error."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import CheckFailed, MismatchError, OutputExists, RenameConflict, UsageError


class Recorder:
    """A ``tfckpt.progress.Progress`` that remembers what it was told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int]] = []
        self.done = 0

    def start(self, description: str, total: int) -> None:
        self.phases.append((description, total))

    def advance(self, nbytes: int) -> None:
        self.done += nbytes

    def describe(self, text: str) -> None:
        pass


@pytest.mark.parametrize("name", ["export", "import_weights"])
def test_documented_with_an_example_and_keyword_options(name: str) -> None:
    function = getattr(tfckpt, name)
    assert ">>>" in (inspect.getdoc(function) or "")
    params = inspect.signature(function).parameters.values()
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == (["src", "out"] if name == "export" else ["src", "dst"])
    assert "progress" in {p.name for p in params}


def test_export_and_import_round_trip_with_progress(native: Any, tmp_path: Path) -> None:
    src = native("tf1")
    progress = Recorder()
    result = tfckpt.export(src, tmp_path / "w.safetensors", sep=".", progress=progress)
    assert result.written and result.checked and result.output == str(tmp_path / "w.safetensors")
    total = result.plan.total_bytes
    assert progress.phases == [("export", 2 * total)] and progress.done == 2 * total
    assert result.size == (tmp_path / "w.safetensors").stat().st_size
    back = tfckpt.import_weights(
        tmp_path / "w.safetensors", tmp_path / "b" / "ckpt", sep=".", like=src
    )
    assert back.ok and back.written and back.plan.like.matched == 15
    with tfckpt.open(src) as a, tfckpt.open(tmp_path / "b" / "ckpt") as b:
        for name in a:
            assert a[name].tobytes() == b[name].tobytes(), name


def test_dry_runs_write_nothing_and_keep_the_same_keys(native: Any, tmp_path: Path) -> None:
    planned = tfckpt.export(native("tf1"), tmp_path / "w.npz", dry_run=True)
    assert not planned.written and list(tmp_path.iterdir()) == []
    done = tfckpt.export(native("tf1"), tmp_path / "w.npz")
    assert set(planned.to_dict()) == set(done.to_dict())
    imported = tfckpt.import_weights(tmp_path / "w.npz", tmp_path / "c", dry_run=True)
    assert not imported.written and not (tmp_path / "c.index").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "onnx"}, "choose safetensors, npz or npy"),
        ({"match": "dense*"}, "expected a list of patterns"),
        ({"regex": ["("]}, "bad regex"),
        ({"metadata": {"a": 1}}, "metadata"),
        ({"metadata": {"tfckpt.dtypes": "x"}}, "reserved"),
        ({"sub": [("(", "x")]}, "bad sub"),
    ],
)
def test_export_validates_its_options(
    native: Any, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        tfckpt.export(native("tf1"), tmp_path / "w.safetensors", **kwargs)
    assert "--" not in str(info.value)  # library messages name no CLI flags
    assert list(tmp_path.iterdir()) == []


def test_export_errors_name_no_cli_flags(native: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        tfckpt.export(native("tf1"), tmp_path / "w.bin")
    assert info.value.fix == "format" and "--to" not in str(info.value)
    tfckpt.export(native("tf1"), tmp_path / "w.npz")
    with pytest.raises(OutputExists) as exists:
        tfckpt.export(native("tf1"), tmp_path / "w.npz")
    assert exists.value.fix == "force" and "--force" not in str(exists.value)
    with pytest.raises(RenameConflict):
        tfckpt.export(native("tf1"), tmp_path / "x.npz", sub=[(".*", "same")])
    with pytest.raises(tfckpt.TfckptError) as strict:
        tfckpt.export(native("dtypes"), tmp_path / "s.safetensors", strict=True)
    assert strict.value.fix == "strict" and not (tmp_path / "s.safetensors").exists()


def test_import_like_mismatch_raises_with_the_report(native: Any, tmp_path: Path) -> None:
    tfckpt.export(native("tf1"), tmp_path / "w.safetensors", regex=["^dense/"])
    out = tmp_path / "o" / "ckpt"
    with pytest.raises(MismatchError) as info:
        tfckpt.import_weights(tmp_path / "w.safetensors", out, like=native("tf1"))
    assert isinstance(info.value, CheckFailed) and info.value.exit_code == 1
    result = info.value.result
    assert not result.ok and "dense_1/kernel" in result.plan.like.missing
    assert not out.parent.exists()
    planned = tfckpt.import_weights(
        tmp_path / "w.safetensors", out, like=native("tf1"), dry_run=True
    )
    assert not planned.ok and planned.to_dict()["ok"] is False
    allowed = tfckpt.import_weights(
        tmp_path / "w.safetensors", out, like=native("tf1"), allow_missing=True
    )
    assert allowed.ok and allowed.written
    with pytest.raises(UsageError, match="allow_missing goes with like"):
        tfckpt.import_weights(tmp_path / "w.safetensors", tmp_path / "z", allow_missing=True)


def test_import_values_from_foreign_numpy_files(tmp_path: Path) -> None:
    arrays = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": np.ones(4, np.float64)}
    np.savez(tmp_path / "w.npz", **arrays)
    result = tfckpt.import_weights(tmp_path / "w.npz", tmp_path / "ckpt")
    assert result.written and [i.name for i in result.plan.items] == ["a", "b"]
    with tfckpt.open(tmp_path / "ckpt") as ckpt:
        for name, value in arrays.items():
            np.testing.assert_array_equal(ckpt[name], value)
