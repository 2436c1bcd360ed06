"""New checkpoints from old ones: ``rename``, ``prune``, ``merge``, ``cast``, and ``repair`` of a
directory's state file.

Each function validates its whole plan before anything is written (conflicting rules raise
``RenameConflict`` naming the names; nothing is written), writes under temporary names and
publishes atomically, never modifies a source, refuses to overwrite an existing destination
unless ``force=True``, and never overwrites one of its own inputs, even with ``force``. With
``dry_run=True`` it returns the plan and writes nothing.

Example::

    import tfckpt

    result = tfckpt.rename("run/model.ckpt-100", "out/model.ckpt-100", add_prefix="pretrained/")
    print(result.written.tensors, "tensors written to", result.destination)
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from tfckpt import storage
from tfckpt.errors import NoChange, OutputExists, RenameConflict, UsageError
from tfckpt.progress import Progress, or_none

PathLike = str | os.PathLike[str]


@dataclass
class WriteSummary:
    """What was published: the prefix, its shard and tensor counts, bytes written."""

    prefix: str
    shards: int
    tensors: int
    bytes_written: int = 0


@dataclass
class SurgeryResult:
    """The plan of a writer and, unless ``dry_run``, what it wrote.

    ``plan`` is the operation's plan object (``RenamePlan``, ``PrunePlan``, ``MergePlan``,
    ``CastPlan``); ``written`` is None for a dry run. ``notes`` are things a user should hear
    (a ``.meta`` not carried over, rules that matched nothing...).
    """

    command: str
    destination: str
    plan: Any
    dry_run: bool
    written: WriteSummary | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the same keys with and without ``dry_run``."""
        return {
            "destination": self.destination,
            "dry_run": self.dry_run,
            "written": self.written is not None,
            "shards": self.written.shards if self.written else None,
            "tensors": self.written.tensors if self.written else None,
            **self.plan.to_dict(),
            "notes": self.notes,
        }


# ---- shared checks -----------------------------------------------------------------------------
def output_prefix(path: PathLike) -> str:
    """The prefix a writer produces for a destination named by its file: ``out/x.index`` (or
    ``.meta``, ``.data-...``) means the prefix ``out/x``."""
    from tfckpt.bundle.checkpoint import strip_checkpoint_suffix

    return strip_checkpoint_suffix(os.fspath(path))


def scope_option(value: str | None, what: str, notes: list[str]) -> str | None:
    """A scope (``net/``) given for ``what``: empty is none; a missing trailing ``/`` is added
    (``net`` means the scope ``net/``, never a bare string glued to names), with a note."""
    if not value:
        return None
    if value.startswith("/") or "//" in value:
        raise UsageError(f"{what} {value!r}: not a scope (a scope looks like 'pretrained/')")
    if not value.endswith("/"):
        notes.append(f"{what} {value!r} taken as the scope {value + '/'!r}")
        value += "/"
    return value


def _to_pairs(sub: Iterable[tuple[str, str]] | Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    pairs = []
    for pair in sub:
        if isinstance(pair, str) or len(pair) != 2:
            raise UsageError(f"sub: expected (pattern, replacement) pairs, got {pair!r}")
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


def build_name_rules(
    sub: Iterable[tuple[str, str]] = (),
    mapping: Mapping[str, str] | PathLike | None = None,
    strip_prefix: str | None = None,
    add_prefix: str | None = None,
    notes: list[str] | None = None,
) -> Any:
    """``NameRules`` from keyword options (``mapping``: a dict or a mapping file's path)."""
    from tfckpt.ops.rules import NameRules, build_rules

    notes = [] if notes is None else notes
    strip = scope_option(strip_prefix, "strip_prefix", notes)
    add = scope_option(add_prefix, "add_prefix", notes)
    if mapping is None or isinstance(mapping, str | os.PathLike):
        return build_rules(
            _to_pairs(sub), os.fspath(mapping) if mapping is not None else None, strip, add
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise UsageError("mapping: old and new names must be strings")
    rules = build_rules(_to_pairs(sub), None, strip, add)
    return NameRules(rules.subs, dict(mapping), rules.strip_prefix, rules.add_prefix)


def _mapping_by_key(rules: Any, names: list[str]) -> Any:
    """TF2: mapping entries may name object paths (``model/dense/kernel``); they stand for the
    keys of those variables, and so do their new names."""
    from dataclasses import replace

    from tfckpt.names import is_object_key, key_of

    if not rules.mapping:
        return rules
    keys = set(names)
    mapping = {}
    for old, new in rules.mapping.items():
        if old not in keys and key_of(old) in keys:
            old, new = key_of(old), new if is_object_key(new) else key_of(new)
        mapping[old] = new
    return replace(rules, mapping=mapping)


def _refuse_conflicts(plan: Any, source: str) -> None:
    if plan.conflicts:
        shown = "; ".join(plan.conflicts[:3])
        more = f" (and {len(plan.conflicts) - 3} more)" if len(plan.conflicts) > 3 else ""
        raise RenameConflict(
            f"{source}: {len(plan.conflicts)} conflict(s), nothing written: {shown}{more}"
        )


def _close_names(rules: Any, names: list[str]) -> list[str]:
    """Names (and scopes) that the rules' patterns almost matched: for 'matched nothing'."""
    scopes = {name[: i + 1] for name in names for i, c in enumerate(name) if c == "/"}
    candidates = sorted(scopes | set(names))
    wanted = [re.sub(r"\\(.)", r"\1", p.pattern).strip("^$") for p, _ in rules.subs]
    wanted += [p for p in (rules.strip_prefix,) if p] + list(rules.mapping)[:3]
    close: list[str] = []
    for text in wanted:
        for match in difflib.get_close_matches(text, candidates, n=3, cutoff=0.5):
            if match not in close:
                close.append(match)
    return close[:5]


def _selector(match: Iterable[str], regex: Iterable[str]) -> Any:
    """``None`` (every name), or a function of an open checkpoint giving the test for a key:
    selected when its key or its TF2 object path matches a glob or regex."""
    from tfckpt.ops.rules import name_selector

    if isinstance(match, str) or isinstance(regex, str):
        raise UsageError("match and regex take lists of patterns")
    select = name_selector(list(match), list(regex))
    if select is None:
        return None

    def for_checkpoint(ckpt: Any) -> Any:
        chosen = {
            i.name
            for i in ckpt.tensors()
            if select([i.name] + ([i.object_path] if i.object_path else []))
        }
        return chosen.__contains__

    return for_checkpoint


def _check_destination(dst: str, force: bool) -> None:
    from tfckpt.bundle.writer import check_destination

    check_destination(dst, force)


def _meta_notes(src_prefix: str, carried: bool) -> list[str]:
    if not carried and storage.exists(src_prefix + ".meta"):
        return [f"{src_prefix}.meta was not carried over (its graph names the old variables)"]
    return []


# ---- rename ------------------------------------------------------------------------------------
def rename(
    src: PathLike,
    dst: PathLike,
    *,
    sub: Iterable[tuple[str, str]] = (),
    mapping: Mapping[str, str] | PathLike | None = None,
    add_prefix: str | None = None,
    strip_prefix: str | None = None,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    meta: bool = False,
    link: bool = False,
    allow_unchanged: bool = False,
    verify: bool = True,
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> SurgeryResult:
    """Write ``dst``: the checkpoint ``src`` with variables renamed. Tensor bytes are reused
    (copied in the kernel, or hard-linked with ``link=True``); only the index is new.

    Rules apply to every name in this order: an exact ``mapping`` entry wins (a dict or a JSON /
    two-column CSV file); else each ``sub`` ``(pattern, replacement)`` (``re.sub``) in order,
    then ``strip_prefix``, then ``add_prefix`` (both scopes: ``"net/"``). ``match`` (globs) and
    ``regex`` restrict the rules to the names they select (keys or TF2 object paths). TF2
    object graphs are renamed too. ``meta=True`` also renames ``src.meta`` into ``dst.meta``.

    Raises ``RenameConflict`` (two names to one, a clash with an unchanged name, an empty name)
    and ``NoChange`` when no name changes (unless ``allow_unchanged``); nothing is written then.
    A damaged source raises ``CorruptCheckpoint`` and nothing is written: every copied tensor
    must lie inside its shard and (unless ``verify=False``) match its CRC32C, checked while it
    is copied (before hard-linking with ``link``).

    >>> tfckpt.rename("ckpt", "out/ckpt", sub=[("^model/", "net/")], dry_run=True).plan.renames
    {'model/dense/kernel': 'net/dense/kernel', ...}
    """
    from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint
    from tfckpt.ops.rename import apply_rename, plan_renames

    dst = output_prefix(dst)
    notes: list[str] = []
    rules = build_name_rules(sub, mapping, strip_prefix, add_prefix, notes)
    if rules.empty:
        raise UsageError("give at least one rule: sub, mapping, add_prefix or strip_prefix")
    only = _selector(match, regex)
    progress = or_none(progress)
    with open_checkpoint(src) as ckpt:
        notes = ckpt.notes + notes
        names = ckpt.listing().names
        rules = _mapping_by_key(rules, names)
        selected = only(ckpt) if only else None
        plan = plan_renames(names, rules, ckpt.object_graph_bytes(), selected)
        _refuse_conflicts(plan, ckpt.prefix)
        notes += plan.notes()
        # A checkpoint with no variables has nothing to rename: not a mistake in the rules.
        if (
            not plan.renames
            and plan.unchanged
            and plan.unchanged != [OBJECT_GRAPH_KEY]
            and not allow_unchanged
        ):
            close = _close_names(rules, names)
            hint = f"; closest names: {', '.join(repr(c) for c in close)}" if close else ""
            raise NoChange(
                f"{ckpt.prefix}: no name matches the rules, nothing to rename{hint}",
                fix="allow_unchanged",
            )
        meta_src = ckpt.prefix + ".meta"
        new_meta = None
        if meta:
            new_meta = _renamed_meta(ckpt, meta_src, dst, plan, force, notes)
        result = SurgeryResult("rename", dst, plan, dry_run, notes=notes)
        if dry_run:
            return result
        _check_destination(dst, force)
        from tfckpt.bundle.checkpoint import data_bytes_on_disk

        progress.start("link" if link else "copy", data_bytes_on_disk(ckpt.prefix))
        written = apply_rename(
            ckpt, dst, plan, link, force, progress.advance, sync, verify=verify, meta=new_meta
        )  # the new .meta is published right after the index
    _publish_state(dst)
    result.notes += written.notes + _meta_notes(ckpt.prefix, new_meta is not None)
    result.written = WriteSummary(dst, written.shards, written.tensors, written.bytes_written)
    return result


def _renamed_meta(
    ckpt: Any, meta_src: str, dst: str, plan: Any, force: bool, notes: list[str]
) -> bytes:
    if not storage.exists(meta_src):
        raise UsageError(f"{meta_src}: no .meta to rename")
    if ckpt.format == "V1":
        raise UsageError(
            f"{meta_src}: the graph of a V1 checkpoint restores only V1 files (RestoreSlice), "
            "but rename writes V2; rename without the .meta and rebuild the graph"
        )
    if storage.lexists(dst + ".meta") and not force:
        raise OutputExists(f"{dst}.meta: exists", fix="force")
    from tfckpt.graph.rename import rename_metagraph

    return rename_metagraph(storage.read_bytes(meta_src), plan.renames, notes)


def _publish_state(prefix: str) -> None:
    from tfckpt.bundle.state import record_latest

    record_latest(prefix)


# ---- prune -------------------------------------------------------------------------------------
def prune(
    src: PathLike,
    dst: PathLike,
    *,
    drop: Iterable[str] = (),
    keep: Iterable[str] = (),
    optimizer: bool = False,
    drop_global_step: bool = False,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    verify: bool = True,
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> SurgeryResult:
    """Write ``dst`` holding only the kept tensors of ``src``, compacted into one data file.

    ``drop``: regexes (``re.search``) of names to drop; ``keep``: regexes that win over
    everything; ``optimizer=True`` drops optimizer state (TF1 slots such as ``/Adam``, TF2
    ``.OPTIMIZER_SLOT`` entries and the optimizer's own variables, wherever the optimizer
    sits in a TF2 object graph, e.g. a Keras model's ``optimizer`` under
    ``tf.train.Checkpoint(net=model)``); ``drop_global_step``; ``match`` (globs) / ``regex``:
    keep only the names they select (keys or TF2 object paths), as ``export`` does. Kept bytes
    are copied with their stored checksums; a TF2 object graph loses the dropped attributes so
    the model restores without them. A damaged kept tensor raises ``CorruptCheckpoint`` and
    nothing is written (its CRC32C is checked while it is copied, unless ``verify=False``; its
    byte range always).

    >>> tfckpt.prune("model.ckpt-1000", "small/model.ckpt-1000", optimizer=True)
    """
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.ops.prune import apply_prune, plan_prune

    drop, keep = list(drop), list(keep)
    if isinstance(drop, str) or isinstance(keep, str):
        raise UsageError("drop and keep take lists of regexes")
    only = _selector(match, regex)
    if not (drop or optimizer or drop_global_step or only):
        raise UsageError(
            "nothing to drop: give drop regexes, optimizer, drop_global_step, match or regex"
        )
    dst = output_prefix(dst)
    progress = or_none(progress)
    with open_checkpoint(src) as ckpt:
        notes = list(ckpt.notes)
        listing = ckpt.listing()
        sizes = dict(zip(listing.names, listing.nbytes))
        # The object graph is read here only for `optimizer`; otherwise apply_prune reads it.
        graph = ckpt.object_graph_bytes() if optimizer else None
        selected = only(ckpt) if only else None
        plan = plan_prune(sizes, drop, keep, optimizer, drop_global_step, graph, selected)
        result = SurgeryResult("prune", dst, plan, dry_run, notes=notes)
        result.notes += _meta_notes(ckpt.prefix, False)
        if dry_run:
            return result
        _check_destination(dst, force)
        progress.start("prune", plan.bytes_after)
        written = apply_prune(ckpt, dst, plan, force, progress.advance, sync, verify=verify)
    _publish_state(dst)
    result.notes += written.notes
    result.written = WriteSummary(dst, written.shards, written.tensors, written.bytes_written)
    return result


# ---- merge -------------------------------------------------------------------------------------
MergeSource = PathLike | tuple[PathLike, str]


def merge(
    sources: Sequence[MergeSource],
    dst: PathLike,
    *,
    prefer: str | None = None,
    link: bool = False,
    verify: bool = True,
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> SurgeryResult:
    """Write ``dst`` holding the variables of every source, each source a path or a
    ``(path, scope)`` pair whose names get ``scope`` (``"pretrained/"``) prepended.

    Zero-copy where possible: every V2 source's data files become shards of the output (copied
    in the kernel, or hard-linked with ``link=True``) and only a new index is written. Duplicate
    names raise ``RenameConflict`` unless ``prefer`` is ``"first"`` or ``"last"``. TF2 object
    graphs are merged too (an input under ``scope`` restores with
    ``tf.train.Checkpoint(scope=tf.train.Checkpoint(model=...))``). Damaged inputs raise
    ``CorruptCheckpoint`` as in ``rename`` (``verify=False`` skips the CRC32C check).

    >>> tfckpt.merge([("pretrained/model.ckpt", "pretrained/"), "head/model.ckpt"], "out/all")
    """
    from tfckpt.bundle.checkpoint import data_bytes_on_disk, open_checkpoint
    from tfckpt.ops.merge import apply_merge, parse_input, plan_merge

    if isinstance(sources, str | os.PathLike) or not sources:
        raise UsageError("merge needs a list of sources (paths or (path, scope) pairs)")
    if prefer not in (None, "first", "last"):
        raise UsageError(f"prefer {prefer!r}: choose 'first' or 'last'")
    dst = output_prefix(dst)
    notes: list[str] = []
    specs = []
    for source in sources:
        if isinstance(source, tuple):
            path, scope = source
            specs.append((os.fspath(path), scope_option(scope, "scope", notes) or ""))
        else:
            spec = parse_input(os.fspath(source), notes)
            specs.append((spec.path, spec.scope))
    progress = or_none(progress)
    with ExitStack() as stack:
        opened: dict[str, Any] = {}  # a path given twice (under two scopes) is read once
        for path, _ in specs:
            if path not in opened:
                opened[path] = stack.enter_context(open_checkpoint(path))
        ckpts = [opened[path] for path, _ in specs]
        for ckpt in ckpts:
            notes += ckpt.notes
        names = [c.listing(include_object_graph=False).names for c in ckpts]
        graphs = [c.object_graph_bytes() for c in ckpts]
        plan = plan_merge(names, [scope for _, scope in specs], prefer, graphs)
        plan.inputs = [path for path, _ in specs]
        result = SurgeryResult("merge", dst, plan, dry_run, notes=notes + list(plan.notes))
        if dry_run:
            return result
        _check_destination(dst, force)
        progress.start("merge", sum(data_bytes_on_disk(c.prefix) for c in ckpts))
        written = apply_merge(ckpts, dst, plan, link, force, progress.advance, sync, verify=verify)
    _publish_state(dst)
    result.written = WriteSummary(dst, written.shards, written.tensors, written.bytes_written)
    return result


# ---- cast --------------------------------------------------------------------------------------
def cast(
    src: PathLike,
    dst: PathLike,
    *,
    dtype: str,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> SurgeryResult:
    """Write ``dst`` with floating-point tensors cast to ``dtype`` (float16, bfloat16, float32,
    float64); everything else copied unchanged, checked against its stored checksum.

    ``match`` (globs) and ``regex`` restrict which tensors are cast (they see the key and the TF2
    object path). Values are exactly numpy's ``astype``; overflows to inf are counted in the plan.

    >>> tfckpt.cast("model.ckpt-1000", "half/model.ckpt-1000", dtype="float16")
    """
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.ops.cast import apply_cast, cast_target, plan_cast
    from tfckpt.ops.rules import name_selector

    target = cast_target(dtype)
    select = name_selector(list(match), list(regex))
    dst = output_prefix(dst)
    progress = or_none(progress)
    with open_checkpoint(src) as ckpt:
        plan = plan_cast(ckpt, dst, target, select)
        result = SurgeryResult("cast", dst, plan, dry_run, notes=list(ckpt.notes))
        if dry_run:
            return result
        _check_destination(dst, force)
        progress.start("cast", plan.bytes_before)
        written = apply_cast(ckpt, plan, force, progress.advance, sync)
    _publish_state(dst)
    result.notes += _meta_notes(ckpt.prefix, False)
    result.notes += [
        f"{i.name}: {i.overflow} finite value(s) became inf in {target.name}"
        for i in plan.items
        if i.overflow
    ]
    result.written = WriteSummary(dst, 1, written.tensors)
    return result


# ---- repair ------------------------------------------------------------------------------------
@dataclass
class RepairResult:
    """The plan for a directory's ``checkpoint`` state file and whether it was written."""

    plan: Any
    written: bool
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "dry_run": self.dry_run, "written": self.written}


def repair(path: PathLike, *, dry_run: bool = False) -> RepairResult:
    """Point the ``checkpoint`` state file in directory ``path`` back at the checkpoints beside
    it (after a move or copy, it often holds stale absolute paths). Writes (atomically) only if
    something changes, and not with ``dry_run=True``.

    >>> tfckpt.repair("moved_run").written
    True
    """
    from tfckpt.ops.repair import apply_state_repair, plan_state_repair

    plan = plan_state_repair(os.fspath(path))
    if not dry_run and plan.changed:
        apply_state_repair(plan)
        return RepairResult(plan, True)
    return RepairResult(plan, False, dry_run)


__all__ = [
    "SurgeryResult",
    "WriteSummary",
    "cast",
    "merge",
    "prune",
    "rename",
    "repair",
]
