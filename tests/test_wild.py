"""Real checkpoints from the wild (issue 12), each case checked against TensorFlow.

* ``rename --meta`` on an Estimator-style graph with TF1 control flow under renamed names: the
  renamed .meta imports, restores and runs (forward, training step, new gradients) in TF.
* Damaged sources (truncated shard, another checkpoint's data, one flipped bit): rename, merge
  and prune refuse them, naming tensor and shard, and leave no destination.
* A Keras 3 optimizer tracked below the root (``tf.train.Checkpoint(net=model)``): prune
  --optimizer and export --no-optimizer drop its state and keep the model.
* An index without its data: listings work with a warning; value readers exit 2.
* Every command with a bare relative prefix, ``./``, an absolute prefix and the directory.
* The smaller ones: flattened SavedModels, invalid node names, ``ls`` of a listed checkpoint
  whose .meta alone remains, one verify line per missing shard, Git LFS pointers.

What needs no TF (no restore, no TF1 control flow) runs on the TF-free twins (``nfx``), whose
damaged copies and Saver graphs TF confirms in test_native_fixtures.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, run

from tfckpt import protos
from tfckpt.bundle.checkpoint import open_checkpoint
from tfckpt.bundle.reader import BundleReader

from fixtures import EXAMPLES, Fixture

sys.path.insert(0, str(EXAMPLES))
import fixture_models

DATA = ".data-00000-of-00001"


def copy_prefix(prefix: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in prefix.parent.iterdir():
        if path.name.startswith(prefix.name + "."):
            shutil.copyfile(path, dest / path.name)
    return dest / prefix.name


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def one_error(result: Any) -> str:
    """The single ``tfckpt: error:`` line of a failed run (exit 2)."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.rstrip("\n").split("\n")
    errors = [line for line in lines if line.startswith("tfckpt: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


# ---- 1. rename --meta with TF1 control flow ---------------------------------------------------
def run_renamed_meta(tf: Any, prefix: str, fx_info: dict[str, Any], node: dict[str, str]) -> None:
    """Import ``prefix``.meta into a fresh graph, restore ``prefix`` and fetch what the manifest
    recorded; then run the training step and build new gradients through the while loops (which
    uses the imported control-flow contexts)."""
    tf1 = tf.compat.v1
    expected = fx_info["fetch"]
    names = {
        k: node.get(v.split(":")[0], v.split(":")[0]) + ":0" for k, v in fx_info["tensors"].items()
    }
    graph = tf.Graph()
    with graph.as_default():
        saver = tf1.train.import_meta_graph(prefix + ".meta")
        with tf1.Session() as sess:
            saver.restore(sess, prefix)
            got = sess.run({k: graph.get_tensor_by_name(v) for k, v in names.items()})
            np.testing.assert_allclose(got["total"], expected["total"], rtol=1e-6)
            np.testing.assert_allclose(got["doubled"], expected["doubled"], rtol=1e-6)
            assert int(got["step"]) == expected["step"]
            sess.run(graph.get_collection("train_op")[0])
            after = sess.run(graph.get_tensor_by_name(names["total"]))
            np.testing.assert_allclose(after, expected["total_after_train"], rtol=1e-5)
            total = graph.get_tensor_by_name(names["total"])
            (w,) = [
                v
                for v in tf1.global_variables()
                if v.op.name.endswith("w") and "/Adam" not in v.op.name
            ]
            (grad,) = tf.gradients(tf.reduce_sum(total), w)
            assert np.all(np.isfinite(sess.run(grad)))


RENAMES = {
    "add-prefix": (["--add-prefix", "est/"], "est/"),
    "sub": (["--sub", "^model/", "net/", "--sub", "^global_step$", "gs"], None),
}


@pytest.mark.parametrize("rules", sorted(RENAMES))
def test_rename_meta_with_tf1_control_flow_imports_and_restores(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any, rules: str
) -> None:
    src = fx["estimator_cf"]
    args, scope = RENAMES[rules]
    dst = tmp_path / "out" / "model.ckpt-1"
    ok("rename", src.path, dst, *args, "--meta", "-q")
    # Where the fetched nodes went: the read of global_step sits in its scope (global_step/cond).
    if scope is not None:
        node = {"global_step/step_read": scope + "global_step/step_read"}
    else:
        node = {"global_step/step_read": "gs/step_read"}
    run_renamed_meta(tf, str(dst), src.info, node)
    # Every name inside the control-flow contexts moved with its node: none is left dangling.
    meta = protos.MetaGraphDef.FromString(Path(str(dst) + ".meta").read_bytes())
    nodes = {n.name for n in meta.graph_def.node}
    contexts = [
        protos.CondContextDef.FromString(raw)
        for raw in meta.collection_def["cond_context"].bytes_list.value
    ] + [
        protos.WhileContextDef.FromString(raw)
        for raw in meta.collection_def["while_context"].bytes_list.value
    ]
    assert len(contexts) >= 4
    for ctx in contexts:
        refs = list(ctx.values_def.values) + list(ctx.values_def.external_values)
        refs += list(ctx.values_def.external_values.values())
        assert refs and all(r.split(":")[0] in nodes for r in refs), ctx.context_name


def test_rename_meta_original_graph_fails_without_the_contexts_renamed(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    """The oracle itself: the contexts really are what TF needs (a .meta whose contexts keep the
    old names does not import), so the test above can fail."""
    src = fx["estimator_cf"]
    dst = tmp_path / "out" / "model.ckpt-1"
    ok("rename", src.path, dst, "--add-prefix", "est/", "--meta", "-q")
    meta = protos.MetaGraphDef.FromString(Path(str(dst) + ".meta").read_bytes())
    original = protos.MetaGraphDef.FromString(Path(str(src.meta)).read_bytes())
    meta.collection_def["cond_context"].CopyFrom(original.collection_def["cond_context"])
    Path(str(dst) + ".meta").write_bytes(meta.SerializeToString())
    with tf.Graph().as_default(), pytest.raises(KeyError):
        tf.compat.v1.train.import_meta_graph(str(dst) + ".meta")


def test_control_flow_protos_match_tensorflow(fx: dict[str, Fixture], tf: Any) -> None:
    from tensorflow.core.protobuf import control_flow_pb2, queue_runner_pb2

    for ours, theirs in (
        (protos.ValuesDef, control_flow_pb2.ValuesDef),
        (protos.ControlFlowContextDef, control_flow_pb2.ControlFlowContextDef),
        (protos.CondContextDef, control_flow_pb2.CondContextDef),
        (protos.WhileContextDef, control_flow_pb2.WhileContextDef),
        (protos.QueueRunnerDef, queue_runner_pb2.QueueRunnerDef),
    ):
        fields = {f.name: (f.number, f.type) for f in ours.DESCRIPTOR.fields}
        expected = {f.name: (f.number, f.type) for f in theirs.DESCRIPTOR.fields}
        enum_as_int = {k: (n, 5 if t == 14 else t) for k, (n, t) in expected.items()}
        assert fields == enum_as_int, ours.DESCRIPTOR.name
    meta = protos.MetaGraphDef.FromString(Path(str(fx["estimator_cf"].meta)).read_bytes())
    for key, ours, theirs in (
        ("cond_context", protos.CondContextDef, control_flow_pb2.CondContextDef),
        ("while_context", protos.WhileContextDef, control_flow_pb2.WhileContextDef),
    ):
        for raw in meta.collection_def[key].bytes_list.value:
            mine, tfs = ours.FromString(raw), theirs.FromString(raw)
            assert mine.SerializeToString(deterministic=True) == tfs.SerializeToString(
                deterministic=True
            )


def test_rename_meta_leaves_unknown_collections_with_a_note(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = copy_prefix(fx["tf1_adam"].path, tmp_path / "src")
    meta = protos.MetaGraphDef.FromString(Path(str(src) + ".meta").read_bytes())
    meta.collection_def["my_plugin_state"].bytes_list.value.append(b"\x0a\x09model/w:0")
    Path(str(src) + ".meta").write_bytes(meta.SerializeToString())
    result = ok("rename", src, tmp_path / "out" / "m", "--add-prefix", "x/", "--meta")
    assert "'my_plugin_state'" in result.stderr and "unchanged" in result.stderr
    renamed = protos.MetaGraphDef.FromString((tmp_path / "out" / "m.meta").read_bytes())
    assert renamed.collection_def["my_plugin_state"] == meta.collection_def["my_plugin_state"]
    with tf.Graph().as_default():
        tf.compat.v1.train.import_meta_graph(str(tmp_path / "out" / "m.meta"))


NODE_NAMES = [
    "a", "a b", "a/b", ".a", "_a", "-a", "/a", "a-b_c.d", "a>b", "a>_b", "a>", "é", "a:0",
    "a\tb", "9x", "a//b", "a/",
]  # fmt: skip


def test_node_name_rule_matches_tensorflow(tf: Any) -> None:
    """tfckpt's node-name rule accepts exactly what TF's graph importer accepts."""
    from tfckpt.graph.rename import is_valid_node_name

    for name in NODE_NAMES:
        graph = protos.GraphDef()
        graph.node.add(name=name, op="NoOp")
        with tf.Graph().as_default():
            try:
                tf.graph_util.import_graph_def(
                    tf.compat.v1.GraphDef.FromString(graph.SerializeToString()), name=""
                )
                accepted = True
            except ValueError:
                accepted = False
        assert is_valid_node_name(name) == accepted, name


def test_rename_meta_refuses_names_tf_cannot_import(nfx: Any, tmp_path: Path) -> None:
    src = nfx["tf1_adam"].path
    out = tmp_path / "out"
    error = one_error(run("rename", src, out / "m", "--add-prefix", "a b/", "--meta"))
    assert "'a b/" in error and "nothing written" in error
    assert not out.exists()
    # The checkpoint alone may hold such names (TF's reader takes any string).
    ok("rename", src, out / "m", "--add-prefix", "a b/", "-q")
    with open_checkpoint(out / "m") as ckpt:
        assert all(i.name.startswith("a b/") for i in ckpt.tensors())


# ---- 2. damaged sources are never copied ------------------------------------------------------
DAMAGED = ["damaged_truncated", "damaged_bitflip", "damaged_swapped"]
WRITERS = {
    "rename": lambda src, dst: ["rename", src, dst, "--add-prefix", "x/"],
    "rename-link": lambda src, dst: ["rename", src, dst, "--add-prefix", "x/", "--link"],
    "merge": lambda src, dst: ["merge", f"{src}:x/", "-o", dst],
    "merge-link": lambda src, dst: ["merge", f"{src}:x/", "-o", dst, "--link"],
    "prune": lambda src, dst: ["prune", src, dst, "--no-optimizer"],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("kind", DAMAGED)
def test_writers_refuse_damaged_sources(nfx: Any, tmp_path: Path, kind: str, writer: str) -> None:
    fixture = nfx[kind]
    src = copy_prefix(fixture.path, tmp_path / "src")
    before = tree(src.parent)
    out = tmp_path / "out"
    error = one_error(run(*WRITERS[writer](str(src), str(out / "model.ckpt"))))
    # The message names the damaged shard and a tensor TensorFlow's reader refuses.
    assert f"{src.name}{DATA}" in error, error
    named = [name for name in fixture.info["unreadable"] if repr(name) in error]
    assert named, (error, fixture.info["unreadable"])
    assert "nothing written" in error
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert tree(src.parent) == before


def test_no_verify_skips_the_checksums_but_not_the_sizes(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    flipped = copy_prefix(fx["damaged_bitflip"].path, tmp_path / "flip")
    out = tmp_path / "out" / "m"
    ok("rename", flipped, out, "--add-prefix", "x/", "--no-verify", "-q")
    # As documented: the damage is copied, and TF finds it where it was.
    reader = tf.train.load_checkpoint(str(out))
    with pytest.raises(Exception, match=r"(?i)checksum|crc|corrupt|data ?loss"):
        reader.get_tensor("x/model/dense0/kernel")
    truncated = copy_prefix(fx["damaged_truncated"].path, tmp_path / "cut")
    error = one_error(
        run("rename", truncated, tmp_path / "o2" / "m", "--sub", "a", "b", "--no-verify")
    )
    assert "truncated" in error and not (tmp_path / "o2").exists()


def test_prune_checks_only_what_it_copies(fx: dict[str, Fixture], tmp_path: Path, tf: Any) -> None:
    """Damage in a tensor prune drops does not stop it; the output is whole in TF's eyes."""
    src = copy_prefix(fx["tf1_adam"].path, tmp_path / "src")
    reader = BundleReader(str(src))
    entry = reader.entries[b"model/dense0/kernel/Adam"]
    reader.close()
    data = Path(str(src) + DATA)
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 3] ^= 0x04
    data.write_bytes(bytes(raw))
    with pytest.raises(Exception, match=r"(?i)checksum"):
        tf.train.load_checkpoint(str(src)).get_tensor("model/dense0/kernel/Adam")
    out = tmp_path / "out" / "m"
    ok("prune", src, out, "--no-optimizer", "-q")
    pruned = tf.train.load_checkpoint(str(out))
    names = sorted(pruned.get_variable_to_shape_map())
    assert names and not any("Adam" in n for n in names)
    for name in names:
        pruned.get_tensor(name)  # every checksum holds
    # ... while rename, which copies that tensor too, refuses.
    assert "model/dense0/kernel/Adam" in one_error(
        run("rename", src, tmp_path / "r" / "m", "--add-prefix", "x/")
    )


def test_library_writers_take_verify(nfx: Any, tmp_path: Path) -> None:
    from tfckpt.errors import CorruptCheckpoint
    from tfckpt.ops.prune import apply_prune, plan_prune
    from tfckpt.ops.rename import apply_rename, plan_renames
    from tfckpt.ops.rules import build_rules

    with open_checkpoint(nfx["damaged_bitflip"].path) as ckpt:
        names = [i.name for i in ckpt.tensors()]
        plan = plan_renames(names, build_rules([], None, None, "x/"))
        with pytest.raises(CorruptCheckpoint, match="model/dense0/kernel"):
            apply_rename(ckpt, str(tmp_path / "a" / "m"), plan)
        apply_rename(ckpt, str(tmp_path / "b" / "m"), plan, verify=False)
        sizes = {i.name: i.nbytes for i in ckpt.tensors()}
        pruning = plan_prune(sizes, drop=["^beta"])
        with pytest.raises(CorruptCheckpoint, match="model/dense0/kernel"):
            apply_prune(ckpt, str(tmp_path / "c" / "m"), pruning)
        apply_prune(ckpt, str(tmp_path / "d" / "m"), pruning, verify=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# ---- 3. optimizers tracked below the root -----------------------------------------------------
def test_prune_drops_a_nested_keras3_optimizer(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    fixture = fx["tf2_nested_optimizer"]
    out = tmp_path / "out" / "ckpt"
    plan = json.loads(ok("prune", fixture.path, out, "--no-optimizer", "--json", "-q").stdout)
    assert len(plan["drop"]) == fixture.info["optimizer_variables"]
    kept = dict(tf.train.list_variables(str(out)))
    # The model's weights, save_counter and the object graph: nothing of the optimizer.
    assert len(kept) == fixture.info["model_variables"] + 2
    assert not any(
        part in k
        for k in kept
        for part in ("_iterations", "_learning_rate", "optimizer/_variables")
    )

    def restored(path: Path) -> list[np.ndarray]:
        model = fixture_models.build_keras_model(tf)
        status = tf.train.Checkpoint(net=model).restore(str(path))
        status.assert_existing_objects_matched()
        return [w.numpy() for w in model.weights]

    for got, want in zip(restored(out), restored(fixture.path)):
        np.testing.assert_array_equal(got, want)


def test_export_no_optimizer_drops_a_nested_optimizer(nfx: Any, tmp_path: Path) -> None:
    fixture = nfx["tf2_nested_optimizer"]
    ok("export", fixture.path, tmp_path / "w.npz", "--no-optimizer", "-q")
    names = sorted(np.load(tmp_path / "w.npz").keys())
    assert len(names) == fixture.info["model_variables"] + 1  # and save_counter
    # Model weights are named where they live in the model, not by the optimizer's list.
    assert not any("optimizer" in n for n in names), names


def test_root_optimizer_and_models_without_one_are_unchanged(nfx: Any) -> None:
    from tfckpt.bundle import objgraph

    with open_checkpoint(nfx["tf2_keras"].path) as ckpt:
        keys = objgraph.optimizer_keys(ckpt.object_graph_bytes())
    assert keys and all(k.startswith("optimizer/") for k in keys)
    with open_checkpoint(nfx["tf2_module"].path) as ckpt:
        assert objgraph.optimizer_keys(ckpt.object_graph_bytes()) == set()


# ---- 4. an index without its data ------------------------------------------------------------
def test_index_without_data_lists_with_a_warning(
    fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    fixture = fx["index_only"]
    prefix = str(fixture.path)
    result = ok("vars", prefix, "--json")
    listed = sorted(r["name"] for r in json.loads(result.stdout)["tensors"])
    assert listed == sorted(name for name, _ in tf.train.list_variables(prefix))
    assert result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith("tfckpt: warning: ") and "data shard is missing" in result.stderr
    )
    graph = ok("graph", fixture.meta, "--check", prefix, "--json")
    assert json.loads(graph.stdout)["ok"] and "warning" in graph.stderr
    listing = json.loads(ok("ls", fixture.path.parent, "--json").stdout)["items"]
    (item,) = [i for i in listing if i["kind"] == "checkpoint"]
    assert item["has_meta"] and item["note"] == "no data file"
    same = ok("diff", prefix, fx["tf1_adam"].path, "--names-only")
    assert "data shard is missing" in same.stderr
    # The library: an index alone opens for listing only when asked.
    import tfckpt
    from tfckpt.errors import CorruptCheckpoint

    with tfckpt.open(prefix, need_data=False) as ckpt:
        assert ckpt.missing_shards == [0] and "data shard is missing" in ckpt.notes[0]
        assert sorted(i.name for i in ckpt.tensors()) == listed
        with pytest.raises(CorruptCheckpoint, match="data shard is missing"):
            ckpt.read("global_step")
    with pytest.raises(CorruptCheckpoint, match="data shard is missing"):
        tfckpt.open(prefix)
    for args in (
        ["vars", prefix, "--stats"],
        ["vars", prefix, "--show", "global_step"],
        ["diff", prefix, fx["tf1_adam"].path],
        ["rename", prefix, str(tmp_path / "r" / "m"), "--add-prefix", "x/"],
        ["prune", prefix, str(tmp_path / "p" / "m"), "--no-optimizer"],
        ["export", prefix, str(tmp_path / "e.npz")],
    ):
        assert "data shard is missing" in one_error(run(*args)), args
    assert not any((tmp_path / d).exists() for d in ("r", "p", "e.npz"))


def test_verify_reports_one_line_per_missing_shard(nfx: Any) -> None:
    fixture = nfx["index_half"]
    result = run("verify", fixture.path, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem["check"] == "shard" and problem["file"].endswith(".data-00001-of-00002")
    with open_checkpoint(nfx["sharded"].path) as ckpt:
        in_shard = sum(1 for e in ckpt.bundle.entries.values() if e.shard_id == 1)
    assert f"holds {in_shard} tensor" in problem["message"]


# ---- 5. the same checkpoint named four ways, from its own directory ---------------------------
def _commands(path: str, other: str) -> dict[str, list[str]]:
    return {
        "ls": ["ls", path],
        "vars": ["vars", path],
        "vars-stats": ["vars", path, "--stats", "-q"],
        "verify": ["verify", path],
        "diff": ["diff", path, other, "-q"],
        "graph": ["graph", path],
        "graph-check": ["graph", path, "--check", path],
        "rename": ["rename", path, "out/r", "--add-prefix", "x/", "--meta", "-q"],
        "prune": ["prune", path, "out/p", "--no-optimizer", "-q"],
        "merge": ["merge", f"{path}:a/", f"{other}:b/", "-o", "out/m", "-q"],
        "export": ["export", path, "out/e.npz", "-q"],
        "cast": ["cast", path, "out/c", "--dtype", "float16", "-q"],
    }


FORMS = ["bare", "dot-slash", "absolute", "directory"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("command", sorted(_commands("p", "o")))
def test_every_command_takes_every_form_of_path(
    nfx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, command: str
) -> None:
    src = copy_prefix(nfx["tf1_adam"].path, tmp_path / "run")
    shutil.copyfile(nfx["tf1_adam"].path.parent / "checkpoint", tmp_path / "run" / "checkpoint")
    (tmp_path / "run" / "checkpoint").write_text(f'model_checkpoint_path: "{src.name}"\n')
    monkeypatch.chdir(src.parent)
    path = {
        "bare": src.name,
        "dot-slash": f"./{src.name}",
        "absolute": str(src),
        "directory": ".",
    }[form]
    args = _commands(path, str(src))[command]
    if command == "graph-check" and form == "directory":
        args = ["graph", f"{src.name}.meta", "--check", "."]
    if command == "graph" and form == "directory":
        args = ["graph", f"{src.name}.meta"]  # a directory is not a graph file
    result = run(*args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    if command == "verify":
        assert "OK" in result.stdout


# ---- 7. the smaller ones ----------------------------------------------------------------------
def test_flattened_savedmodel_says_where_its_variables_are(
    fx: dict[str, Fixture], tmp_path: Path
) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(fx["savedmodel_tf2"].path, flat)
    for path in (flat / "variables").iterdir():
        path.rename(flat / path.name)
    (flat / "variables").rmdir()
    error = one_error(run("vars", flat))
    assert f"{flat / 'variables'}" in error and "flattened" in error
    assert "holds no variables" not in error
    ok("vars", flat / "variables")


def test_ls_shows_the_meta_of_a_listed_checkpoint_whose_data_is_gone(
    nfx: Any, tmp_path: Path
) -> None:
    src = copy_prefix(nfx["tf1_adam"].path, tmp_path / "run")
    (tmp_path / "run" / "checkpoint").write_text(f'model_checkpoint_path: "{src.name}"\n')
    for suffix in (".index", DATA):
        Path(str(src) + suffix).unlink()
    listing = json.loads(ok("ls", tmp_path / "run", "--json").stdout)["items"]
    (item,) = listing
    assert item["kind"] == "missing" and item["has_meta"] and "only its .meta" in item["note"]


LFS = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


@pytest.mark.parametrize("which", [".index", DATA, ".meta"])
def test_git_lfs_pointers_are_named_as_such(nfx: Any, tmp_path: Path, which: str) -> None:
    src = copy_prefix(nfx["tf1_adam"].path, tmp_path / "run")
    Path(str(src) + which).write_text(LFS)
    if which == ".meta":
        error = one_error(run("graph", str(src) + ".meta"))
    else:
        error = one_error(run("vars", src, "--stats"))
    assert "Git LFS pointer" in error and src.name + which in error
    assert "truncated" not in error and "bad magic" not in error
    if which == DATA:
        result = run("verify", src, "--json")
        assert result.exit_code == 1
        problems = json.loads(result.stdout)["problems"]
        assert len(problems) == 1 and "Git LFS pointer" in problems[0]["message"]
    listing = json.loads(ok("ls", src.parent, "--json").stdout)["items"]
    if which != ".meta":
        (item,) = [i for i in listing if i["kind"] == "checkpoint"]
        assert "Git LFS pointer" in item["note"]


def test_writers_leave_no_directory_behind(nfx: Any, tmp_path: Path) -> None:
    """A refused source leaves not even the destination's new directories."""
    src = nfx["damaged_bitflip"].path
    deep = tmp_path / "a" / "b" / "c" / "m"
    one_error(run("rename", src, deep, "--add-prefix", "x/"))
    assert not (tmp_path / "a").exists()
    assert os.listdir(tmp_path) == []
