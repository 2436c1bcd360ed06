"""The public Python API: every command as a function, TF's reader without TF, validation before
writing, and the lazy top-level namespace."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import NoChange, OutputExists, RenameConflict, UsageError, VariableNotFound

from fixtures import Fixture, corpus_checkpoints


def test_the_public_namespace_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    heavy = "('numpy', 'google.protobuf')"
    code = f"import sys, tfckpt; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    lazy = set(tfckpt._LAZY)
    assert set(tfckpt.__all__) == lazy | {"TfckptError", "__version__"}
    for name in lazy:
        assert getattr(tfckpt, name) is not None, name


@pytest.mark.parametrize(
    "name",
    [
        "open",
        "load_checkpoint",
        "list_checkpoints",
        "rename",
        "prune",
        "merge",
        "cast",
        "diff",
        "verify",
        "repair",
    ],
)
def test_every_api_function_is_documented_with_an_example(name: str) -> None:
    function = getattr(tfckpt, name)
    doc = inspect.getdoc(function) or ""
    assert ">>>" in doc, name
    # Options are keyword-only: a script reads as the command line does.
    params = inspect.signature(function).parameters.values()
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 2, (name, positional)


def test_open_is_a_read_only_lazy_mapping(native: Any) -> None:
    prefix = native("tf1")
    with tfckpt.open(prefix) as ckpt:
        names = [info.name for info in ckpt.tensors()]
        assert list(ckpt) == names == sorted(names) and len(ckpt) == len(names)
        assert "dense/kernel" in ckpt and "no/such" not in ckpt and 3 not in ckpt
        assert ckpt["dense/kernel"].shape == (4, 3) == ckpt.info("dense/kernel").shape
        assert ckpt.get("no/such") is None
        with pytest.raises(KeyError):
            ckpt["no/such"]
        with pytest.raises(VariableNotFound, match="no variable named 'no/such'"):
            ckpt["no/such"]
        assert set(dict(ckpt.items())) == set(names)
    assert tfckpt.open_checkpoint is not None


def test_open_accepts_tf2_object_paths(native: Any) -> None:
    with tfckpt.open(native("tf2")) as ckpt:
        key = "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"
        assert key in ckpt and "model/dense/kernel" in ckpt
        assert np.array_equal(ckpt["model/dense/kernel"], ckpt[key])


def _tf_reader_view(reader: Any) -> dict[str, Any]:
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return {
        "shapes": {k: list(v) for k, v in shapes.items()},
        "dtypes": {k: (v.name, v) for k, v in dtypes.items()},
        "debug": reader.debug_string(),
    }


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bytes) or isinstance(b, bytes):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and list(a.reshape(-1)) == list(b.reshape(-1))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _compare_with_tf(prefix: Path | str, tf: Any) -> None:
    ours = tfckpt.load_checkpoint(prefix)
    theirs = tf.train.load_checkpoint(str(prefix))
    mine, tfs = _tf_reader_view(ours), _tf_reader_view(theirs)
    assert mine["shapes"] == tfs["shapes"]
    assert {k: v[0] for k, v in mine["dtypes"].items()} == {
        k: v[0] for k, v in tfs["dtypes"].items()
    }
    for key, (name, tf_dtype) in tfs["dtypes"].items():
        if name != "variant":  # TF's own DType has no numpy type for variants
            mine_type = mine["dtypes"][key][1].as_numpy_dtype
            assert np.dtype(mine_type) == np.dtype(tf_dtype.as_numpy_dtype), key
    if ours._ckpt.format == "V2":
        assert mine["debug"] == tfs["debug"]
    else:  # TF lists V1 tensors in the order of an internal map
        assert sorted(mine["debug"].splitlines()) == sorted(tfs["debug"].splitlines())
    for key, (dtype_name, _) in tfs["dtypes"].items():
        assert ours.has_tensor(key) and theirs.has_tensor(key)
        if dtype_name == "variant":
            continue
        mine_value, tf_value = ours.get_tensor(key), theirs.get_tensor(key)
        assert type(mine_value) is type(tf_value), key
        assert _same_value(mine_value, tf_value), key
    assert not ours.has_tensor("no/such/tensor")
    with pytest.raises(VariableNotFound):
        ours.get_tensor("no/such/tensor")


@pytest.mark.tf
def test_load_checkpoint_equals_tf_reader_on_every_fixture(fx: dict[str, Fixture], tf: Any) -> None:
    compared = 0
    for fixture in fx.values():
        if not fixture.intact:
            continue
        path = fixture.path
        if fixture.kind == "savedmodel":
            path = path / "variables" / "variables"
        _compare_with_tf(path, tf)
        compared += 1
    assert compared >= 8


@pytest.mark.tf
@pytest.mark.parametrize("kind", ["tf1", "sharded", "partitioned", "dtypes", "tf2"])
def test_load_checkpoint_equals_tf_reader_on_native_fixtures(
    kind: str, native: Any, tf: Any
) -> None:
    _compare_with_tf(native(kind), tf)


@pytest.mark.tf
@pytest.mark.parametrize("prefix", corpus_checkpoints(), ids=lambda p: p.name)
def test_load_checkpoint_equals_tf_reader_on_the_corpus(prefix: Path, tf: Any) -> None:
    _compare_with_tf(prefix, tf)


def test_a_conflicting_rename_raises_and_writes_nothing(native: Any, tmp_path: Path) -> None:
    out = tmp_path / "out" / "ckpt"
    with pytest.raises(RenameConflict, match="collides with an unchanged name") as info:
        tfckpt.rename(native("tf1"), out, sub=[("/Adam(_1)?$", "")])
    assert "'dense/kernel/Adam'" in str(info.value)
    with pytest.raises(RenameConflict, match="would all be renamed to"):
        tfckpt.rename(native("tf1"), out, mapping={"dense/bias": "x", "dense/kernel": "x"})
    with pytest.raises(NoChange, match="closest names: 'dense/'"):
        tfckpt.rename(native("tf1"), out, sub=[("^dnese/", "net/")])
    with pytest.raises(UsageError, match="give at least one rule"):
        tfckpt.rename(native("tf1"), out)
    assert not out.parent.exists()


def test_rename_prune_merge_cast_from_python(native: Any, tmp_path: Path) -> None:
    src = native("tf1")
    result = tfckpt.rename(src, tmp_path / "r", add_prefix="pre/")
    assert result.written is not None and result.written.tensors == 15
    with tfckpt.open(tmp_path / "r") as ckpt:
        assert "pre/dense/kernel" in ckpt
    with pytest.raises(OutputExists) as info:
        tfckpt.rename(src, tmp_path / "r", add_prefix="pre/")
    assert info.value.fix == "force" and "--force" not in str(info.value)
    pruned = tfckpt.prune(src, tmp_path / "p", optimizer=True)
    assert sorted(pruned.plan.keep) == [
        "dense/bias",
        "dense/kernel",
        "dense_1/bias",
        "dense_1/kernel",
        "global_step",
    ]
    merged = tfckpt.merge([(src, "a/"), (tmp_path / "p", "b")], tmp_path / "m")
    assert "scope 'b' taken as the scope 'b/'" in " ".join(merged.notes)
    with tfckpt.open(tmp_path / "m") as ckpt:
        assert "a/dense/kernel/Adam" in ckpt and "b/dense/kernel" in ckpt
        assert np.array_equal(ckpt["b/dense/kernel"], ckpt["a/dense/kernel"])
    cast = tfckpt.cast(src, tmp_path / "c", dtype="float16", regex=["kernel$"])
    with tfckpt.open(tmp_path / "c") as ckpt:
        assert ckpt.info("dense/kernel").dtype.name == "float16"
        assert ckpt.info("dense/bias").dtype.name == "float32"
    assert cast.written is not None


def test_dry_runs_write_nothing_and_keep_the_same_keys(native: Any, tmp_path: Path) -> None:
    planned = tfckpt.prune(native("tf1"), tmp_path / "p", drop=["^dense_1/"], dry_run=True)
    assert planned.written is None and not (tmp_path / "p.index").exists()
    done = tfckpt.prune(native("tf1"), tmp_path / "p", drop=["^dense_1/"])
    assert set(planned.to_dict()) == set(done.to_dict())
    assert planned.to_dict()["written"] is False and done.to_dict()["written"] is True


def test_force_never_overwrites_an_input(native: Any, tmp_path: Path) -> None:
    src = tmp_path / "a" / "model.ckpt"
    tfckpt.rename(native("tf1"), src, add_prefix="x/")
    before = (tmp_path / "a" / "model.ckpt.index").read_bytes()
    with pytest.raises(UsageError, match="is the source checkpoint"):
        tfckpt.merge([src, native("tf2")], src, force=True)
    with pytest.raises(UsageError, match="is the source checkpoint"):
        tfckpt.prune(src, os.path.join(tmp_path, "a", "model.ckpt.index"), drop=["x"], force=True)
    assert (tmp_path / "a" / "model.ckpt.index").read_bytes() == before


def test_diff_and_verify_reports(native: Any, tmp_path: Path) -> None:
    src = native("tf1")
    assert tfckpt.diff(src, src).ok
    tfckpt.rename(src, tmp_path / "r", sub=[("^dense/", "d/")])
    report = tfckpt.diff(src, tmp_path / "r")
    assert not report.ok and report.counts["only_a"] == 6 and report.counts["only_b"] == 6
    assert tfckpt.diff(src, tmp_path / "r", sub=[("^dense/", "d/")]).ok
    assert tfckpt.verify(src).ok
    data = tmp_path / "r.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF
    data.write_bytes(bytes(raw))
    bad = tfckpt.verify(tmp_path / "r")
    assert not bad.ok and any(p.check == "crc" for p in bad.problems)


def test_list_checkpoints_and_repair(native: Any, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(native("tf1")).parent, run)
    found = tfckpt.list_checkpoints(run)
    assert [f.path for f in found if f.latest] == [str(run / "model.ckpt-10")]
    (run / "checkpoint").write_text(
        'model_checkpoint_path: "/old/place/model.ckpt-10"\n'
        'all_model_checkpoint_paths: "/old/place/model.ckpt-10"\n'
    )
    planned = tfckpt.repair(run, dry_run=True)
    assert planned.plan.changed and not planned.written
    assert tfckpt.repair(run).written
    assert 'model_checkpoint_path: "model.ckpt-10"' in (run / "checkpoint").read_text()


def test_match_and_regex_select_what_rename_and_prune_work_on(native: Any, tmp_path: Path) -> None:
    src = native("tf1")
    renamed = tfckpt.rename(src, tmp_path / "r", add_prefix="x/", match=["dense_1/*"])
    assert set(renamed.plan.renames) == {n for n in tfckpt.open(src) if n.startswith("dense_1/")}
    kept = tfckpt.prune(src, tmp_path / "p", regex=["^dense/"], keep=["global_step"])
    assert sorted(kept.plan.keep) == sorted(
        [n for n in tfckpt.open(src) if n.startswith("dense/")] + ["global_step"]
    )
    with tfckpt.open(native("tf2")) as ckpt:  # TF2: globs see object paths too
        planned = tfckpt.prune(ckpt.prefix, tmp_path / "q", match=["model/dense/*"], dry_run=True)
    assert all(
        "model/dense/" in n or n == "_CHECKPOINTABLE_OBJECT_GRAPH" for n in planned.plan.keep
    )
    with pytest.raises(UsageError, match="lists of patterns"):
        tfckpt.prune(src, tmp_path / "z", match="dense/*")  # type: ignore[arg-type]
