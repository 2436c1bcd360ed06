"""Policy files for ``check --policy``: TOML in, a validated ``Policy`` out, and the rules that
look only at graphs (signatures, the producing TensorFlow version).

A policy is a flat TOML document; every key is optional::

    deny_ops = ["PrintV2"]            # report these ops too (names or globs)
    allow_ops = ["Print"]             # report these as info, not findings
    scan = true                       # run the ops scan (default true)
    finite = true                     # no NaN / Inf in any floating-point tensor
    max_bytes = "500 MiB"             # the artifact's files on disk (an int, or with a unit)
    max_parameters = 25_000_000       # elements of the model's numeric tensors
    dtypes = ["float32", "int64"]     # every tensor one of these
    no_optimizer_state = true         # no optimizer slots or step counters
    tensorflow_version = ">=2.12,<3"  # the version that wrote the graph

    [signatures.serving_default]      # a required signature (of the "serve" meta graph)
    method = "tensorflow/serving/predict"
    inputs.x = { dtype = "float32", shape = [-1, 5] }   # -1: any size
    outputs.y = { dtype = "float32" }

Unknown keys are errors (a typo must not silently disable a rule).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import PolicyError, TfckptError

KEYS = (
    "scan",
    "default_ops",
    "deny_ops",
    "allow_ops",
    "signatures",
    "finite",
    "max_bytes",
    "max_parameters",
    "dtypes",
    "no_optimizer_state",
    "tensorflow_version",
)
_SIGNATURE_KEYS = ("name", "tags", "method", "inputs", "outputs")
_SPEC_KEYS = ("dtype", "shape")
_BYTE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
_VERSION_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9A-Za-z.*+-]*)\s*$")


@dataclass(frozen=True)
class TensorSpec:
    """A required signature tensor: its dtype and shape (None: any; -1 in a shape: any size)."""

    dtype: str | None = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}


@dataclass(frozen=True)
class SignatureRule:
    name: str
    tags: tuple[str, ...] | None = None
    method: str | None = None
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)


@dataclass
class Policy:
    """The rules of one policy file (``source`` names it in reports)."""

    source: str = "<policy>"
    scan: bool = True
    default_ops: bool = True
    deny_ops: list[str] = field(default_factory=list)
    allow_ops: list[str] = field(default_factory=list)
    signatures: list[SignatureRule] = field(default_factory=list)
    finite: bool = False
    max_bytes: int | None = None
    max_parameters: int | None = None
    dtypes: list[str] | None = None
    no_optimizer_state: bool = False
    tensorflow_version: str | None = None

    @property
    def rules(self) -> list[str]:
        """The rules this policy checks, in report order."""
        names = ["ops"] if self.scan else []
        names += ["signatures"] if self.signatures else []
        names += [n for n in ("finite",) if self.finite]
        names += [n for n in ("max_bytes", "max_parameters") if getattr(self, n) is not None]
        names += ["dtypes"] if self.dtypes is not None else []
        names += ["no_optimizer_state"] if self.no_optimizer_state else []
        names += ["tensorflow_version"] if self.tensorflow_version is not None else []
        return names


# ---- parsing --------------------------------------------------------------------------------
def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a TOML policy file (``PolicyError`` on any problem)."""
    from tfckpt.storage import open_regular

    source = os.fspath(path)
    try:
        with open_regular(source) as f:
            data = f.read((1 << 20) + 1)
    except FileNotFoundError:
        raise PolicyError(f"{source}: no such policy file") from None
    except IsADirectoryError:
        raise PolicyError(f"{source}: is a directory, not a policy file") from None
    except OSError as exc:
        raise PolicyError(f"{source}: cannot read ({exc.strerror or exc})") from None
    except TfckptError as exc:  # not a regular file (a FIFO, a device)
        raise PolicyError(str(exc)) from None
    if len(data) > 1 << 20:
        raise PolicyError(f"{source}: over 1 MiB; not a policy file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{source}: not UTF-8 text") from None
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """A policy from TOML text."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML ({exc})") from None
    return policy_from_dict(data, source)


def _unknown(key: str, known: tuple[str, ...], where: str) -> PolicyError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return PolicyError(f"{where}: unknown key {key!r}{hint}")


def policy_from_dict(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """Validate a parsed policy (the TOML document as a dict)."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a table of rules")
    for key in data:
        if key not in KEYS:
            raise _unknown(key, KEYS, source)
    policy = Policy(source=source)
    for key in ("scan", "default_ops", "finite", "no_optimizer_state"):
        if key in data:
            setattr(policy, key, _bool(data[key], f"{source}: {key}"))
    for key in ("deny_ops", "allow_ops"):
        if key in data:
            setattr(policy, key, _strings(data[key], f"{source}: {key}"))
    if "dtypes" in data:
        policy.dtypes = [
            _dtype(d, f"{source}: dtypes") for d in _strings(data["dtypes"], f"{source}: dtypes")
        ]
    if "max_bytes" in data:
        policy.max_bytes = _amount(data["max_bytes"], _BYTE_UNITS, f"{source}: max_bytes")
    if "max_parameters" in data:
        policy.max_parameters = _amount(
            data["max_parameters"], _COUNT_UNITS, f"{source}: max_parameters"
        )
    if "tensorflow_version" in data:
        spec = data["tensorflow_version"]
        if not isinstance(spec, str):
            raise PolicyError(f"{source}: tensorflow_version: expected a string like '>=2.12,<3'")
        parse_version_spec(spec, f"{source}: tensorflow_version")
        policy.tensorflow_version = spec
    if "signatures" in data:
        policy.signatures = _signatures(data["signatures"], f"{source}: signatures")
    if not policy.scan and not policy.rules:
        raise PolicyError(f"{source}: the policy checks nothing (scan = false and no other rule)")
    if not policy.default_ops and not policy.deny_ops and policy.scan:
        raise PolicyError(f"{source}: default_ops = false needs deny_ops (or scan = false)")
    return policy


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: expected true or false, got {value!r}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise PolicyError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return [v.strip() for v in items]


def _dtype(name: str, where: str) -> str:
    from tfckpt.dtypes import dtype_from_name

    try:
        return dtype_from_name(name).name
    except KeyError:
        raise PolicyError(f"{where}: unknown dtype {name!r}") from None


def _amount(value: Any, units: dict[str, int], where: str) -> int:
    if isinstance(value, bool):
        raise PolicyError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise PolicyError(f"{where}: must not be negative")
        return value
    if isinstance(value, str):
        match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$", value)
        if match and match.group(2).lower() in units:
            return int(float(match.group(1)) * units[match.group(2).lower()])
        shown = ", ".join(u for u in units if u) or "none"
        raise PolicyError(f"{where}: cannot read {value!r} (a number, optionally with {shown})")
    raise PolicyError(f"{where}: expected a number, got {value!r}")


def _signatures(value: Any, where: str) -> list[SignatureRule]:
    if isinstance(value, dict):
        entries = []
        for name, body in value.items():
            if not isinstance(body, dict):
                raise PolicyError(f"{where}.{name}: expected a table")
            entries.append({"name": name, **body})
    elif isinstance(value, list):
        entries = value
    else:
        raise PolicyError(f"{where}: expected [signatures.NAME] tables")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise PolicyError(f"{where}: each signature needs a name")
        name = entry["name"]
        here = f"{where}.{name}"
        for key in entry:
            if key not in _SIGNATURE_KEYS:
                raise _unknown(key, _SIGNATURE_KEYS, here)
        tags = None
        if "tags" in entry:
            raw = entry["tags"]
            tags = (
                tuple(raw.split(","))
                if isinstance(raw, str)
                else tuple(_strings(raw, f"{here}.tags"))
            )
        method = entry.get("method")
        if method is not None and not isinstance(method, str):
            raise PolicyError(f"{here}.method: expected a string")
        out.append(
            SignatureRule(
                name,
                tags,
                method,
                _specs(entry.get("inputs", {}), f"{here}.inputs"),
                _specs(entry.get("outputs", {}), f"{here}.outputs"),
            )
        )
    return out


def _specs(value: Any, where: str) -> dict[str, TensorSpec]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a table of tensor names")
    out: dict[str, TensorSpec] = {}
    for name, spec in value.items():
        here = f"{where}.{name}"
        if not isinstance(spec, dict):
            raise PolicyError(f"{here}: expected {{ dtype = ..., shape = [...] }}")
        for key in spec:
            if key not in _SPEC_KEYS:
                raise _unknown(key, _SPEC_KEYS, here)
        dtype = _dtype(spec["dtype"], f"{here}.dtype") if "dtype" in spec else None
        shape = None
        if "shape" in spec:
            dims = spec["shape"]
            if not isinstance(dims, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in dims
            ):
                raise PolicyError(f"{here}.shape: expected a list of sizes (-1 for any)")
            shape = tuple(dims)
        out[name] = TensorSpec(dtype, shape)
    return out


# ---- versions -------------------------------------------------------------------------------
def _version(text: str) -> tuple[int, ...]:
    """``2.15.1`` -> (2, 15, 1); ``2.16.0-rc1`` -> (2, 16, 0); ``0.12.head`` -> (0, 12)."""
    parts = []
    for piece in text.strip().split("."):
        match = re.match(r"^(\d+)", piece)
        if not match:
            break
        parts.append(int(match.group(1)))
        if match.group(1) != piece:
            break
    return tuple(parts)


def parse_version_spec(spec: str, where: str = "tensorflow_version") -> list[tuple[str, str]]:
    """``">=2.12,<3"`` -> [(">=", "2.12"), ("<", "3")]; ``"==2.15.*"`` matches any 2.15."""
    clauses = []
    for clause in spec.split(","):
        if not clause.strip():
            continue
        match = _VERSION_CLAUSE.match(clause)
        if not match or not _version(match.group(2).rstrip(".*")):
            raise PolicyError(f"{where}: cannot read {clause.strip()!r} (like '>=2.12' or '<3')")
        clauses.append((match.group(1), match.group(2)))
    if not clauses:
        raise PolicyError(f"{where}: empty version range")
    return clauses


def version_matches(version: str, spec: str) -> bool:
    have = _version(version)
    if not have:
        return False
    for op, wanted in parse_version_spec(spec):
        if wanted.endswith(".*"):
            prefix = _version(wanted[:-2])
            same = have[: len(prefix)] == prefix
            if (op == "==" and not same) or (op == "!=" and same):
                return False
            continue
        want = _version(wanted)
        width = max(len(have), len(want))
        a = have + (0,) * (width - len(have))
        b = want + (0,) * (width - len(want))
        ok = {
            ">=": a >= b,
            "<=": a <= b,
            ">": a > b,
            "<": a < b,
            "==": a == b,
            "!=": a != b,
        }[op]
        if not ok:
            return False
    return True


# ---- graph rules ----------------------------------------------------------------------------
def check_version(metas: list[Any], graph_def: Any | None, spec: str) -> tuple[bool, str, list]:
    """The TensorFlow version each meta graph records must be in ``spec``."""
    evidence: list[dict[str, Any]] = []
    for meta in metas:
        info = meta.meta_info_def
        version = info.tensorflow_version
        evidence.append(
            {
                "tags": list(info.tags),
                "tensorflow_version": version or None,
                "producer": meta.graph_def.versions.producer,
                "ok": bool(version) and version_matches(version, spec),
            }
        )
    if not metas:
        producer = graph_def.versions.producer if graph_def is not None else None
        detail = "no graph" if graph_def is None else f"a GraphDef records only producer {producer}"
        return False, f"the TensorFlow version is unknown ({detail})", evidence
    bad = [e for e in evidence if not e["ok"]]
    versions = sorted({str(e["tensorflow_version"]) for e in evidence})
    if bad:
        shown = ", ".join(sorted({str(e["tensorflow_version"] or "not recorded") for e in bad}))
        return False, f"written by TensorFlow {shown}, outside {spec}", evidence
    return True, f"written by TensorFlow {', '.join(versions)} ({spec})", evidence


def _dims(info: Any) -> tuple[int, ...] | None:
    if not info.HasField("tensor_shape") or info.tensor_shape.unknown_rank:
        return None
    return tuple(int(d.size) for d in info.tensor_shape.dim)


def check_signatures(
    metas: list[Any], rules: list[SignatureRule]
) -> tuple[bool, str, list[dict[str, Any]]]:
    """Each required signature exists in its meta graph with the required tensors."""
    from tfckpt.graph.summary import dtype_name

    problems: list[dict[str, Any]] = []
    checked = []
    for rule in rules:
        meta = _meta_for(metas, rule.tags)
        if meta is None:
            tagged = ",".join(rule.tags) if rule.tags else "serve"
            problems.append(
                {"signature": rule.name, "message": f"{rule.name}: no meta graph tagged {tagged}"}
            )
            continue
        if rule.name not in meta.signature_def:
            have = ", ".join(sorted(meta.signature_def)) or "none"
            problems.append(
                {"signature": rule.name, "message": f"{rule.name}: missing (signatures: {have})"}
            )
            continue
        sig = meta.signature_def[rule.name]
        checked.append(rule.name)
        if rule.method is not None and sig.method_name != rule.method:
            problems.append(
                {
                    "signature": rule.name,
                    "message": f"{rule.name}: method {sig.method_name!r}, not {rule.method!r}",
                }
            )
        for side, wanted, have in (
            ("input", rule.inputs, sig.inputs),
            ("output", rule.outputs, sig.outputs),
        ):
            for name, spec in wanted.items():
                where = f"{rule.name} {side} {name!r}"
                if name not in have:
                    names = ", ".join(sorted(have)) or "none"
                    problems.append(
                        {"signature": rule.name, "message": f"{where}: missing ({side}s: {names})"}
                    )
                    continue
                info = have[name]
                dtype = dtype_name(info.dtype) if info.dtype else None
                if spec.dtype is not None and dtype != spec.dtype:
                    problems.append(
                        {
                            "signature": rule.name,
                            "message": f"{where}: dtype {dtype}, not {spec.dtype}",
                        }
                    )
                if spec.shape is not None:
                    dims = _dims(info)
                    if not _shape_ok(dims, spec.shape):
                        shown = "unknown" if dims is None else list(dims)
                        problems.append(
                            {
                                "signature": rule.name,
                                "message": f"{where}: shape {shown}, not {list(spec.shape)}",
                            }
                        )
    if problems:
        return False, f"{len(problems)} problem(s): {problems[0]['message']}", problems
    return True, f"{', '.join(checked)} as required", []


def _shape_ok(dims: tuple[int, ...] | None, wanted: tuple[int, ...]) -> bool:
    if dims is None or len(dims) != len(wanted):
        return False
    return all(w == -1 or d == w for d, w in zip(dims, wanted))


def _meta_for(metas: list[Any], tags: tuple[str, ...] | None) -> Any | None:
    if tags is not None:
        wanted = {t.strip() for t in tags if t.strip()}
        return next((m for m in metas if set(m.meta_info_def.tags) == wanted), None)
    if len(metas) == 1:
        return metas[0]
    return next((m for m in metas if list(m.meta_info_def.tags) == ["serve"]), None)


__all__ = [
    "KEYS",
    "Policy",
    "SignatureRule",
    "TensorSpec",
    "check_signatures",
    "check_version",
    "load_policy",
    "parse_policy",
    "parse_version_spec",
    "policy_from_dict",
    "version_matches",
]
