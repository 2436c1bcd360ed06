"""A gate for model artifacts in CI: ``scan`` what a model's graphs can do outside the process
that loads them, and ``check`` artifacts against a policy file.

Example::

    import tfckpt

    report = tfckpt.scan(["export/1", "frozen.pb"])
    for f in report.findings:
        print(f.severity, f.op, f.node, f.function, f.why)
    if not report.ok:
        raise SystemExit(1)

    policy = tfckpt.load_policy("model-policy.toml")
    result = tfckpt.check(["export/1"], policy=policy)
    print(result.ok, [r.rule for a in result.artifacts for r in a.rules if not r.ok])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.errors import GraphError, UsageError
from tfckpt.graph.scan import Finding, ScanOptions
from tfckpt.progress import Progress, or_none

PathLike = str | os.PathLike[str]
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
# A SavedModel split into chunks (TensorFlow 2.15+, graphs over 2 GiB): not readable here.
_CHUNKED = "saved_model.cpb"


@dataclass
class ScannedGraph:
    """One graph the scan read: a file, and a meta graph of it (``tags``) when it has any."""

    file: str
    type: str  # SavedModel | MetaGraphDef | GraphDef
    encoding: str  # binary | text
    tags: list[str] | None
    nodes: int
    functions: int
    nested_graphs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "type": self.type,
            "encoding": self.encoding,
            "tags": self.tags,
            "nodes": self.nodes,
            "functions": self.functions,
            "nested_graphs": self.nested_graphs,
        }


@dataclass
class ScanReport:
    """What ``scan`` found: ``findings`` (the policy denies them; ``ok`` is False when there
    are any) and ``info`` (reported, not denied: vocabulary files in assets/, ...)."""

    paths: list[str]
    graphs: list[ScannedGraph] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    info: list[Finding] = field(default_factory=list)
    default_policy: bool = True
    deny_ops: list[str] = field(default_factory=list)
    allow_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> dict[str, Any]:
        counts = {s: 0 for s in ("high", "medium", "low")}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        return {
            "findings": len(self.findings),
            "info": len(self.info),
            "by_severity": counts,
            "ops": sorted({f.op for f in self.findings}),
            "graphs": len(self.graphs),
            "nodes": sum(g.nodes for g in self.graphs),
            "functions": sum(g.functions for g in self.graphs),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "paths": self.paths,
            "policy": {
                "default": self.default_policy,
                "deny_ops": self.deny_ops,
                "allow_ops": self.allow_ops,
            },
            "summary": self.summary(),
            "scanned": [g.to_dict() for g in self.graphs],
            "findings": [f.to_dict() for f in self.findings],
            "info": [f.to_dict() for f in self.info],
        }

    def to_sarif(self) -> dict[str, Any]:
        """The findings as a SARIF 2.1.0 log (for code-scanning UIs)."""
        from tfckpt import __version__
        from tfckpt.graph.sarif import scan_sarif

        return scan_sarif((f.to_dict() for f in self.findings), __version__)


def _globs(value: str | Iterable[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{what}: expected op names or globs, got {item!r}")
        out.extend(v.strip() for v in item.split(",") if v.strip())
    return list(dict.fromkeys(out))


def _paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise UsageError("nothing to scan: give at least one path")
    return out


def _load(path: str, engine: str) -> list[Any]:
    """Every graph file ``path`` means: a SavedModel with both saved_model.pb and .pbtxt gives
    both (TensorFlow reads the .pb, but a file another loader may read is scanned too)."""
    from tfckpt.graph.load import load_graph, resolve_graph_path

    notes: list[str] = []
    file, sm_dir = resolve_graph_path(path, notes)
    if sm_dir is not None and storage.exists(storage.join(sm_dir, _CHUNKED)):
        raise GraphError(
            f"{sm_dir}: holds {_CHUNKED}, a chunked SavedModel (graphs over 2 GiB), which tfckpt "
            "cannot read; nothing was scanned"
        )
    files = [file]
    if sm_dir is not None:
        other = storage.join(sm_dir, "saved_model.pbtxt")
        if file.endswith(".pb") and storage.isfile(other):
            files.append(other)
    out = []
    for f in files:
        if engine == "tf":
            from tfckpt.tf_engine.graph import tf_load_graph

            loaded = tf_load_graph(f if sm_dir is None else sm_dir, None)
        else:
            loaded = load_graph(f, "SavedModel" if sm_dir is not None else None)
        out.append(loaded)
        if engine == "tf":
            break  # TensorFlow's loader reads one file
    if len(out) > 1:
        out[0].notes.append(
            f"{sm_dir}: has saved_model.pb and saved_model.pbtxt; scanning both (TensorFlow "
            "reads the .pb)"
        )
    return out


def scan(
    paths: PathLike | Iterable[PathLike],
    *,
    deny_ops: str | Iterable[str] | None = None,
    allow_ops: str | Iterable[str] | None = None,
    default_policy: bool = True,
    tags: str | None = None,
    scope: str | None = None,
    engine: str = "native",
    sarif: PathLike | None = None,
    force: bool = False,
) -> ScanReport:
    """Scan SavedModels (every meta graph), ``.meta`` files and GraphDefs (``.pb`` /
    ``.pbtxt``) for ops that reach outside the process; ``report.ok`` is True when there are
    no findings.

    The default policy (``tfckpt.graph.op_policy.OPS``) reports ops that touch files, the
    network, other processes or Python, anywhere: graph nodes, every library function, GraphDefs
    run from string constants, init ops. ``deny_ops`` adds op names / globs (``"Debug*"``);
    ``allow_ops`` turns matching findings into info; ``default_policy=False`` reports only
    ``deny_ops``. ``tags`` scans one meta graph (``"serve"``); ``scope`` only the nodes in a
    name scope and the functions they call. ``engine="tf"`` loads each graph with TensorFlow.
    ``sarif``: also write the findings there as SARIF 2.1.0 (an existing file needs ``force``;
    checked before anything is read).

    >>> report = tfckpt.scan("export/1")
    >>> report.ok, [(f.op, f.capability) for f in report.findings]
    (False, [('ReadFile', 'file-read')])
    """
    from tfckpt.api.checks import _check_engine

    _check_engine(engine)
    items = _paths(paths)
    deny = _globs(deny_ops, "deny_ops")
    allow = _globs(allow_ops, "allow_ops")
    if not default_policy and not deny:
        raise UsageError("nothing to look for: no deny_ops and the default policy is off")
    options = ScanOptions(tuple(deny), tuple(allow), default_policy, scope or None)
    destination = _sarif_destination(sarif, force)
    report = ScanReport(paths=items, default_policy=default_policy, deny_ops=deny, allow_ops=allow)
    loaded = [m for p in items for m in _load(p, engine)]  # every input readable, or an error
    _scan_loaded(report, loaded, options, tags)
    _write_sarif(destination, report.to_sarif(), force, report.notes)
    return report


def _sarif_destination(sarif: PathLike | None, force: bool) -> str | None:
    """Refuse a SARIF destination before any work: a directory, an existing file without
    ``force``, an unusable parent directory."""
    if sarif is None:
        return None
    from tfckpt.errors import OutputExists
    from tfckpt.storage import check_parent

    path = os.fspath(sarif)
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory (the SARIF output is a file)")
    if os.path.lexists(path) and not force:
        raise OutputExists(f"{path}: exists", fix="force")
    check_parent(path)
    return path


def _write_sarif(path: str | None, document: dict[str, Any], force: bool, notes: list[str]) -> None:
    if path is None:
        return
    import json

    from tfckpt.storage import write_file_atomic

    data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    write_file_atomic(path, data, force)
    results = len(document["runs"][0]["results"])
    notes.append(f"wrote {path} (SARIF 2.1.0, {results} result(s))")


def _scan_loaded(
    report: ScanReport, loaded: list[Any], options: ScanOptions, tags: str | None = None
) -> None:
    from tfckpt.graph.load import SAVEDMODEL
    from tfckpt.graph.scan import scan_graph
    from tfckpt.graph.summary import pick_meta_graph

    for message in loaded:
        report.notes.extend(message.notes)
        metas = message.meta_graphs
        if tags is not None:
            _, meta, _ = pick_meta_graph(message, tags)
            metas = [meta]
        elif message.type == SAVEDMODEL and not metas:
            raise GraphError(f"{message.path}: the SavedModel holds no meta graph (no graph)")
        graphs: list[tuple[Any, Any, list[str] | None]] = [
            (m.graph_def, m, list(m.meta_info_def.tags)) for m in metas
        ]
        if not metas:
            graphs = [(message.message, None, None)]
        for graph_def, meta, graph_tags in graphs:
            findings, info, stats = scan_graph(graph_def, meta, message.path, graph_tags, options)
            report.findings += findings
            report.info += info
            report.graphs.append(
                ScannedGraph(
                    message.path,
                    message.type,
                    message.encoding,
                    graph_tags,
                    stats.nodes,
                    stats.functions,
                    stats.nested_graphs,
                )
            )
    for entries in (report.findings, report.info):
        entries.sort(
            key=lambda f: (
                _SEVERITY_ORDER.get(f.severity, 9),
                f.file,
                f.tags or [],
                f.function or "",
                f.node,
            )
        )


# ---- check --policy --------------------------------------------------------------------------
@dataclass
class RuleResult:
    """One rule for one artifact: pass/fail, a one-line summary, the evidence."""

    rule: str
    ok: bool
    summary: str
    evidence: list[Any] = field(default_factory=list)
    scan: ScanReport | None = None  # the ops rule: the scan behind it

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "ok": self.ok,
            "summary": self.summary,
            "evidence": self.evidence,
        }
        if self.scan is not None:
            out["findings"] = [f.to_dict() for f in self.scan.findings]
            out["info"] = [f.to_dict() for f in self.scan.info]
        return out


@dataclass
class ArtifactResult:
    path: str
    kind: str  # savedmodel | checkpoint | metagraph | graphdef
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "ok": self.ok,
            "rules": [r.to_dict() for r in self.rules],
        }


@dataclass
class PolicyReport:
    """``check``'s result: every rule of the policy for every artifact; ``ok`` when all pass."""

    policy: str
    rules: list[str]
    artifacts: list[ArtifactResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        failed = [(a.path, r.rule) for a in self.artifacts for r in a.rules if not r.ok]
        return {
            "ok": self.ok,
            "policy": self.policy,
            "rules": self.rules,
            "summary": {
                "artifacts": len(self.artifacts),
                "failed_artifacts": sum(1 for a in self.artifacts if not a.ok),
                "failed_rules": [{"artifact": p, "rule": r} for p, r in failed],
            },
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    def to_sarif(self) -> dict[str, Any]:
        from tfckpt import __version__
        from tfckpt.graph.sarif import policy_sarif

        return policy_sarif(self.to_dict()["artifacts"], __version__)


@dataclass
class _Artifact:
    path: str
    kind: str
    graphs: list[Any]  # LoadedMessage(s): the first is the one TensorFlow reads
    prefix: str | None  # the checkpoint, if any
    files: list[str]


def load_policy(path: PathLike) -> Any:
    """Read a TOML policy file (see ``tfckpt.graph.policy``); ``PolicyError`` if it is bad."""
    from tfckpt.graph.policy import load_policy as load

    return load(path)


def _files_under(directory: str) -> list[str]:
    out = []
    for root, dirs, names in storage.walk(directory):
        dirs.sort()
        out += [storage.join(root, n) for n in sorted(names)]
    return out


def _open_artifact(path: str) -> _Artifact:
    from tfckpt.bundle.checkpoint import is_savedmodel_dir, open_checkpoint, resolve_prefix
    from tfckpt.graph.load import load_graph

    directory = path
    if storage.isfile(path) and storage.basename(path) in ("saved_model.pb", "saved_model.pbtxt"):
        directory = storage.dirname(path) or "."  # a SavedModel named by its graph file
    if storage.isdir(directory) and is_savedmodel_dir(directory):
        variables = storage.join(directory, "variables", "variables")
        prefix = variables if storage.isfile(variables + ".index") else None
        graphs = _load(directory, "native")
        return _Artifact(path, "savedmodel", graphs, prefix, _files_under(directory))
    if storage.isfile(path) and path.endswith((".pb", ".pbtxt", ".meta")):
        graph = load_graph(path)
        kind = "metagraph" if graph.type == "MetaGraphDef" else "graphdef"
        prefix = None
        files = [path]
        if path.endswith(".meta") and storage.isfile(path[: -len(".meta")] + ".index"):
            prefix = path[: -len(".meta")]
            with open_checkpoint(prefix) as ckpt:
                files += ckpt.files
        return _Artifact(path, kind, [graph], prefix, files)
    notes: list[str] = []
    prefix, _ = resolve_prefix(path, notes)
    with open_checkpoint(prefix) as ckpt:
        files = list(ckpt.files)
    graphs = []
    if storage.isfile(prefix + ".meta"):
        graphs = [load_graph(prefix + ".meta")]
        files.append(prefix + ".meta")
    artifact = _Artifact(path, "checkpoint", graphs, prefix, files)
    for g in graphs:
        g.notes.extend(notes)
    return artifact


def check(
    artifacts: PathLike | Iterable[PathLike],
    *,
    policy: Any,
    sarif: PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> PolicyReport:
    """Check artifacts (SavedModels, checkpoints, .meta / GraphDef files) against a policy
    (``tfckpt.load_policy(path)``, a ``Policy``, or a dict of the TOML keys); ``report.ok`` is
    True when every rule passes for every artifact.

    Rules: ``ops`` (the scan, with the policy's deny_ops / allow_ops), ``signatures``,
    ``finite``, ``max_bytes``, ``max_parameters``, ``dtypes``, ``no_optimizer_state``,
    ``tensorflow_version``. Tensor rules read the checkpoint (a SavedModel's variables); an
    artifact without one (a frozen GraphDef) is judged by its graph's constants. ``sarif``:
    also write the failures there as SARIF 2.1.0 (an existing file needs ``force``).

    >>> report = tfckpt.check(["export/1"], policy={"finite": True, "max_parameters": 10**6})
    >>> report.ok, [(r.rule, r.summary) for r in report.artifacts[0].rules]
    (True, [('ops', 'no findings ...'), ('finite', ...), ('max_parameters', ...)])
    """
    from tfckpt.graph.policy import Policy, policy_from_dict

    if isinstance(policy, dict):
        policy = policy_from_dict(policy)
    if not isinstance(policy, Policy):
        raise UsageError("policy: expected tfckpt.load_policy(path), a Policy or a dict")
    items = _paths(artifacts)
    progress = or_none(progress)
    destination = _sarif_destination(sarif, force)
    opened = [_open_artifact(p) for p in items]  # every artifact readable, or an error
    report = PolicyReport(policy.source, policy.rules)
    for artifact in opened:
        for g in artifact.graphs:
            report.notes.extend(g.notes)
        result = ArtifactResult(artifact.path, artifact.kind)
        for rule in policy.rules:
            result.rules.append(_RULES[rule](artifact, policy, progress))
        report.artifacts.append(result)
    _write_sarif(destination, report.to_sarif(), force, report.notes)
    return report


def _metas(artifact: _Artifact) -> list[Any]:
    return list(artifact.graphs[0].meta_graphs) if artifact.graphs else []


def _rule_ops(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    if not artifact.graphs:
        return RuleResult("ops", True, "no graph (a checkpoint without .meta runs no ops)")
    sub = ScanReport(
        paths=[artifact.path],
        default_policy=policy.default_ops,
        deny_ops=list(policy.deny_ops),
        allow_ops=list(policy.allow_ops),
    )
    options = ScanOptions(tuple(policy.deny_ops), tuple(policy.allow_ops), policy.default_ops)
    _scan_loaded(sub, artifact.graphs, options)
    evidence = [f"{f.severity} {f.op} {f.node!r} ({f.where}): {f.why}" for f in sub.findings]
    if sub.findings:
        ops = ", ".join(sub.summary()["ops"])
        return RuleResult("ops", False, f"{len(sub.findings)} finding(s): {ops}", evidence, sub)
    info = f"; {len(sub.info)} info" if sub.info else ""
    graphs = len(sub.graphs)
    return RuleResult("ops", True, f"no findings in {graphs} graph(s){info}", [], sub)


def _rule_signatures(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    from tfckpt.graph.policy import check_signatures

    metas = _metas(artifact)
    if not metas:
        return RuleResult("signatures", False, "no signatures: not a SavedModel or meta graph")
    ok, summary, evidence = check_signatures(metas, policy.signatures)
    return RuleResult("signatures", ok, summary, evidence)


def _rule_version(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    from tfckpt.graph.policy import check_version

    graph = artifact.graphs[0] if artifact.graphs else None
    graph_def = None if graph is None else graph.message if not graph.meta_graphs else None
    ok, summary, evidence = check_version(_metas(artifact), graph_def, policy.tensorflow_version)
    return RuleResult("tensorflow_version", ok, summary, evidence)


def _rule_bytes(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    sizes = []
    for path in artifact.files:
        st = storage.stat(path)
        if st is not None:
            sizes.append((st.size, path))
    total = sum(size for size, _ in sizes)
    budget = policy.max_bytes
    largest = [{"file": p, "bytes": n} for n, p in sorted(sizes, reverse=True)[:5]]
    summary = f"{_human_bytes(total)} ({total:,} bytes) in {len(sizes)} file(s)"
    if total > budget:
        return RuleResult(
            "max_bytes", False, f"{summary}, over the budget of {budget:,} bytes", largest
        )
    return RuleResult("max_bytes", True, f"{summary}, within {budget:,} bytes")


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


class _Tensors:
    """The artifact's tensors: its checkpoint's, or else its graph's constants."""

    def __init__(self, artifact: _Artifact) -> None:
        self.artifact = artifact

    def __enter__(self) -> _Tensors:
        from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint

        self.ckpt = None
        self.source = ""
        if self.artifact.prefix is not None:
            self.ckpt = open_checkpoint(self.artifact.prefix)
            self.infos = [i for i in self.ckpt.tensors() if i.name != OBJECT_GRAPH_KEY]
            self.consts = []
        else:
            from tfckpt.graph.tensors import graph_constants

            # A frozen graph's weights: constants with more than one element; strings (names,
            # paths) and scalars (hyperparameters, axes) are not weights.
            self.source = " (graph constants: no checkpoint)"
            self.infos = []
            self.consts = [
                t
                for g in self.artifact.graphs[:1]
                for graph_def in ([m.graph_def for m in g.meta_graphs] or [g.message])
                for t in graph_constants(graph_def)
                if not t.dtype.is_string and t.size > 1
            ]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ckpt is not None:
            self.ckpt.close()

    def entries(self) -> list[tuple[str, Any, tuple[int, ...], int]]:
        """(name, dtype, shape, size) of every tensor."""
        if self.ckpt is not None:
            return [(i.name, i.dtype, tuple(i.shape), i.size) for i in self.infos]
        return [(t.name, t.dtype, t.shape, t.size) for t in self.consts]


def _rule_finite(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    from tfckpt.ops.verify import VerifyOptions, value_problems

    options = VerifyOptions(no_nan=True, no_inf=True)
    problems: list[dict[str, Any]] = []
    checked = 0
    with _Tensors(artifact) as tensors:
        if tensors.ckpt is not None:
            inexact = [i for i in tensors.infos if i.dtype.is_floating or i.dtype.is_complex]
            inexact = [i for i in inexact if i.dtype.numpy is not None]
            progress.start("check finite", sum(i.nbytes for i in inexact))
            for info in inexact:
                progress.describe(info.name)
                chunks = tensors.ckpt.iter_chunks(info.name)
                for p in value_problems(info.name, artifact.path, chunks, options):
                    problems.append({"tensor": info.name, "check": p.check, "message": p.message})
                progress.advance(info.nbytes)
                checked += 1
        else:
            for t in tensors.consts:
                if not (t.dtype.is_floating or t.dtype.is_complex):
                    continue
                values = t.values()
                if values is None:
                    continue
                for p in value_problems(t.name, artifact.path, [values], options):
                    problems.append({"tensor": t.name, "check": p.check, "message": p.message})
                checked += 1
        source = tensors.source
    if problems:
        names = sorted({p["tensor"] for p in problems})
        return RuleResult(
            "finite",
            False,
            f"{len(names)} tensor(s) with NaN or Inf, e.g. {names[0]!r}{source}",
            problems,
        )
    return RuleResult("finite", True, f"{checked} floating-point tensor(s) finite{source}")


def _optimizer_names(tensors: _Tensors) -> list[str]:
    from tfckpt.ops.prune import plan_prune

    entries = tensors.entries()
    sizes = {name: 0 for name, *_ in entries}
    graph = tensors.ckpt.object_graph_bytes() if tensors.ckpt is not None else None
    return sorted(plan_prune(sizes, optimizer=True, object_graph=graph).drop)


def _rule_parameters(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    with _Tensors(artifact) as tensors:
        optimizer = set(_optimizer_names(tensors))
        numeric = [e for e in tensors.entries() if not e[1].is_string]
        params = sum(size for name, _, _, size in numeric if name not in optimizer)
        slots = sum(size for name, _, _, size in numeric if name in optimizer)
        source = tensors.source
    budget = policy.max_parameters
    extra = f", plus {slots:,} of optimizer state" if slots else ""
    summary = f"{params:,} parameters{extra}{source}"
    if params > budget:
        largest = sorted(
            ((size, name) for name, _, _, size in numeric if name not in optimizer), reverse=True
        )[:5]
        evidence = [{"tensor": name, "parameters": size} for size, name in largest]
        return RuleResult(
            "max_parameters", False, f"{summary}, over the budget of {budget:,}", evidence
        )
    return RuleResult("max_parameters", True, f"{summary}, within {budget:,}")


def _rule_dtypes(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    allowed = set(policy.dtypes)
    with _Tensors(artifact) as tensors:
        entries = tensors.entries()
        source = tensors.source
    bad: dict[str, list[str]] = {}
    for name, dtype, _, _ in entries:
        if dtype.name not in allowed:
            bad.setdefault(dtype.name, []).append(name)
    if bad:
        evidence = [
            {"dtype": d, "tensors": len(names), "examples": names[:5]}
            for d, names in sorted(bad.items())
        ]
        found = ", ".join(f"{d} ({len(n)})" for d, n in sorted(bad.items()))
        return RuleResult("dtypes", False, f"tensors of other dtypes: {found}{source}", evidence)
    used = sorted({dtype.name for _, dtype, _, _ in entries})
    return RuleResult(
        "dtypes", True, f"{len(entries)} tensor(s) of {', '.join(used) or 'no dtype'}{source}"
    )


def _rule_optimizer(artifact: _Artifact, policy: Any, progress: Any) -> RuleResult:
    with _Tensors(artifact) as tensors:
        names = _optimizer_names(tensors)
        source = tensors.source
    if names:
        return RuleResult(
            "no_optimizer_state",
            False,
            f"{len(names)} optimizer tensor(s), e.g. {names[0]!r}{source}",
            names,
        )
    return RuleResult("no_optimizer_state", True, f"no optimizer state{source}")


_RULES = {
    "ops": _rule_ops,
    "signatures": _rule_signatures,
    "finite": _rule_finite,
    "max_bytes": _rule_bytes,
    "max_parameters": _rule_parameters,
    "dtypes": _rule_dtypes,
    "no_optimizer_state": _rule_optimizer,
    "tensorflow_version": _rule_version,
}


__all__ = [
    "ArtifactResult",
    "PolicyReport",
    "RuleResult",
    "ScanReport",
    "ScannedGraph",
    "check",
    "load_policy",
    "scan",
]
