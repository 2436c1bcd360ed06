"""``graph --deny-ops``: where does a graph use ops that touch files, the network or Python?

Unlike ``saved_model_cli scan`` (which only prints), the scan also looks inside library
functions (TF2 graphs keep almost everything there) and the command fails when it finds any.
The checkpoint saver legitimately saves and restores: save/restore ops in the SaverDef's name
scope, in the nodes the SaverDef names (TF2: ``StatefulPartitionedCall_N``), in TensorFlow's
traced saver functions (``__inference__traced_save_N`` / ``_restore_N``) and in functions only
these call are not reported. In a bare GraphDef (no SaverDef) the default saver scopes
``save`` / ``save_N`` are exempt.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tfckpt.graph.summary import (
    DEFAULT_SAVER_SCOPE_RE,
    SAVER_OPS,
    in_scope,
    saver_nodes,
    saver_scope,
)

# Ops that read or write files, talk to the network, or run arbitrary Python.
DEFAULT_DENY_OPS = (
    "ReadFile",
    "WriteFile",
    "PrintV2",
    "MatchingFiles",
    "MatchingFilesDataset",
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "WholeFileReader",
    "WholeFileReaderV2",
    "TextLineReader",
    "TextLineReaderV2",
    "TFRecordReader",
    "TFRecordReaderV2",
    "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2",
    "LMDBReader",
    "TextLineDataset",
    "TFRecordDataset",
    "TFRecordDatasetV2",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "ImmutableConst",
    "LoadAndRemapMatrix",
    "GenerateVocabRemapping",
    "CreateSummaryFileWriter",
    "CreateSummaryDbWriter",
    "DatasetToTFRecord",
    "SaveDataset",
    "SaveDatasetV2",
    "LoadDataset",
    "SnapshotDataset",
    "SnapshotDatasetV2",
    "CacheDataset",
    "CacheDatasetV2",
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "PyFunc",
    "PyFuncStateless",
    "EagerPyFunc",
    "Rpc",
    "TryRpc",
)
_SAVING = SAVER_OPS | {"MergeV2Checkpoints"}
# The functions TensorFlow traces for a SavedModel's saver (also left behind, uncalled, in
# Estimator exports).
_TRACED_SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")


def parse_deny_option(value: str) -> list[str]:
    """``default,PyFunc,Debug*`` -> op names / globs; ``default`` expands to the default set."""
    out: list[str] = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        if item.lower() == "default":
            out.extend(DEFAULT_DENY_OPS)
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def _called_functions(node: Any, library: set[str]) -> Iterator[str]:
    if node.op in library:  # a direct call of a library function
        yield node.op
    for attr in node.attr.values():
        kind = attr.WhichOneof("value")
        if kind == "func":
            yield attr.func.name
        elif kind == "list":
            for f in attr.list.func:
                yield f.name


def _reachable(roots: Iterable[Any], functions: dict[str, Any]) -> set[str]:
    names = set(functions)
    seen: set[str] = set()
    stack = [f for node in roots for f in _called_functions(node, names)]
    while stack:
        name = stack.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            stack.extend(_called_functions(node, names))
    return seen


def scan_graph(
    graph_def: Any, meta: Any | None, deny: list[str], scope: str | None = None
) -> list[dict[str, Any]]:
    """Every node (top level or in a library function) whose op matches ``deny``."""
    patterns = [re.compile(fnmatch.translate(p)) for p in deny]

    def denied(op: str) -> bool:
        return any(p.match(op) for p in patterns)

    functions = {f.signature.name: f for f in graph_def.library.function}
    sscope = saver_scope(meta)
    snodes = saver_nodes(meta)

    def is_saver(node: Any) -> bool:
        if node.name in snodes:
            return True
        if sscope is not None:
            return in_scope(node.name, sscope)
        if meta is not None and meta.HasField("saver_def"):
            return False
        return bool(DEFAULT_SAVER_SCOPE_RE.match(node.name))

    top = [n for n in graph_def.node if in_scope(n.name, scope)]
    saver_roots = [n for n in top if is_saver(n)]
    other_roots = [n for n in top if not is_saver(n)]
    traced = [functions[n] for n in functions if _TRACED_SAVER_FUNCTION.match(n)]
    from_saver = _reachable(saver_roots, functions) | {f.signature.name for f in traced}
    from_saver |= _reachable((node for f in traced for node in f.node_def), functions)
    from_others = _reachable(other_roots, functions)
    saver_only = from_saver - from_others
    # Without a scope every library function is scanned (reachable or not); with one, only
    # the functions the scope's nodes call.
    scanned = set(functions) if not scope else from_saver | from_others
    hits: list[dict[str, Any]] = []
    for node in top:
        if denied(node.op) and not (node.op in _SAVING and is_saver(node)):
            hits.append({"op": node.op, "node": node.name, "function": None})
    for name in sorted(scanned):
        if name not in functions:
            continue
        for node in functions[name].node_def:
            if not denied(node.op):
                continue
            if name in saver_only and node.op in _SAVING:
                continue
            hits.append({"op": node.op, "node": node.name, "function": name})
    return hits
