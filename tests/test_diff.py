"""``tfckpt diff``: categories, tolerances, NaN, renames, formats, exit codes and JSON.

The checkpoints compared are the TF-free twin of ``tf1_adam`` and copies saved by tfckpt's own
writer (``save_native``), so these tests run without TensorFlow; the TF engine's agreement and
the comparisons across formats use TF-made checkpoints and TF's writer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import run
from native_fixtures import _write_v1, fixtures_of
from tfsave import native_values, save_native, save_with_tf, tf_values

from fixtures import Fixture


def diff_json(*args: Any) -> tuple[int, dict[str, Any]]:
    result = run("diff", *args, "--json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["status"] for v in report["variables"]}


@pytest.fixture
def adam(nfx: Any) -> str:
    return str(nfx["tf1_adam"].path)


def variants(adam: str, tmp_path: Path, read: Any, save: Any) -> Any:
    """``make(drop=(), **changes) -> prefix``: a modified copy of ``adam`` saved by ``save``
    (``a__b=value`` sets tensor ``a/b``); ``make.base`` holds ``adam``'s values."""
    base = read(adam)

    def make(drop: tuple[str, ...] = (), **changes: Any) -> str:
        values = {k: v for k, v in base.items() if k not in drop}
        for key, value in changes.items():
            values[key.replace("__", "/")] = value
        return save(str(tmp_path / f"v{len(list(tmp_path.iterdir()))}"), values)

    make.base = base  # type: ignore[attr-defined]
    return make


@pytest.fixture
def variant(adam: str, tmp_path: Path) -> Any:
    """Save a modified copy of the tf1_adam twin with tfckpt's writer."""
    return variants(adam, tmp_path, native_values, save_native)


def test_identical_copy_is_exit_0(adam: str, tmp_path: Path) -> None:
    for f in Path(adam).parent.glob(Path(adam).name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    code, report = diff_json(adam, tmp_path / Path(adam).name)
    assert code == 0
    assert report["summary"]["equal"] and report["summary"]["same"] == 15
    assert report["variables"] == []  # identical ones only with --all
    code, report = diff_json(adam, tmp_path / Path(adam).name, "--all")
    assert all(v["identical_bytes"] for v in report["variables"])


def test_perturbed_weight_and_tolerance(adam: str, variant: Any) -> None:
    kernel = variant.base["model/dense0/kernel"].copy()
    kernel[1, 2] += 1e-3
    other = variant(model__dense0__kernel=kernel)
    code, report = diff_json(adam, other)
    assert code == 1
    changed = [v for v in report["variables"] if v["status"] != "same"]
    assert [v["name"] for v in changed] == ["model/dense0/kernel"]
    v = changed[0]
    assert v["n_diff"] == 1 and v["n_outside"] == 1
    assert v["max_abs"] == pytest.approx(1e-3, rel=1e-3)
    assert v["frac_diff"] == pytest.approx(1 / kernel.size)
    assert run("diff", adam, other, "--atol", "1e-2").exit_code == 0
    assert run("diff", adam, other, "--rtol", "10").exit_code == 0
    assert run("diff", adam, other, "--atol", "1e-5").exit_code == 1


def test_added_removed_reshaped_retyped(adam: str, variant: Any) -> None:
    base = variant.base
    other = variant(
        drop=("beta1_power",),
        extra=np.ones(3, np.float32),
        model__dense1__bias=base["model/dense1/bias"].astype(np.float64),
        model__dense1__kernel=base["model/dense1/kernel"].reshape(1, -1),
    )
    code, report = diff_json(adam, other)
    assert code == 1
    s = statuses(report)
    assert s["beta1_power"] == "only_a"
    assert s["extra"] == "only_b"
    assert s["model/dense1/bias"] == "dtype"
    assert s["model/dense1/kernel"] == "shape"
    summary = report["summary"]
    assert (summary["only_a"], summary["only_b"], summary["dtype"], summary["shape"]) == (
        1,
        1,
        1,
        1,
    )
    # --names-only sees the same structural differences without reading values.
    code, names = diff_json(adam, other, "--names-only")
    assert statuses(names) == s


def test_nan_handling(tmp_path: Path) -> None:
    a = save_native(str(tmp_path / "a"), {"w": np.array([1.0, np.nan, 3.0], np.float32)})
    b = save_native(str(tmp_path / "b"), {"w": np.array([1.0, np.nan, 3.0], np.float32)})
    c = save_native(str(tmp_path / "c"), {"w": np.array([1.0, 2.0, 3.0], np.float32)})
    # Same bytes: equal even without --equal-nan (bit-identical tensors are equal).
    assert run("diff", a, b).exit_code == 0
    code, report = diff_json(a, c, "--equal-nan")
    assert code == 1 and report["variables"][0]["n_diff"] == 1
    # NaN in both but different payload bits: only --equal-nan makes them equal.
    d = save_native(str(tmp_path / "d"), {"w": np.array([1.0, np.nan, 3.0], np.float32)})
    e_values = np.array([1.0, 0.0, 3.0], np.float32)
    e_values.view(np.uint32)[1] = 0x7FC00001  # another NaN payload
    e = save_native(str(tmp_path / "e"), {"w": e_values})
    assert run("diff", d, e).exit_code == 1
    assert run("diff", d, e, "--equal-nan").exit_code == 0


def test_strings_and_bools_compare_exactly(tmp_path: Path) -> None:
    a = save_native(
        str(tmp_path / "a"), {"s": np.array([b"x", b"y"], object), "b": np.array([True, False])}
    )
    b = save_native(
        str(tmp_path / "b"), {"s": np.array([b"x", b"z"], object), "b": np.array([True, True])}
    )
    code, report = diff_json(a, b, "--atol", "100")
    assert code == 1
    assert statuses(report) == {"b": "values", "s": "values"}
    assert all(v["max_abs"] is None and v["n_diff"] == 1 for v in report["variables"])


def test_renamed_copy_with_sub_and_mapping(adam: str, variant: Any, tmp_path: Path) -> None:
    renamed = save_native(
        str(tmp_path / "renamed"),
        {k.replace("model/", "net/", 1): v for k, v in variant.base.items()},
    )
    assert run("diff", adam, renamed).exit_code == 1
    assert run("diff", adam, renamed, "--sub", "^model/", "net/").exit_code == 0
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({k: k.replace("model/", "net/", 1) for k in variant.base}))
    assert run("diff", adam, renamed, "--mapping", mapping).exit_code == 0


def test_match_and_regex_filters(adam: str, variant: Any) -> None:
    other = variant(global_step=np.int64(99), beta1_power=np.float32(0.5))
    code, report = diff_json(adam, other, "--match", "global*")
    assert code == 1 and statuses(report) == {"global_step": "values"}
    assert run("diff", adam, other, "--regex", "^model/").exit_code == 0


@pytest.mark.parametrize("origin", ["native", "tf"])
def test_across_formats(request: pytest.FixtureRequest, tmp_path: Path, origin: str) -> None:
    fixtures = fixtures_of(request, origin)
    read, save = (tf_values, save_with_tf) if origin == "tf" else (native_values, save_native)
    # Sharded (2 shards) vs the same values in one shard written by the same writer.
    sharded = str(fixtures["sharded"].path)
    single = save(str(tmp_path / "single"), read(sharded))
    assert run("diff", sharded, single).exit_code == 0
    # V1 vs V2.
    v1 = str(fixtures["v1"].path)
    v2 = save(str(tmp_path / "v2"), read(v1))
    assert run("diff", v1, v2).exit_code == 0
    # Partitioned vs assembled; a SavedModel's variables (TF-made only) vs a plain checkpoint.
    part = str(fixtures["partitioned"].path)
    whole = save(str(tmp_path / "whole"), read(part))
    assert run("diff", part, whole).exit_code == 0
    if origin == "tf":
        sm = fixtures["savedmodel_tf1"].path
        plain = save(str(tmp_path / "sm"), read(str(sm / "variables" / "variables")))
        assert run("diff", sm, plain).exit_code == 0


def test_tf2_object_graph_is_skipped_unless_asked(nfx: Any) -> None:
    p = nfx["tf2_keras"].path
    code, report = diff_json(p, p, "--all")
    assert code == 0
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in statuses(report)
    code, report = diff_json(p, p, "--all", "--object-graph")
    assert statuses(report)["_CHECKPOINTABLE_OBJECT_GRAPH"] == "same"


def test_errors_are_exit_2(adam: str, tmp_path: Path) -> None:
    result = run("diff", adam, tmp_path / "missing")
    assert result.exit_code == 2 and result.stderr.startswith("tfckpt: error:")
    result = run("diff", adam, adam, "--sub", "(", "x")
    assert result.exit_code == 2 and "bad sub" in result.stderr


def test_table_output_has_summary_line(adam: str, variant: Any) -> None:
    other = variant(global_step=np.int64(3))
    result = run("diff", adam, other)
    assert result.exit_code == 1
    assert "global_step" in result.stdout
    assert "differences found: 15 compared, 14 same, 1 values changed" in result.stdout


def test_chunked_comparison_of_large_tensor(tmp_path: Path) -> None:
    big = np.random.default_rng(0).standard_normal(600_000).astype(np.float32)
    changed = big.copy()
    changed[[5, 300_000, 599_999]] += np.float32(0.5)
    a = save_native(str(tmp_path / "a"), {"big": big})
    b = save_native(str(tmp_path / "b"), {"big": changed})
    code, report = diff_json(a, b)
    v = report["variables"][0]
    assert code == 1 and v["n_diff"] == 3 and v["max_abs"] == pytest.approx(0.5, rel=1e-5)


def test_wide_integers_compare_exactly(tmp_path: Path) -> None:
    big = 2**60
    a = save_native(str(tmp_path / "a"), {"i": np.array([big, 5], np.int64)})
    b = save_native(str(tmp_path / "b"), {"i": np.array([big + 1, 5], np.int64)})
    code, report = diff_json(a, b)
    [var] = report["variables"]
    assert code == 1 and var["status"] == "values" and var["n_diff"] == var["n_outside"] == 1
    assert var["max_abs"] == 1.0
    assert diff_json(a, b, "--atol", "1")[0] == 0
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    c = save_native(str(tmp_path / "c"), {"i": np.array([lo, 5], np.int64)})
    d = save_native(str(tmp_path / "d"), {"i": np.array([hi, 5], np.int64)})
    code, report = diff_json(c, d)
    assert code == 1 and report["variables"][0]["max_abs"] == float(2**64 - 1)
    u = save_native(str(tmp_path / "u"), {"i": np.array([2**63 + 1], np.uint64)})
    v = save_native(str(tmp_path / "v"), {"i": np.array([2**63 + 2], np.uint64)})
    assert diff_json(u, v)[0] == 1


def test_damage_in_b_is_an_error_not_a_difference(adam: str, tmp_path: Path) -> None:
    for f in Path(adam).parent.glob(Path(adam).name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    data = next(tmp_path.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    raw[-3] ^= 0x01  # inside the last tensor in the file
    data.write_bytes(bytes(raw))
    for args in ((adam, tmp_path / Path(adam).name), (tmp_path / Path(adam).name, adam)):
        result = run("diff", *map(str, args))
        assert result.exit_code == 2 and "checksum mismatch" in result.stderr, args


def test_rules_that_merge_names_are_refused(adam: str) -> None:
    result = run("diff", adam, adam, "--sub", "^beta[12]_power$", "beta_power")
    assert result.exit_code == 2
    assert "would all be renamed to 'beta_power'" in result.stderr
    result = run("diff", adam, adam, "--sub", "/Adam_1$", "/Adam")
    assert result.exit_code == 2 and "collides with an unchanged name" in result.stderr


def saved_by_tf_savers(tf: Any, directory: Path, values: np.ndarray) -> dict[str, str]:
    """``values`` as variable ``w`` saved by a TF1 Saver in each format: {"V1": prefix, ...}."""
    tf1 = tf.compat.v1
    prefixes = {}
    for version in ("V1", "V2"):
        (directory / version).mkdir()
        with tf.Graph().as_default():
            var = tf1.get_variable("w", initializer=values)
            fmt = getattr(tf1.train.SaverDef, version)
            saver = tf1.train.Saver([var], write_version=fmt)
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                prefixes[version] = saver.save(sess, str(directory / version / "model.ckpt"))
    return prefixes


@pytest.mark.parametrize("writer", ["native", "tf"])
def test_nan_is_equal_to_the_same_nan_across_formats(
    tmp_path: Path, request: pytest.FixtureRequest, writer: str
) -> None:
    values = np.array([1.0, np.nan, -0.0], np.float32)
    if writer == "tf":
        prefixes = saved_by_tf_savers(request.getfixturevalue("tf"), tmp_path, values)
    else:
        _write_v1(tmp_path / "V1" / "model.ckpt", {"w": values})
        v2 = save_native(str(tmp_path / "V2" / "model.ckpt"), {"w": values})
        prefixes = {"V1": str(tmp_path / "V1" / "model.ckpt"), "V2": v2}
    code, report = diff_json(prefixes["V1"], prefixes["V2"], "--all")
    assert code == 0 and report["variables"][0]["n_diff"] == 0


@pytest.mark.tf
def test_engine_tf_agrees_with_native(fx: dict[str, Fixture], tmp_path: Path, tf: Any) -> None:
    adam = str(fx["tf1_adam"].path)
    variant = variants(adam, tmp_path, tf_values, save_with_tf)
    kernel = variant.base["model/dense0/kernel"].copy()
    kernel[1, 2] += 1e-3
    other = variant(model__dense0__kernel=kernel, drop=("global_step",))
    native = diff_json(adam, other, "--all")
    via_tf = diff_json(adam, other, "--all", "--engine", "tf")
    assert native[0] == via_tf[0] == 1
    keys = ("name", "status", "n_diff", "n_outside", "max_abs")
    assert [{k: v[k] for k in keys} for v in native[1]["variables"]] == [
        {k: v[k] for k in keys} for v in via_tf[1]["variables"]
    ]
    assert native[1]["summary"] == via_tf[1]["summary"]


def test_summary_line_names_the_kinds_of_difference_that_occurred() -> None:
    from tfckpt.render.check import diff_summary_line

    counts = {"same": 3, "values": 0, "shape": 1, "dtype": 0, "only_a": 2, "only_b": 0}
    line = diff_summary_line({**counts, "compared": 6, "equal": False})
    assert line == "differences found: 6 compared, 3 same, 1 shape changed, 2 only in A"
    counts = dict.fromkeys(counts, 0) | {"same": 200_000}
    line = diff_summary_line({**counts, "compared": 200_000, "equal": True})
    assert line == "no differences: 200,000 compared, 200,000 same"
