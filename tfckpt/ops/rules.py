"""Name-mapping rules shared by ``rename``, ``diff``, ``export`` and ``import``.

Order of application, for every name: an exact ``--mapping`` entry wins outright; otherwise each
``--sub PATTERN REPLACEMENT`` (Python ``re.sub``) runs in the order given, then
``--strip-prefix``, then ``--add-prefix``.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat

from tfckpt.errors import UsageError


@dataclass(frozen=True)
class NameRules:
    subs: tuple[tuple[re.Pattern[str], str], ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)
    strip_prefix: str | None = None
    add_prefix: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.subs or self.mapping or self.strip_prefix or self.add_prefix)

    def apply(self, name: str) -> str:
        if name in self.mapping:
            return self.mapping[name]
        for pattern, replacement in self.subs:
            name = pattern.sub(replacement, name)
        if self.strip_prefix and name.startswith(self.strip_prefix):
            name = name[len(self.strip_prefix) :]
        if self.add_prefix:
            name = self.add_prefix + name
        return name

    def apply_all(self, names: list[str]) -> list[str]:
        """``apply`` to every name, a rule at a time over all of them (the same results)."""
        out = names
        for pattern, replacement in self.subs:
            out = list(map(pattern.sub, repeat(replacement), out))
        strip = self.strip_prefix
        if strip:
            cut = len(strip)
            out = [name[cut:] if name.startswith(strip) else name for name in out]
        if self.add_prefix:
            out = list(map(self.add_prefix.__add__, out))
        if self.mapping:
            mapping = self.mapping
            out = list(map(mapping.get, names, out))
        return list(out) if out is names else out


def compile_sub(pattern: str, replacement: str) -> tuple[re.Pattern[str], str]:
    try:
        compiled = re.compile(pattern)
        compiled.sub(replacement, "")  # surfaces bad group references in the replacement
    except (re.error, IndexError) as exc:  # IndexError: an unknown group name
        raise UsageError(f"bad sub {pattern!r} {replacement!r}: {exc}") from None
    return compiled, replacement


def load_mapping(path: str) -> dict[str, str]:
    """Read ``old -> new`` names from a JSON object or a two-column CSV/TSV file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read mapping file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: mapping file is not UTF-8 text (byte {exc.start})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: bad JSON at line {exc.lineno}: {exc.msg}") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise UsageError(f"{path}: mapping values must be strings")
        return dict(data)
    delimiter = "\t" if "\t" in text else ","
    mapping: dict[str, str] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].startswith("#"):
            continue
        if len(row) != 2:
            raise UsageError(f"{path}:{lineno}: expected two columns (old, new), got {len(row)}")
        old, new = row[0].strip(), row[1].strip()
        if lineno == 1 and (old.lower(), new.lower()) in {("old", "new"), ("from", "to")}:
            continue
        if old in mapping and mapping[old] != new:
            raise UsageError(f"{path}:{lineno}: {old!r} is mapped twice")
        mapping[old] = new
    return mapping


def build_rules(
    subs: list[tuple[str, str]] | None = None,
    mapping_file: str | None = None,
    strip_prefix: str | None = None,
    add_prefix: str | None = None,
) -> NameRules:
    return NameRules(
        subs=tuple(compile_sub(p, r) for p, r in (subs or [])),
        mapping=load_mapping(mapping_file) if mapping_file else {},
        strip_prefix=strip_prefix or None,
        add_prefix=add_prefix or None,
    )


def select_names(
    names: list[str], match: list[str] | None = None, regex: list[str] | None = None
) -> list[str]:
    """Names matching any glob in ``match`` or any regex in ``regex`` (``re.search``); all names
    when neither is given. A bad regex is a UsageError."""
    if not match and not regex:
        return names
    try:
        patterns = [re.compile(r) for r in regex or []]
    except re.error as exc:
        raise UsageError(f"bad regex: {exc}") from None
    return [
        n
        for n in names
        if any(fnmatch.fnmatchcase(n, g) for g in match or []) or any(p.search(n) for p in patterns)
    ]


def name_selector(
    match: list[str] | None = None, regex: list[str] | None = None
) -> Callable[[list[str]], bool] | None:
    """A filter that keeps a tensor when any of its names (key, TF2 object path) matches a glob
    in ``match`` or a regex in ``regex``; None when neither is given. Bad regexes are refused
    here, up front."""
    if not match and not regex:
        return None
    select_names([], match, regex)

    def select(names: list[str]) -> bool:
        return bool(select_names(names, match, regex))

    return select
