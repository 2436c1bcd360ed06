"""``tfckpt scan`` and ``tfckpt check --policy``: the op table against TensorFlow's registry,
hostile and clean models made by TensorFlow (examples/make_hostile_models.py), argument
provenance, the saver's exact shape, SARIF, the policy rules, the corpus."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import run

import tfckpt
from tfckpt import protos
from tfckpt.errors import GraphError, PolicyError, UsageError
from tfckpt.graph.op_policy import (
    CAPABILITIES,
    IO_NAME_RE,
    OPS,
    UNCLASSIFIED,
    classify,
    url_capability,
)
from tfckpt.graph.policy import parse_policy, policy_from_dict, version_matches

from fixtures import CORPUS, Fixture, build_hostile, corpus_savedmodels

ROOT = Path(__file__).resolve().parent.parent
TFX = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
needs_corpus = pytest.mark.skipif(not TFX.exists(), reason="corpus not present")
# Registry ops whose name suggests I/O (the list) ...
IO_NAMES = re.compile(r"File|Reader|Writer|Rpc|Summary|^Debug|PyFunc")
# ... or that take an argument naming a file, a URL or a graph.
IO_ARGS = re.compile(
    r"(^|_)(filenames?|file_pattern|patterns?|path|prefix(es)?|dir|directory|logdir|urls?|address"
    r"|db_uri|data_source_name|descriptor_source|memory_region_name|output_stream|vocab_file"
    r"|chunk_file|shard_dir|snapshot_path|graph_def|debug_ops_spec|ckpt_path)$|^target$"
)


def fails(code: int, *args: Any) -> Any:
    result = run(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code == 2:
        assert result.stderr.startswith("tfckpt: error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
    return result


def scan_json(*args: Any, code: int = 0) -> Any:
    result = fails(code, "scan", *args, "--json")
    doc = json.loads(result.stdout)
    assert doc["kind"] == "scan" and doc["version"] == 1 and doc["ok"] is (code == 0)
    return doc


@pytest.fixture(scope="session")
def hostile(tf: Any) -> dict[str, Any]:
    return build_hostile()[1]


# ---- hand-built graphs ----------------------------------------------------------------------
def _attr(value: Any) -> Any:
    attr = protos.MetaGraphDef().graph_def.node.add().attr["x"]
    if isinstance(value, bytes):
        attr.s = value
    elif isinstance(value, str):
        attr.s = value.encode()
    elif isinstance(value, list):
        attr.list.s.extend(v.encode() for v in value)
    elif isinstance(value, dict) and "func" in value:
        attr.func.name = value["func"]
    return attr


def add_node(nodes: Any, name: str, op: str, inputs: tuple[str, ...] = (), **attrs: Any) -> Any:
    node = nodes.add(name=name, op=op, input=list(inputs))
    for key, value in attrs.items():
        node.attr[key].CopyFrom(_attr(value))
    return node


def add_const(nodes: Any, name: str, *values: bytes | str) -> Any:
    node = nodes.add(name=name, op="Const")
    tensor = node.attr["value"].tensor
    tensor.dtype = 7  # DT_STRING
    tensor.string_val.extend(v.encode() if isinstance(v, str) else v for v in values)
    return node


def add_function(graph: Any, name: str, args: list[str], outputs: dict[str, str]) -> Any:
    fdef = graph.library.function.add()
    fdef.signature.name = name
    for a in args:
        fdef.signature.input_arg.add(name=a, type=7)
    for out, ref in outputs.items():
        fdef.signature.output_arg.add(name=out, type=7)
        fdef.ret[out] = ref
    return fdef


def write_graph(path: Path, graph: Any) -> Path:
    path.write_bytes(graph.SerializeToString())
    return path


def ops_of(report: Any) -> list[tuple[str, str]]:
    return sorted((f.op, f.node) for f in report.findings)


# ---- the op table ---------------------------------------------------------------------------
def test_every_table_entry_has_a_capability_severity_and_one_line_reason() -> None:
    for op, rule in OPS.items():
        assert rule.capability in CAPABILITIES, op
        assert rule.severity in (
            ("none",) if rule.capability == "none" else ("high", "medium", "low")
        )
        assert rule.reason and "\n" not in rule.reason and len(rule.reason) < 110, op
        if rule.benign is not None:
            re.compile(rule.benign)
        assert all(isinstance(p, str) or p >= 0 for p in rule.path), op
    assert classify("ReadFile") is OPS["ReadFile"]
    assert classify("MatMul") is None
    assert classify("MyCustomFileReaderOp") is UNCLASSIFIED  # deny what the table does not know
    assert classify("ScalarSummary") is not None and not classify("ScalarSummary").reported  # type: ignore[union-attr]
    assert url_capability("file:///tmp/x", "log") == "file-write"
    assert url_capability("grpc://host:1", "debug") == "network"
    assert url_capability("DebugIdentity;file:///tmp/d;0", "debug") == "file-write"
    assert url_capability("log(warning)", "log") == "log"


@pytest.mark.tf
def test_every_registry_op_named_like_io_is_classified(tf: Any) -> None:
    from tensorflow.python.framework import op_def_registry

    unclassified = []
    for name in sorted(n for n in dir(tf.raw_ops) if not n.startswith("_")):
        op_def = op_def_registry.get(name)
        args = [a.name for a in op_def.input_arg] + [a.name for a in op_def.attr]
        io_like = IO_NAMES.search(name) or IO_NAME_RE.search(name)
        if (io_like or any(IO_ARGS.search(a) for a in args)) and name not in OPS:
            unclassified.append(name)
    assert unclassified == []


@pytest.mark.tf
def test_table_path_arguments_are_the_registry_s_file_arguments(tf: Any) -> None:
    from tensorflow.python.framework import op_def_registry

    checked = 0
    for op, rule in OPS.items():
        op_def = op_def_registry.get(op)
        if op_def is None:  # ops older TensorFlows had (Rpc, TryRpc) or internal ones (_Send)
            continue
        inputs = [a.name for a in op_def.input_arg]
        attrs = {a.name for a in op_def.attr}
        for where in rule.path:
            if isinstance(where, int):
                assert where < len(inputs) and IO_ARGS.search(inputs[where]), (op, where, inputs)
            else:
                assert where in attrs, (op, where)
            checked += 1
    assert checked > 60


# ---- TF-made hostile and clean models -------------------------------------------------------
@pytest.mark.tf
def test_hostile_and_clean_models_give_exactly_their_findings(hostile: dict[str, Any]) -> None:
    wrong = []
    for name, case in sorted(hostile.items()):
        report = tfckpt.scan(case["path"])
        found = sorted([f.op, f.capability] for f in report.findings)
        expected = sorted(case["findings"])
        if sorted(set(map(tuple, found))) != sorted(set(map(tuple, expected))):
            wrong.append((name, "findings", found, expected))
        info = {f.op for f in report.info}
        if not set(case["info"]) <= info:
            wrong.append((name, "info", sorted(info), case["info"]))
        at_load = {f.op for f in report.findings + report.info if f.runs == "at load"}
        if not set(case["load"]) <= at_load:
            wrong.append((name, "at load", sorted(at_load), case["load"]))
        if case.get("tags") and {tuple(f.tags or ()) for f in report.findings} != {
            tuple(case["tags"])
        }:
            wrong.append((name, "tags", [f.tags for f in report.findings], case["tags"]))
        assert report.ok is case["clean"], name
    assert wrong == []
    cases = set(hostile)
    assert {"clean_keras", "clean_tf1_sharded", "clean_text_tf1", "clean_text_tf2"} <= cases
    assert len([c for c in hostile.values() if not c["clean"]]) >= 18


@pytest.mark.tf
def test_scan_cli_on_hostile_and_clean_models(hostile: dict[str, Any]) -> None:
    clean = fails(0, "scan", hostile["clean_keras"]["path"])
    assert "clean: no findings" in clean.stdout and clean.stderr == ""
    text = fails(0, "scan", hostile["clean_text_tf2"]["path"])
    assert "info (reported, not denied)" in text.stdout
    assert "reads a file shipped in the SavedModel's assets/" in text.stdout
    quiet = fails(0, "scan", hostile["clean_text_tf2"]["path"], "--no-info").stdout
    assert "info (reported" not in quiet and quiet.startswith("clean: no findings")
    bad = fails(1, "scan", hostile["print_file"]["path"])
    assert "1 finding(s) (1 high): PrintV2" in bad.stdout
    assert "file:///tmp/tfckpt-hostile-drop-print.txt" in bad.stdout
    # Several paths: one report; JSON entries name their op and file.
    doc = scan_json(hostile["savev2_const"]["path"], hostile["clean_keras"]["path"], code=1)
    assert [f["op"] for f in doc["findings"]] == ["SaveV2"]
    assert len(doc["scanned"]) == 2 and doc["summary"]["findings"] == 1
    finding = doc["findings"][0]
    assert finding["capability"] == "checkpoint" and finding["severity"] == "high"
    assert finding["path_sources"] == [
        {
            "kind": "constant",
            "detail": "Const",
            "node": "Const",
            "function": finding["function"],
            "values": ["/tmp/tfckpt-hostile-drop-ckpt"],
        }
    ]
    assert finding["tags"] == ["serve"] and finding["runs"] == "when called"
    assert finding["file"].endswith("saved_model.pb")


@pytest.mark.tf
def test_provenance_runs_and_nesting(hostile: dict[str, Any]) -> None:
    def only(case: str) -> Any:
        report = tfckpt.scan(hostile[case]["path"])
        assert len(report.findings) == 1, case
        return report.findings[0]

    on_load = only("init_op_only")
    assert on_load.runs == "at load" and on_load.function.startswith("__inference__initializer")
    assert only("tf1_main_op").runs == "at load" and only("tf1_main_op").function is None
    deep = only("nested_functions")
    assert deep.function.startswith("__inference_level3") and deep.runs == "when called"
    assert [s.values for s in deep.sources] == [("/etc/passwd",)]
    vocab = only("vocab_absolute")
    assert sorted(v for s in vocab.sources for v in s.values) == ["/etc/", "passwd"]
    escape = only("asset_escape")
    assert escape.sources and all(s.kind == "asset" and s.escapes for s in escape.sources)
    info = tfckpt.scan(hostile["clean_text_tf2"]["path"]).info
    assert [(s.kind, s.detail, s.escapes) for s in info[0].sources] == [
        ("asset", "_vocab.txt", False)
    ]
    nested = tfckpt.scan(hostile["dataset_from_graph"]["path"])
    inner = nested.findings[0]
    assert inner.op == "ReadFile" and inner.nested and "DatasetFromGraph" in inner.nested[0]
    assert [i.op for i in nested.info] == ["DatasetFromGraph"]
    assert nested.graphs[0].nested_graphs == 1
    impostor = only("traced_saver_impostor")
    assert impostor.function.startswith("__inference__traced_save_")
    scoped = tfckpt.scan(hostile["saver_scope_impostor"]["path"])
    assert ops_of(scoped) == [("SaveV2", "save/SaveV2"), ("WriteFile", "save/WriteFile")]
    assert scoped.info == []  # the real saver (save_1/) is not even info
    loop = only("while_body")
    assert loop.function.startswith("while_body")
    assert ("/tmp/tfckpt-hostile-drop-{}",) in [s.values for s in loop.sources]


@pytest.mark.tf
def test_every_meta_graph_and_both_graph_files_are_scanned(hostile: dict[str, Any]) -> None:
    report = tfckpt.scan(hostile["second_metagraph"]["path"])
    assert [g.tags for g in report.graphs] == [["serve"], ["evil"]]
    assert [(f.op, f.tags) for f in report.findings] == [("ReadFile", ["evil"])]
    assert tfckpt.scan(hostile["second_metagraph"]["path"], tags="serve").ok
    both = run("scan", hostile["pb_and_pbtxt"]["path"], "--json")
    assert both.exit_code == 1
    assert "has saved_model.pb and saved_model.pbtxt; scanning both" in both.stderr
    doc = json.loads(both.stdout)
    assert {f["file"].rsplit("/", 1)[1] for f in doc["findings"]} == {"saved_model.pbtxt"}
    assert [g["encoding"] for g in doc["scanned"]] == ["binary", "text"]
    pbtxt = tfckpt.scan(hostile["pbtxt_reader"]["path"])
    assert pbtxt.graphs[0].encoding == "text" and not pbtxt.ok


@pytest.mark.tf
def test_op_zoo_in_every_graph_format(hostile: dict[str, Any]) -> None:
    reports = [tfckpt.scan(hostile[f"op_zoo_{ext}"]["path"]) for ext in ("pb", "pbtxt", "meta")]
    found = [sorted((f.op, f.node, f.capability) for f in r.findings) for r in reports]
    assert found[0] == found[1] == found[2]
    nodes = {node for _, node, _ in found[0]}
    # decode_proto with the built-in pool or inline bytes, and an in-memory cache, are fine.
    assert {"DecodeLocal", "DecodeBytes", "MemoryCache"}.isdisjoint(nodes)
    assert {"DecodeProtoFile", "EncodeProtoFile", "CacheDatasetV2"} <= nodes
    levels = {(f.node, f.severity) for f in reports[0].findings}
    assert ("PrintStderr", "low") in levels and ("PrintFile", "high") in levels


# ---- the saver's exact shape ----------------------------------------------------------------
def _copy_savedmodel(src: Path, dst: Path) -> tuple[Path, Any]:
    shutil.copytree(src, dst)
    return dst, protos.SavedModel.FromString((dst / "saved_model.pb").read_bytes())


@pytest.mark.tf
def test_the_saver_must_write_where_the_loader_says(fx: dict[str, Fixture], tmp_path: Path) -> None:
    for f in fx.values():
        if f.meta is not None:
            assert tfckpt.scan(f.meta).ok, f.name
    tf2 = fx["savedmodel_tf2"].path
    tf1 = fx["savedmodel_tf1"].path
    assert tfckpt.scan(tf2).ok and tfckpt.scan(tf2).info == []
    assert tfckpt.scan(tf1).ok and tfckpt.scan(tf1).info == []
    # TF2: the SaverDef's save call gets a constant instead of the loader's file name.
    path, sm = _copy_savedmodel(tf2, tmp_path / "tf2")
    graph = sm.meta_graphs[0].graph_def
    add_const(graph.node, "evil_path", "/tmp/elsewhere")
    call = next(
        n for n in graph.node if n.name == node_name(sm.meta_graphs[0].saver_def.save_tensor_name)
    )
    call.input[0] = "evil_path"
    (path / "saved_model.pb").write_bytes(sm.SerializeToString())
    report = tfckpt.scan(path)
    assert sorted(f.op for f in report.findings) == ["MergeV2Checkpoints", "SaveV2"]
    assert all(f.function.startswith("__inference__traced_save_") for f in report.findings)
    assert any(s.values == ("/tmp/elsewhere",) for s in report.findings[0].sources)
    # TF1: a shard suffix that climbs out of the caller's directory is not TF's.
    path, sm = _copy_savedmodel(tf1, tmp_path / "tf1")
    for node in sm.meta_graphs[0].graph_def.node:
        if node.op == "Const" and list(node.attr["value"].tensor.string_val) == [b"_temp/part"]:
            node.attr["value"].tensor.string_val[0] = b"/../../../etc/cron.d/x"
    (path / "saved_model.pb").write_bytes(sm.SerializeToString())
    assert {f.op for f in tfckpt.scan(path).findings} == {"SaveV2", "MergeV2Checkpoints"}


def node_name(ref: str) -> str:
    return ref.lstrip("^").split(":")[0]


def test_saver_look_alikes_in_a_bare_graph(tmp_path: Path) -> None:
    graph = protos.GraphDef()
    n = graph.node
    add_const(n, "save/filename/input", "model")
    add_node(n, "save/filename", "PlaceholderWithDefault", ("save/filename/input",))
    add_node(n, "save/Const", "PlaceholderWithDefault", ("save/filename",))
    add_const(n, "save/RestoreV2/tensor_names", "w")
    add_node(n, "save/RestoreV2", "RestoreV2", ("save/Const", "save/RestoreV2/tensor_names"))
    add_const(n, "save/evil", "/etc/shadow")
    add_node(n, "save/RestoreV2_1", "RestoreV2", ("save/evil", "save/RestoreV2/tensor_names"))
    add_node(n, "sneaky/RestoreV2", "RestoreV2", ("save/Const", "save/RestoreV2/tensor_names"))
    report = tfckpt.scan(write_graph(tmp_path / "g.pb", graph))
    assert ops_of(report) == [("RestoreV2", "save/RestoreV2_1"), ("RestoreV2", "sneaky/RestoreV2")]
    assert [(i.node, i.why.split(";")[0]) for i in report.info] == [
        ("save/RestoreV2", "the graph's saver (save/), writing where the caller's feed says")
    ]


# ---- provenance and policy semantics on hand-built graphs -----------------------------------
def test_functions_called_uncalled_and_recursive(tmp_path: Path) -> None:
    graph = protos.GraphDef()
    # read_arg reads its argument; the graph calls it with a constant path.
    fn = add_function(graph, "read_arg", ["path"], {"out": "ReadFile:contents:0"})
    add_node(fn.node_def, "ReadFile", "ReadFile", ("path",))
    add_const(graph.node, "secret", "/etc/passwd")
    add_node(graph.node, "call", "StatefulPartitionedCall", ("secret",), f={"func": "read_arg"})
    # uncalled_arg: nothing calls it, its path is its argument -> info.
    fn = add_function(graph, "uncalled_arg", ["path"], {"out": "ReadFile:contents:0"})
    add_node(fn.node_def, "ReadFile", "ReadFile", ("path",))
    # uncalled_const: nothing calls it, but it reads a constant path -> a finding, runs never.
    fn = add_function(graph, "uncalled_const", [], {"out": "ReadFile:contents:0"})
    add_const(fn.node_def, "p", "/root/.ssh/id_rsa")
    add_node(fn.node_def, "ReadFile", "ReadFile", ("p:output:0",))
    # recurse: calls itself with its own argument (and the graph calls it with an input).
    fn = add_function(graph, "recurse", ["path"], {"out": "again:output:0"})
    add_node(fn.node_def, "ReadFile", "ReadFile", ("path",))
    add_node(fn.node_def, "again", "PartitionedCall", ("path",), f={"func": "recurse"})
    add_node(graph.node, "user_path", "Placeholder")
    add_node(graph.node, "loop", "PartitionedCall", ("user_path",), f={"func": "recurse"})
    report = tfckpt.scan(write_graph(tmp_path / "f.pb", graph))
    by_function = {f.function: f for f in report.findings}
    assert set(by_function) == {"read_arg", "uncalled_const", "recurse"}
    assert [s.values for s in by_function["read_arg"].sources] == [("/etc/passwd",)]
    assert by_function["uncalled_const"].runs == "never"
    assert [s.kind for s in by_function["recurse"].sources] == ["input"]
    assert [(i.function, i.sources[0].kind) for i in report.info] == [("uncalled_arg", "uncalled")]


def test_custom_ops_descriptor_sources_print_streams_and_graphs_as_data(tmp_path: Path) -> None:
    graph = protos.GraphDef()
    n = graph.node
    add_node(n, "mine", "MyFileExfiltrator")  # a custom op named like I/O: denied by default
    add_node(n, "fine", "Frobnicate")  # a custom op with an innocent name: not reported
    add_node(n, "proto_local", "DecodeProtoV2")  # default descriptor_source: local://
    add_node(n, "proto_bytes", "DecodeProtoV2", descriptor_source="bytes://\x0a")
    add_node(n, "proto_file", "DecodeProtoV2", descriptor_source="/tmp/evil.desc")
    add_node(n, "print", "PrintV2")  # default output_stream: stderr
    add_node(n, "print_log", "PrintV2", output_stream="log(warning)")
    add_const(n, "garbage", b"\xff\xff not a graph")
    add_node(n, "from_garbage", "DatasetFromGraph", ("garbage",))
    add_node(n, "graph_input", "Placeholder")
    add_node(n, "from_input", "DatasetFromGraph", ("graph_input",))
    add_const(n, "memory", "")
    add_node(n, "cache", "CacheDatasetV2", ("ds", "memory", "c"))
    report = tfckpt.scan(write_graph(tmp_path / "c.pb", graph))
    got = {(f.node, f.capability, f.severity) for f in report.findings}
    assert got == {
        ("mine", "unclassified", "medium"),
        ("proto_file", "file-read", "high"),
        ("print", "log", "low"),
        ("print_log", "log", "low"),
        ("from_garbage", "graph", "high"),
        ("from_input", "graph", "high"),
    }
    assert report.info == []


def test_deny_and_allow_lists(fx_free_graph: Path) -> None:
    base = tfckpt.scan(fx_free_graph)
    assert ops_of(base) == [("ReadFile", "read"), ("WriteFile", "write")]
    allowed = tfckpt.scan(fx_free_graph, allow_ops=["Write*"])
    assert ops_of(allowed) == [("ReadFile", "read")]
    assert [i.why.startswith("allowed by the policy ('Write*')") for i in allowed.info] == [True]
    denied = tfckpt.scan(fx_free_graph, deny_ops="MatMul,Const")
    assert {f.op for f in denied.findings} == {"ReadFile", "WriteFile", "MatMul", "Const"}
    matmul = next(f for f in denied.findings if f.op == "MatMul")
    assert matmul.capability == "denied" and "the deny list names 'MatMul'" in matmul.why
    only = tfckpt.scan(fx_free_graph, deny_ops=["Write*"], default_policy=False)
    assert ops_of(only) == [("WriteFile", "write")]
    with pytest.raises(UsageError, match="nothing to look for"):
        tfckpt.scan(fx_free_graph, default_policy=False)
    with pytest.raises(UsageError, match="at least one path"):
        tfckpt.scan([])


@pytest.fixture
def fx_free_graph(tmp_path: Path) -> Path:
    graph = protos.GraphDef()
    n = graph.node
    add_node(n, "path", "Placeholder")
    add_node(n, "read", "ReadFile", ("path",))
    add_node(n, "write", "WriteFile", ("path", "read"))
    add_node(n, "mm", "MatMul", ("a", "b"))
    add_const(n, "name", "x")
    return write_graph(tmp_path / "free.pb", graph)


# ---- CLI contract ---------------------------------------------------------------------------
def _check_sarif(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    (run_,) = doc["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "tfckpt" and driver["version"] == tfckpt.__version__
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids))
    for result in run_["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"]
        assert result["partialFingerprints"]
    results: list[dict[str, Any]] = run_["results"]
    return results


def test_scan_cli_json_sarif_and_exit_codes(fx_free_graph: Path, tmp_path: Path) -> None:
    doc = scan_json(fx_free_graph, code=1)
    assert [f["op"] for f in doc["findings"]] == ["ReadFile", "WriteFile"]
    assert doc["info"] == [] and doc["policy"] == {"default": True, "deny_ops": [], "allow_ops": []}
    sarif = tmp_path / "out" / "scan.sarif"
    result = fails(1, "scan", fx_free_graph, "--sarif", sarif)
    assert "wrote " in result.stderr and "(SARIF 2.1.0, 2 result(s))" in result.stderr
    results = _check_sarif(json.loads(sarif.read_text()))
    assert [r["ruleId"] for r in results] == ["scan/file-read", "scan/file-write"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
        "file:///"
    )
    # An existing SARIF file needs --force, checked before anything is scanned.
    again = fails(2, "scan", fx_free_graph, "--sarif", sarif)
    assert "exists; use --force" in again.stderr and again.stdout == ""
    fails(1, "scan", fx_free_graph, "--sarif", sarif, "--force")
    # SARIF on stdout replaces the table; it cannot share stdout with --json.
    out = fails(1, "scan", fx_free_graph, "--sarif", "-")
    assert len(_check_sarif(json.loads(out.stdout))) == 2
    assert (
        "--json and --sarif -" in fails(2, "scan", fx_free_graph, "--sarif", "-", "--json").stderr
    )
    # A clean graph: exit 0, an empty results list.
    clean = protos.GraphDef()
    add_node(clean.node, "x", "Placeholder")
    path = write_graph(tmp_path / "clean.pb", clean)
    assert _check_sarif(json.loads(fails(0, "scan", path, "--sarif", "-").stdout)) == []
    assert scan_json(path)["findings"] == []


def test_unreadable_inputs_exit_2_with_one_line(tmp_path: Path, fx_free_graph: Path) -> None:
    (tmp_path / "junk.pb").write_bytes(b"\x00\x01garbage\xff")
    fails(2, "scan", tmp_path / "junk.pb")
    fails(2, "scan", tmp_path / "missing")
    # One bad input among good ones: nothing is reported but the error.
    result = fails(2, "scan", fx_free_graph, tmp_path / "missing", "--json")
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["kind"] == "scan" and doc["error"]["exit_code"] == 2
    sm = tmp_path / "chunked"
    sm.mkdir()
    shutil.copy(fx_free_graph, sm / "saved_model.pb")
    (sm / "saved_model.cpb").write_bytes(b"x")
    assert "chunked SavedModel" in fails(2, "scan", sm).stderr
    empty = tmp_path / "empty_sm"
    empty.mkdir()
    (empty / "saved_model.pb").write_bytes(b"\x08\x01")
    assert "holds no meta graph" in fails(2, "scan", empty).stderr
    with pytest.raises(GraphError):
        tfckpt.scan(tmp_path / "junk.pb")


def test_graph_deny_ops_is_an_alias_of_scan(fx_free_graph: Path) -> None:
    via_graph = json.loads(
        fails(1, "graph", fx_free_graph, "--deny-ops", "default", "--json").stdout
    )
    via_scan = scan_json(fx_free_graph, code=1)
    assert via_graph.pop("kind") == "graph" and via_scan.pop("kind") == "scan"
    assert via_graph == via_scan
    only = json.loads(fails(1, "graph", fx_free_graph, "--deny-ops", "Write*", "--json").stdout)
    assert [f["op"] for f in only["findings"]] == ["WriteFile"]
    assert (
        json.loads(fails(0, "graph", fx_free_graph, "--deny-ops", "PyFunc", "--json").stdout)[
            "findings"
        ]
        == []
    )
    assert "needs op names" in fails(2, "graph", fx_free_graph, "--deny-ops", ",").stderr


# ---- the corpus -----------------------------------------------------------------------------
@needs_corpus
def test_every_corpus_savedmodel_is_clean() -> None:
    models = corpus_savedmodels()
    assert len(models) >= 10
    for model in models:
        report = tfckpt.scan(model)
        assert report.ok, (model, [(f.op, f.node, f.why) for f in report.findings])
    export = TFX / "export/chicago-taxi/1646034756"
    info = tfckpt.scan(export).info
    assert {i.op for i in info} == {"InitializeTableFromTextFileV2", "SaveV2", "RestoreV2",
                                   "MergeV2Checkpoints"}  # fmt: skip
    assert sum(i.sources[0].kind == "asset" for i in info) == 4


@needs_corpus
def test_corpus_estimator_graph_reads_files_outside_any_saver() -> None:
    report = tfckpt.scan(TFX / "model.ckpt-1000.meta")
    top = [f for f in report.findings if f.function is None]
    restores = [f for f in top if f.op == "RestoreV2"]
    assert len(restores) == 20 and all(
        f.node.startswith("checkpoint_initializer") for f in restores
    )
    assert all(s.kind == "constant" for f in restores for s in f.sources)
    assert {f.op for f in top} == {"RestoreV2", "MatchingFiles"}
    inner = {f.op for f in report.findings if f.function is not None}
    assert inner == {"MatchingFiles", "TFRecordDataset"}
    assert tfckpt.scan(TFX / "model.ckpt-1000.meta", scope="dnn").ok


# ---- policies -------------------------------------------------------------------------------
def test_policy_parsing_and_errors(tmp_path: Path) -> None:
    policy = parse_policy(
        """
        deny_ops = ["PrintV2"]
        allow_ops = "Print"
        finite = true
        max_bytes = "1.5 MiB"
        max_parameters = "2M"
        dtypes = ["float", "half"]
        no_optimizer_state = true
        tensorflow_version = ">=2.12,<3"
        [signatures.serving_default]
        tags = "serve"
        inputs.x = { dtype = "float32", shape = [-1, 5] }
        """
    )
    assert policy.max_bytes == int(1.5 * 2**20) and policy.max_parameters == 2_000_000
    assert policy.dtypes == ["float32", "float16"] and policy.allow_ops == ["Print"]
    assert policy.signatures[0].inputs["x"].shape == (-1, 5)
    assert policy.rules == [
        "ops",
        "signatures",
        "finite",
        "max_bytes",
        "max_parameters",
        "dtypes",
        "no_optimizer_state",
        "tensorflow_version",
    ]
    as_list = parse_policy('[[signatures]]\nname = "s"\noutputs.y = { dtype = "int64" }\n')
    assert as_list.signatures[0].name == "s" and as_list.signatures[0].outputs["y"].dtype == "int64"
    bad = {
        "finit = true": "unknown key 'finit'; did you mean 'finite'?",
        "finite = 1": "finite: expected true or false",
        "max_bytes = '12 parsecs'": "cannot read '12 parsecs'",
        "max_parameters = -3": "must not be negative",
        "dtypes = ['float33']": "unknown dtype 'float33'",
        "tensorflow_version = 'newest'": "cannot read 'newest'",
        "[signatures.s]\ninputs.x = { dtype = 'float32', shap = [1] }": "did you mean 'shape'?",
        "[signatures.s]\ninputs.x = { shape = [1.5] }": "expected a list of sizes",
        "scan = false": "checks nothing",
        "default_ops = false": "default_ops = false needs deny_ops",
        "finite = [": "not valid TOML",
    }
    for text, message in bad.items():
        with pytest.raises(PolicyError, match=re.escape(message)):
            parse_policy(text)
    with pytest.raises(PolicyError, match="no such policy file"):
        tfckpt.load_policy(tmp_path / "nope.toml")
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(PolicyError, match="FIFO"):
        tfckpt.load_policy(tmp_path / "fifo.toml")


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("2.15.1", ">=2.12,<3", True),
        ("2.11.0", ">=2.12,<3", False),
        ("2.21.0-rc1", "<2.21.1", True),
        ("3.0", ">=2.12,<3", False),
        ("2.15.1", "==2.15.*", True),
        ("2.16.0", "==2.15.*", False),
        ("2.15.0", "==2.15", True),
        ("0.12.head", ">=1", False),
        ("", ">=1", False),
    ],
)
def test_version_ranges(version: str, spec: str, expected: bool) -> None:
    assert version_matches(version, spec) is expected


def _nan_checkpoint(prefix: Path) -> Path:
    from tfckpt.bundle.writer import BundleWriter
    from tfckpt.dtypes import dtype_from_name

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with BundleWriter(str(prefix), force=True) as writer:
        writer.add_array("dense/kernel", np.array([1.0, np.nan, np.inf], np.float32),
                         dtype_from_name("float32"))  # fmt: skip
        writer.add_array("dense/bias", np.zeros(4, np.float64), dtype_from_name("float64"))
        writer.add_array("dense/kernel/Adam", np.zeros(3, np.float32), dtype_from_name("float32"))
        writer.commit()
    return prefix


def test_check_rules_on_a_checkpoint(tmp_path: Path) -> None:
    prefix = _nan_checkpoint(tmp_path / "ckpt" / "model.ckpt-1")
    policy = {
        "finite": True,
        "dtypes": ["float32"],
        "no_optimizer_state": True,
        "max_bytes": 10,
        "tensorflow_version": ">=2",
    }
    report = tfckpt.check(str(prefix), policy=policy)
    (artifact,) = report.artifacts
    rules = {r.rule: r for r in artifact.rules}
    assert not report.ok and artifact.kind == "checkpoint"
    assert rules["ops"].ok and "no graph" in rules["ops"].summary
    assert not rules["finite"].ok
    assert {(e["tensor"], e["check"]) for e in rules["finite"].evidence} == {
        ("dense/kernel", "nan"),
        ("dense/kernel", "inf"),
    }
    assert not rules["dtypes"].ok and rules["dtypes"].evidence[0]["dtype"] == "float64"
    assert not rules["no_optimizer_state"].ok and rules["no_optimizer_state"].evidence == [
        "dense/kernel/Adam"
    ]
    assert not rules["max_bytes"].ok and rules["max_bytes"].evidence[0]["bytes"] > 10
    assert not rules["tensorflow_version"].ok and "unknown" in rules["tensorflow_version"].summary
    passing = tfckpt.check(
        prefix, policy={"max_parameters": 100, "dtypes": ["float32", "float64"], "max_bytes": "1MB"}
    )
    assert passing.ok, passing.to_dict()


def test_check_parameter_budget_counts_model_parameters(tmp_path: Path) -> None:
    prefix = _nan_checkpoint(tmp_path / "ckpt" / "model.ckpt-1")
    over = tfckpt.check(prefix, policy={"max_parameters": 6}).artifacts[0].rules[1]
    assert not over.ok and over.summary.startswith("7 parameters, plus 3 of optimizer state")
    assert over.evidence[0] == {"tensor": "dense/bias", "parameters": 4}
    assert tfckpt.check(prefix, policy={"max_parameters": 7}).ok


@pytest.mark.tf
def test_check_cli_on_fixtures(fx: dict[str, Fixture], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        """
        finite = true
        max_parameters = 1000
        dtypes = ["float32", "int64"]
        no_optimizer_state = true
        tensorflow_version = ">=2.10"

        [signatures.serving_default]
        method = "tensorflow/serving/predict"
        inputs.x = { dtype = "float32", shape = [-1, 3] }
        outputs.y = { dtype = "float32", shape = [-1, 1] }
        """
    )
    sm = fx["savedmodel_tf1"].path
    passed = fails(0, "check", "--policy", policy, sm)
    assert "OK: 1 artifact(s) pass every rule" in passed.stdout
    doc = json.loads(fails(0, "check", "--policy", policy, sm, "--json").stdout)
    assert doc["kind"] == "check" and doc["version"] == 1 and doc["ok"] is True
    assert [r["rule"] for r in doc["artifacts"][0]["rules"]] == [
        "ops",
        "signatures",
        "finite",
        "max_parameters",
        "dtypes",
        "no_optimizer_state",
        "tensorflow_version",
    ]
    adam = fx["tf1_adam"].path
    failed = json.loads(fails(1, "check", "--policy", policy, sm, adam, "--json").stdout)
    rules = {r["rule"]: r for r in failed["artifacts"][1]["rules"]}
    assert (
        not rules["no_optimizer_state"]["ok"]
        and "beta1_power" in rules["no_optimizer_state"]["evidence"]
    )
    assert rules["signatures"]["evidence"][0]["message"].startswith("serving_default: missing")
    assert failed["summary"]["failed_artifacts"] == 1
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[signatures.serving_default]\ninputs.x = { dtype = "int32", shape = [3] }\n')
    doc = json.loads(fails(1, "check", "--policy", wrong, sm, "--json").stdout)
    messages = [e["message"] for e in doc["artifacts"][0]["rules"][1]["evidence"]]
    assert messages == [
        "serving_default input 'x': dtype float32, not int32",
        "serving_default input 'x': shape [-1, 3], not [3]",
    ]
    sarif = tmp_path / "policy.sarif"
    fails(1, "check", "--policy", policy, adam, "--sarif", sarif)
    results = _check_sarif(json.loads(sarif.read_text()))
    assert {r["ruleId"] for r in results} == {"policy/signatures", "policy/no_optimizer_state"}
    # A bad policy or artifact is an error, before anything is checked.
    assert "no such policy file" in fails(2, "check", "--policy", tmp_path / "x.toml", sm).stderr
    (tmp_path / "typo.toml").write_text("finit = true\n")
    assert (
        "did you mean 'finite'" in fails(2, "check", "--policy", tmp_path / "typo.toml", sm).stderr
    )
    fails(2, "check", "--policy", policy, tmp_path / "missing")


@pytest.mark.tf
def test_check_ops_rule_uses_the_policy_lists(hostile: dict[str, Any], tmp_path: Path) -> None:
    deny = tmp_path / "deny.toml"
    deny.write_text('deny_ops = ["MatMul"]\n')
    printing = hostile["print_file"]["path"]
    doc = json.loads(fails(1, "check", "--policy", deny, printing, "--json").stdout)
    ops = doc["artifacts"][0]["rules"][0]
    assert ops["rule"] == "ops" and [f["op"] for f in ops["findings"]] == ["PrintV2"]
    allow = tmp_path / "allow.toml"
    allow.write_text('allow_ops = ["PrintV2"]\n')
    doc = json.loads(fails(0, "check", "--policy", allow, printing, "--json").stdout)
    assert [i["op"] for i in doc["artifacts"][0]["rules"][0]["info"]] == ["PrintV2"]
    sarif = tmp_path / "ops.sarif"
    fails(1, "check", "--policy", deny, printing, "--sarif", sarif)
    assert [r["ruleId"] for r in _check_sarif(json.loads(sarif.read_text()))] == ["scan/file-write"]


def test_frozen_graph_constants_stand_in_for_a_checkpoint(tmp_path: Path) -> None:
    graph = protos.GraphDef()
    weights = graph.node.add(name="dense/kernel", op="Const")
    t = weights.attr["value"].tensor
    t.dtype = 1  # float32
    t.tensor_shape.dim.add(size=2)
    t.tensor_shape.dim.add(size=2)
    t.tensor_content = np.array([1, 2, np.nan, 4], np.float32).tobytes()
    halves = graph.node.add(name="half", op="Const")
    t = halves.attr["value"].tensor
    t.dtype = 19  # float16, values in half_val as bit patterns
    t.tensor_shape.dim.add(size=3)
    t.half_val.extend(np.array([1, 2, 3], np.float16).view(np.uint16).tolist())
    add_const(graph.node, "names", "a", "b")  # strings are not weights
    path = write_graph(tmp_path / "frozen.pb", graph)
    report = tfckpt.check(path, policy={"finite": True, "max_parameters": 7, "dtypes": ["float32"]})
    rules = {r.rule: r for r in report.artifacts[0].rules}
    assert report.artifacts[0].kind == "graphdef"
    assert [e["tensor"] for e in rules["finite"].evidence] == ["dense/kernel"]
    assert rules["max_parameters"].ok and rules["max_parameters"].summary.startswith("7 parameters")
    assert "graph constants" in rules["max_parameters"].summary
    assert rules["dtypes"].evidence == [{"dtype": "float16", "tensors": 1, "examples": ["half"]}]


def test_readme_documents_the_ci_gate() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "runs-on:" in readme and "actions/checkout" in readme
    assert "tfckpt check --policy" in readme and "upload-sarif" in readme
    assert "repos:" in readme and "- id: tfckpt-scan" in readme
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert blocks, "the README shows a policy file"
    for block in blocks:
        policy_from_dict(__import__("tomllib").loads(block), "README")


def test_scan_and_check_never_import_tensorflow(fx_free_graph: Path, tmp_path: Path) -> None:
    from clitools import imports_tensorflow, modules_after

    policy = tmp_path / "policy.toml"
    policy.write_text("finite = true\nmax_parameters = 10\n")
    for args in (
        ["scan", str(fx_free_graph)],
        ["check", "--policy", str(policy), str(fx_free_graph)],
        ["graph", str(fx_free_graph), "--deny-ops", "default"],
    ):
        modules = modules_after(args, exit_codes=(1,))
        assert "tfckpt.graph.scan" in modules and not imports_tensorflow(modules), args
