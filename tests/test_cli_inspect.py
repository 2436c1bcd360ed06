"""``tfckpt ls`` and ``tfckpt vars`` through the CLI: options, JSON contract, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clitools import imports_tensorflow, modules_after, run

from fixtures import CORPUS

TFX = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
KERAS_SM = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/keras/Format-Serving"
needs_corpus = pytest.mark.skipif(not TFX.exists(), reason="corpus not present")


@needs_corpus
def test_ls_marks_latest_and_reads_steps() -> None:
    result = run("ls", str(TFX), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["kind"], document["version"], document["path"]) == ("ls", 1, str(TFX))
    items = document["items"]
    ckpts = {Path(i["path"]).name: i for i in items if i["kind"] == "checkpoint"}
    assert set(ckpts) == {"model.ckpt-0", "model.ckpt-999", "model.ckpt-1000"}
    assert [n for n, i in ckpts.items() if i["latest"]] == ["model.ckpt-1000"]
    assert ckpts["model.ckpt-999"]["step"] == 999
    assert all(i["format"] == "V2" and i["shards"] == 1 and i["has_meta"] for i in ckpts.values())
    assert ckpts["model.ckpt-0"]["data_bytes"] == 126216
    assert all(i["listed"] for i in ckpts.values())


@needs_corpus
def test_ls_table_and_recursive_finds_savedmodels() -> None:
    result = run("ls", str(TFX))
    assert result.exit_code == 0
    assert "model.ckpt-1000" in result.stdout and "*" in result.stdout
    result = run("ls", "-R", str(CORPUS / "tensorflow__tfx"), "--json")
    kinds = [i["kind"] for i in json.loads(result.stdout)["items"]]
    assert kinds.count("savedmodel") == 3
    # SavedModel variables are not listed twice as plain checkpoints.
    items = json.loads(result.stdout)["items"]
    assert not any(i["path"].endswith("variables/variables") for i in items)


@needs_corpus
def test_ls_reports_missing_checkpoints_listed_in_state(tmp_path: Path) -> None:
    for f in TFX.glob("model.ckpt-1000.*"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(TFX / "checkpoint", tmp_path / "checkpoint")
    (tmp_path / "events.out.tfevents.123.host").write_bytes(b"x")
    (tmp_path / "x.index.tfckpt-tmp-1-abcd").write_bytes(b"x")
    items = json.loads(run("ls", str(tmp_path), "--json").stdout)["items"]
    missing = sorted(Path(i["path"]).name for i in items if i["kind"] == "missing")
    assert missing == ["model.ckpt-0", "model.ckpt-999"]
    assert [i["kind"] for i in items].count("events") == 1
    assert [i["kind"] for i in items].count("temp") == 1


def test_ls_missing_directory_is_exit_2(tmp_path: Path) -> None:
    result = run("ls", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr.startswith("tfckpt: error: ")
    assert "Traceback" not in result.stderr


@needs_corpus
def test_vars_json_contract() -> None:
    result = run("vars", str(TFX), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["kind"], document["version"]) == ("vars", 1)
    assert document["path"].endswith("model.ckpt-1000")
    records = document["tensors"]
    assert len(records) == 60
    assert document["totals"]["variables"] == 60
    assert document["totals"]["parameters"] == sum(r["size"] for r in records)
    assert document["totals"]["bytes"] == sum(r["nbytes"] for r in records)
    for r in records:
        assert set(r) >= {"name", "dtype", "shape", "size", "nbytes"}
        assert isinstance(r["shape"], list)
    step = next(r for r in records if r["name"] == "global_step")
    assert step == {
        "name": "global_step",
        "dtype": "int64",
        "shape": [],
        "size": 1,
        "nbytes": 8,
        "optimizer": False,
    }


@needs_corpus
def test_vars_table_totals_and_filters() -> None:
    result = run("vars", str(TFX), "--match", "*Ftrl*")
    assert result.exit_code == 0
    assert "Ftrl" in result.stdout and "global_step" not in result.stdout
    assert "variables," in result.stdout and "parameters" in result.stdout
    records = json.loads(run("vars", str(TFX), "--regex", "^global_step$", "--json").stdout)[
        "tensors"
    ]
    assert [r["name"] for r in records] == ["global_step"]
    result = run("vars", str(TFX), "--regex", "(")
    assert result.exit_code == 2 and "bad regex" in result.stderr


@needs_corpus
def test_vars_tf2_object_paths_and_all() -> None:
    records = json.loads(run("vars", str(KERAS_SM), "--json").stdout)["tensors"]
    assert all(r["name"] != "_CHECKPOINTABLE_OBJECT_GRAPH" for r in records)
    kernel = next(
        r for r in records if r["name"] == "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert kernel["path"] == "layer_with_weights-0/kernel"
    records = json.loads(run("vars", str(KERAS_SM), "--json", "--all").stdout)["tensors"]
    assert any(r["name"] == "_CHECKPOINTABLE_OBJECT_GRAPH" for r in records)
    table = run("vars", str(KERAS_SM)).stdout
    assert "object path" in table and "layer_with_weights-0/kernel " in table
    # Filters also match object paths.
    records = json.loads(
        run("vars", str(KERAS_SM), "--match", "layer_with_weights-0/kernel", "--json").stdout
    )["tensors"]
    assert [r["path"] for r in records] == ["layer_with_weights-0/kernel"]


@needs_corpus
def test_vars_tree_has_scope_subtotals() -> None:
    result = run("vars", str(TFX), "--tree")
    assert result.exit_code == 0
    assert "global_step" in result.stdout and "vars," in result.stdout and "params" in result.stdout


@needs_corpus
def test_vars_stats_match_numpy() -> None:
    import numpy as np

    from tfckpt.bundle.checkpoint import open_checkpoint

    records = json.loads(run("vars", str(TFX), "--stats", "--json").stdout)["tensors"]
    with open_checkpoint(str(TFX)) as ckpt:
        for r in records:
            value = ckpt.read(r["name"]).astype(np.float64)
            assert r["min"] == pytest.approx(value.min())
            assert r["max"] == pytest.approx(value.max())
            assert r["mean"] == pytest.approx(value.mean(), rel=1e-6, abs=1e-9)
            assert r["std"] == pytest.approx(value.std(), rel=1e-5, abs=1e-9)
            assert r["zeros"] == int((value == 0).sum())
            assert r["nan"] == 0 and r["inf"] == 0


def test_stats_count_nan_inf_and_zero() -> None:
    import numpy as np

    from tfckpt.dtypes import dtype_from_name
    from tfckpt.ops.stats import tensor_stats

    values = np.array([0.0, 1.0, np.nan, np.inf, -np.inf, 3.0, 0.0], np.float32)
    s = tensor_stats([values[:3], values[3:]], dtype_from_name("float32"))
    assert s is not None
    assert (s.nan, s.inf, s.zeros, s.finite) == (1, 2, 2, 4)
    assert (s.min, s.max, s.mean) == (0.0, 3.0, 1.0)
    assert tensor_stats([np.array([b"a"], object)], dtype_from_name("string")) is None
    b = tensor_stats([np.array([True, False, True])], dtype_from_name("bool"))
    assert b is not None and b.zeros == 1 and b.max == 1.0


@needs_corpus
def test_vars_show_values() -> None:
    result = run("vars", str(TFX), "--show", "global_step")
    assert result.exit_code == 0 and "int64" in result.stdout
    out = json.loads(run("vars", str(TFX), "--show", "global_step", "--json").stdout)
    assert (out["kind"], out["version"]) == ("vars", 1)
    assert out["tensors"][0]["values"] == [1000]
    big = next(
        r["name"]
        for r in json.loads(run("vars", str(TFX), "--json").stdout)["tensors"]
        if r["size"] > 1000
    )
    assert "truncated" in run("vars", str(TFX), "--show", big).stdout
    assert "truncated" not in run("vars", str(TFX), "--show", big, "--full").stdout
    result = run("vars", str(TFX), "--show", "no/such/var")
    assert result.exit_code == 2 and "no variable named" in result.stderr


@needs_corpus
def test_vars_engine_tf_agrees_with_native(tf: object) -> None:
    native = json.loads(run("vars", str(TFX), "--json").stdout)["tensors"]
    via_tf = json.loads(run("vars", str(TFX), "--json", "--engine", "tf").stdout)["tensors"]
    assert [(r["name"], r["dtype"], r["shape"]) for r in native] == [
        (r["name"], r["dtype"], r["shape"]) for r in via_tf
    ]
    native_stats = json.loads(run("vars", str(KERAS_SM), "--json", "--stats").stdout)["tensors"]
    tf_stats = json.loads(run("vars", str(KERAS_SM), "--json", "--stats", "--engine", "tf").stdout)[
        "tensors"
    ]
    assert native_stats == [dict(r, nbytes=n["nbytes"]) for r, n in zip(tf_stats, native_stats)]


@pytest.mark.parametrize(
    "args",
    [
        ["vars", "/no/such/ckpt"],
        ["ls", "/no/such/dir"],
        ["vars", "/no/such/ckpt", "--engine", "tf"],
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str]) -> None:
    # Usage errors (bad option values) are checked through the console script in test_cli_meta.
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("tfckpt: error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        pytest.param(["vars", str(TFX)], marks=needs_corpus),
        pytest.param(["vars", str(TFX), "--stats", "--json"], marks=needs_corpus),
        pytest.param(["ls", "-R", str(CORPUS)], marks=needs_corpus),
    ],
)
def test_native_paths_never_import_tensorflow(args: list[str]) -> None:
    modules = modules_after(args)
    assert "tfckpt.cli" in modules
    assert not imports_tensorflow(modules)


@needs_corpus
@pytest.mark.parametrize(
    "directory",
    [
        TFX,
        CORPUS
        / "tensorflow__serving/tensorflow_serving/servables/tensorflow/testdata"
        / "bad_half_plus_two/00000123",
        CORPUS / "onnx__tensorflow-onnx/tests/models/regression/checkpoint",
    ],
)
def test_ls_engine_tf_agrees_with_native(directory: Path, tf: object) -> None:
    native = json.loads(run("ls", str(directory), "--json").stdout)["items"]
    via_tf = json.loads(run("ls", str(directory), "--json", "--engine", "tf").stdout)["items"]
    key = [(Path(i["path"]).name, i["kind"], i["latest"], i["listed"]) for i in native]
    assert key == [(Path(i["path"]).name, i["kind"], i["latest"], i["listed"]) for i in via_tf]
    assert any(i["latest"] or i["kind"] == "missing" for i in native)


def _damaged_copies(src: Path, dest: Path) -> dict[str, Path]:
    """Copies of one V2 checkpoint, each broken in one way the issue names."""
    import shutil

    from tfckpt import protos
    from tfckpt.bundle.table import TableWriter

    cases: dict[str, Path] = {}
    for case in ("truncated_index", "index_checksum", "tensor_checksum", "missing_shard"):
        (dest / case).mkdir()
        for f in src.parent.glob(src.name + ".*"):
            shutil.copy(f, dest / case / f.name)
        cases[case] = dest / case / src.name
    index = Path(str(cases["truncated_index"]) + ".index")
    index.write_bytes(index.read_bytes()[:-20])
    index = Path(str(cases["index_checksum"]) + ".index")
    raw = bytearray(index.read_bytes())
    raw[10] ^= 0xFF
    index.write_bytes(bytes(raw))
    data = Path(str(cases["tensor_checksum"]) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x01
    data.write_bytes(bytes(raw))
    Path(str(cases["missing_shard"]) + ".data-00000-of-00001").unlink()
    (dest / "big_endian").mkdir()
    with open(dest / "big_endian" / "be.index", "wb") as f:
        table = TableWriter(f)
        table.add(b"", protos.BundleHeaderProto(num_shards=1, endianness=1).SerializeToString())
        table.finish()
    cases["big_endian"] = dest / "big_endian" / "be"
    (dest / "not_a_checkpoint").write_text("hello\n")
    cases["not_a_checkpoint"] = dest / "not_a_checkpoint"
    (dest / "empty_dir").mkdir()
    cases["empty_dir"] = dest / "empty_dir"
    return cases


EXPECTED_MESSAGES = {
    "truncated_index": "truncated",
    "index_checksum": "checksum mismatch",
    "tensor_checksum": "checksum mismatch",
    "missing_shard": "data shard is missing",
    "big_endian": "big-endian",
    "not_a_checkpoint": "not a checkpoint",
    "empty_dir": "no checkpoint in this directory",
}


def test_bad_checkpoints_are_one_named_line_exit_2(fx: dict, tmp_path: Path) -> None:
    cases = _damaged_copies(fx["tf1_adam"].path, tmp_path)
    for case, path in cases.items():
        # Listing reads only the index (a missing shard is a warning then, see
        # test_index_without_data_lists_with_a_warning); values (--stats, --show) read the data.
        needs_values = case in ("tensor_checksum", "missing_shard")
        args = ["vars", str(path), *(["--stats"] if needs_values else [])]
        result = run(*args)
        assert result.exit_code == 2, (case, result.stdout)
        assert result.stderr.startswith("tfckpt: error: "), case
        assert result.stderr.count("\n") == 1, (case, result.stderr)
        assert EXPECTED_MESSAGES[case] in result.stderr, (case, result.stderr)
        assert str(path.parent.name) in result.stderr, (case, result.stderr)


def test_v1_checkpoints_with_dots_in_their_names_are_found(fx: dict, tmp_path: Path) -> None:
    import shutil

    shutil.copy(fx["v1"].path, tmp_path / "model.ckpt")  # no state file: found by content
    records = json.loads(run("vars", str(tmp_path), "--json").stdout)["tensors"]
    assert [r["name"] for r in records] == ["v1/a", "v1/n"]
    listed = json.loads(run("ls", str(fx["v1"].path.parent), "--json").stdout)["items"]
    assert [(i["kind"], i["format"], i["latest"]) for i in listed] == [("checkpoint", "V1", True)]


@needs_corpus
def test_meta_of_a_sharded_v1_checkpoint_resolves() -> None:
    meta = (
        CORPUS
        / "tensorflow__serving/tensorflow_serving/session_bundle/testdata/half_plus_two/00000123"
        / "export.meta"
    )
    records = json.loads(run("vars", str(meta), "--json").stdout)["tensors"]
    assert [r["name"] for r in records] == ["a", "b"]
