"""rename / prune / merge, accepted by TensorFlow: names, bit-identical values, and restores.

Every output is loaded with tf.train.load_checkpoint (tfckpt's own reader where TF is not
installed: ``oracle_values``); TF1 graphs restore with a Saver (and via import_meta_graph for
--meta); TF2 objects restore with tf.train.Checkpoint and assert_existing_objects_matched. Tests
that need no TF run on the TF-free twins (``nfx``) or on both origins (``any_fx``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, run
from native_fixtures import TWINS, fixtures_of
from test_reader import same_value
from tfsave import oracle_values

from tfckpt.bundle import objgraph
from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint, resolve_prefix
from tfckpt.errors import GraphMergeError

from fixtures import CORPUS, EXAMPLES, Fixture, corpus_checkpoints

sys.path.insert(0, str(EXAMPLES))
import fixture_models


def tf_map(path: str) -> dict[str, Any]:
    """Every tensor as TF's reader returns it (test_remote's TF checks import this)."""
    from tfckpt.tf_engine.checkpoint import read_all

    return read_all(resolve_prefix(path)[0])


def assert_same_values(src: dict[str, Any], dst: dict[str, Any], renames: dict[str, str]) -> None:
    assert sorted(dst) == sorted(renames.get(k, k) for k in src)
    for name, value in src.items():
        if name != OBJECT_GRAPH_KEY:
            assert same_value(as_array(dst[renames.get(name, name)]), value), name


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# ---- rename ---------------------------------------------------------------------------------
KINDS = ["tf1_adam", "sharded", "partitioned", "dtypes", "savedmodel_tf1", "v1"]


@pytest.mark.parametrize(
    ("origin", "kind"), [("tf", k) for k in KINDS] + [("native", k) for k in KINDS if k in TWINS]
)
@pytest.mark.parametrize("link", [False, True])
def test_rename_every_fixture_kind(
    request: pytest.FixtureRequest, tmp_path: Path, origin: str, kind: str, link: bool
) -> None:
    src = str(fixtures_of(request, origin)[kind].path)
    before = oracle_values(src)
    dst = tmp_path / "out" / "renamed"
    dst.parent.mkdir()
    ok("rename", src, dst, "--add-prefix", "scope/", *(["--link"] if link else []))
    after = oracle_values(str(dst))
    assert_same_values(before, after, {k: "scope/" + k for k in before})
    assert (dst.parent / "checkpoint").read_text().startswith('model_checkpoint_path: "renamed"')


@pytest.mark.parametrize("prefix", corpus_checkpoints(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_rename_and_prune_corpus(prefix: Path, tmp_path: Path, tf: Any) -> None:
    before = oracle_values(str(prefix))
    args = ("rename", prefix, tmp_path / "r", "--sub", "^(.)", r"x\1", "--json")
    planned = json.loads(ok(*args, "--dry-run").stdout)["renames"]
    result = json.loads(ok(*args).stdout)
    assert result["renames"] == planned
    renames = {r["old"]: r["new"] for r in planned}
    assert set(renames) == set(before) - {OBJECT_GRAPH_KEY}
    after = oracle_values(str(tmp_path / "r"))
    assert_same_values(before, after, renames)
    if OBJECT_GRAPH_KEY in before:
        assert_object_graph_consistent(after)
    ok("prune", prefix, tmp_path / "p", "--no-optimizer")
    pruned = oracle_values(str(tmp_path / "p"))
    assert set(pruned) <= set(before)
    for name, value in pruned.items():
        if name != OBJECT_GRAPH_KEY:
            assert same_value(as_array(value), before[name]), name
    if OBJECT_GRAPH_KEY in before:
        assert_object_graph_consistent(pruned)


def as_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)


def assert_object_graph_consistent(values: dict[str, Any]) -> None:
    """Every attribute of the stored object graph names a stored key, and that key is the one
    TF derives from the object path."""
    graph = objgraph.parse(values[OBJECT_GRAPH_KEY])
    keys = [a.checkpoint_key for n in graph.nodes for a in n.attributes]
    assert set(keys) == set(values) - {OBJECT_GRAPH_KEY}
    for (node_id, index), key in objgraph.expected_keys(graph).items():
        assert graph.nodes[node_id].attributes[index].checkpoint_key == key


def test_tf2_rename_of_path_components_restores(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = str(fx["tf2_module"].path)
    dst = tmp_path / "ckpt-1"
    ok("rename", src, dst, "--sub", "^net/enc/", "net/encoder/")
    net = fixture_models.make_net(tf, enc_attr="encoder")
    for v in net.trainable_variables:
        v.assign(tf.zeros_like(v))
    tf.train.Checkpoint(net=net).restore(str(dst)).assert_existing_objects_matched()
    original = oracle_values(src)
    np.testing.assert_array_equal(
        net.encoder.w.numpy(), original["net/enc/w/.ATTRIBUTES/VARIABLE_VALUE"]
    )
    np.testing.assert_array_equal(
        net.dec.b.numpy(), original["net/dec/b/.ATTRIBUTES/VARIABLE_VALUE"]
    )
    # The old attribute name no longer matches.
    old = fixture_models.make_net(tf)
    status = tf.train.Checkpoint(net=old).restore(str(dst))
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()


def test_tf2_rename_that_is_not_a_path_rename_is_refused(nfx: Any, tmp_path: Path) -> None:
    src = str(nfx["tf2_module"].path)
    # Renames only one of the two variables under the shared 'enc' edge.
    result = run("rename", src, tmp_path / "x", "--sub", "^net/enc/w/", "net/encoder/w/")
    assert result.exit_code == 2 and "object edge" in result.stderr
    result = run("rename", src, tmp_path / "x", "--sub", "^net/enc/", "net/enc/deeper/")
    assert result.exit_code == 2 and "number of path components" in result.stderr
    assert files_in(tmp_path) == set()


def test_tf1_graph_with_new_names_restores(fx: dict[str, Fixture], tmp_path: Path, tf: Any) -> None:
    src = str(fx["tf1_adam"].path)
    dst = tmp_path / "model.ckpt-2"
    ok("rename", src, dst, "--sub", "^model/", "net/")
    values = oracle_values(src)
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        kernel = tf1.get_variable("net/dense0/kernel", [5, 8])
        bias = tf1.get_variable("net/dense1/bias", [1])
        saver = tf1.train.Saver([kernel, bias])
        with tf1.Session() as sess:
            saver.restore(sess, str(dst))
            np.testing.assert_array_equal(sess.run(kernel), values["model/dense0/kernel"])
            np.testing.assert_array_equal(sess.run(bias), values["model/dense1/bias"])


def restore_through_meta(tf: Any, prefix: Path) -> dict[str, Any]:
    """import_meta_graph(prefix.meta) + Saver.restore(prefix): every saved variable's value by
    checkpoint name, partitioned variables assembled from their parts."""
    tf1 = tf.compat.v1
    out: dict[str, Any] = {}
    with tf.Graph().as_default():
        saver = tf1.train.import_meta_graph(str(prefix) + ".meta", clear_devices=True)
        with tf1.Session() as sess:
            saver.restore(sess, str(prefix))
            for v in tf1.global_variables():
                value = sess.run(v)
                info = getattr(v, "_save_slice_info", None)
                if info is None:
                    out[v.op.name] = value
                    continue
                full = out.setdefault(info.full_name, np.zeros(info.full_shape, value.dtype))
                index = tuple(slice(o, o + n) for o, n in zip(info.var_offset, value.shape))
                full[index] = value
    return out


@pytest.mark.parametrize("kind", ["tf1_adam", "partitioned", "sharded"])
def test_rename_with_meta_imports_and_restores(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any, kind: str
) -> None:
    src = fx[kind].path
    dst = tmp_path / "model.ckpt"
    sub = ("--sub", "^(model|emb|dev0|dev1|plain)/?", r"renamed_\1/")
    result = ok("rename", src, dst, *sub, "--meta", "--json")
    assert "not carried over" not in result.stderr
    renames = {r["old"]: r["new"] for r in json.loads(result.stdout)["renames"]}
    assert renames
    values = oracle_values(str(src))
    restored = restore_through_meta(tf, dst)
    assert sorted(restored) == sorted(renames.get(k, k) for k in values)
    for name, value in values.items():
        np.testing.assert_array_equal(restored[renames.get(name, name)], value)


META_CORPUS = [
    p
    for p in corpus_checkpoints()
    if p.with_suffix(".meta").exists() or Path(str(p) + ".meta").exists()
]


@pytest.mark.parametrize("prefix", META_CORPUS, ids=lambda p: str(p.relative_to(CORPUS)))
def test_rename_with_meta_corpus(prefix: Path, tmp_path: Path, tf: Any) -> None:
    if resolve_prefix(str(prefix))[1] != "V2":
        # A V1 Saver graph restores only V1 files, and rename writes V2: refused, nothing written.
        result = run("rename", prefix, tmp_path / "x", "--add-prefix", "m/", "--meta")
        assert result.exit_code == 2 and "restores only V1 files" in result.stderr
        assert list(tmp_path.iterdir()) == []
        return
    try:
        original = restore_through_meta(tf, prefix)
    except Exception as exc:  # e.g. TF 2.x cannot parse the producer version '0.12.head'
        pytest.skip(f"TensorFlow cannot import the original .meta: {type(exc).__name__}")
    dst = tmp_path / "model.ckpt"
    result = ok("rename", prefix, dst, "--add-prefix", "moved/", "--meta", "--json")
    renames = {r["old"]: r["new"] for r in json.loads(result.stdout)["renames"]}
    restored = restore_through_meta(tf, dst)
    values = oracle_values(str(prefix))
    assert sorted(restored) == sorted(renames[k] for k in original)
    for name, value in values.items():
        np.testing.assert_array_equal(restored[renames[name]], value)


def test_rename_without_meta_says_so(nfx: Any, tmp_path: Path) -> None:
    result = ok("rename", nfx["tf1_adam"].path, tmp_path / "x", "--add-prefix", "a/")
    assert "was not carried over" in result.stderr
    assert not (tmp_path / "x.meta").exists()


def test_dry_run_and_json_plan(nfx: Any, tmp_path: Path) -> None:
    result = ok(
        "rename",
        nfx["tf1_adam"].path,
        tmp_path / "x",
        "--strip-prefix",
        "model/",
        "--dry-run",
        "--json",
    )
    plan = json.loads(result.stdout)
    assert {"old": "model/dense0/kernel", "new": "dense0/kernel"} in plan["renames"]
    assert plan["unchanged"] == 3 and plan["conflicts"] == [] and plan["dry_run"]
    assert files_in(tmp_path) == set()


def test_mapping_file_csv_and_json(nfx: Any, tmp_path: Path) -> None:
    csv = tmp_path / "map.csv"
    csv.write_text("old,new\nglobal_step,step\nmodel/dense0/bias,b0\n")
    ok("rename", nfx["tf1_adam"].path, tmp_path / "a", "--mapping", csv)
    names = set(oracle_values(str(tmp_path / "a")))
    assert {"step", "b0"} <= names and "global_step" not in names
    result = ok("rename", nfx["tf1_adam"].path, tmp_path / "c", "--mapping", csv, "--json", "-n")
    assert json.loads(result.stdout)["unmatched_mapping"] == []
    csv.write_text("global_step,step\nno/such/var,x\n")
    result = ok("rename", nfx["tf1_adam"].path, tmp_path / "c", "--mapping", csv, "-n")
    assert "1 mapping name(s) are not in the checkpoint: 'no/such/var'" in result.stderr
    # A rename that changes no name is a typo: exit 2, nothing written, the closest names shown.
    result = run("rename", nfx["tf1_adam"].path, tmp_path / "c", "--sub", "^modle/dense0/", "x/")
    assert result.exit_code == 2 and "no name matches the rules" in result.stderr
    assert (
        "closest names: 'model/dense0/'" in result.stderr and "--allow-unchanged" in result.stderr
    )
    assert not (tmp_path / "c.index").exists()
    args = ("--sub", "^nomatch", "x", "--allow-unchanged")
    result = ok("rename", nfx["tf1_adam"].path, tmp_path / "c", *args)
    assert "no name matches the rules" in result.stderr and (tmp_path / "c.index").exists()
    tsv = tmp_path / "map.tsv"
    tsv.write_text("global_step\tstep2\n")
    ok("rename", nfx["tf1_adam"].path, tmp_path / "b", "--mapping", tsv)
    assert "step2" in oracle_values(str(tmp_path / "b"))


def test_conflicts_are_exit_2_and_write_nothing(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        (["--sub", "/Adam(_1)?$", ""], "collides with an unchanged name"),
        (["--sub", ".*", "same"], "would all be renamed to"),
        (["--sub", "^global_step$", ""], "empty name"),
        (["--sub", "(", "x"], "bad sub"),
    ]
    for args, message in cases:
        result = run("rename", src, out / "x", *args)
        assert result.exit_code == 2, args
        assert message in result.stderr and result.stderr.count("\n") == 1
    assert files_in(out) == set()


def test_missing_source_existing_and_readonly_destination(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    result = run("rename", tmp_path / "nope", tmp_path / "x", "--add-prefix", "a/")
    assert result.exit_code == 2
    ok("rename", src, tmp_path / "x", "--add-prefix", "a/")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    for command in (
        ["rename", src, tmp_path / "x", "--add-prefix", "b/"],
        ["prune", src, tmp_path / "x", "--no-optimizer"],
    ):
        result = run(*command)
        assert result.exit_code == 2 and "exists" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    ok("rename", src, tmp_path / "x", "--add-prefix", "b/", "--force")
    assert "b/global_step" in oracle_values(str(tmp_path / "x"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        result = run("prune", src, ro / "x", "--no-optimizer")
        assert result.exit_code == 2 and "not writable" in result.stderr
    finally:
        ro.chmod(stat.S_IRWXU)
    assert files_in(ro) == set()


# ---- prune ----------------------------------------------------------------------------------
def test_prune_optimizer_tf1(nfx: Any, tmp_path: Path) -> None:
    for kind in ("tf1_adam", "tf1_slots"):
        src = str(nfx[kind].path)
        before = oracle_values(src)
        result = ok("prune", src, tmp_path / kind, "--no-optimizer", "--json")
        report = json.loads(result.stdout)
        after = oracle_values(str(tmp_path / kind))
        assert sorted(after) == [
            "global_step",
            "model/dense0/bias",
            "model/dense0/kernel",
            "model/dense1/bias",
            "model/dense1/kernel",
        ]
        for name, value in after.items():
            assert same_value(np.asarray(value), before[name])
        assert report["bytes_after"] < report["bytes_before"]
        assert (
            os.path.getsize(str(tmp_path / kind) + ".data-00000-of-00001") == report["bytes_after"]
        )


def test_prune_drop_keep_and_global_step(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    ok(
        "prune",
        src,
        tmp_path / "a",
        "--drop",
        "^model/dense1/",
        "--keep",
        "^model/dense1/kernel$",
        "--drop-global-step",
    )
    names = set(oracle_values(str(tmp_path / "a")))
    assert "model/dense1/kernel" in names and "model/dense1/bias" not in names
    assert "global_step" not in names and "model/dense0/kernel/Adam" in names
    result = run("prune", src, tmp_path / "b", "--drop", "[")
    assert result.exit_code == 2 and "bad drop" in result.stderr


def test_prune_partitioned_sharded_and_strings(any_fx: Any, tmp_path: Path) -> None:
    for kind, drop in (("partitioned", "^plain$"), ("sharded", "^dev1/c$"), ("dtypes", "^dt/int")):
        src = str(any_fx[kind].path)
        before = oracle_values(src)
        ok("prune", src, tmp_path / kind, "--drop", drop)
        after = oracle_values(str(tmp_path / kind))
        import re

        assert sorted(after) == sorted(k for k in before if not re.search(drop, k))
        for name, value in after.items():
            assert same_value(
                np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value),
                before[name],
            ), name


def test_prune_optimizer_tf2_keras_restores_model(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = str(fx["tf2_keras"].path)
    dst = tmp_path / "ckpt-1"
    result = ok("prune", src, dst, "--no-optimizer", "--json")
    dropped = json.loads(result.stdout)["drop"]
    assert dropped and all(d.startswith("optimizer/_") for d in dropped)
    model = fixture_models.build_keras_model(tf)
    tf.train.Checkpoint(model=model).restore(str(dst)).assert_existing_objects_matched()
    original = fixture_models.build_keras_model(tf)
    tf.train.Checkpoint(model=original).restore(src).expect_partial()
    for a, b in zip(model.weights, original.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    remaining = oracle_values(str(dst))
    # Keras 3 lists the model's weights under optimizer/_trainable_variables (the first
    # breadth-first path to them): those stay; the optimizer's own state goes.
    assert not any(
        k.startswith(("optimizer/_variables/", "optimizer/_iterations")) for k in remaining
    )
    assert sum(k.startswith("optimizer/_trainable_variables/") for k in remaining) == 4


def _flags(raw: bytes) -> list[bool | None]:
    graph = objgraph.parse(raw)
    return [
        n.has_checkpoint_values.value if n.HasField("has_checkpoint_values") else None
        for n in graph.nodes
    ]


def _recomputed_flags(raw: bytes) -> list[bool | None]:
    graph = objgraph.parse(raw)
    for node in graph.nodes:
        if node.HasField("has_checkpoint_values"):
            node.has_checkpoint_values.value = not node.has_checkpoint_values.value
    objgraph._update_has_values(graph)
    return _flags(graph.SerializeToString())


def test_has_checkpoint_values_recomputed_as_tensorflow_writes_them(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    # A TF2 checkpoint of a TF1-style optimizer: its node holds slot variables, and after its
    # own variables are pruned it holds nothing else.
    v = tf.Variable([1.0, 2.0])
    opt = tf.compat.v1.train.AdamOptimizer(0.1)
    opt.minimize(lambda: tf.reduce_sum(v * v), var_list=[v])
    src = tf.train.Checkpoint(v=v, opt=opt).write(str(tmp_path / "src" / "ckpt"))
    graphs = {"slots": src}
    graphs.update({k: str(f.path) for k, f in fx.items() if k.startswith("tf2_")})
    for name, path in graphs.items():
        with open_checkpoint(path) as ckpt:
            raw = ckpt.object_graph_bytes()
        assert raw is not None, name
        assert None not in _flags(raw), name
        assert _recomputed_flags(raw) == _flags(raw), name  # the same flags TF wrote
    dst = tmp_path / "dst" / "ckpt"
    ok("prune", src, dst, "--drop", "^opt/beta")
    with open_checkpoint(str(dst)) as ckpt:
        graph = objgraph.parse(ckpt.object_graph_bytes())
    (opt_id,) = [c.node_id for c in graph.nodes[0].children if c.local_name == "opt"]
    assert graph.nodes[opt_id].slot_variables and not graph.nodes[opt_id].attributes
    assert graph.nodes[opt_id].has_checkpoint_values.value
    # and TF restores the slots into an optimizer created after the restore started
    w = tf.Variable([0.0, 0.0])
    fresh = tf.compat.v1.train.AdamOptimizer(0.1)
    tf.train.Checkpoint(v=w, opt=fresh).read(str(dst))
    np.testing.assert_array_equal(w.numpy(), v.numpy())
    fresh.minimize(lambda: tf.reduce_sum(w * 0.0), var_list=[w])  # zero gradients: m *= 0.9
    expected = 0.9 * opt.get_slot(v, "m").numpy()
    np.testing.assert_allclose(fresh.get_slot(w, "m").numpy(), expected, rtol=1e-6)


def test_prune_dry_run_reports_sizes(nfx: Any, tmp_path: Path) -> None:
    result = ok("prune", nfx["tf1_adam"].path, tmp_path / "x", "--no-optimizer", "--dry-run")
    assert "dropped" in result.stdout and "saved" in result.stdout
    assert files_in(tmp_path) == set()


# ---- merge ----------------------------------------------------------------------------------
def test_merge_restores_both_models_under_scopes(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    a, b = str(fx["tf1_adam"].path), str(fx["partitioned"].path)
    out = tmp_path / "merged"
    result = ok("merge", f"{a}:enc/", f"{b}:head/", "--json", "-o", out)
    assert json.loads(result.stdout)["shards"] == 2
    merged = oracle_values(str(out))
    va, vb = oracle_values(a), oracle_values(b)
    assert sorted(merged) == sorted(["enc/" + k for k in va] + ["head/" + k for k in vb])
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        k = tf1.get_variable("enc/model/dense0/kernel", [5, 8])
        rows = tf1.get_variable("head/emb/rows", [10, 4], partitioner=tf1.fixed_size_partitioner(3))
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            saver.restore(sess, str(out))
            np.testing.assert_array_equal(sess.run(k), va["model/dense0/kernel"])
            np.testing.assert_array_equal(sess.run(tf.convert_to_tensor(rows)), vb["emb/rows"])


def test_merge_duplicates_prefer_and_v1(any_fx: Any, tmp_path: Path) -> None:
    a = str(any_fx["tf1_adam"].path)
    multi = any_fx["tf1_multi"].path
    b = str(multi / "model.ckpt-10")
    result = run("merge", a, b, "-o", tmp_path / "x")
    assert result.exit_code == 2 and "duplicate" in result.stderr
    assert files_in(tmp_path) == set()
    ok("merge", a, b, "--prefer", "first", "-o", tmp_path / "first")
    ok("merge", a, b, "--prefer", "last", "-o", tmp_path / "last")
    assert same_value(
        np.asarray(oracle_values(str(tmp_path / "first"))["global_step"]),
        oracle_values(a)["global_step"],
    )
    assert same_value(
        np.asarray(oracle_values(str(tmp_path / "last"))["global_step"]),
        oracle_values(b)["global_step"],
    )
    v1 = str(any_fx["v1"].path)
    ok("merge", f"{a}:a/", f"{v1}:old/", "--link", "-o", tmp_path / "mixed")
    merged = oracle_values(str(tmp_path / "mixed"))
    assert "old/v1/a" in merged and "a/global_step" in merged


def test_merge_refuses_escaping_scopes(nfx: Any, tmp_path: Path) -> None:
    result = run("merge", f"{nfx['tf1_adam'].path}:../evil/", "-o", tmp_path / "x")
    assert result.exit_code == 2 and "bad scope" in result.stderr


KERAS_SLOTS = CORPUS / "tensorflow__rust/examples/keras_multiple_inputs_saved_model"


@pytest.mark.skipif(not KERAS_SLOTS.is_dir(), reason="corpus absent")
def test_tf2_slot_keys_follow_a_renamed_optimizer(tmp_path: Path, tf: Any) -> None:
    result = ok("rename", KERAS_SLOTS, tmp_path / "r", "--sub", "^optimizer/", "opt/", "--json")
    renames = {r["old"]: r["new"] for r in json.loads(result.stdout)["renames"]}
    slot = "layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
    assert renames[slot] == slot.replace("/optimizer/", "/opt/")
    assert renames["optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"] == (
        "opt/iter/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert "slot key(s) follow" in result.stderr
    after = oracle_values(str(tmp_path / "r"))
    assert_object_graph_consistent(after)
    graph = objgraph.parse(after[OBJECT_GRAPH_KEY])
    assert "opt" in {c.local_name for c in graph.nodes[0].children}
    assert_same_values(oracle_values(str(KERAS_SLOTS / "variables/variables")), after, renames)


def test_merge_tf2_checkpoints_restore_under_their_scopes(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    module, keras = str(fx["tf2_module"].path), str(fx["tf2_keras"].path)
    out = tmp_path / "merged"
    result = ok("merge", f"{module}:pre/trained/", f"{keras}:head/", "--json", "-o", out)
    assert "not merged" not in result.stderr
    merged = oracle_values(str(out))
    assert_object_graph_consistent(merged)
    assert "pre/trained/net/enc/w/.ATTRIBUTES/VARIABLE_VALUE" in merged
    net = fixture_models.make_net(tf)
    model = fixture_models.build_keras_model(tf)
    for v in [*net.trainable_variables, *model.weights]:
        v.assign(tf.zeros_like(v))
    root = tf.train.Checkpoint(
        pre=tf.train.Checkpoint(trained=tf.train.Checkpoint(net=net)),
        head=tf.train.Checkpoint(model=model),
    )
    # read(), unlike restore(), does not create the new root's own save_counter.
    root.read(str(out)).assert_existing_objects_matched()
    np.testing.assert_array_equal(
        net.enc.w.numpy(), oracle_values(module)["net/enc/w/.ATTRIBUTES/VARIABLE_VALUE"]
    )
    original = fixture_models.build_keras_model(tf)
    tf.train.Checkpoint(model=original).restore(keras).expect_partial()
    for a, b in zip(model.weights, original.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_merge_tf2_unscoped_roots_share_one_root(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    module, keras = str(fx["tf2_module"].path), str(fx["tf2_keras"].path)
    # Both roots hold a save_counter: the dropped one leaves no object behind.
    result = ok("merge", module, keras, "--prefer", "last", "-o", tmp_path / "m")
    assert "not merged" not in result.stderr
    merged = oracle_values(str(tmp_path / "m"))
    assert_object_graph_consistent(merged)
    net, model = fixture_models.make_net(tf), fixture_models.build_keras_model(tf)
    tf.train.Checkpoint(net=net, model=model).read(
        str(tmp_path / "m")
    ).assert_existing_objects_matched()
    assert same_value(
        as_array(merged["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]),
        oracle_values(keras)["save_counter/.ATTRIBUTES/VARIABLE_VALUE"],
    )
    # A TF1 input next to a TF2 one: its names are extra keys outside the object graph.
    ok("merge", f"{module}:m/", f"{fx['tf1_adam'].path}:tf1/", "-o", tmp_path / "n")
    mixed = oracle_values(str(tmp_path / "n"))
    assert "tf1/model/dense0/kernel" in mixed
    graph = objgraph.parse(mixed[OBJECT_GRAPH_KEY])
    keys = {a.checkpoint_key for n in graph.nodes for a in n.attributes}
    assert keys == {k for k in mixed if k.startswith("m/")}


def test_merge_graphs_refuses_two_objects_under_one_name() -> None:
    from tfckpt import protos

    graph = protos.TrackableObjectGraph()
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="v")
    graph.nodes.add().attributes.add(
        name="VARIABLE_VALUE", checkpoint_key="v/.ATTRIBUTES/VARIABLE_VALUE"
    )
    raw = graph.SerializeToString()
    keys = {"v/.ATTRIBUTES/VARIABLE_VALUE": "v/.ATTRIBUTES/VARIABLE_VALUE"}
    with pytest.raises(GraphMergeError, match="both hold an object 'v'"):
        objgraph.merge_graphs([(raw, "", keys), (raw, "", keys)])
    merged = objgraph.parse(objgraph.merge_graphs([(raw, "a/", keys), (raw, "", {})]))
    assert [c.local_name for c in merged.nodes[0].children] == ["a"]


def test_sync_writes_the_same_files(nfx: Any, tmp_path: Path) -> None:
    src = str(nfx["partitioned"].path)
    commands = {
        "rename": ["rename", src, "{}", "--add-prefix", "s/"],
        "prune": ["prune", src, "{}", "--drop", "^plain$"],
        "merge": ["merge", f"{src}:a/", f"{nfx['tf2_module'].path}:b/", "-o", "{}"],
    }
    for name, args in commands.items():
        outputs = []
        for flags in ([], ["--sync"]):
            out = tmp_path / name / ("sync" if flags else "plain") / "ckpt"
            out.parent.mkdir(parents=True)
            ok(*[str(out) if a == "{}" else a for a in args], *flags)
            outputs.append(
                {p.name: p.read_bytes() for p in out.parent.iterdir() if p.name != "checkpoint"}
            )
        assert outputs[0] == outputs[1], name


def test_missing_destination_directories_are_created_and_removed_on_failure(
    nfx: Any, tmp_path: Path
) -> None:
    src = nfx["tf1_adam"].path
    ok("rename", src, tmp_path / "a" / "b" / "model.ckpt", "--add-prefix", "s/")
    assert "s/global_step" in oracle_values(str(tmp_path / "a" / "b" / "model.ckpt"))
    (tmp_path / "file").write_text("x")
    result = run("rename", src, tmp_path / "file" / "sub" / "x", "--add-prefix", "s/")
    assert result.exit_code == 2 and "not a directory" in result.stderr
    # A source that fails half-way (a truncated data shard) leaves no new directory behind.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(src).parent.glob(Path(src).name + ".*"):
        (broken / f.name).write_bytes(f.read_bytes())
    data = next(broken.glob("*.data-*"))
    data.write_bytes(data.read_bytes()[:-8])
    result = run(
        "prune", broken / Path(src).name, tmp_path / "new" / "deeper" / "x", "--drop", "^x$"
    )
    assert result.exit_code == 2 and "truncated" in result.stderr
    assert not (tmp_path / "new").exists()


TFX_ESTIMATOR = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"


@pytest.mark.skipif(not TFX_ESTIMATOR.is_dir(), reason="corpus absent")
def test_prune_optimizer_keras_v2_graph_mode_names(tmp_path: Path) -> None:
    """Keras optimizers under an Estimator keep their state under training/<Optimizer>/."""
    before = oracle_values(str(TFX_ESTIMATOR / "model.ckpt-1000"))
    ok("prune", TFX_ESTIMATOR, tmp_path / "p", "--no-optimizer")
    after = oracle_values(str(tmp_path / "p"))
    assert sorted(after) == sorted(k for k in before if not k.startswith("training/"))
    assert "global_step" in after and len(before) - len(after) == 39


def test_tf2_add_prefix_nests_the_objects_under_a_scope(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = str(fx["tf2_module"].path)
    ok("rename", src, tmp_path / "r", "--add-prefix", "outer/inner/")
    after = oracle_values(str(tmp_path / "r"))
    assert "outer/inner/net/enc/w/.ATTRIBUTES/VARIABLE_VALUE" in after
    assert_object_graph_consistent(after)
    net = fixture_models.make_net(tf)
    root = tf.train.Checkpoint(outer=tf.train.Checkpoint(inner=tf.train.Checkpoint(net=net)))
    root.read(str(tmp_path / "r")).assert_existing_objects_matched()
    np.testing.assert_array_equal(
        net.dec.w.numpy(), oracle_values(src)["net/dec/w/.ATTRIBUTES/VARIABLE_VALUE"]
    )
    # Only some keys moved deeper: not a path rename; the message says what to do instead.
    result = run("rename", src, tmp_path / "x", "--sub", "^net/", "a/net/")
    assert result.exit_code == 2 and "--add-prefix SCOPE/" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.skipif(not KERAS_SLOTS.is_dir(), reason="corpus absent")
def test_tf2_add_prefix_with_slot_variables(tmp_path: Path, tf: Any) -> None:
    ok("rename", KERAS_SLOTS, tmp_path / "r", "--add-prefix", "p/")
    before = oracle_values(str(KERAS_SLOTS / "variables/variables"))
    after = oracle_values(str(tmp_path / "r"))
    assert_same_values(before, after, {k: "p/" + k for k in before if k != OBJECT_GRAPH_KEY})
    graph = objgraph.parse(after[OBJECT_GRAPH_KEY])
    keys = {a.checkpoint_key for n in graph.nodes for a in n.attributes}
    assert keys == set(after) - {OBJECT_GRAPH_KEY}
    assert sum(len(n.slot_variables) for n in graph.nodes) == 8


def test_destination_given_as_a_file_name_and_quiet_notes(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    result = ok("prune", src, tmp_path / "x.index", "--no-optimizer", "-q")
    assert (tmp_path / "x.index").is_file() and not (tmp_path / "x.index.index").exists()
    assert "note" not in result.stderr  # -q: no "was not carried over"
    result = ok("rename", src, tmp_path / "y.data-00000-of-00001", "--add-prefix", "a/")
    assert (
        "a/global_step" in oracle_values(str(tmp_path / "y"))
        and "not carried over" in result.stderr
    )


def test_force_replaces_the_old_meta_too(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    dst = tmp_path / "model.ckpt"
    ok("rename", src, dst, "--add-prefix", "a/", "--meta")
    assert (tmp_path / "model.ckpt.meta").exists()
    ok("prune", src, dst, "--no-optimizer", "--force")  # the old .meta described a/ names
    assert not (tmp_path / "model.ckpt.meta").exists()
    ok("rename", src, dst, "--add-prefix", "b/", "--meta", "--force")
    meta = (tmp_path / "model.ckpt.meta").read_bytes()
    assert b"b/model/dense0/kernel" in meta and b"a/model/dense0/kernel" not in meta


# The name-based optimizer rule as one regex (how it was first written): tf1_slot_flags
# matches components instead, and must agree with it on every name.
_SLOT_SPEC = re.compile(
    r"(/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adagrad_\d+|AdagradDA|AdagradDA_\d+"
    r"|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|Adamax|Adamax_\d+|Nadam|Nadam_\d+"
    r"|ProximalAdagrad|GradientDescent|ExponentialMovingAverage)\Z)"
    r"|(^|/)(beta1_power|beta2_power)(_\d+)?\Z"
    r"|^(training/)?(Adadelta|Adafactor|Adagrad|Adam|AdamW|Adamax|Ftrl|Lion|LossScaleOptimizer"
    r"|Nadam|RMSprop|SGD)(_\d+)?/"
)


def test_optimizer_names_by_component_agree_with_the_rule() -> None:
    import itertools

    from tfckpt.names import is_tf1_slot, tf1_slot_flags

    parts = [
        "",
        "v",
        "Adam",
        "Adam_1",
        "Adam_x",
        "Adam_١",
        "AdamW",
        "training",
        "SGD_2",
        "beta1_power",
        "beta2_power_3",
        "xbeta1_power",
        "Momentum",
        "kernel",
        "Ftrl",
    ]
    names = ["/".join(p) for k in (1, 2, 3) for p in itertools.product(parts, repeat=k)]
    expected = [bool(_SLOT_SPEC.search(n)) for n in names]
    assert list(map(bool, tf1_slot_flags(names))) == expected
    assert [is_tf1_slot(n) for n in names] == expected
    assert 0 < sum(expected) < len(names)
    assert is_tf1_slot("training/Adam/dense/kernel/m") and not is_tf1_slot("training/dense/m")
    assert is_tf1_slot("Adam_١/iter") and not is_tf1_slot("dense/kernel/Adam_x")
