"""Rename plans: which names change, and every conflict, before anything is written."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import ne, not_
from typing import Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.writer import BundleWriter
from tfckpt.ops.rules import NameRules
from tfckpt.ops.writing import (
    Progress,
    WriteResult,
    add_object_graph,
    add_tensors,
    adopt_checked,
    keys_of,
    shard_checks,
    tensor_rows,
    write_decoded,
)


class Renames(Mapping[str, str]):
    """``{old: new}`` for the changed names, in the order given, kept as two lists: 10^6
    renames are planned, written and listed without hashing a name (the lookup table is built
    on the first lookup)."""

    def __init__(self, olds: list[str] | None = None, news: list[str] | None = None) -> None:
        self.olds = olds or []
        self.news = news or []
        self._index: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.olds)

    def __iter__(self) -> Iterator[str]:
        return iter(self.olds)

    def __getitem__(self, old: str) -> str:
        if self._index is None:
            self._index = dict(zip(self.olds, self.news))
        return self._index[old]

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        return zip(self.olds, self.news)

    def values(self) -> list[str]:  # type: ignore[override]
        return self.news

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass
class RenamePlan:
    renames: Mapping[str, str] = field(default_factory=Renames)  # old -> new, changed names
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # TF2: the edited object graph to store, and slot keys derived from the renamed paths
    # instead of taken from the rules (key -> (what the rules gave, what is written)).
    object_graph: bytes | None = None
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # --mapping entries naming no variable
    # The names planned and the new name of each (unchanged ones too), in the same order.
    names: list[str] = field(default_factory=list, repr=False)
    news: list[str] = field(default_factory=list, repr=False)

    def new_name(self, name: str) -> str:
        return self.renames.get(name, name)

    def notes(self) -> list[str]:
        notes = []
        if not self.renames:
            notes.append("no name matches the rules: the output is an unchanged copy")
        if self.unmatched:
            shown = ", ".join(repr(n) for n in self.unmatched[:5])
            more = f" and {len(self.unmatched) - 5} more" if len(self.unmatched) > 5 else ""
            notes.append(
                f"{len(self.unmatched)} mapping name(s) are not in the checkpoint: {shown}{more}"
            )
        if self.derived:
            rule, used = min(self.derived.items())[1]
            notes.append(
                f"{len(self.derived)} TF2 slot key(s) follow their variable's and optimizer's "
                f"renamed object paths rather than the rules, e.g. {used!r} (the rules gave "
                f"{rule!r})"
            )
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "renames": [{"old": o, "new": n} for o, n in sorted(self.renames.items())],
            "unchanged": len(self.unchanged),
            "conflicts": self.conflicts,
            "unmatched_mapping": self.unmatched,
        }


def plan_renames(
    names: list[str],
    rules: NameRules,
    object_graph: bytes | None = None,
    only: Callable[[str], bool] | None = None,
) -> RenamePlan:
    """Apply ``rules`` to every name (``only``: to the names it accepts; the TF2 object-graph
    key is never renamed).

    For a TF2 checkpoint pass its serialized object graph: the renames are then translated into
    renamed object edges (``objgraph.rename_keys``), which may refuse them (RenameConflict) and
    decides the slot keys.
    """
    news = rules.apply_all(names)  # a rule at a time over every name: no step per name
    if only is not None:
        chosen = list(map(only, names))
        news = [new if ok else name for ok, new, name in zip(chosen, news, names)]
    if OBJECT_GRAPH_KEY in names:
        at = names.index(OBJECT_GRAPH_KEY)
        news[at] = names[at]
    plan = RenamePlan()
    if rules.mapping:
        present = set(names)
        plan.unmatched = sorted(k for k in rules.mapping if k not in present)
    changed = list(map(ne, names, news))
    if object_graph is not None and any(changed):
        from tfckpt.bundle import objgraph

        wanted = dict(zip(compress(names, changed), compress(news, changed)))
        edited = objgraph.rename_keys(object_graph, wanted)
        wanted, plan.object_graph, plan.derived = edited.renames, edited.graph, edited.derived
        news = list(map(wanted.get, names, names))
        changed = list(map(ne, names, news))
    renames = plan.renames = Renames(list(compress(names, changed)), list(compress(news, changed)))
    plan.names, plan.news = names, news
    plan.unchanged = list(compress(names, map(not_, changed)))
    targets = renames.values()
    if renames and (min(targets) < "\x01" or OBJECT_GRAPH_KEY in targets):
        for name, new in renames.items():
            if not new:
                plan.conflicts.append(f"{name!r} would get an empty name")
            elif new.startswith("\x00"):
                plan.conflicts.append(f"{name!r} -> {new!r}: names may not start with a NUL byte")
            elif new == OBJECT_GRAPH_KEY and name != OBJECT_GRAPH_KEY:
                plan.conflicts.append(f"{name!r} -> {new!r}: that name is reserved")
    if len(set(news)) == len(news):
        return plan  # every name has a target of its own: no collisions to report
    sources_of: dict[str, list[str]] = {}
    for name, new in zip(names, news):
        sources_of.setdefault(new, []).append(name)
    for new, sources in sorted(sources_of.items()):
        if len(sources) > 1 and new:
            kept = [s for s in sources if s == new]
            if kept:
                others = ", ".join(repr(s) for s in sources if s != new)
                plan.conflicts.append(f"{others} -> {new!r} collides with an unchanged name")
            else:
                plan.conflicts.append(
                    f"{', '.join(repr(s) for s in sources)} would all be renamed to {new!r}"
                )
    return plan


def apply_rename(
    ckpt: Checkpoint,
    dst: str,
    plan: RenamePlan,
    link: bool = False,
    force: bool = False,
    on_bytes: Progress | None = None,
    sync: bool = False,
    keep_meta: bool = False,
    verify: bool = True,
    meta: bytes | None = None,
) -> WriteResult:
    """Write ``plan`` applied to ``ckpt`` at ``dst``: the source data files adopted as they are
    (copied, or hard-linked with ``link``) under a new index, and ``meta`` (a renamed ``.meta``)
    published right after it (``keep_meta`` keeps an existing one instead).

    Every copied tensor's bytes are checked against the index (their shard holds them) and, with
    ``verify`` (the default), against their CRC32C while they are copied, or before a link;
    damage raises CorruptCheckpoint and nothing is written. V1 sources are decoded (V1 has no
    tensor checksums; its table blocks are checked). Within one object store the data files are
    copied server-side: their bytes never pass through here, so only each file's size is
    checked against the index.
    """
    if ckpt.format == "V1":
        with BundleWriter(dst, 1, force, sync=sync, keep_meta=keep_meta) as writer:
            for info in ckpt.tensors():
                write_decoded(writer, ckpt, info.name, plan.new_name(info.name))
            writer.commit()
        return WriteResult(dst, 1, len(ckpt.tensors()), notes=["V1 input: written as V2"])
    bundle = ckpt.bundle
    n = bundle.num_shards
    new_graph = plan.object_graph  # TF2: edited by plan_renames, stored in an extra shard
    shards = n + 1 if new_graph is not None else n
    rows = tensor_rows(bundle)
    names = ckpt.listing().names  # the names of these rows
    renames = plan.renames
    news = plan.news if plan.names is names else list(map(renames.get, names, names))
    if new_graph is not None:
        keep = [name != OBJECT_GRAPH_KEY for name in names]
        rows, news = rows[keep], list(compress(news, keep))
    keys = keys_of(news)
    checks = shard_checks(bundle, rows, verify, on_bytes)  # sizes checked before writing
    with BundleWriter(
        dst,
        shards,
        force,
        own_shard=n if new_graph is not None else None,
        sync=sync,
        keep_meta=keep_meta,
    ) as w:
        if meta is not None:
            w.set_meta(meta)
        for shard in range(n):
            adopt_checked(w, bundle, shard, shard, checks.get(shard), link, on_bytes)
        add_tensors(w, bundle, rows, keys)
        if new_graph is not None:
            add_object_graph(w, new_graph)
        w.commit()
    return WriteResult(dst, shards, len(keys) + (new_graph is not None))
