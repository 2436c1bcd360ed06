"""Presets: a conversion between a TF checkpoint's names and layouts and another framework's
(Hugging Face transformers), as data.

A preset is a TOML file (the built-in ones are in ``tfckpt/presets/``; see ``hf-bert.toml`` for a
commented example)::

    name = "hf-bert"
    description = "one line, shown by `tfckpt presets`"
    strip_prefixes = ["module/"]          # optional wrappers (TF-Hub) removed before matching
    drop = [{ pattern = '/adam_[mv]$', reason = "optimizer slot" }]   # re.search, never exported
    hf_ignore = ['\\.position_ids$']      # HF names that are buffers, skipped on import
    [metadata]                            # added to the output's metadata
    format = "pt"
    [dtypes]                              # checkpoint dtype -> dtype written
    bfloat16 = "float32"
    [vars]                                # the placeholders of the rules
    layer = { count = "num_hidden_layers" }            # an index; config field for its count
    part = { values = ["query", "key", "value"] }      # one of these words
    norm = { values = ["layer_norm", "rms_norm"] }     # may be used on the tf side only
    [[rules]]                                          # ordered; the first full match wins
    tf = "bert/encoder/layer_{layer}/attention/self/{part}/kernel"
    hf = "bert.encoder.layer.{layer}.attention.self.{part}.weight"
    transpose = true                      # np.transpose: all axes reversed
    shape = ["hidden_size", "hidden_size"]             # HF-side shape, config fields (a*b, 4)
    optional = false                      # true: the checkpoint may lack it
    [[tied]]                              # HF names that share another's tensor
    hf = "cls.predictions.decoder.weight"
    same_as = "bert.embeddings.word_embeddings.weight"
    emit = false                          # true: write a copy under this name too

Both sides of a rule are templates with the same placeholders (a ``values`` placeholder may
appear on the checkpoint side only: spellings of one thing), so every rule runs both ways:
``export`` maps checkpoint names to HF names, ``import`` maps them back. An integer placeholder
may carry a format on either side (``block_{block:03d}``). Names a reverse mapping would not
reproduce exactly (a stripped prefix, an unpadded index) and dtypes a rule changed are recorded
in the output's metadata, so that a round trip TF -> HF -> TF gives back the same names, dtypes
and bytes.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import UsageError

PRESET_FORMAT = 1
# Output metadata keys (safetensors __metadata__, the .npz comment, the .npy index).
META_PRESET = "tfckpt.preset"
META_TF_NAMES = "tfckpt.tf_names"  # JSON {hf name: checkpoint name} where the reverse differs
META_SOURCE_DTYPES = "tfckpt.source_dtypes"  # JSON {hf name: checkpoint dtype} where converted

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([0-9]*d))?\}")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def builtin_dir() -> str:
    """The directory of the presets shipped with tfckpt."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets")


# ---- the parts of a preset ----------------------------------------------------------------------
@dataclass(frozen=True)
class Var:
    """A placeholder: an index (``count``: the config fields giving how many, first one set
    wins), one of ``values``, or a regex ``pattern``."""

    name: str
    pattern: str
    is_int: bool = False
    values: tuple[str, ...] = ()
    count: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pattern": self.pattern, "int": self.is_int}
        if self.values:
            out["values"] = list(self.values)
        if self.count:
            out["count"] = list(self.count)
        return out


@dataclass(frozen=True)
class Template:
    text: str
    regex: re.Pattern[str]
    names: tuple[str, ...]  # placeholders, in order of appearance (each once)
    formats: dict[str, str]  # placeholder -> int format ("03d")

    def match(self, name: str, variables: Mapping[str, Var]) -> dict[str, Any] | None:
        m = self.regex.fullmatch(name)
        if m is None:
            return None
        values: dict[str, Any] = {}
        for var in self.names:
            text = m.group(var)
            values[var] = int(text) if variables[var].is_int else text
        return values

    def render(self, values: Mapping[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            value = values[m.group(1)]
            fmt = m.group(2)
            return format(value, fmt) if fmt else str(value)

        return _PLACEHOLDER.sub(one, self.text)


@dataclass(frozen=True)
class Rule:
    index: int
    tf: Template
    hf: Template
    transpose: bool = False
    shape: tuple[str, ...] | None = None  # HF-side dims: config expressions
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "tf": self.tf.text,
            "hf": self.hf.text,
            "transpose": self.transpose,
            "shape": list(self.shape) if self.shape is not None else None,
            "optional": self.optional,
        }


@dataclass(frozen=True)
class Tied:
    hf: str
    same_as: str
    emit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"hf": self.hf, "same_as": self.same_as, "emit": self.emit}


@dataclass(frozen=True)
class Drop:
    pattern: re.Pattern[str]
    reason: str


@dataclass
class Preset:
    name: str
    description: str
    source: str  # "built-in" or the file's path
    rules: list[Rule]
    variables: dict[str, Var]
    drop: list[Drop] = field(default_factory=list)
    strip_prefixes: tuple[str, ...] = ()
    hf_ignore: list[re.Pattern[str]] = field(default_factory=list)
    dtypes: dict[str, str] = field(default_factory=dict)
    tied: list[Tied] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "reference": self.reference,
            "strip_prefixes": list(self.strip_prefixes),
            "drop": [{"pattern": d.pattern.pattern, "reason": d.reason} for d in self.drop],
            "hf_ignore": [p.pattern for p in self.hf_ignore],
            "dtypes": dict(self.dtypes),
            "metadata": dict(self.metadata),
            "vars": {name: var.to_dict() for name, var in self.variables.items()},
            "rules": [r.to_dict() for r in self.rules],
            "tied": [t.to_dict() for t in self.tied],
        }

    # -- checkpoint -> HF
    def dropped(self, name: str) -> str | None:
        """Why the checkpoint name ``name`` (prefix stripped) is not a weight, or None."""
        for drop in self.drop:
            if drop.pattern.search(name):
                return drop.reason
        return None

    def strip(self, name: str) -> tuple[str, str]:
        """``(prefix, rest)``: a wrapping prefix (TF-Hub ``module/``) and the name under it."""
        for prefix in self.strip_prefixes:
            if name.startswith(prefix):
                return prefix, name[len(prefix) :]
        return "", name

    def to_hf(self, name: str) -> tuple[Rule, dict[str, Any], str] | None:
        """The first rule matching checkpoint name ``name``, its values and the HF name."""
        for rule in self.rules:
            values = rule.tf.match(name, self.variables)
            if values is not None:
                return rule, values, rule.hf.render(values)
        return None

    # -- HF -> checkpoint
    def to_tf(self, hf_name: str) -> tuple[Rule, dict[str, Any], str] | None:
        """The first rule whose HF side matches ``hf_name``, its values and the checkpoint name
        (a placeholder only the checkpoint side has takes its first value)."""
        for rule in self.rules:
            values = rule.hf.match(hf_name, self.variables)
            if values is not None:
                for var in rule.tf.names:
                    if var not in values:
                        values[var] = self.variables[var].values[0]
                return rule, values, rule.tf.render(values)
        return None

    def ignored_hf(self, hf_name: str) -> bool:
        return any(p.search(hf_name) for p in self.hf_ignore)

    def tied_alias(self, hf_name: str) -> Tied | None:
        return next((t for t in self.tied if t.hf == hf_name), None)


# ---- parsing ------------------------------------------------------------------------------------
_TOP_KEYS = {
    "name",
    "description",
    "format",
    "reference",
    "strip_prefixes",
    "drop",
    "hf_ignore",
    "metadata",
    "dtypes",
    "vars",
    "rules",
    "tied",
}
_RULE_KEYS = {"tf", "hf", "transpose", "shape", "optional"}


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> UsageError:
        return UsageError(f"preset {self.source}: {where}: {message}")


def _toml(data: bytes, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"preset {source}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"preset {source}: not valid TOML ({exc})") from None


def _str_list(value: Any, where: str, w: _Where) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise w.error(where, "expected a list of strings")
    return list(value)


def _regex(text: str, where: str, w: _Where) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise w.error(where, f"bad regex {text!r} ({exc})") from None


def _vars(raw: Any, w: _Where) -> dict[str, Var]:
    if not isinstance(raw, dict):
        raise w.error("vars", "expected a table")
    out: dict[str, Var] = {}
    for name, spec in raw.items():
        where = f"vars.{name}"
        if not _FIELD.match(name):
            raise w.error(where, "a variable name is letters, digits and _")
        if not isinstance(spec, dict) or set(spec) - {"count", "values", "pattern", "int"}:
            raise w.error(
                where, "expected { count = ... }, { values = [...] } or { pattern = ... }"
            )
        if "values" in spec:
            values = _str_list(spec["values"], where + ".values", w)
            if not values:
                raise w.error(where, "values is empty")
            pattern = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
            out[name] = Var(name, pattern, values=tuple(values))
        elif "pattern" in spec:
            if not isinstance(spec["pattern"], str):
                raise w.error(where, "pattern must be a string")
            _regex(spec["pattern"], where, w)
            out[name] = Var(name, spec["pattern"])
        else:
            count = spec.get("count", [])
            counts = [count] if isinstance(count, str) else _str_list(count, where + ".count", w)
            if not all(_FIELD.match(c) for c in counts):
                raise w.error(where, f"count {count!r}: expected config field names")
            out[name] = Var(name, "[0-9]+", is_int=True, count=tuple(counts))
    return out


def _template(text: Any, where: str, variables: dict[str, Var], w: _Where) -> Template:
    if not isinstance(text, str) or not text:
        raise w.error(where, "expected a non-empty string")
    parts: list[str] = []
    names: list[str] = []
    formats: dict[str, str] = {}
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[pos : m.start()]))
        var, fmt = m.group(1), m.group(2)
        if var not in variables:
            raise w.error(where, f"unknown variable {{{var}}} (declare it under [vars])")
        if fmt and not variables[var].is_int:
            raise w.error(where, f"{{{var}:{fmt}}}: only index variables take a format")
        if var in names:
            parts.append(f"(?P={var})")
        else:
            names.append(var)
            parts.append(f"(?P<{var}>{variables[var].pattern})")
        if fmt:
            formats[var] = fmt
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise w.error(where, f"{text!r}: a placeholder is {{name}} or {{name:03d}}")
    return Template(text, re.compile("".join(parts)), tuple(names), formats)


def _shape(raw: Any, where: str, w: _Where) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise w.error(where, "expected a list of dimensions")
    dims = []
    for dim in raw:
        text = str(dim) if isinstance(dim, int) and not isinstance(dim, bool) else dim
        if not isinstance(text, str) or not all(
            _FIELD.match(f.strip()) or f.strip().isdigit() for f in text.split("*")
        ):
            raise w.error(where, f"dimension {dim!r}: a number, a config field, or a*b")
        dims.append(text.replace(" ", ""))
    return tuple(dims)


def _rules(raw: Any, variables: dict[str, Var], w: _Where) -> list[Rule]:
    if not isinstance(raw, list) or not raw:
        raise w.error("rules", "expected at least one [[rules]] table")
    rules = []
    for i, spec in enumerate(raw):
        where = f"rules[{i}]"
        if not isinstance(spec, dict):
            raise w.error(where, "expected a table")
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise w.error(where, f"unknown key(s) {', '.join(sorted(unknown))}")
        if "tf" not in spec or "hf" not in spec:
            raise w.error(where, "needs tf and hf")
        tf = _template(spec["tf"], where + ".tf", variables, w)
        hf = _template(spec["hf"], where + ".hf", variables, w)
        if not set(hf.names) <= set(tf.names):
            raise w.error(where, "hf uses a placeholder tf does not (rules run both ways)")
        for var in set(tf.names) - set(hf.names):
            if not variables[var].values:
                raise w.error(
                    where,
                    f"{{{var}}} is only in tf: only a values variable may be (import writes its "
                    "first value)",
                )
        for key in ("transpose", "optional"):
            if not isinstance(spec.get(key, False), bool):
                raise w.error(where, f"{key} must be true or false")
        shape = _shape(spec["shape"], where + ".shape", w) if "shape" in spec else None
        rules.append(
            Rule(i, tf, hf, spec.get("transpose", False), shape, spec.get("optional", False))
        )
    return rules


def parse_preset(data: bytes, source: str) -> Preset:
    """A preset from TOML ``data``; every mistake is a UsageError naming the file and the key."""
    from tfckpt.dtypes import dtype_from_name

    w = _Where(source)
    raw = _toml(data, source)
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise w.error("top level", f"unknown key(s) {', '.join(sorted(unknown))}")
    if raw.get("format", PRESET_FORMAT) != PRESET_FORMAT:
        raise w.error("format", f"this tfckpt reads preset format {PRESET_FORMAT}")
    name, description = raw.get("name"), raw.get("description", "")
    if not isinstance(name, str) or not name:
        raise w.error("name", "a preset needs a name")
    if not isinstance(description, str):
        raise w.error("description", "expected a string")
    variables = _vars(raw.get("vars", {}), w)
    rules = _rules(raw.get("rules"), variables, w)
    drops = []
    for i, spec in enumerate(raw.get("drop", [])):
        where = f"drop[{i}]"
        if isinstance(spec, str):
            spec = {"pattern": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("pattern"), str):
            raise w.error(where, "expected a regex, or { pattern = ..., reason = ... }")
        reason = spec.get("reason", f"matches {spec['pattern']!r}")
        drops.append(Drop(_regex(spec["pattern"], where, w), str(reason)))
    dtypes = raw.get("dtypes", {})
    if not isinstance(dtypes, dict):
        raise w.error("dtypes", "expected a table of dtype = dtype")
    for old, new in dtypes.items():
        for dtype in (old, new):
            try:
                dtype_from_name(str(dtype))
            except KeyError:
                raise w.error("dtypes", f"unknown dtype {dtype!r}") from None
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise w.error("metadata", "expected a table of strings")
    tied = []
    for i, spec in enumerate(raw.get("tied", [])):
        where = f"tied[{i}]"
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("hf"), str)
            or not isinstance(spec.get("same_as"), str)
            or not isinstance(spec.get("emit", False), bool)
            or set(spec) - {"hf", "same_as", "emit"}
        ):
            raise w.error(where, "expected { hf = ..., same_as = ..., emit = true|false }")
        tied.append(Tied(spec["hf"], spec["same_as"], spec.get("emit", False)))
    reference = raw.get("reference", "")
    if not isinstance(reference, str):
        raise w.error("reference", "expected a string")
    return Preset(
        name=name,
        description=description,
        source=source,
        rules=rules,
        variables=variables,
        drop=drops,
        strip_prefixes=tuple(_str_list(raw.get("strip_prefixes", []), "strip_prefixes", w)),
        hf_ignore=[
            _regex(p, "hf_ignore", w) for p in _str_list(raw.get("hf_ignore", []), "hf_ignore", w)
        ],
        dtypes={str(k): str(v) for k, v in dtypes.items()},
        tied=tied,
        metadata=dict(metadata),
        reference=reference,
    )


def is_preset_path(spec: str) -> bool:
    return spec.endswith(".toml") or "/" in spec or os.sep in spec


def builtin_names() -> list[str]:
    directory = builtin_dir()
    if not os.path.isdir(directory):
        return []
    return sorted(f[: -len(".toml")] for f in os.listdir(directory) if f.endswith(".toml"))


def load_preset(spec: str | os.PathLike[str]) -> Preset:
    """A built-in preset by name (``hf-bert``), or a preset file (``./mine.toml``)."""
    text = os.fspath(spec)
    if is_preset_path(text):
        from tfckpt.storage import open_regular

        try:
            with open_regular(text) as f:
                data = f.read()
        except FileNotFoundError:
            raise UsageError(f"preset {text}: no such file") from None
        except OSError as exc:
            raise UsageError(f"preset {text}: cannot read ({exc.strerror})") from None
        return parse_preset(data, text)
    names = builtin_names()
    if text not in names:
        import difflib

        close = difflib.get_close_matches(text, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(
            f"no built-in preset {text!r}{hint}; built in: {', '.join(names)}; a preset file is "
            "named by its path (./mine.toml)"
        )
    with open(os.path.join(builtin_dir(), text + ".toml"), "rb") as f:
        preset = parse_preset(f.read(), text)
    preset.source = "built-in"
    return preset


def list_presets() -> list[Preset]:
    return [load_preset(name) for name in builtin_names()]


# ---- config.json -------------------------------------------------------------------------------
def load_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """A Hugging Face ``config.json``: its fields and its bytes (copied as they are)."""
    from tfckpt.storage import open_regular

    text = os.fspath(path)
    try:
        with open_regular(text) as f:
            data = f.read()
    except FileNotFoundError:
        raise UsageError(f"config {text}: no such file") from None
    except OSError as exc:
        raise UsageError(f"config {text}: cannot read ({exc.strerror})") from None
    try:
        fields = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"config {text}: not JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise UsageError(f"config {text}: not a JSON object")
    return fields, data


def config_value(config: Mapping[str, Any], fields: Iterable[str]) -> tuple[str, int] | None:
    """The first of ``fields`` the config sets to an integer: ``(field, value)``."""
    for name in fields:
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return None


def expected_shape(
    dims: tuple[str, ...], config: Mapping[str, Any]
) -> tuple[list[int], list[str]] | None:
    """The shape a rule's dimensions give under ``config`` and their text (``vocab_size=30``);
    None when the config lacks a field."""
    shape, texts = [], []
    for dim in dims:
        value, parts = 1, []
        for factor in dim.split("*"):
            if factor.isdigit():
                value *= int(factor)
                parts.append(factor)
                continue
            found = config_value(config, [factor])
            if found is None:
                return None
            value *= found[1]
            parts.append(f"{factor}={found[1]}")
        shape.append(value)
        texts.append("*".join(parts))
    return shape, texts


def transposed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape))


# ---- checking a mapping -------------------------------------------------------------------------
@dataclass
class Mapped:
    """One checkpoint tensor and the HF tensor it becomes."""

    tf: str  # the checkpoint name (as the checkpoint spells it)
    hf: str
    rule: int
    transpose: bool
    dtype: str  # as read (export: the checkpoint's; import: the file's)
    out_dtype: str  # as written
    shape: tuple[int, ...]  # as written
    alias_of: str | None = None  # a tied alias emitted as a copy of this HF name

    def to_dict(self) -> dict[str, Any]:
        return {
            "tf": self.tf,
            "hf": self.hf,
            "transposed": self.transpose,
            "dtype": self.dtype,
            "out_dtype": self.out_dtype,
            "shape": list(self.shape),
            "alias_of": self.alias_of,
        }


@dataclass
class PresetReport:
    """How a preset mapped one side to the other, and what it could not map."""

    preset: str
    direction: str  # "export" (checkpoint -> HF) or "import" (HF -> checkpoint)
    mapped: list[Mapped] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what the model needs and did not get
    shapes: list[str] = field(default_factory=list)  # disagreements with the config
    config: str | None = None
    config_checked: int = 0
    allow_unmapped: bool = False
    allow_missing: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.shapes
            or (self.unmapped and not self.allow_unmapped)
            or (self.missing and not self.allow_missing)
        )

    def problem(self) -> tuple[str, str | None]:
        """One line saying what is wrong, and the parameter that would let it pass."""
        parts, fix = [], None
        if self.shapes:
            parts.append(
                f"{len(self.shapes)} shape(s) disagree with {self.config}: "
                + "; ".join(self.shapes[:3])
            )
        if self.unmapped and not self.allow_unmapped:
            side = "checkpoint" if self.direction == "export" else "input"
            parts.append(
                f"{len(self.unmapped)} {side} tensor(s) not mapped by {self.preset}: "
                + ", ".join(self.unmapped[:5])
                + (" ..." if len(self.unmapped) > 5 else "")
            )
            fix = fix or "allow_unmapped"
        if self.missing and not self.allow_missing:
            parts.append(
                f"{len(self.missing)} tensor(s) the model needs are missing "
                "(they would stay randomly initialised): "
                + ", ".join(self.missing[:5])
                + (" ..." if len(self.missing) > 5 else "")
            )
            fix = fix or "allow_missing"
        return "; ".join(parts), fix

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.preset,
            "ok": self.ok,
            "mapping": [m.to_dict() for m in self.mapped],
            "dropped": self.dropped,
            "unmapped": self.unmapped,
            "missing": self.missing,
            "shapes": self.shapes,
            "config": self.config,
            "config_checked": self.config_checked,
            "allow_unmapped": self.allow_unmapped,
            "allow_missing": self.allow_missing,
        }


def check_against(
    preset: Preset,
    report: PresetReport,
    matches: list[tuple[Rule, dict[str, Any], str, tuple[int, ...]]],
    config: Mapping[str, Any] | None,
) -> None:
    """Fill ``report.missing`` (rules nothing matched; with a config, indices that do not
    cover the config's counts) and ``report.shapes`` (HF shapes against the config)."""
    seen: dict[int, list[dict[str, Any]]] = {}
    for rule, values, _hf, _shape in matches:
        seen.setdefault(rule.index, []).append(values)
    for rule in preset.rules:
        found = seen.get(rule.index, [])
        if not found:
            if not rule.optional:
                report.missing.append(rule.hf.text)
            continue
        if config is None:
            continue
        for var in rule.tf.names:
            spec = preset.variables[var]
            if not spec.count:
                continue
            counted = config_value(config, spec.count)
            if counted is None:
                continue
            have = {v[var] for v in found}
            want = set(range(counted[1]))
            lacking = sorted(want - have)
            extra = sorted(have - want)
            others = {tuple(sorted((k, x) for k, x in v.items() if k != var)) for v in found}
            for value in lacking:
                for other in sorted(others):
                    shown = rule.hf.render({**dict(other), var: value})
                    report.missing.append(f"{shown} ({counted[0]}={counted[1]})")
            for value in extra:
                report.shapes.append(
                    f"{rule.hf.render({**found[0], var: value})}: {{{var}}}={value} but "
                    f"{counted[0]}={counted[1]}"
                )
    if config is None:
        return
    lacking_fields: set[str] = set()
    for rule, _values, hf, shape in matches:
        if rule.shape is None:
            continue
        expected = expected_shape(rule.shape, config)
        if expected is None:
            lacking_fields.update(
                f
                for dim in rule.shape
                for f in dim.split("*")
                if not f.isdigit() and config_value(config, [f]) is None
            )
            continue
        report.config_checked += 1
        if list(shape) != expected[0]:
            report.shapes.append(
                f"{hf}: shape {list(shape)} but the config says [{', '.join(expected[1])}]"
            )
    if lacking_fields:
        report.shapes.append(
            f"{report.config} does not set {', '.join(sorted(lacking_fields))}, which "
            f"{preset.name} checks shapes with: the config of another architecture?"
        )


def _ranges(values: list[int]) -> str:
    out: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(out)


def recorded(metadata: Mapping[str, str], key: str, where: str) -> dict[str, str]:
    """A JSON object a preset export recorded in the metadata (``{}`` when absent)."""
    raw = metadata.get(key)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        from tfckpt.errors import CorruptCheckpoint

        raise CorruptCheckpoint(f"{where}: unreadable {key} metadata") from None
    if not isinstance(value, dict):
        from tfckpt.errors import CorruptCheckpoint

        raise CorruptCheckpoint(f"{where}: {key} metadata is not an object")
    return {str(k): str(v) for k, v in value.items()}
