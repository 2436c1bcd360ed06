"""SARIF 2.1.0 documents (the format code-scanning UIs read) for ``scan`` and ``check``.

Plain data in, a JSON-able dict out. One *rule* per scan capability (``scan/file-write``...)
and per policy rule (``policy/finite``...); one *result* per finding or failed rule, located at
the artifact file, with the node and function as logical locations.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from tfckpt.graph.op_policy import CAPABILITIES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/tfckpt/tfckpt"
LEVELS = {"high": "error", "medium": "warning", "low": "note"}
# GitHub ranks security results by this property (0-10).
_SECURITY_SEVERITY = {"high": "8.0", "medium": "5.0", "low": "2.0"}

POLICY_RULES = {
    "ops": "ops the policy denies (the scan)",
    "signatures": "required serving signatures, with their input and output dtypes and shapes",
    "finite": "no NaN or Inf in any floating-point tensor",
    "max_bytes": "the artifact's size on disk within the budget",
    "max_parameters": "the number of model parameters within the budget",
    "dtypes": "every tensor of an allowed dtype",
    "no_optimizer_state": "no optimizer slots or step counters",
    "tensorflow_version": "produced by a TensorFlow version in the allowed range",
}


def artifact_uri(path: str) -> str:
    """A URI for a local path: relative paths stay relative (what code-scanning UIs resolve
    against the repository), absolute ones become ``file://`` URIs."""
    if os.path.isabs(path):
        return PurePath(path).as_uri()
    return quote(PurePath(path).as_posix())


def _capability_rule(capability: str) -> dict[str, Any]:
    what = CAPABILITIES.get(capability, capability)
    return {
        "id": f"scan/{capability}",
        "name": "".join(part.capitalize() for part in capability.split("-")) + "Op",
        "shortDescription": {"text": f"A graph op that {what}"},
        "fullDescription": {
            "text": f"Loading or serving the model runs an op that {what}. TensorFlow runs a "
            "SavedModel's graph with the rights of the process that loads it."
        },
        "help": {
            "text": "Inspect the op (tfckpt scan PATH --json shows where its file name comes "
            "from); re-export the model without it, or allow the op in the policy "
            "(allow_ops) if it is expected."
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "tensorflow"]},
    }


def _policy_rule(name: str) -> dict[str, Any]:
    return {
        "id": f"policy/{name}",
        "name": "".join(p.capitalize() for p in name.split("_")),
        "shortDescription": {"text": POLICY_RULES.get(name, name)},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["model-policy"]},
    }


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def finding_result(finding: dict[str, Any], rule_index: int) -> dict[str, Any]:
    """One scan finding (``Finding.to_dict()``) as a SARIF result."""
    sources = "; ".join(s["detail"] if s["kind"] not in ("constant", "attr") else
                        f"{s['kind']} {', '.join(repr(v) for v in s['values'][:3])}"
                        for s in finding["path_sources"])  # fmt: skip
    where = f"function {finding['function']}" if finding["function"] else "the graph"
    tags = finding["tags"]
    text = f"{finding['op']} (node {finding['node']!r} in {where}"
    if tags is not None:
        text += f", meta graph {','.join(tags) or '(no tags)'}"
    text += f", runs {finding['runs']}): {finding['why']}"
    if sources:
        text += f". File name from: {sources}"
    if finding["nested_in"]:
        text += f". Inside the GraphDef of {' > '.join(finding['nested_in'])}"
    logical = [{"name": finding["node"], "kind": "member"}]
    if finding["function"]:
        logical.append({"name": finding["function"], "kind": "function"})
    severity = finding["severity"]
    return {
        "ruleId": f"scan/{finding['capability']}",
        "ruleIndex": rule_index,
        "level": LEVELS.get(severity, "note"),
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(finding["file"])},
                    "region": {"startLine": 1},
                },
                "logicalLocations": logical,
            }
        ],
        "partialFingerprints": {
            "tfckptFinding/v1": _fingerprint(
                finding["file"], tags, finding["function"], finding["node"], finding["op"]
            )
        },
        "properties": {
            "op": finding["op"],
            "capability": finding["capability"],
            "severity": severity,
            "runs": finding["runs"],
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY.get(severity, "2.0"),
        },
    }


def _log(rules: list[dict[str, Any]], results: list[dict[str, Any]], version: str) -> dict:
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tfckpt",
                        "version": version,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


class _Rules:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def get(self, rule_id: str, make: Any) -> int:
        if rule_id not in self.index:
            self.index[rule_id] = len(self.rules)
            self.rules.append(make())
        return self.index[rule_id]


def scan_sarif(findings: Iterable[dict[str, Any]], version: str) -> dict[str, Any]:
    """A SARIF log of scan findings (``Finding.to_dict()`` records; info entries excluded)."""
    rules = _Rules()
    results = []
    for f in findings:
        index = rules.get(f"scan/{f['capability']}", lambda f=f: _capability_rule(f["capability"]))
        results.append(finding_result(f, index))
    return _log(rules.rules, results, version)


def policy_sarif(artifacts: Iterable[dict[str, Any]], version: str) -> dict[str, Any]:
    """A SARIF log of a policy check (``PolicyReport.to_dict()["artifacts"]``): each finding
    of the ops rule as its own result, every other failed rule as one result."""
    rules = _Rules()
    results = []
    for artifact in artifacts:
        for rule in artifact["rules"]:
            if rule["ok"]:
                continue
            if rule["rule"] == "ops":
                for f in rule.get("findings", []):
                    cap = f["capability"]
                    index = rules.get(f"scan/{cap}", lambda cap=cap: _capability_rule(cap))
                    results.append(finding_result(f, index))
                continue
            name = rule["rule"]
            index = rules.get(f"policy/{name}", lambda name=name: _policy_rule(name))
            results.append(
                {
                    "ruleId": f"policy/{name}",
                    "ruleIndex": index,
                    "level": "error",
                    "message": {"text": f"{name}: {rule['summary']}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": artifact_uri(artifact["path"])},
                                "region": {"startLine": 1},
                            }
                        }
                    ],
                    "partialFingerprints": {
                        "tfckptPolicy/v1": _fingerprint(artifact["path"], name)
                    },
                }
            )
    return _log(rules.rules, results, version)


__all__ = ["LEVELS", "POLICY_RULES", "SCHEMA", "artifact_uri", "policy_sarif", "scan_sarif"]
