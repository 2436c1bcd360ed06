"""export / import / cast / ls --repair, judged by TensorFlow, safetensors and numpy.

Round trips (export, then import) must give back every tensor bit for bit (`tfckpt diff` exits
0; strings excepted for safetensors, which has no string type); the exported files must load
with ``safetensors.numpy.load_file`` / ``np.load`` with identical values; imported and cast
checkpoints must load in TensorFlow (``tf.train.load_checkpoint``, a TF1 ``Saver``, and
``tf.train.Checkpoint`` for TF2 through ``--like``); repaired state files must be read by
``tf.train.get_checkpoint_state``. Tests that need no TF run on the TF-free twins (``nfx``); round
trips and casts run on both origins, read by TF's reader when TF is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from clitools import imports_tensorflow, modules_after, ok, ok_json, run
from native_fixtures import TWINS, fixtures_of
from tfsave import HAVE_TF, oracle_values

from tfckpt.bundle.checkpoint import open_checkpoint, resolve_prefix

from fixtures import CORPUS, EXAMPLES, Fixture, corpus_checkpoints

sys.path.insert(0, str(EXAMPLES))
import fixture_models

FIXTURE_KINDS = [
    "tf1_adam",
    "tf1_slots",
    "tf1_multi",
    "sharded",
    "partitioned",
    "dtypes",
    "tf2_keras",
    "tf2_module",
    "savedmodel_tf1",
    "savedmodel_tf2",
    "v1",
]
FORMATS = {"safetensors": "w.safetensors", "npz": "w.npz", "npy": "w/"}
BAD_STATE_DIR = (
    CORPUS
    / "tensorflow__serving/tensorflow_serving/servables/tensorflow/testdata/bad_half_plus_two"
    / "00000123"
)


def native_values(path: Any) -> dict[str, np.ndarray]:
    with open_checkpoint(str(path)) as ckpt:
        return {i.name: ckpt.read(i.name) for i in ckpt.tensors(include_object_graph=False)}


def tf_map(path: Any) -> dict[str, Any]:
    """TF's reader (tests that need TF)."""
    from tfckpt.tf_engine.checkpoint import read_all

    return read_all(resolve_prefix(str(path))[0])


def same_bytes(a: Any, b: Any) -> bool:
    """Bit-identical numeric arrays, or equal strings (TF returns a scalar string as bytes)."""
    if isinstance(a, bytes) or isinstance(b, bytes):
        a = np.asarray(a, dtype=object)
        b = np.asarray(b, dtype=object)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype == object or b.dtype == object:
        return [bytes(x) for x in a.reshape(-1)] == [bytes(x) for x in b.reshape(-1)]
    return a.dtype.itemsize == b.dtype.itemsize and a.tobytes() == b.tobytes()


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def no_temp_files(directory: Path) -> bool:
    return not any(".tfckpt-tmp-" in p.name for p in directory.rglob("*"))


def is_tf2(path: Any) -> bool:
    with open_checkpoint(str(path)) as ckpt:
        return ckpt.is_object_based


def round_trip(src: Any, tmp_path: Path, fmt: str) -> tuple[dict[str, Any], Path, list[str]]:
    """export SRC -> import back (TF2: --like SRC); returns (export JSON, imported prefix,
    skipped source keys); asserts `tfckpt diff` on everything not skipped exits 0."""
    out = f"{tmp_path}/{FORMATS[fmt]}"  # pathlib would drop the trailing slash of "w/"
    exported = ok_json("export", src, out)
    assert exported["written"] and exported["checked"]
    assert no_temp_files(tmp_path)
    skipped = [s["source"] for s in exported["skipped"]]
    imported = tmp_path / "imported" / "ckpt"
    imported.parent.mkdir()
    like = ["--like", src] + (["--allow-missing"] if skipped else []) if is_tf2(src) else []
    result = ok_json("import", out, imported, *like)
    assert result["written"] and result["checked"]
    only = []
    if skipped:  # compare everything but the skipped names
        only = ["--regex", "^(?!(?:" + "|".join(re.escape(s) for s in skipped) + ")$)"]
    diff = run("diff", src, imported, *only)
    assert diff.exit_code == 0, diff.stdout
    return exported, imported, skipped


def expected_in_safetensors(value: np.ndarray, dtype: str) -> np.ndarray:
    """What a safetensors reader should see for a TF tensor, per the documented mapping."""
    if dtype in ("int4", "int2"):
        return value.astype(np.int8)
    if dtype in ("uint4", "uint2"):
        return value.astype(np.uint8)
    if dtype == "complex128":
        return np.ascontiguousarray(value).view(np.float64).reshape(*value.shape, 2)
    return value


@pytest.fixture
def st_numpy(monkeypatch: pytest.MonkeyPatch) -> Any:
    """safetensors.numpy with numpy names for the float8 types (it looks them up on numpy;
    bfloat16 works once ml_dtypes is imported)."""
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        monkeypatch.setattr(np, name, getattr(ml_dtypes, name), raising=False)
    import safetensors.numpy

    return safetensors.numpy


# ---- round trips -----------------------------------------------------------------------------
ORIGIN_KINDS = [("tf", k) for k in FIXTURE_KINDS] + [
    ("native", k) for k in FIXTURE_KINDS if k in TWINS
]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize(("origin", "kind"), ORIGIN_KINDS)
def test_round_trip_every_fixture_kind(
    request: pytest.FixtureRequest, tmp_path: Path, origin: str, kind: str, fmt: str
) -> None:
    src = fixtures_of(request, origin)[kind].path
    _, imported, skipped = round_trip(src, tmp_path, fmt)
    before, after = oracle_values(src), oracle_values(imported)
    strings = {
        k for k, v in before.items() if isinstance(v, bytes) or np.asarray(v).dtype == object
    }
    if fmt == "safetensors":
        assert set(skipped) == strings - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    else:
        assert skipped == []
    expected = {k for k in before if k not in skipped and k != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert {k for k in after if k != "_CHECKPOINTABLE_OBJECT_GRAPH"} == expected
    for name in expected:
        assert same_bytes(after[name], before[name]), name


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
@pytest.mark.parametrize("prefix", corpus_checkpoints(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_round_trip_corpus(prefix: Path, tmp_path: Path, fmt: str) -> None:
    round_trip(prefix, tmp_path, fmt)


def test_safetensors_loads_with_safetensors_numpy(nfx: Any, tmp_path: Path, st_numpy: Any) -> None:
    src = nfx["dtypes"].path
    out = tmp_path / "d.safetensors"
    exported = ok_json("export", src, out)
    loaded = st_numpy.load_file(str(out))
    source = native_values(src)
    assert set(loaded) == {t["name"] for t in exported["tensors"]}
    for t in exported["tensors"]:
        want = expected_in_safetensors(source[t["source"]], t["dtype"])
        got = loaded[t["name"]]
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), t["name"]
    assert str(loaded["dt/bfloat16"].dtype) == "bfloat16"
    assert loaded["dt/float16"].dtype == np.float16
    with open(out, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    assert n % 8 == 0
    kinds = {t["name"]: header[t["name"]]["dtype"] for t in exported["tensors"]}
    assert kinds["dt/bfloat16"] == "BF16" and kinds["dt/float16"] == "F16"
    assert kinds["dt/float8_e4m3fn"] == "F8_E4M3" and kinds["dt/complex64"] == "C64"
    assert kinds["dt/qint8"] == "I8" and kinds["dt/int4"] == "I8"
    recorded = json.loads(header["__metadata__"]["tfckpt.dtypes"])
    assert recorded["dt/qint8"] == "qint8" and recorded["dt/complex128"] == "complex128"
    assert "dt/float32" not in recorded
    for name, spec in header.items():  # every tensor is aligned to its element size
        if name != "__metadata__":
            size = {"F64": 8, "I64": 8, "U64": 8, "C64": 8, "F32": 4, "I32": 4, "U32": 4}
            assert spec["data_offsets"][0] % size.get(spec["dtype"], 1) == 0


def test_safetensors_copies_keep_their_offset_modulo_1mib(
    tmp_path: Path, st_numpy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In big exports copied tensors sit at the same offset modulo 1 MiB as in the source data
    file (the kernel then copies whole folios) where element alignment allows; the padded
    header is still valid safetensors."""
    from tfckpt.transfer import safetensors

    monkeypatch.setattr(safetensors, "ALIGN_MIN_BYTES", 1 << 20)
    arrays = {
        "a_small": np.arange(2, dtype=np.int64),
        "b_big": np.arange(1 << 19, dtype=np.float32),
        "c_big": np.arange(1 << 18, dtype=np.float64),
    }
    np.savez(tmp_path / "w.npz", **arrays)
    ok("import", tmp_path / "w.npz", tmp_path / "src")
    doc = ok_json("export", tmp_path / "src", tmp_path / "w.safetensors")
    with open(tmp_path / "w.safetensors", "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    with open_checkpoint(str(tmp_path / "src")) as ckpt:
        for name in ("b_big", "c_big"):
            begin = header[name]["data_offsets"][0]
            assert (8 + n + begin) % (1 << 20) == ckpt.entry(name).offset % (1 << 20), name
            assert begin % np.dtype(arrays[name].dtype).itemsize == 0
    loaded = st_numpy.load_file(str(tmp_path / "w.safetensors"))
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
    assert doc["checked"]


def test_safetensors_loads_with_torch(fx: dict[str, Fixture], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    src = fx["tf1_adam"].path
    out = tmp_path / "m.safetensors"
    ok("export", src, out, "--sep", ".")
    loaded = load_file(str(out))
    for name, value in native_values(src).items():
        tensor = loaded[name.replace("/", ".")]
        assert torch.equal(tensor, torch.from_numpy(np.ascontiguousarray(value)))


def test_npz_and_npy_load_with_numpy(nfx: Any, tmp_path: Path) -> None:
    src = nfx["dtypes"].path
    source = native_values(src)
    ok("export", src, tmp_path / "d.npz")
    ok("export", src, f"{tmp_path}/d/")
    index = json.loads((tmp_path / "d" / "index.json").read_text())
    with np.load(tmp_path / "d.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(source)
        for name, value in source.items():
            from_dir = np.load(tmp_path / "d" / index["tensors"][name]["file"])
            for got in (npz[name], from_dir):
                assert (
                    same_bytes(got, value)
                    if value.dtype == object
                    else (got.shape == value.shape and got.tobytes() == value.tobytes())
                ), name
    assert index["tensors"]["dt/bfloat16"]["dtype"] == "bfloat16"
    with zipfile.ZipFile(tmp_path / "d.npz") as zf:
        assert zf.getinfo("dt/bfloat16.npy").comment == b"tfckpt:dtype=bfloat16"
        assert zf.getinfo("dt/float32.npy").comment == b""


def test_npy_directory_file_names_are_safe_and_unique(tmp_path: Path) -> None:
    names = ["a/b", "A/B", "x:y*z?", "../up", "." * 3, "deep/" * 60 + "leaf", "index"]
    np.savez(tmp_path / "odd.npz", **{n: np.full(2, i, np.int32) for i, n in enumerate(names)})
    src = tmp_path / "ckpt" / "odd"
    src.parent.mkdir()
    ok("import", tmp_path / "odd.npz", src)
    doc = ok_json("export", src, f"{tmp_path}/odd/")
    files = [t["file"] for t in doc["tensors"]]
    assert len({f.lower() for f in files}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.npy", f) and len(f) < 200 for f in files)
    assert files_in(tmp_path / "odd") == {*files, "index.json"}
    back = tmp_path / "back" / "ckpt"
    back.parent.mkdir()
    ok("import", f"{tmp_path}/odd", back)
    assert run("diff", src, back).exit_code == 0


# ---- export options --------------------------------------------------------------------------
def test_tf2_names_are_object_paths_preferring_the_model(nfx: Any, tmp_path: Path) -> None:
    names = [
        t["name"] for t in ok_json("export", nfx["tf2_module"].path, tmp_path / "m.npz")["tensors"]
    ]
    assert sorted(names) == ["net/dec/b", "net/dec/w", "net/enc/b", "net/enc/w", "save_counter"]
    # Keras 3 keys name model weights through the optimizer; export names them by the model.
    keras = ok_json("export", nfx["tf2_keras"].path, tmp_path / "k.npz", "--no-optimizer")
    assert sorted(t["name"] for t in keras["tensors"]) == [
        "model/_functional/_operations/1/_kernel",
        "model/_functional/_operations/1/bias",
        "model/_functional/_operations/2/_kernel",
        "model/_functional/_operations/2/bias",
        "save_counter",
    ]
    kept = ok_json("export", nfx["tf2_module"].path, tmp_path / "m2.npz", "--keep-keys")
    assert "net/enc/w/.ATTRIBUTES/VARIABLE_VALUE" in [t["name"] for t in kept["tensors"]]


def test_no_optimizer_tf1_and_tf2(nfx: Any, tmp_path: Path) -> None:
    tf1 = ok_json("export", nfx["tf1_adam"].path, tmp_path / "a.safetensors", "--no-optimizer")
    names = [t["name"] for t in tf1["tensors"]]
    assert names and not any(re.search(r"/Adam(_\d+)?$|beta[12]_power", n) for n in names)
    assert any(re.search(r"/Adam", n) for n in tf1["dropped"])
    tf2 = ok_json("export", nfx["tf2_keras"].path, tmp_path / "k.safetensors", "--no-optimizer")
    assert not any(n["name"].startswith("optimizer/") for n in tf2["tensors"])
    assert len(tf2["dropped"]) == 10


def test_sep_sub_mapping_and_filters(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    mapping = tmp_path / "names.csv"
    mapping.write_text("model/dense1/bias,head.bias\n")
    out = ok_json(
        "export",
        src,
        tmp_path / "w.safetensors",
        "--sub",
        "^model/",
        "net/",
        "--sep",
        ".",
        "--mapping",
        mapping,
        "--match",
        "model/dense*",
        "--no-optimizer",
    )
    names = sorted(t["name"] for t in out["tensors"])
    assert "head.bias" in names and "net.dense0.kernel" in names
    assert all("/" not in n for n in names) and out["filtered"] > 0
    # back: '.' -> '/', then the reverse rules give the original keys again
    imported = tmp_path / "back" / "ckpt"
    imported.parent.mkdir()
    reverse = tmp_path / "reverse.csv"
    reverse.write_text("head/bias,model/dense1/bias\n")
    ok(
        "import",
        tmp_path / "w.safetensors",
        imported,
        "--sep",
        ".",
        "--sub",
        "^net/",
        "model/",
        "--mapping",
        reverse,
    )
    back = native_values(imported)
    source = native_values(src)
    from fnmatch import fnmatchcase

    from tfckpt.ops.prune import is_tf1_slot

    assert set(back) == {k for k in source if fnmatchcase(k, "model/dense*") and not is_tf1_slot(k)}
    for name, value in back.items():
        assert same_bytes(value, source[name])


def test_name_conflicts_are_exit_2_and_write_nothing(nfx: Any, tmp_path: Path) -> None:
    result = run("export", nfx["tf1_adam"].path, tmp_path / "w.safetensors", "--sub", ".*", "x")
    assert result.exit_code == 2 and "conflict" in result.stderr
    assert files_in(tmp_path) == set()


def test_strict_refuses_strings(nfx: Any, tmp_path: Path) -> None:
    result = run("export", nfx["dtypes"].path, tmp_path / "d.safetensors", "--strict")
    assert result.exit_code == 2
    assert result.stderr.startswith("tfckpt: error: ") and "string" in result.stderr
    assert files_in(tmp_path) == set()
    result = ok("export", nfx["dtypes"].path, tmp_path / "d.safetensors")
    assert "warning: skipped 2 tensor(s)" in result.stderr and "dt/string_2d" in result.stderr


def test_existing_output_needs_force(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    for out in (f"{tmp_path}/w.safetensors", f"{tmp_path}/w.npz", f"{tmp_path}/w/"):
        ok("export", src, out)
        again = run("export", src, out)
        assert again.exit_code == 2 and "--force" in again.stderr
        ok("export", src, out, "--force")
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    result = run("export", src, stranger, "--to", "npy", "--force")
    assert result.exit_code == 2 and "refusing" in result.stderr
    assert files_in(stranger) == {"notes.txt"}
    assert no_temp_files(tmp_path)


def test_missing_directories_are_created_and_removed_on_failure(
    nfx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = nfx["tf1_adam"].path
    for out in ("a/b/w.safetensors", "c/d/w.npz", "e/f/w/"):
        ok("export", src, f"{tmp_path}/{out}", "--sync")
    ok("import", tmp_path / "a/b/w.safetensors", tmp_path / "g/h/ckpt", "--sync")
    ok("cast", tmp_path / "g/h/ckpt", tmp_path / "i/j/ckpt", "--dtype", "float16", "--sync")
    from tfckpt.transfer import common

    monkeypatch.setattr(common.Source, "expected_crc", lambda self, item: 12345)
    monkeypatch.setattr(common.Source, "expected_crcs", lambda self, cols: [12345] * len(cols))
    for out in ("x/y/w.safetensors", "x/y/w.npz", "x/y/w/"):
        assert run("export", src, f"{tmp_path}/{out}").exit_code == 1
    assert files_in(tmp_path) == {"a", "c", "e", "g", "i"}


def test_dry_run_writes_nothing(nfx: Any, tmp_path: Path) -> None:
    result = ok("export", nfx["tf2_module"].path, tmp_path / "m.safetensors", "--dry-run")
    assert "net/enc/w" in result.stdout and "would export 5 tensors" in result.stdout
    doc = ok_json("export", nfx["tf2_module"].path, tmp_path / "m.safetensors", "--dry-run")
    assert doc["dry_run"] and not doc["written"]
    assert files_in(tmp_path) == set()


def test_export_json_schema(nfx: Any, tmp_path: Path) -> None:
    doc = ok_json("export", nfx["dtypes"].path, tmp_path / "d.safetensors")
    assert set(doc) == {
        "kind",
        "version",
        "source",
        "output",
        "format",
        "count",
        "bytes",
        "tensors",
        "skipped",
        "dropped",
        "filtered",
        "metadata",
        "dry_run",
        "written",
        "checked",
        "notes",
    }
    assert set(doc["tensors"][0]) == {"source", "name", "dtype", "stored", "shape", "bytes"}
    assert set(doc["skipped"][0]) == {"source", "dtype", "reason"}
    assert doc["count"] == len(doc["tensors"]) and doc["format"] == "safetensors"
    assert doc["kind"] == "export" and doc["version"] == 1


def test_unknown_format_and_bad_options_are_exit_2(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    for args in (
        ["export", src, tmp_path / "w.bin"],
        ["export", src, tmp_path / "w.bin", "--to", "onnx"],
        ["export", "/no/such/ckpt", tmp_path / "w.npz"],
        ["export", src, tmp_path / "w.npz", "--metadata", "novalue"],
        ["import", tmp_path / "nope.safetensors", tmp_path / "x"],
        ["cast", src, tmp_path / "c", "--dtype", "int32"],
        ["import", tmp_path / "nope.npz", tmp_path / "x", "--allow-missing"],
    ):
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("tfckpt: error: ") and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert files_in(tmp_path) == set()


def test_failed_check_is_exit_1_and_leaves_nothing(
    nfx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfckpt.transfer import common

    monkeypatch.setattr(common.Source, "expected_crc", lambda self, item: 12345)
    monkeypatch.setattr(common.Source, "expected_crcs", lambda self, cols: [12345] * len(cols))
    for out in ("w.safetensors", "w.npz", "w/"):
        result = run("export", nfx["tf1_adam"].path, f"{tmp_path}/{out}")
        assert result.exit_code == 1, out
        assert "differs" in result.stderr
    assert files_in(tmp_path) == set()


def test_check_reads_back_what_was_written(
    nfx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that puts zeros on disk instead of the tensor: the re-read catches it."""
    from tfckpt.transfer import common

    def zeros_to_fd(src: int, offset: int, size: int, dst: int, on_bytes: Any) -> None:
        common.write_all(dst, bytes(size))

    def zero_chunks(self: Any, item: Any) -> Any:
        yield bytes(item.nbytes)

    monkeypatch.setattr(common, "copy_to_fd", zeros_to_fd)
    monkeypatch.setattr(common.Source, "raw_chunks", zero_chunks)
    for out in ("w.safetensors", "w.npz", "w/"):
        result = run("export", nfx["tf1_adam"].path, f"{tmp_path}/{out}")
        assert result.exit_code == 1, (out, result.stderr)
        assert "differs from" in result.stderr
        written = run("export", nfx["tf1_adam"].path, f"{tmp_path}/{out}", "--no-check")
        assert written.exit_code == 0  # unchecked, the zeros would have gone out
    assert files_in(tmp_path) == {"w.safetensors", "w.npz", "w"}


def test_corrupt_source_is_exit_2(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    copy = tmp_path / "src"
    copy.mkdir()
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, copy / f.name)
    data = next(copy.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    for out in ("w.safetensors", "w.npz"):
        result = run("export", copy / src.name, tmp_path / out)
        assert result.exit_code == 2 and "checksum mismatch" in result.stderr, result.stderr
    assert files_in(tmp_path) == {"src"}


# ---- import ------------------------------------------------------------------------------------
def test_import_restores_in_tf1_graph_with_saver(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    for kind in ("tf1_adam", "partitioned"):
        src = fx[kind].path
        ok("export", src, tmp_path / f"{kind}.safetensors")
        dst = tmp_path / kind / "model.ckpt"
        dst.parent.mkdir()
        ok("import", tmp_path / f"{kind}.safetensors", dst)
        values = tf_map(src)
        tf1 = tf.compat.v1
        restored: dict[str, Any] = {}
        with tf.Graph().as_default():
            saver = tf1.train.import_meta_graph(str(fx[kind].meta), clear_devices=True)
            with tf1.Session() as sess:
                saver.restore(sess, str(dst))  # partitioned variables restore from full tensors
                for v in tf1.global_variables():
                    info = getattr(v, "_save_slice_info", None)
                    value = sess.run(v)
                    if info is None:
                        restored[v.op.name] = value
                        continue
                    full = restored.setdefault(
                        info.full_name, np.zeros(info.full_shape, value.dtype)
                    )
                    full[tuple(slice(o, o + n) for o, n in zip(info.var_offset, value.shape))] = (
                        value
                    )
        assert sorted(restored) == sorted(values)
        for name, value in values.items():
            np.testing.assert_array_equal(restored[name], value)


def test_import_like_tf2_restores_with_tf_checkpoint(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = str(fx["tf2_module"].path)
    ok("export", src, tmp_path / "w.safetensors", "--sep", ".")
    dst = tmp_path / "ckpt-1"
    doc = ok_json("import", tmp_path / "w.safetensors", dst, "--sep", ".", "--like", src)
    assert doc["object_graph"] and doc["like"]["ok"] and doc["like"]["matched"] == 5
    net = fixture_models.make_net(tf)
    for v in net.trainable_variables:
        v.assign(tf.zeros_like(v))
    tf.train.Checkpoint(net=net).restore(str(dst)).assert_existing_objects_matched()
    original = tf_map(src)
    np.testing.assert_array_equal(
        net.enc.w.numpy(), original["net/enc/w/.ATTRIBUTES/VARIABLE_VALUE"]
    )


def test_import_like_without_optimizer_restores_model(nfx: Any, tmp_path: Path) -> None:
    """Weights exported without the optimizer come back as a TF2 checkpoint whose object graph
    lost the optimizer state (--allow-missing), and the model restores from it."""
    src = str(nfx["tf2_keras"].path)
    ok("export", src, tmp_path / "w.safetensors", "--no-optimizer")
    dst = tmp_path / "ckpt-1"
    refused = run("import", tmp_path / "w.safetensors", dst, "--like", src)
    assert refused.exit_code == 1 and "missing" in refused.stdout
    assert not dst.with_suffix(".index").exists()
    doc = ok_json("import", tmp_path / "w.safetensors", dst, "--like", src, "--allow-missing")
    assert len(doc["like"]["missing"]) == 10 and doc["object_graph"]
    after = oracle_values(dst)
    assert not any(k.startswith("optimizer/_variables") for k in after)
    before = oracle_values(src)
    for name, value in after.items():
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert same_bytes(value, before[name])


def test_import_like_reports_mismatches(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    values = native_values(src)
    arrays = {k: v for k, v in values.items() if "Adam" not in k and "power" not in k}
    kernel = next(k for k in arrays if k.endswith("kernel"))
    arrays[kernel] = arrays[kernel][:1]
    bias = next(k for k in arrays if k.endswith("bias"))
    arrays[bias] = arrays[bias].astype(np.float64)
    arrays["extra/thing"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "w.npz", **arrays)
    dst = tmp_path / "out" / "ckpt"
    dst.parent.mkdir()
    result = run("import", tmp_path / "w.npz", dst, "--like", src, "--json")
    assert result.exit_code == 1
    like = json.loads(result.stdout)["like"]
    assert not like["ok"] and like["unexpected"] == ["extra/thing"]
    assert [d["name"] for d in like["shape"]] == [kernel]
    assert like["dtype"] == [{"name": bias, "dtype": "float64", "like": "float32"}]
    assert any("Adam" in n for n in like["missing"])
    assert files_in(dst.parent) == set()
    text = run("import", tmp_path / "w.npz", dst, "--like", src)
    assert text.exit_code == 1 and "nothing written" in text.stdout


def test_import_foreign_files(tmp_path: Path) -> None:
    """Files written by other tools: safetensors.numpy, np.savez(_compressed), np.save."""
    from safetensors.numpy import save_file

    arrays = {
        "layer.0.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "layer.0.bias": np.array([1, 2, 3], dtype=np.int64),
        "flags": np.array([True, False]),
        "half": np.array([1.5, -2.0], dtype=np.float16),
    }
    save_file(arrays, str(tmp_path / "w.safetensors"), metadata={"format": "pt"})
    np.savez_compressed(
        tmp_path / "w.npz",
        big_endian=np.arange(5, dtype=">f4"),
        fortran=np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        words=np.array(["héllo", "w"]),
        raw=np.array([b"a\x00b", b""]),
    )
    (tmp_path / "dir").mkdir()
    np.save(tmp_path / "dir" / "a.npy", np.ones((2, 2), np.float64))
    np.save(tmp_path / "dir" / "b.npy", np.array(7, np.uint8))
    for src, expected in (
        ("w.safetensors", {k.replace(".", "/"): v for k, v in arrays.items()}),
        (
            "w.npz",
            {
                "big_endian": np.arange(5, dtype="<f4"),
                "fortran": np.arange(6, dtype=np.int32).reshape(2, 3),
                "words": np.array(["héllo".encode(), b"w"], dtype=object),
                "raw": np.array([b"a\x00b", b""], dtype=object),
            },
        ),
        ("dir", {"a": np.ones((2, 2)), "b": np.array(7, np.uint8)}),
    ):
        dst = tmp_path / (src.replace(".", "_") + "_ckpt") / "ckpt"
        dst.parent.mkdir()
        ok("import", tmp_path / src, dst, "--sep", ".")
        got = oracle_values(dst)
        assert sorted(got) == sorted(expected)
        for name, value in expected.items():
            assert same_bytes(got[name], value), (src, name)


def test_import_refuses_pickles_unless_allowed(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", obj=np.array([b"x", 3], dtype=object), ok=np.zeros(2))
    dst = tmp_path / "out" / "ckpt"
    dst.parent.mkdir()
    result = run("import", tmp_path / "p.npz", dst, "--strict")
    assert result.exit_code == 2 and "pickle" in result.stderr
    result = ok("import", tmp_path / "p.npz", dst)
    assert "skipped 1 tensor(s)" in result.stderr and "allow-pickle" in result.stderr
    assert set(native_values(dst)) == {"ok"}
    bad = run("import", tmp_path / "p.npz", dst, "--allow-pickle", "--force")
    assert bad.exit_code == 2 and "not strings" in bad.stderr


def test_import_corrupt_safetensors_is_exit_2(tmp_path: Path) -> None:
    header = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    for name, data in (
        ("short.safetensors", b"\x01\x02"),
        ("huge.safetensors", struct.pack("<Q", 1 << 40) + b"{}"),
        ("trunc.safetensors", struct.pack("<Q", len(header)) + header + b"\x00" * 8),
        ("json.safetensors", struct.pack("<Q", 4) + b"{{{{"),
    ):
        (tmp_path / name).write_bytes(data)
        result = run("import", tmp_path / name, tmp_path / "out")
        assert result.exit_code == 2, name
        assert result.stderr.startswith("tfckpt: error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out.index").exists()


def test_import_json_schema(nfx: Any, tmp_path: Path) -> None:
    ok("export", nfx["tf1_adam"].path, tmp_path / "w.npz")
    doc = ok_json("import", tmp_path / "w.npz", tmp_path / "c", "--dry-run")
    assert set(doc) == {
        "kind",
        "version",
        "ok",
        "source",
        "output",
        "format",
        "count",
        "bytes",
        "tensors",
        "skipped",
        "filtered",
        "like",
        "object_graph",
        "dry_run",
        "written",
        "checked",
        "notes",
    }
    assert set(doc["tensors"][0]) == {"source", "name", "dtype", "stored", "shape", "bytes"}
    assert doc["kind"] == "import" and doc["ok"] and doc["dry_run"] and not doc["written"]
    assert not (tmp_path / "c.index").exists()


# ---- cast --------------------------------------------------------------------------------------
def variable_dtypes(path: Any) -> dict[str, str]:
    """{name: dtype name} as TF's reader lists them when TF is installed, else tfckpt's."""
    prefix = resolve_prefix(str(path))[0]
    if HAVE_TF:
        from tfckpt.tf_engine.checkpoint import list_variables

        return {v.name: v.dtype for v in list_variables(prefix)}
    with open_checkpoint(prefix) as ckpt:
        return {i.name: i.dtype.name for i in ckpt.tensors()}


CAST_KINDS = ["dtypes", "tf1_adam", "partitioned", "tf2_keras"]


@pytest.mark.parametrize("target", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize(("origin", "kind"), [(o, k) for o in ("tf", "native") for k in CAST_KINDS])
def test_cast_loads_in_tf_with_numpy_values(
    request: pytest.FixtureRequest, tmp_path: Path, origin: str, kind: str, target: str
) -> None:
    src = fixtures_of(request, origin)[kind].path
    dst = tmp_path / "cast" / "ckpt"
    dst.parent.mkdir()
    doc = ok_json("cast", src, dst, "--dtype", target)
    before = variable_dtypes(src)
    after = variable_dtypes(dst)
    assert sorted(after) == sorted(before)
    values = oracle_values(src)
    if kind == "partitioned" and target != "float32" and HAVE_TF:
        # TF's reader cannot assemble float16/bfloat16 slices; the graph's Saver restores them.
        tf = request.getfixturevalue("tf")
        cast_values = restore_partitioned(tf, dst, getattr(tf, target))
    else:
        cast_values = oracle_values(dst)
    floating = {"float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2"}
    numpy_target = np.dtype(ml_dtypes.bfloat16) if target == "bfloat16" else np.dtype(target)
    cast_names = {c["name"] for c in doc["cast"]}
    for name, dtype in before.items():
        if dtype in floating and dtype != target:
            assert after[name] == target, name
            assert name in cast_names
            with np.errstate(over="ignore"):
                want = np.asarray(values[name]).astype(numpy_target)
            assert np.asarray(cast_values[name]).tobytes() == want.tobytes(), name
        else:
            assert after[name] == dtype, name
            assert same_bytes(cast_values[name], values[name]), name
    assert doc["bytes_before"] >= doc["bytes_after"] or target == "float32"


def restore_partitioned(tf: Any, prefix: Path, dtype: Any) -> dict[str, Any]:
    """The partitioned fixture's variables, built as DTYPE and restored by a Saver."""
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        rows = tf1.get_variable(
            "emb/rows", [10, 4], dtype, partitioner=tf1.fixed_size_partitioner(3, axis=0)
        )
        cols = tf1.get_variable(
            "emb/cols", [4, 9], dtype, partitioner=tf1.fixed_size_partitioner(3, axis=1)
        )
        plain = tf1.get_variable("plain", [3], dtype)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            saver.restore(sess, str(prefix))
            tensors = [tf.convert_to_tensor(rows), tf.convert_to_tensor(cols), plain]
            found = sess.run(tensors)
    return dict(zip(["emb/rows", "emb/cols", "plain"], found))


def test_cast_match_reports_sizes_and_overflow(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    doc = ok_json("cast", src, tmp_path / "c", "--dtype", "float16", "--match", "*/kernel")
    assert doc["cast"] and all(c["name"].endswith("/kernel") for c in doc["cast"])
    assert all(c["bytes_after"] * 2 == c["bytes_before"] for c in doc["cast"])
    assert doc["bytes_after"] < doc["bytes_before"]
    dry = ok("cast", src, tmp_path / "d", "--dtype", "bfloat16", "--dry-run")
    assert "dry run: nothing written" in dry.stderr and not (tmp_path / "d.index").exists()
    assert "14 cast to bfloat16, 1 unchanged" in dry.stdout
    arrays = {"big": np.array([1e6, 1.0, 1e-9], np.float32)}
    np.savez(tmp_path / "b.npz", **arrays)
    ok("import", tmp_path / "b.npz", tmp_path / "b")
    cast = run("cast", tmp_path / "b", tmp_path / "b16", "--dtype", "float16", "--json")
    assert cast.exit_code == 0
    record = json.loads(cast.stdout)["cast"][0]
    assert record["overflow"] == 1 and record["underflow"] == 1
    assert "became inf" in cast.stderr


# ---- ls --repair -------------------------------------------------------------------------------
@pytest.mark.skipif(not BAD_STATE_DIR.exists(), reason="corpus not present")
def test_repair_corpus_state_with_stale_absolute_paths(tmp_path: Path, tf: Any) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(BAD_STATE_DIR, moved)
    for p in [moved, *moved.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = (moved / "checkpoint").read_text()
    assert "/tmp/bad_half_plus_two" in before
    assert tf.train.latest_checkpoint(str(moved)) is None  # TF cannot find it
    plan = ok_json("ls", moved, "--repair", "--dry-run")
    assert plan["changed"] and not plan["written"] and plan["dry_run"]
    assert plan["latest"] == {
        "old": "/tmp/bad_half_plus_two/00000123/export",
        "new": "export",
        "status": "relocated",
        "timestamp": None,
    }
    assert (moved / "checkpoint").read_text() == before  # dry run
    text = ok("ls", moved, "--repair", "-n")
    assert "relocated" in text.stdout and "dry run: nothing written" in text.stderr
    # A listing of the moved directory says how to fix it.
    hint = ok("ls", moved).stderr
    assert f"`tfckpt ls --repair {moved}` points it at the ones beside it" in hint
    written = ok("ls", moved, "--repair")
    assert "repaired" in written.stdout and f"rewrote {moved}/checkpoint" in written.stderr
    assert tf.train.latest_checkpoint(str(moved)) == str(moved / "export")
    state = tf.train.get_checkpoint_state(str(moved))
    assert list(state.all_model_checkpoint_paths) == [str(moved / "export")]
    assert not ok_json("ls", moved, "--repair")["changed"]
    assert "hint" not in ok("ls", moved).stderr
    assert no_temp_files(moved)


def test_repair_copied_directory_keeps_order_and_timestamps(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    """A copy whose state file still names the original (existing!) checkpoints by absolute
    path: TF would silently use the originals. Repair points it at the copies."""
    original = fx["tf1_multi"].path
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    from tfckpt.bundle.state import format_state, read_state

    state = read_state(str(original))
    stamps = [1700000000.123456, 1700000100.5, 1700000200.25]
    absolute = [os.path.abspath(p) for p in state.all] + ["/gone/model.ckpt-40"]
    (copy / "checkpoint").write_text(
        format_state(absolute[2], absolute, [*stamps, 1700000300.0], 1699999999.5)
    )
    assert os.path.realpath(tf.train.latest_checkpoint(str(copy))).startswith(
        os.path.realpath(original)
    )
    plan = ok_json("ls", copy, "--repair")
    assert [e["status"] for e in plan["entries"]] == ["relocated"] * 3 + ["missing"]
    after = read_state(str(copy))
    assert after.raw_all == [os.path.basename(p) for p in absolute[:3]] + ["/gone/model.ckpt-40"]
    assert after.timestamps == [*stamps, 1700000300.0]
    assert after.last_preserved_timestamp == 1699999999.5
    assert after.raw_latest == os.path.basename(absolute[2])
    assert tf.train.latest_checkpoint(str(copy)) == str(copy / os.path.basename(absolute[2]))


def test_repair_without_state_file_is_exit_2(tmp_path: Path) -> None:
    result = run("ls", tmp_path, "--repair")
    assert result.exit_code == 2 and "no checkpoint state file" in result.stderr
    result = run("ls", tmp_path, "--dry-run")
    assert result.exit_code == 2 and "--dry-run goes with --repair" in result.stderr


# ---- no TensorFlow on native paths ---------------------------------------------------------------
def test_native_paths_never_import_tensorflow(nfx: Any, tmp_path: Path) -> None:
    src = str(nfx["tf2_keras"].path)
    (tmp_path / "i").mkdir()
    state_dir = tmp_path / "state"
    shutil.copytree(nfx["tf1_multi"].path, state_dir)
    for args in (
        ["export", src, str(tmp_path / "w.safetensors"), "--no-optimizer"],
        ["export", src, str(tmp_path / "w.npz")],
        ["export", src, str(tmp_path / "w") + "/"],
        ["import", str(tmp_path / "w.npz"), str(tmp_path / "i" / "c"), "--like", src],
        ["import", str(tmp_path / "w.safetensors"), str(tmp_path / "i" / "d")],
        ["cast", src, str(tmp_path / "i" / "e"), "--dtype", "bfloat16"],
        ["ls", str(state_dir), "--repair"],
    ):
        modules = modules_after(args)
        assert "tfckpt.cli" in modules
        assert not imports_tensorflow(modules), args


def test_export_refuses_special_shards_and_overlong_npz_names(tmp_path: Path) -> None:
    import os

    from tfckpt.bundle.writer import BundleWriter
    from tfckpt.dtypes import dtype_from_name

    prefix = tmp_path / "long" / "ckpt"
    with BundleWriter(str(prefix)) as writer:
        writer.add_array("x" * 70_000, np.zeros(2, np.float32), dtype_from_name("float32"))
        writer.commit()
    result = run("export", prefix, tmp_path / "o.npz")
    assert result.exit_code == 2 and "too long for a .npz member" in result.stderr
    assert not list(tmp_path.glob("o.npz*"))
    data = next((tmp_path / "long").glob("*.data-*"))
    data.unlink()
    os.mkfifo(data)
    result = run("export", prefix, tmp_path / "o.safetensors")
    assert result.exit_code == 2 and "FIFO" in result.stderr
    assert not list(tmp_path.glob("o.safetensors*"))
