"""``tfckpt graph`` and ``tfckpt convert-pbtxt``: summaries, detection, --check, --deny-ops, DOT,
conversion round trips, bad input; every option through the CLI, the native engine against
TensorFlow on every fixture and corpus graph.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from clitools import imports_tensorflow, modules_after, ok, run, runner
from google.protobuf import text_format

from tfckpt import protos
from tfckpt.cli import app
from tfckpt.graph.textproto import _fast_parse, parse_text, to_text

from fixtures import CORPUS, Fixture, corpus_graphs

TFX = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
TFX_META = TFX / "model.ckpt-1000.meta"
TFX_PBTXT = TFX / "graph.pbtxt"
BIG_PBTXT = CORPUS / "zhacmsra__tensorboard_graph_test/graph.pbtxt"
SERVING = CORPUS / "tensorflow__serving/tensorflow_serving"
TF2_SERVING = SERVING / "servables/tensorflow/testdata/saved_model_half_plus_two_tf2_cpu/00000123"
NO_VARIABLES_SM = SERVING / "batching/testdata/matrix_half_plus_two/1"
HUB = CORPUS / "tensorflow__text/tensorflow_text/python/ops/test_data/segmenter_hub_module"
KERAS_SM = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/keras/Format-Serving"
ONNX = CORPUS / "onnx__tensorflow-onnx/tests/models"
needs_corpus = pytest.mark.skipif(not TFX.exists(), reason="corpus not present")

# Corpus .pb files that are not graphs (a FingerprintDef and a TF-Hub ModuleDef).
NOT_GRAPHS = ("fingerprint.pb", "tfhub_module.pb")
CORPUS_GRAPHS = [p for p in corpus_graphs() if p.name not in NOT_GRAPHS]
# TensorFlow cannot import this one: it uses tensorflow_text's custom ops.
TF_CANNOT_IMPORT = {HUB / "saved_model.pb": "TokenizerFromLogits"}


def _id(p: Path) -> str:
    return str(p.relative_to(CORPUS))


def js(*args: Any) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def fails(code: int, *args: Any) -> Any:
    result = run(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code == 2:
        assert result.stderr.startswith("tfckpt: error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
    return result


def gfile(fx: dict[str, Fixture], key: str) -> Path:
    graphs = fx["graphs"]
    return graphs.path / graphs.info["files"][key]


def fixture_graphs(fx: dict[str, Fixture]) -> list[Path]:
    """Every graph the fixtures hold: the graphs/ files, each .meta, the SavedModels."""
    files = fx["graphs"].info["files"]
    out = [gfile(fx, k) for k in files if k not in ("scoped_ckpt", "tf2_ckpt")]
    out.append(Path(str(gfile(fx, "scoped_ckpt")) + ".meta"))
    out += [f.meta for f in fx.values() if f.meta is not None]
    out += [f.path for f in fx.values() if f.kind == "savedmodel"]
    return out


def graph_files(fx: dict[str, Fixture]) -> list[Path]:
    """The protobuf file of every fixture graph (SavedModels: saved_model.pb)."""
    return [p / "saved_model.pb" if p.is_dir() else p for p in fixture_graphs(fx)]


def counts(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What both engines must agree on, per graph."""
    return [
        (
            g["nodes"],
            g["ops"],
            g["inputs"],
            g["outputs"],
            g["variables"],
            g["collections"],
            g["functions"],
            g["signatures"],
            g["saver"],
        )
        for g in summary.get("meta_graphs", [summary])
    ]


# ---- summaries ---------------------------------------------------------------------------------
@needs_corpus
@pytest.mark.parametrize(
    "path, kind, nodes, op_types, consts, variables",
    [
        (TFX_META, "MetaGraphDef", 2502, 100, 810, 60),
        (TFX_PBTXT, "GraphDef", 2502, 100, 810, 60),
        (BIG_PBTXT, "GraphDef", 461, 49, 122, 14),
        (CORPUS / "fazibear__tensorflow.cr_examples/graph.pb", "GraphDef", 10, 6, 2, 2),
        (CORPUS / "fazibear__tensorflow.cr_examples/graph.pbtxt", "GraphDef", 10, 6, 2, 2),
        (ONNX / "lstm/frozen.pb", "GraphDef", 529, 22, 106, 0),
        (
            CORPUS / "tensorflow__rust/examples/regression_checkpoint/model.pb",
            "GraphDef",
            109,
            32,
            26,
            2,
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_summary_counts_match_the_corpus_manifest(
    path: Path, kind: str, nodes: int, op_types: int, consts: int, variables: int
) -> None:
    s = js("graph", path)
    assert (s["type"], s["nodes"], len(s["ops"])) == (kind, nodes, op_types)
    assert s["ops"].get("Const", 0) == consts
    assert len(s["variables"]) == variables
    assert sum(s["ops"].values()) == nodes
    assert list(s["ops"].values()) == sorted(s["ops"].values(), reverse=True)


@needs_corpus
@pytest.mark.parametrize(
    "directory, tags, nodes, functions, object_nodes",
    [
        (TFX / "export/chicago-taxi/1646034756", ["serve"], 1337, 76, 0),
        (TF2_SERVING, ["serve"], 29, 14, 24),
        (HUB, [], 375, 0, 0),
        (KERAS_SM, ["serve"], 64, 37, 126),
        (NO_VARIABLES_SM, ["serve"], 6, 0, 0),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_savedmodel_summary_per_meta_graph(
    directory: Path, tags: list[str], nodes: int, functions: int, object_nodes: int
) -> None:
    s = js("graph", directory)
    assert s["type"] == "SavedModel"
    assert s["schema_version"] == (0 if directory == HUB else 1)  # the Hub module leaves it unset
    assert s["has_variables"] == (directory != NO_VARIABLES_SM)
    assert s["has_fingerprint"] == (directory == TF2_SERVING)
    [g] = s["meta_graphs"]
    assert g["tags"] == tags
    assert (g["nodes"], len(g["functions"]), g["object_graph_nodes"]) == (
        nodes,
        functions,
        object_nodes,
    )
    # The same file, given directly.
    assert js("graph", directory / "saved_model.pb") == s


@needs_corpus
def test_json_contract_of_the_summary() -> None:
    s = js("graph", TFX_META)
    assert set(s) >= {
        "type",
        "path",
        "encoding",
        "nodes",
        "ops",
        "inputs",
        "outputs",
        "variables",
        "collections",
        "signatures",
        "functions",
        "saver",
        "producer",
        "tensorflow_version",
    }
    assert (s["type"], s["encoding"], s["tensorflow_version"]) == (
        "MetaGraphDef",
        "binary",
        "2.9.0-dev20220227",
    )
    assert s["producer"] == 1054
    assert s["collections"]["variables"] == 60 and len(s["collections"]) == 13
    assert s["saver"] == {
        "filename_tensor_name": "save/Const:0",
        "save_tensor_name": "save/Identity:0",
        "restore_op_name": "save/restore_all",
        "max_to_keep": 5,
        "sharded": True,
        "keep_checkpoint_every_n_hours": 10000.0,
        "version": "V2",
    }
    step = next(v for v in s["variables"] if v["name"] == "global_step")
    assert step == {"name": "global_step", "op": "VarHandleOp", "dtype": "int64", "shape": []}
    kernel = next(v for v in s["variables"] if v["name"] == "dnn/hiddenlayer_0/kernel")
    assert (kernel["dtype"], kernel["shape"]) == ("float32", [3, 100])
    # Saver placeholders are not model inputs; training/initialisation leftovers not outputs.
    assert not any(i["name"].startswith("save/") for i in s["inputs"])
    outputs = {o["name"] for o in s["outputs"]}
    assert "head/predictions/probabilities" in outputs
    assert not any(o.startswith(("save/", "init", "report_uninitialized")) for o in outputs)
    assert all(o["op"] not in ("NoOp", "Const", "Assign") for o in s["outputs"])
    fn = s["functions"][0]
    assert set(fn) == {"name", "nodes", "inputs", "outputs"}
    assert [f["name"] for f in s["functions"]] == sorted(f["name"] for f in s["functions"])
    graph = js("graph", TFX_PBTXT)
    assert (graph["type"], graph["encoding"], graph["collections"], graph["saver"]) == (
        "GraphDef",
        "text",
        {},
        None,
    )


@needs_corpus
def test_signatures_inputs_and_tf2_variables() -> None:
    s = js("graph", KERAS_SM)
    g = s["meta_graphs"][0]
    sig = g["signatures"]["serving_default"]
    assert sig["method"] == "tensorflow/serving/predict"
    assert sig["inputs"] == {
        "examples": {"name": "serving_default_examples:0", "dtype": "string", "shape": [None]}
    }
    assert sig["outputs"]["output_0"]["shape"] == [None, 3]
    assert len(g["variables"]) == 27 and {v["op"] for v in g["variables"]} == {"VarHandleOp"}
    assert g["saver"]["restore_op_name"] == "StatefulPartitionedCall_2"
    # The TF2 saver's nodes are not outputs.
    assert not {"StatefulPartitionedCall_1", "StatefulPartitionedCall_2"} & {
        o["name"] for o in g["outputs"]
    }


def test_partitioned_variables_name_their_full_variable(fx: dict[str, Fixture]) -> None:
    s = js("graph", fx["partitioned"].meta)
    parts = [v for v in s["variables"] if v["name"].startswith("emb/rows/part_")]
    assert len(parts) == 3
    assert {(v["partition_of"], tuple(v["full_shape"])) for v in parts} == {("emb/rows", (10, 4))}
    assert sum(v["shape"][0] for v in parts) == 10


@needs_corpus
def test_text_summary_has_every_section() -> None:
    out = ok("graph", TFX_META).stdout
    assert "MetaGraphDef (binary)" in out and "2,502 nodes, 100 op types" in out
    for section in ("Ops", "Outputs", "Variables (60)", "Collections", "Saver: V2"):
        assert section in out, section
    assert "more op types (--json lists all)" in out
    out = ok("graph", KERAS_SM).stdout
    assert "SavedModel (binary)" in out and "meta graph 0: tags serve" in out
    assert "serving_default (tensorflow/serving/predict)" in out and "[?, 3]" in out
    assert "Object graph: 126 objects" in out
    out = ok("graph", HUB).stdout
    assert "tags (no tags)" in out


@needs_corpus
def test_scope_restricts_nodes_and_variables() -> None:
    s = js("graph", TFX_META, "--scope", "dnn/hiddenlayer_0")
    assert s["scope"] == "dnn/hiddenlayer_0"
    assert 0 < s["nodes"] < 2502
    assert {v["name"] for v in s["variables"]} == {
        "dnn/hiddenlayer_0/kernel",
        "dnn/hiddenlayer_0/bias",
    }
    # A trailing slash is the same scope; a name prefix that is not a scope matches nothing.
    assert js("graph", TFX_META, "--scope", "dnn/hiddenlayer_0/")["nodes"] == s["nodes"]
    assert js("graph", TFX_META, "--scope", "dnn/hidden")["nodes"] == 0
    assert (
        "in scope dnn/hiddenlayer_0/"
        in ok("graph", TFX_META, "--scope", "dnn/hiddenlayer_0").stdout
    )


# ---- --nodes / --op / --format dot ---------------------------------------------------------------
@needs_corpus
def test_nodes_listing_and_op_filter() -> None:
    nodes = js("graph", TFX_META, "--nodes")["nodes"]
    assert len(nodes) == 2502
    assert set(nodes[0]) == {"name", "op", "inputs", "device"}
    matmul = js("graph", TFX_META, "--op", "MatMul")["nodes"]
    assert matmul and {n["op"] for n in matmul} == {"MatMul"}
    # Globs, comma lists and repeats.
    both = js("graph", TFX_META, "--op", "MatMul,BiasAdd")["nodes"]
    assert {n["op"] for n in both} == {"MatMul", "BiasAdd"}
    assert js("graph", TFX_META, "--op", "MatMul", "--op", "BiasAdd")["nodes"] == both
    variables = js("graph", TFX_META, "--op", "Var*Op")["nodes"]
    assert {n["op"] for n in variables} == {"VarHandleOp", "VarIsInitializedOp"}
    scoped = js("graph", TFX_META, "--nodes", "--scope", "dnn/logits", "--op", "MatMul")["nodes"]
    assert [n["name"] for n in scoped] == ["dnn/logits/MatMul"]
    assert scoped[0]["inputs"] == ["dnn/hiddenlayer_3/Relu", "dnn/logits/MatMul/ReadVariableOp"]
    table = ok("graph", TFX_META, "--op", "MatMul").stdout
    assert "dnn/logits/MatMul" in table and f"{len(matmul)} nodes" in table


@needs_corpus
def test_dot_output_full_and_collapsed(tmp_path: Path) -> None:
    dot = ok("graph", ONNX / "regression/graphdef/frozen.pb", "--format", "dot").stdout
    assert dot.startswith('digraph "') and dot.rstrip().endswith("}")
    s = js("graph", ONNX / "regression/graphdef/frozen.pb")
    assert dot.count("[label=") == s["nodes"]
    assert dot.count("->") >= s["nodes"] - len(s["inputs"]) - s["ops"].get("Const", 0)
    collapsed = ok("graph", TFX_META, "--format", "dot", "--depth", "1").stdout
    assert '"dnn" [label="dnn/\\n' in collapsed and "shape=box3d" in collapsed
    assert '"dnn" -> "dnn"' not in collapsed  # no self edges
    assert len(collapsed) < len(ok("graph", TFX_META, "--format", "dot").stdout) / 10
    out = tmp_path / "g.dot"
    result = ok("graph", TFX_META, "--format", "dot", "--depth", "2", "-o", out)
    assert result.stdout == "" and out.read_text().startswith("digraph")
    assert f"wrote {out}" in result.stderr
    fails(2, "graph", TFX_META, "--format", "dot", "-o", out)  # exists
    ok("graph", TFX_META, "--format", "dot", "-o", out, "--force")
    control = ok("graph", TFX_META, "--format", "dot", "--scope", "save").stdout
    assert "style=dashed" in control  # control dependencies


@needs_corpus
@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "dot", "--json"], "cannot be combined"),
        (["--format", "svg"], "--format svg"),
        (["--depth", "2"], "go with --format dot"),
        (["--nodes", "--format", "dot"], "cannot be combined"),
        (["--nodes", "--deny-ops", "default"], "cannot be combined"),
        (["--check", str(TFX), "--deny-ops", "default"], "cannot be combined"),
        (["--type", "bogus"], "--type bogus"),
        (["--type", "checkpoint"], "--type checkpoint"),
        (["--tags", "serve"], "tags only apply to SavedModels"),
        (["--deny-ops", ","], "needs op names"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = fails(2, "graph", TFX_META, *args)
    assert message in result.stderr


@needs_corpus
def test_tags_select_a_meta_graph() -> None:
    s = js("graph", KERAS_SM, "--tags", "serve")
    assert [g["tags"] for g in s["meta_graphs"]] == [["serve"]]
    assert js("graph", HUB, "--tags", "", "--nodes")  # the empty tag set
    result = fails(2, "graph", KERAS_SM, "--tags", "train")
    assert "no meta graph with tags 'train' (available: serve)" in result.stderr


def test_several_meta_graphs_choose_serve_with_a_note(tmp_path: Path) -> None:
    sm = protos.SavedModel(saved_model_schema_version=1)
    for tags, node in ((["train"], "t"), (["serve"], "s")):
        meta = sm.meta_graphs.add()
        meta.meta_info_def.tags.extend(tags)
        meta.graph_def.node.add(name=node, op="NoOp")
    (tmp_path / "saved_model.pb").write_bytes(sm.SerializeToString())
    s = js("graph", tmp_path)
    assert [g["tags"] for g in s["meta_graphs"]] == [["train"], ["serve"]]
    result = ok("graph", tmp_path, "--nodes", "--json")
    assert [n["name"] for n in json.loads(result.stdout)["nodes"]] == ["s"]
    assert "2 meta graphs; using the one tagged serve (pick another by its tags)" in result.stderr
    assert ok("graph", tmp_path, "--nodes", "--json", "-q").stderr == ""
    picked = json.loads(ok("graph", tmp_path, "--nodes", "--tags", "train", "--json").stdout)
    assert [n["name"] for n in picked["nodes"]] == ["t"]


# ---- paths and type detection --------------------------------------------------------------------
@needs_corpus
@pytest.mark.parametrize(
    "given",
    [
        TFX_META,
        TFX / "model.ckpt-1000",
        TFX / "model.ckpt-1000.index",
        TFX / "model.ckpt-1000.data-00000-of-00001",
        TFX,  # a directory: the latest checkpoint's .meta
    ],
    ids=lambda p: p.name,
)
def test_checkpoint_paths_lead_to_their_meta(given: Path) -> None:
    s = js("graph", given)
    assert s["path"] == str(TFX_META) and s["nodes"] == 2502


def test_directory_with_only_a_graph_pbtxt(tmp_path: Path) -> None:
    (tmp_path / "graph.pbtxt").write_text('node { name: "a" op: "NoOp" }\n')
    assert js("graph", tmp_path)["nodes"] == 1


@needs_corpus
def test_type_comes_from_content_not_extension(tmp_path: Path) -> None:
    meta_as_pb = tmp_path / "model.pb"
    shutil.copy(TFX_META, meta_as_pb)
    assert js("graph", meta_as_pb)["type"] == "MetaGraphDef"
    graph_as_meta = tmp_path / "x.meta"
    shutil.copy(CORPUS / "fazibear__tensorflow.cr_examples/graph.pb", graph_as_meta)
    assert js("graph", graph_as_meta)["type"] == "GraphDef"
    text_as_pb = tmp_path / "t.pb"
    shutil.copy(CORPUS / "fazibear__tensorflow.cr_examples/graph.pbtxt", text_as_pb)
    s = js("graph", text_as_pb)
    assert (s["type"], s["encoding"], s["nodes"]) == ("GraphDef", "text", 10)
    # --type forces; a wrong one is a parse error (text: with line and column).
    assert js("graph", meta_as_pb, "--type", "metagraph")["type"] == "MetaGraphDef"
    result = fails(2, "graph", text_as_pb, "--type", "metagraph")
    assert f"{text_as_pb}:1:1: cannot parse as a text MetaGraphDef" in result.stderr
    assert 'has no field named "node"' in result.stderr


def test_fixture_metagraph_as_pb_and_text(fx: dict[str, Fixture]) -> None:
    binary = js("graph", gfile(fx, "metagraph_pb"))
    text = js("graph", gfile(fx, "metagraph_pbtxt"))
    assert (binary["type"], text["type"], text["encoding"]) == (
        "MetaGraphDef",
        "MetaGraphDef",
        "text",
    )
    assert counts(binary) == counts(text) == counts(js("graph", fx["tf1_adam"].meta))
    graph = js("graph", gfile(fx, "graph_pb"))
    assert graph["type"] == "GraphDef" and graph["nodes"] == binary["nodes"]


# ---- the TensorFlow engine agrees -------------------------------------------------------------
@pytest.mark.tf
@pytest.mark.parametrize("path", CORPUS_GRAPHS, ids=_id)
def test_engine_tf_reports_the_same_counts_on_the_corpus(path: Path, tf: Any) -> None:
    if path in TF_CANNOT_IMPORT:
        result = fails(2, "graph", path, "--engine", "tf")
        assert TF_CANNOT_IMPORT[path] in result.stderr
        return
    native = js("graph", path)
    via_tf = js("graph", path, "--engine", "tf")
    assert counts(native) == counts(via_tf)
    assert native["type"] == via_tf["type"]


@pytest.mark.tf
def test_engine_tf_reports_the_same_counts_on_the_fixtures(fx: dict[str, Fixture]) -> None:
    checked = 0
    for path in fixture_graphs(fx):
        assert counts(js("graph", path)) == counts(js("graph", path, "--engine", "tf")), path
        checked += 1
    assert checked >= 12


@pytest.mark.tf
@needs_corpus
def test_engine_tf_tolerates_unparseable_tensorflow_version(tf: Any) -> None:
    meta = SERVING / "session_bundle/testdata/half_plus_two/00000123/export.meta"
    result = ok("graph", meta, "--engine", "tf", "--json")
    assert "tensorflow_version '0.12.head' cleared" in result.stderr
    assert counts(json.loads(result.stdout)) == counts(js("graph", meta))


# ---- --check ----------------------------------------------------------------------------------
def test_check_suggests_strip_prefix_and_the_rename_fixes_it(
    fx: dict[str, Fixture], tmp_path: Path
) -> None:
    scoped = tmp_path / "scoped"
    scoped.mkdir()
    for f in gfile(fx, "scoped_ckpt").parent.glob("model.ckpt.*"):
        shutil.copy(f, scoped / f.name)
    ckpt = scoped / "model.ckpt"
    result = fails(1, "graph", fx["partitioned"].meta, "--check", ckpt)
    command = f"tfckpt rename {ckpt} {scoped}/renamed-model.ckpt --strip-prefix pretrained/"
    assert command in result.stdout
    assert "MISMATCH: 0 of 3 match, 3 missing" in result.stdout
    report = json.loads(fails(1, "graph", fx["partitioned"].meta, "--check", ckpt, "--json").stdout)
    assert report["ok"] is False and report["method"] == "saver"
    assert [m["name"] for m in report["missing"]] == ["emb/cols", "emb/rows", "plain"]
    assert [u["name"] for u in report["unused"]] == [
        "pretrained/emb/cols",
        "pretrained/emb/rows",
        "pretrained/plain",
    ]
    [suggestion] = report["suggestions"]
    assert suggestion["kind"] == "strip_prefix" and suggestion["command"] == command
    assert (suggestion["fixes"], suggestion["of"]) == (3, 3)
    # Run exactly what was suggested; the check then passes.
    ok(*command.split()[1:])
    result = ok("graph", fx["partitioned"].meta, "--check", scoped / "renamed-model.ckpt")
    assert "OK: all 3 variable(s) the graph needs are in the checkpoint" in result.stdout


def test_check_scope_checks_part_of_the_graph(fx: dict[str, Fixture]) -> None:
    report = json.loads(
        fails(
            1,
            "graph",
            fx["partitioned"].meta,
            "--check",
            gfile(fx, "scoped_ckpt"),
            "--scope",
            "emb",
            "--json",
        ).stdout
    )
    assert [m["name"] for m in report["missing"]] == ["emb/cols", "emb/rows"]
    assert report["needed"] == 2 and len(report["unused"]) == 3
    assert (report["suggestions"][0]["fixes"], report["suggestions"][0]["of"]) == (2, 2)
    ok("graph", fx["partitioned"].meta, "--check", fx["partitioned"].path, "--scope", "plain")


def test_check_suggests_add_prefix(fx: dict[str, Fixture]) -> None:
    scoped_meta = str(gfile(fx, "scoped_ckpt")) + ".meta"
    report = json.loads(
        fails(1, "graph", scoped_meta, "--check", fx["partitioned"].path, "--json").stdout
    )
    [suggestion] = report["suggestions"]
    assert suggestion["kind"] == "add_prefix" and suggestion["to"] == "pretrained/"
    assert suggestion["command"].endswith("--add-prefix pretrained/")
    assert suggestion["mapping"] == {
        "emb/cols": "pretrained/emb/cols",
        "emb/rows": "pretrained/emb/rows",
        "plain": "pretrained/plain",
    }


def test_check_partitioned_and_every_tf1_fixture_against_itself(fx: dict[str, Fixture]) -> None:
    report = js("graph", fx["partitioned"].meta, "--check", fx["partitioned"].path)
    assert report["ok"] and report["needed"] == report["matched"] == 3
    assert not report["missing"] and not report["unused"]
    for f in fx.values():
        if f.meta is not None:
            r = js("graph", f.meta, "--check", f.path)
            assert r["ok"] and r["matched"] == r["needed"] > 0 and not r["unused"], f.name


def test_check_shape_mismatch(fx: dict[str, Fixture]) -> None:
    # tf1_adam has width 8, tf1_multi width 4: same names, other shapes.
    report = json.loads(
        fails(1, "graph", fx["tf1_adam"].meta, "--check", fx["tf1_multi"].path, "--json").stdout
    )
    bad = {m["name"]: m for m in report["mismatched"]}
    assert bad["model/dense0/kernel"]["problems"] == ["shape"]
    assert bad["model/dense0/kernel"]["graph"]["shape"] == [5, 8]
    assert bad["model/dense0/kernel"]["checkpoint"]["shape"] == [5, 4]
    assert "global_step" not in bad and not report["missing"]
    out = fails(1, "graph", fx["tf1_adam"].meta, "--check", fx["tf1_multi"].path).stdout
    assert "Shape/dtype mismatch" in out and "float32 [5, 8]" in out


def test_check_rename_only_the_names_it_fixes(fx: dict[str, Fixture], tmp_path: Path) -> None:
    """global_step matches already: a blanket --add-prefix would break it, so the suggested
    --sub leaves it alone; the suggested command then makes the check pass."""
    import shlex

    for f in Path(fx["tf1_adam"].path).parent.glob("model.ckpt-2.*"):
        shutil.copy(f, tmp_path / f.name)
    ckpt = tmp_path / "model.ckpt-2"
    graph = protos.GraphDef()
    for name in ("global_step", "net/model/dense0/kernel", "net/model/dense0/bias"):
        node = graph.node.add(name=name, op="VariableV2")
        node.attr["dtype"].type = 9 if name == "global_step" else 1
    (tmp_path / "few.pb").write_bytes(graph.SerializeToString())
    report = json.loads(fails(1, "graph", tmp_path / "few.pb", "--check", ckpt, "--json").stdout)
    assert report["method"] == "variables" and report["matched"] == 1  # global_step
    [s] = report["suggestions"]
    assert s["kind"] == "sub" and (s["fixes"], s["of"]) == (2, 2)
    assert s["command"].endswith("--sub '^(?!(?:global_step)$)' net/")
    ok(*shlex.split(s["command"])[1:])
    renamed = tmp_path / "renamed-model.ckpt-2"
    assert js("graph", tmp_path / "few.pb", "--check", renamed)["ok"]
    # More names to keep than to fix: the --sub lists the names it renames.
    for name in ("model/dense1/kernel", "model/dense1/bias", "beta1_power"):
        node = graph.node.add(name=name, op="VariableV2")
        node.attr["dtype"].type = 1
    (tmp_path / "more.pb").write_bytes(graph.SerializeToString())
    report = json.loads(fails(1, "graph", tmp_path / "more.pb", "--check", ckpt, "--json").stdout)
    [s] = report["suggestions"]
    assert s["command"].endswith("--sub '^(model/dense0/bias|model/dense0/kernel)$' 'net/\\1'")
    ok(*shlex.split(s["command"].replace("renamed-", "renamed2-"))[1:])
    assert js("graph", tmp_path / "more.pb", "--check", tmp_path / "renamed2-model.ckpt-2")["ok"]


def test_check_close_matches(fx: dict[str, Fixture], tmp_path: Path) -> None:
    graph = protos.GraphDef()
    node = graph.node.add(name="model/dense0/kernal", op="VariableV2")
    node.attr["dtype"].type = 1
    (tmp_path / "g.pb").write_bytes(graph.SerializeToString())
    report = json.loads(
        fails(1, "graph", tmp_path / "g.pb", "--check", fx["tf1_adam"].path, "--json").stdout
    )
    assert {"missing": "model/dense0/kernal", "candidate": "model/dense0/kernel"} in report[
        "close_matches"
    ]


def test_check_tf2_savedmodel_object_graph(fx: dict[str, Fixture]) -> None:
    sm = fx["savedmodel_tf2"].path
    report = js("graph", sm, "--check", sm)
    assert report["ok"] and report["method"] == "object graph"
    assert report["needed"] == report["matched"] == 3
    denied_sm = gfile(fx, "denied_savedmodel")
    report = json.loads(
        fails(1, "graph", denied_sm, "--check", gfile(fx, "tf2_ckpt"), "--json").stdout
    )
    assert report["missing"] == [
        {
            "name": "scale/.ATTRIBUTES/VARIABLE_VALUE",
            "dtype": "float32",
            "shape": [],
            "path": "scale",
        }
    ]
    [s] = report["suggestions"]
    # A TF2 key cannot lose a path component by renaming: the fix is where it is read.
    assert s["from"] == "model/" and s["command"] is None
    assert "tf.train.Checkpoint(model=obj)" in s["description"]


def test_check_name_based_graph_against_object_based_checkpoint(
    fx: dict[str, Fixture], tmp_path: Path
) -> None:
    """Like tf.compat.v1.train.Saver, match TF1 names with the attributes' full_name."""
    graph = protos.GraphDef()
    node = graph.node.add(name="scale", op="VarHandleOp")
    node.attr["dtype"].type = 1
    node.attr["shape"].shape.SetInParent()
    (tmp_path / "g.pb").write_bytes(graph.SerializeToString())
    report = js("graph", tmp_path / "g.pb", "--check", gfile(fx, "tf2_ckpt"))
    assert report["ok"] and report["method"] == "variables via full_name"
    assert [u["name"] for u in report["unused"]] == ["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]


def test_check_partitioned_graphdef_without_collections(
    fx: dict[str, Fixture], tmp_path: Path
) -> None:
    """A bare GraphDef has no VariableDefs: partitions come from the saver's shape_and_slices,
    or (no saver either) from the part_N names."""
    meta = protos.MetaGraphDef.FromString(fx["partitioned"].meta.read_bytes())
    (tmp_path / "with_saver.pb").write_bytes(meta.graph_def.SerializeToString())
    report = js("graph", tmp_path / "with_saver.pb", "--check", fx["partitioned"].path)
    assert report["ok"] and report["method"] == "saver" and report["needed"] == 3
    bare = protos.GraphDef()
    bare.node.extend(n for n in meta.graph_def.node if not n.name.startswith("save/"))
    (tmp_path / "bare.pb").write_bytes(bare.SerializeToString())
    report = js("graph", tmp_path / "bare.pb", "--check", fx["partitioned"].path)
    assert report["ok"] and report["method"] == "variables" and report["needed"] == 3
    # A wrong full shape in the saver's slice spec is caught.
    for node in meta.graph_def.node:
        if node.name == "save/RestoreV2/shape_and_slices":
            values = node.attr["value"].tensor.string_val
            values[:] = [v.replace(b"10 4 ", b"11 4 ") for v in values]
    (tmp_path / "wrong.pb").write_bytes(meta.graph_def.SerializeToString())
    report = json.loads(
        fails(1, "graph", tmp_path / "wrong.pb", "--check", fx["partitioned"].path, "--json").stdout
    )
    assert [(m["name"], m["graph"]["shape"]) for m in report["mismatched"]] == [
        ("emb/rows", [11, 4])
    ]


CORPUS_SELF_CHECKS = [
    (TFX_META, TFX / "model.ckpt-1000"),
    (ONNX / "regression/checkpoint/model.meta", ONNX / "regression/checkpoint/model"),
    (
        SERVING / "servables/tensorflow/testdata/half_plus_two/00000123/export.meta",
        SERVING / "servables/tensorflow/testdata/half_plus_two/00000123/export",
    ),
    (
        SERVING / "servables/tensorflow/testdata/bad_half_plus_two/00000123/export.meta",
        SERVING / "servables/tensorflow/testdata/bad_half_plus_two/00000123/export",
    ),
] + [
    (sm, sm)
    for sm in sorted({p.parent for p in CORPUS_GRAPHS if p.name == "saved_model.pb"})
    if sm != NO_VARIABLES_SM
]


@needs_corpus
@pytest.mark.parametrize("graph, ckpt", CORPUS_SELF_CHECKS, ids=lambda p: _id(p))
def test_every_corpus_graph_matches_its_own_checkpoint(graph: Path, ckpt: Path) -> None:
    report = js("graph", graph, "--check", ckpt)
    assert report["ok"] and report["matched"] == report["needed"]
    assert not report["mismatched"]
    assert all(u["name"] != "_CHECKPOINTABLE_OBJECT_GRAPH" for u in report["unused"])


@needs_corpus
def test_check_tfx_reports_saver_names() -> None:
    report = js("graph", TFX_META, "--check", TFX)
    assert report["method"] == "saver" and report["needed"] == 60
    assert report["checkpoint"] == str(TFX / "model.ckpt-1000")
    assert set(report) >= {
        "graph",
        "checkpoint",
        "method",
        "needed",
        "matched",
        "missing",
        "mismatched",
        "unused",
        "unsaved",
        "suggestions",
        "close_matches",
        "ok",
    }
    result = ok("graph", TFX_META, "--check", TFX)
    assert "OK: all 60 variable(s)" in result.stdout


@needs_corpus
def test_check_scope_limits_what_is_needed() -> None:
    report = js("graph", TFX_META, "--check", TFX, "--scope", "dnn")
    assert report["needed"] == report["matched"] == 10 and report["ok"]
    assert report["unused"] == []  # the rest of the graph reads the other 50


@needs_corpus
def test_check_needs_variables_of_a_savedmodel() -> None:
    result = fails(2, "graph", TFX_META, "--check", NO_VARIABLES_SM)
    assert "SavedModel has no variables/" in result.stderr
    fails(2, "graph", TFX_META, "--check", TFX / "nope")


@pytest.mark.tf
@needs_corpus
def test_check_engine_tf_agrees(tf: Any) -> None:
    for graph, ckpt in [*CORPUS_SELF_CHECKS[:4], (KERAS_SM, KERAS_SM)]:
        native = js("graph", graph, "--check", ckpt)
        via_tf = js("graph", graph, "--check", ckpt, "--engine", "tf")
        assert native == via_tf, graph


@pytest.mark.tf
def test_engine_tf_nodes_dot_and_deny_agree(fx: dict[str, Fixture], tf: Any) -> None:
    for args in (
        ["--nodes"],
        ["--op", "Read*", "--scope", "read"],
        ["--deny-ops", "default"],
    ):
        path = gfile(fx, "denied_pb")
        native = run("graph", path, *args, "--json")
        via_tf = run("graph", path, *args, "--json", "--engine", "tf")
        assert native.exit_code == via_tf.exit_code
        a, b = json.loads(native.stdout), json.loads(via_tf.stdout)
        if isinstance(a, list):  # node lists: TF may add default attrs, not nodes or edges
            a = sorted((n["name"], n["op"], tuple(n["inputs"])) for n in a)
            b = sorted((n["name"], n["op"], tuple(n["inputs"])) for n in b)
        assert a == b and a, args
    dot = ok("graph", fx["savedmodel_tf1"].path, "--format", "dot", "--engine", "tf").stdout
    assert dot == ok("graph", fx["savedmodel_tf1"].path, "--format", "dot").stdout


# ---- --deny-ops -------------------------------------------------------------------------------
def test_deny_ops_top_level_and_in_functions(fx: dict[str, Fixture]) -> None:
    report = json.loads(
        fails(1, "graph", gfile(fx, "denied_pb"), "--deny-ops", "default", "--json").stdout
    )
    assert report["ok"] is False and report["policy"]["default"] is True
    found = {(h["op"], h["node"], h["function"] is not None) for h in report["findings"]}
    assert found == {
        ("ReadFile", "read", False),
        ("WriteFile", "write", False),
        ("PrintV2", "PrintV2", True),
    }
    printv2 = next(h for h in report["findings"] if h["op"] == "PrintV2")
    assert printv2["function"].startswith("__inference_leak")
    out = fails(1, "graph", gfile(fx, "denied_pb"), "--deny-ops", "default").stdout
    assert "3 finding(s) (2 high, 1 low): PrintV2, ReadFile, WriteFile" in out
    sm = json.loads(
        fails(1, "graph", gfile(fx, "denied_savedmodel"), "--deny-ops", "default", "--json").stdout
    )
    assert {(h["op"], h["function"] is not None) for h in sm["findings"]} == {
        ("PrintV2", True),
        ("ReadFile", True),
    }
    # Only the ops asked for; globs work.
    only = json.loads(
        fails(1, "graph", gfile(fx, "denied_pb"), "--deny-ops", "Write*", "--json").stdout
    )
    assert [h["op"] for h in only["findings"]] == ["WriteFile"]
    assert js("graph", gfile(fx, "denied_pb"), "--deny-ops", "PyFunc")["findings"] == []


def test_deny_ops_spares_the_saver(fx: dict[str, Fixture], tmp_path: Path) -> None:
    for f in fx.values():
        if f.meta is not None:
            assert js("graph", f.meta, "--deny-ops", "default")["ok"], f.name
    # TF2: SaveV2/RestoreV2 live in the saver's library functions.
    sm = fx["savedmodel_tf2"].path
    assert js("graph", sm, "--deny-ops", "default")["findings"] == []
    # ... but asking for an op the saver uses inside its function finds nothing either, while
    # the same op outside the saver is reported.
    assert js("graph", fx["savedmodel_tf1"].path, "--deny-ops", "SaveV2,RestoreV2")["ok"]
    graph = protos.GraphDef()
    name = graph.node.add(name="save/Const", op="Const")  # a default saver's file name
    name.attr["value"].tensor.dtype = 7
    name.attr["value"].tensor.string_val.append(b"model")
    graph.node.add(name="sneaky/RestoreV2", op="RestoreV2", input=["save/Const", "b", "c"])
    graph.node.add(name="save/RestoreV2", op="RestoreV2", input=["save/Const", "b", "c"])
    path = tmp_path / "sneaky.pb"
    path.write_bytes(graph.SerializeToString())
    report = json.loads(fails(1, "graph", path, "--deny-ops", "default", "--json").stdout)
    assert [h["node"] for h in report["findings"]] == ["sneaky/RestoreV2"]
    assert [h["node"] for h in report["info"]] == ["save/RestoreV2"]


@needs_corpus
def test_deny_ops_on_the_corpus() -> None:
    # The Estimator graph restores warm-start values outside its saver, and its input
    # pipeline (library functions) lists and reads TFRecord files.
    report = json.loads(fails(1, "graph", TFX_META, "--deny-ops", "default", "--json").stdout)
    top = [h for h in report["findings"] if h["function"] is None]
    restores = [h for h in top if h["op"] == "RestoreV2"]
    assert len(restores) == 20
    assert all(h["node"].startswith("checkpoint_initializer") for h in restores)
    assert {h["op"] for h in top} == {"RestoreV2", "MatchingFiles"}
    inner = {(h["op"], h["function"]) for h in report["findings"] if h["function"] is not None}
    assert {op for op, _ in inner} == {"MatchingFiles", "TFRecordDataset"}
    assert all(f.startswith(("__inference_Dataset", "_make_dataset")) for _, f in inner)
    scoped = js("graph", TFX_META, "--deny-ops", "default", "--scope", "dnn")
    assert scoped["ok"]
    for sm in (KERAS_SM, TF2_SERVING):
        assert js("graph", sm, "--deny-ops", "default")["ok"], sm
    # The Estimator export: its vocabulary tables read files in assets/ (info); its traced
    # saver functions are never called (info, unless named on the deny list).
    export = TFX / "export/chicago-taxi/1646034756"
    report = js("graph", export, "--deny-ops", "default")
    assert report["ok"] and "InitializeTableFromTextFileV2" in {h["op"] for h in report["info"]}
    assert js("graph", export, "--deny-ops", "ReadFile,WriteFile,PrintV2")["ok"]
    named = json.loads(fails(1, "graph", export, "--deny-ops", "Save*", "--json").stdout)
    assert {(h["op"], h["runs"]) for h in named["findings"]} == {("SaveV2", "never")}
    assert "clean: no findings" in ok("graph", KERAS_SM, "--deny-ops", "default").stdout


# ---- convert-pbtxt ----------------------------------------------------------------------------
def _round_trip(path: Path, tmp_path: Path) -> None:
    from tfckpt.graph.load import load_message

    original = load_message(str(path))
    text = tmp_path / (path.stem + ".pbtxt")
    ok("convert-pbtxt", path, text)
    back = tmp_path / (path.stem + ".pb")
    ok("convert-pbtxt", text, back)
    again = load_message(str(back))
    assert again.type == original.type
    assert again.message == original.message
    as_text = load_message(str(text))
    assert (as_text.encoding, as_text.message == original.message) == ("text", True)


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_GRAPHS, ids=_id)
def test_round_trip_every_corpus_graph(path: Path, tmp_path: Path) -> None:
    _round_trip(path, tmp_path)


def test_convert_a_savedmodel_directory(fx: dict[str, Fixture], tmp_path: Path) -> None:
    sm = fx["savedmodel_tf2"].path
    report = json.loads(ok("convert-pbtxt", sm, tmp_path / "sm.pbtxt", "--json").stdout)
    assert (report["input"], report["type"]) == (str(sm / "saved_model.pb"), "SavedModel")


def test_round_trip_every_fixture_graph(fx: dict[str, Fixture], tmp_path: Path) -> None:
    for i, path in enumerate(graph_files(fx)):
        (tmp_path / str(i)).mkdir()
        _round_trip(path, tmp_path / str(i))


@needs_corpus
def test_convert_checkpoint_state_file(tmp_path: Path) -> None:
    ok("convert-pbtxt", TFX / "checkpoint", tmp_path / "state.pb")
    ok("convert-pbtxt", tmp_path / "state.pb", tmp_path / "checkpoint")
    assert (tmp_path / "checkpoint").read_text() == (TFX / "checkpoint").read_text()
    report = json.loads(
        ok("convert-pbtxt", TFX / "checkpoint", tmp_path / "s2.pb", "--json").stdout
    )
    assert report == {
        "kind": "convert-pbtxt",
        "version": 1,
        "input": str(TFX / "checkpoint"),
        "output": str(tmp_path / "s2.pb"),
        "type": "CheckpointState",
        "from": "text",
        "to": "binary",
        "bytes": (tmp_path / "s2.pb").stat().st_size,
        "elided": [],
        "round_trip": True,
        "written": True,
    }
    # Any name: the content says what it is; --type can say it too.
    shutil.copy(TFX / "checkpoint", tmp_path / "state.txt")
    ok("convert-pbtxt", tmp_path / "state.txt", tmp_path / "x.pb")
    ok("convert-pbtxt", tmp_path / "state.txt", tmp_path / "y.pb", "--type", "checkpoint")
    assert (tmp_path / "x.pb").read_bytes() == (tmp_path / "y.pb").read_bytes()
    result = fails(2, "convert-pbtxt", tmp_path / "state.txt", tmp_path / "z.pb", "--type", "meta")
    assert "state.txt:1:1: cannot parse as a text MetaGraphDef" in result.stderr


@needs_corpus
def test_convert_options(tmp_path: Path) -> None:
    out = tmp_path / "m.pbtxt"
    result = ok("convert-pbtxt", TFX_META, out)
    assert result.stdout == "" and "wrote" in result.stderr and "text MetaGraphDef" in result.stderr
    assert ok("convert-pbtxt", TFX_META, tmp_path / "q.pbtxt", "-q").stderr == ""
    before = out.read_bytes()
    result = fails(2, "convert-pbtxt", TFX_META, out)
    assert "exists; use --force" in result.stderr and out.read_bytes() == before
    ok("convert-pbtxt", TFX / "model.ckpt-0.meta", out, "--force")
    # stdout gets the other encoding
    text = ok("convert-pbtxt", CORPUS / "fazibear__tensorflow.cr_examples/graph.pb", "-").stdout
    assert text.startswith("node {")
    assert text == (CORPUS / "fazibear__tensorflow.cr_examples/graph.pbtxt").read_text()
    binary = runner.invoke(
        app, ["convert-pbtxt", str(CORPUS / "fazibear__tensorflow.cr_examples/graph.pbtxt"), "-"]
    )
    assert binary.exit_code == 0
    original = (CORPUS / "fazibear__tensorflow.cr_examples/graph.pb").read_bytes()
    assert protos.GraphDef.FromString(binary.stdout_bytes) == protos.GraphDef.FromString(original)
    # An unknown extension: the other encoding, with a note.
    result = ok("convert-pbtxt", TFX_META, tmp_path / "m.out")
    assert "writing text" in result.stderr
    fails(2, "convert-pbtxt", TFX_META, "-", "--json")
    fails(2, "convert-pbtxt", out, out, "--force")
    result = fails(2, "convert-pbtxt", TFX_META, tmp_path / "x.pbtxt", "--type", "graphdef")
    assert "cannot parse as a binary GraphDef" in result.stderr


@needs_corpus
def test_elide_constants(tmp_path: Path) -> None:
    frozen = ONNX / "fc-layers/frozen.pb"
    full = ok("convert-pbtxt", frozen, "-").stdout
    result = ok("convert-pbtxt", frozen, "-", "--elide-constants")
    assert "warning: --elide-constants: 3 constant(s)" in result.stderr
    assert "will NOT convert back" in result.stderr
    assert "tfckpt: elided" in result.stdout and "NOT round-trippable" in result.stdout
    assert len(result.stdout) < len(full) / 50
    report = json.loads(
        ok("convert-pbtxt", frozen, tmp_path / "e.pbtxt", "--elide-constants", "--json").stdout
    )
    assert report["round_trip"] is False and len(report["elided"]) == 3
    assert report["elided"][0]["dtype"] == "float32"
    assert sum(e["bytes"] for e in report["elided"]) > 1_000_000
    # Parsing the elided text gives a different graph (it is for reading only).
    from tfckpt.graph.load import load_message

    assert load_message(str(tmp_path / "e.pbtxt")).message != load_message(str(frozen)).message
    result = fails(2, "convert-pbtxt", frozen, tmp_path / "e.pb", "--elide-constants")
    assert "only applies to text output" in result.stderr


def test_unknown_fields_are_kept_in_binary_and_refused_in_text(tmp_path: Path) -> None:
    """A newer TensorFlow may add fields: the graph still loads (with a note), binary output
    keeps them, text output would drop them and is refused."""
    graph = protos.GraphDef()
    graph.node.add(name="a", op="NoOp")
    data = graph.SerializeToString() + b"\xf8\x06\x01"  # field 111, varint 1: unknown
    (tmp_path / "g.pb").write_bytes(data)
    result = ok("graph", tmp_path / "g.pb", "--json")
    assert json.loads(result.stdout)["nodes"] == 1
    assert "read as a GraphDef with fields unknown to tfckpt" in result.stderr
    result = fails(2, "convert-pbtxt", tmp_path / "g.pb", tmp_path / "g.pbtxt")
    assert "would not give back the same GraphDef" in result.stderr
    assert not (tmp_path / "g.pbtxt").exists()
    ok("convert-pbtxt", tmp_path / "g.pb", tmp_path / "copy.meta")
    assert (tmp_path / "copy.meta").read_bytes() == data


@pytest.mark.tf
def test_tensorflow_loads_converted_files(fx: dict[str, Fixture], tmp_path: Path, tf: Any) -> None:
    tf1 = tf.compat.v1
    # GraphDef text -> TF's own text parser and import_graph_def.
    ok("convert-pbtxt", gfile(fx, "graph_pb"), tmp_path / "g.pbtxt")
    graph_def = text_format.Parse((tmp_path / "g.pbtxt").read_text(), tf1.GraphDef())
    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
        assert len(g.get_operations()) == js("graph", gfile(fx, "graph_pb"))["nodes"]
    # MetaGraphDef text -> import_meta_graph, then restore the checkpoint with its saver.
    ok("convert-pbtxt", fx["tf1_adam"].meta, tmp_path / "m.pbtxt")
    with tf.Graph().as_default():
        saver = tf1.train.import_meta_graph(str(tmp_path / "m.pbtxt"))
        with tf1.Session() as sess:
            saver.restore(sess, str(fx["tf1_adam"].path))
            step = sess.run(tf1.train.get_global_step())
    assert step == 2
    # SavedModels with saved_model.pbtxt instead of .pb (TF1 loader and TF2 load).
    for name in ("savedmodel_tf1", "savedmodel_tf2"):
        copy = tmp_path / name
        shutil.copytree(fx[name].path, copy)
        ok("convert-pbtxt", copy / "saved_model.pb", copy / "saved_model.pbtxt")
        (copy / "saved_model.pb").unlink()
        assert js("graph", copy)["encoding"] == "text"
        if name == "savedmodel_tf1":
            with tf.Graph().as_default(), tf1.Session() as sess:
                tf1.saved_model.loader.load(sess, ["serve"], str(copy))
                assert sess.run("y:0", {"x:0": [[1.0, 1.0, 1.0]]}).tolist() == [[6.0]]
        else:
            loaded = tf.saved_model.load(str(copy))
            out = loaded.signatures["serving_default"](x=tf.constant([[1.0, 1.0]]))
            assert out["y"].numpy().tolist() == [[1.5]]
    # The checkpoint state file: text -> binary -> text, read by TensorFlow.
    state_dir = tmp_path / "state"
    shutil.copytree(Path(fx["tf1_multi"].path), state_dir)
    ok("convert-pbtxt", state_dir / "checkpoint", tmp_path / "state.pb")
    (state_dir / "checkpoint").unlink()
    ok("convert-pbtxt", tmp_path / "state.pb", state_dir / "checkpoint")
    state = tf.train.get_checkpoint_state(str(state_dir))
    assert state.model_checkpoint_path.endswith("model.ckpt-30")
    assert len(state.all_model_checkpoint_paths) == 3


# ---- the text parser ----------------------------------------------------------------------------
def _both(text: str, cls: Any = protos.GraphDef) -> tuple[bool, Any, Any]:
    fast = cls()
    handled = _fast_parse(text, fast)
    reference = text_format.Parse(text, cls())
    return handled, fast, reference


@needs_corpus
@pytest.mark.parametrize("path", [p for p in CORPUS_GRAPHS if p.suffix == ".pbtxt"], ids=_id)
def test_fast_text_parser_equals_text_format_on_corpus_text(path: Path) -> None:
    handled, fast, reference = _both(path.read_text())
    assert handled and fast == reference


@needs_corpus
@pytest.mark.parametrize("path", [p for p in CORPUS_GRAPHS if p.suffix != ".pbtxt"], ids=_id)
def test_fast_text_parser_equals_text_format_on_printed_binaries(path: Path) -> None:
    from tfckpt.graph.load import load_message, message_class

    loaded = load_message(str(path))
    text = to_text(loaded.message)
    handled, fast, reference = _both(text, message_class(loaded.type))
    assert handled and fast == reference == loaded.message


@pytest.mark.parametrize(
    "text, handled",
    [
        ('node { name: "a" op: "NoOp" }', True),
        ('# a comment\nnode {  # another\n name: "a"\n op: "No" "Op" }', True),
        ("node < name: 'single' op: 'NoOp' >", True),
        (r'node { name: "esc\"aped\n\t\001" op: "x" }', True),
        ('node { name: "a" op: "C" attr { value { i: 3 } key: "k" } }', True),  # value first
        ('node { name: "a" op: "C" attr { key: "k" value: { f: 1e-3 } } }', True),
        ('node { name: "a" op: "C" attr { key: "k" value { b: true } } }', True),
        ('node { name: "a" op: "C" attr { key: "k" value { type: DT_HALF } } }', True),
        ('node { name: "a", op: "C"; }', True),
        ("library { function { arg_attr { value { } } } }", True),  # default map key
        ('node { name: "a" op: "C" attr { key: "k" value { i: 0x10 } } }', False),
        ('node { name: "a" op: "C" attr { key: "k" value { i: 010 } } }', False),
        ('node { name: "a" op: "C" attr { key: "k" value { f: 1.5f } } }', False),
        ('node { name: "a" op: "C" attr { key: "k" value { type: 19 } } }', False),
        ('node [{ name: "a" }, { name: "b" }]', False),
        ('node { name: "a" input: ["x", "y"] }', False),
        ('node { name: "a" op: "C" attr { key: "k" value { f: -inf } } }', True),
        ('node { name: "a" op: "C" attr { key: "k" value { f: nan } } }', True),
    ],
)
def test_fast_text_parser_cases(text: str, handled: bool) -> None:
    got, fast, reference = _both(text)
    assert got == handled
    if got:
        assert fast == reference
    parsed = parse_text(text, protos.GraphDef, "x")
    assert parsed.SerializeToString() == reference.SerializeToString()


@pytest.mark.parametrize(
    "text, where",
    [
        ('node { name: "a" op: "C" }\nnode { nme: "b" }', "x.pbtxt:2:8"),
        ('node {\n  name: "a"\n  name: "b"\n}', "x.pbtxt:3:"),
        ('node { name: "unterminated }', "x.pbtxt:1:"),
        ("node { name: 5 }", "x.pbtxt:1:"),
        ('node { name: "a" ', "x.pbtxt:1:"),
        (
            'node { name: "a" op: "C" attr { key: "k" value { i: 99999999999999999999 } } }',
            "x.pbtxt:1:",
        ),
    ],
)
def test_text_errors_name_line_and_column(text: str, where: str) -> None:
    from tfckpt.errors import GraphError

    with pytest.raises(GraphError) as info:
        parse_text(text, protos.GraphDef, "x.pbtxt")
    assert str(info.value).startswith(where), str(info.value)
    assert "cannot parse as a text GraphDef" in str(info.value)
    assert "\n" not in str(info.value)


# ---- bad input ----------------------------------------------------------------------------------
def _deep_text(depth: int) -> str:
    inner = 'name: "x"'
    for _ in range(depth):
        inner = f'attr {{ key: "a" value {{ func {{ {inner} }} }} }}'
    return f'node {{ name: "n" op: "C" {inner} }}'


def _deep_binary(depth: int) -> bytes:
    attr = protos.GraphDef().node.add().attr["a"]  # an AttrValue to nest
    value = type(attr)()
    value.func.name = "x"
    data = value.SerializeToString()
    for _ in range(depth):
        # AttrValue.func (10) -> NameAttrList.attr (2) map entry {key 1, value 2: AttrValue}
        entry = b"\x0a\x01a" + b"\x12" + _varint(len(data)) + data
        name_attr_list = b"\x12" + _varint(len(entry)) + entry
        data = b"\x52" + _varint(len(name_attr_list)) + name_attr_list
    node_attr_entry = b"\x0a\x01a\x12" + _varint(len(data)) + data
    node = b"\x0a\x01n\x12\x01C\x2a" + _varint(len(node_attr_entry)) + node_attr_entry
    return b"\x0a" + _varint(len(node)) + node


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_deep_nesting_is_a_clear_error(tmp_path: Path) -> None:
    shallow = tmp_path / "shallow.pbtxt"
    shallow.write_text(_deep_text(10))
    assert js("graph", shallow)["nodes"] == 1
    deep = tmp_path / "deep.pbtxt"
    deep.write_text(_deep_text(400))
    result = fails(2, "graph", deep)
    assert f"{deep}: cannot parse as a text GraphDef: Message too deep" in result.stderr
    (tmp_path / "ok.pb").write_bytes(_deep_binary(10))
    assert js("graph", tmp_path / "ok.pb")["nodes"] == 1
    (tmp_path / "deep.pb").write_bytes(_deep_binary(400))
    result = fails(2, "graph", tmp_path / "deep.pb")
    assert "deep.pb" in result.stderr
    result = fails(2, "graph", tmp_path / "deep.pb", "--type", "graphdef")
    assert "nested deeper than protobuf's limit" in result.stderr


@needs_corpus
def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    truncated = tmp_path / "model.meta"
    truncated.write_bytes(TFX_META.read_bytes()[:100_000])
    result = fails(2, "graph", truncated)
    assert "truncated, corrupt" in result.stderr
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(bytes(range(256)) * 10)
    fails(2, "graph", garbage)
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    assert "empty file" in fails(2, "graph", empty).stderr
    unknown_text = tmp_path / "u.pbtxt"
    unknown_text.write_text("foo { bar: 1 }\n")
    assert (
        "unknown message type (text starting with field 'foo')"
        in fails(2, "graph", unknown_text).stderr
    )
    broken = tmp_path / "broken.pbtxt"
    broken.write_text('node {\n  name: "a"\n  op: "NoOp"\n  bogus: 1\n}\n')
    result = fails(2, "graph", broken)
    assert (
        f'{broken}:4:3: cannot parse as a text GraphDef: Message type "tensorboard.NodeDef"'
        in result.stderr
    )
    not_utf8 = tmp_path / "latin.pbtxt"
    not_utf8.write_bytes(b'node { name: "caf\xe9" op: "NoOp" }\n')
    assert "not UTF-8 text" in fails(2, "graph", not_utf8).stderr
    fails(2, "graph", tmp_path / "missing.pb")
    assert "no such file" in fails(2, "graph", tmp_path / "missing.pb").stderr
    assert "no SavedModel, checkpoint .meta" in fails(2, "graph", tmp_path).stderr
    state = tmp_path / "checkpoint"
    shutil.copy(TFX / "checkpoint", state)
    assert "a text CheckpointState, not a graph" in fails(2, "graph", state).stderr
    for name in NOT_GRAPHS:
        path = next(p for p in corpus_graphs() if p.name == name)
        assert "unknown message type" in fails(2, "graph", path).stderr
        fails(2, "convert-pbtxt", path, tmp_path / "x.pbtxt")
    huge = tmp_path / "huge.pb"
    with open(huge, "wb") as f:
        f.truncate(2**31)  # sparse: nothing is read
    assert "2 GiB message limit" in fails(2, "graph", huge).stderr
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"\x08\x01\x12\x03abc")
    assert "cannot parse as a binary SavedModel" in fails(2, "graph", sm).stderr


def test_checkpoint_without_meta(fx: dict[str, Fixture]) -> None:
    result = fails(2, "graph", fx["dtypes"].path)
    assert "has no tensors.meta graph" in result.stderr


# ---- CLI plumbing --------------------------------------------------------------------------
def test_help_texts() -> None:
    for command in ("graph", "convert-pbtxt"):
        result = ok(command, "--help")
        assert "Examples" in result.stdout
    assert "graph" in ok("--help").stdout and "convert-pbtxt" in ok("--help").stdout


@needs_corpus
@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["graph", str(TFX_META)],
        ["graph", str(TFX_PBTXT), "--json"],
        ["graph", str(KERAS_SM), "--check", str(KERAS_SM)],
        ["graph", str(TFX_META), "--deny-ops", "default", "--format", "text"],
        ["graph", str(TFX_META), "--format", "dot", "--depth", "2"],
        ["convert-pbtxt", str(TFX_META), "-"],
    ],
)
def test_native_graph_never_imports_tensorflow(args: list[str]) -> None:
    modules = modules_after(args, exit_codes=(0, 1))  # --deny-ops finds ops in the tfx graph
    assert "tfckpt.cli" in modules
    if args[0] != "--help":
        assert "tfckpt.graph.load" in modules
    assert not imports_tensorflow(modules)


def test_savedmodel_without_meta_graphs_and_special_files(tmp_path: Path) -> None:

    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x08\x01")  # schema 1, no meta graphs
    assert run("graph", tmp_path / "sm").exit_code == 0
    for extra in (["--nodes"], ["--format", "dot"], ["--deny-ops", "default"]):
        result = run("graph", tmp_path / "sm", *extra)
        assert result.exit_code == 2 and "holds no meta graph" in result.stderr, extra
    os.mkfifo(tmp_path / "fifo.pb")
    (tmp_path / "zero.pb").symlink_to("/dev/zero")
    for name, message in (("fifo.pb", "is a FIFO"), ("zero.pb", "is a device")):
        for command in (["graph"], ["convert-pbtxt"]):
            args = [*command, tmp_path / name]
            if command == ["convert-pbtxt"]:
                args.append(tmp_path / "out.pbtxt")
            result = run(*args)
            assert result.exit_code == 2 and message in result.stderr, (name, command)
