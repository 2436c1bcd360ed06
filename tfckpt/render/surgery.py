"""Rendering for the writers ``rename``, ``prune``, ``merge``, ``cast`` and ``ls --repair``:
the plan (a table on stdout), what was written (a line on stderr), and notes."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from tfckpt.names import display_name
from tfckpt.render import (
    emit_json,
    err_console,
    human_bytes,
    note,
    out_console,
    print_more,
    shape_text,
)
from tfckpt.render.table import Column, print_table


def render_surgery(result: Any, as_json: bool, quiet: bool = False, keys: bool = False) -> None:
    """A ``SurgeryResult``: JSON (one document, the same keys with and without a dry run), or
    the plan as a table (TF2 tensors by object path unless ``keys``), then ``wrote ...`` and
    the notes on stderr."""
    if as_json:
        emit_json(result.command, result.to_dict())
    elif result.dry_run or not quiet:  # a dry run's output is its plan, -q or not
        shown = _identity if keys else display_name
        {
            "rename": _rename_plan,
            "prune": _prune_plan,
            "merge": _merge_plan,
            "cast": _cast_plan,
        }[result.command](result.plan, shown, None if result.dry_run else PLAN_ROWS)
        if result.dry_run:
            note(f"dry run: nothing written to {result.destination}", quiet)
    written = result.written
    if written is not None and not quiet:
        err_console().print(
            f"wrote {written.prefix} ({written.tensors} tensors, {written.shards} shard(s))",
            highlight=False,
        )
    for message in result.notes:
        note(f"note: {message}", quiet)


# A write shows this many rows of its plan (a dry run shows them all): 10^5 renamed tensors
# are a summary to a reader, and printing them would take longer than the write.
PLAN_ROWS = 50


def _identity(name: str) -> str:
    return name


def _more(total: int, limit: int | None) -> None:
    if limit is not None:
        print_more(limit, total, "(--dry-run lists all, --json too)")


def _rename_plan(plan: Any, shown: Callable[[str], str], limit: int | None) -> None:
    console = out_console()
    if not plan.renames:
        console.print("nothing to rename (no name matches the rules)")
        return
    items = plan.renames.items()
    pairs = sorted(items) if limit is None else heapq.nsmallest(limit, items)
    rows = [(shown(old), "->", shown(new)) for old, new in pairs]
    print_table([Column("old", key=True), Column(""), Column("new", key=True, label="->")], rows)
    _more(len(plan.renames), limit)
    console.print(
        f"{len(plan.renames):,} renamed, {len(plan.unchanged):,} unchanged", highlight=False
    )


def _prune_plan(plan: Any, shown: Callable[[str], str], limit: int | None) -> None:
    console = out_console()
    if plan.drop:
        console.print("dropped", style="bold")
        names = sorted(plan.drop) if limit is None else heapq.nsmallest(limit, plan.drop)
        rows = [(shown(n), human_bytes(plan.sizes.get(n, 0))) for n in names]
        print_table([Column("name", key=True), Column("bytes", "right")], rows)
        _more(len(plan.drop), limit)
    saved = plan.bytes_before - plan.bytes_after
    console.print(
        f"{len(plan.drop):,} dropped, {len(plan.keep):,} kept; "
        f"{human_bytes(plan.bytes_before)} -> "
        f"{human_bytes(plan.bytes_after)} ({human_bytes(saved)} saved)",
        highlight=False,
    )


def _merge_plan(plan: Any, shown: Callable[[str], str], limit: int | None) -> None:
    inputs = plan.inputs
    rows = [
        (shown(name), f"{inputs[index]}: {shown(source)}" if source != name else inputs[index])
        for name, index, source in plan.first(len(plan) if limit is None else limit)
    ]
    print_table([Column("name", key=True), Column("from")], rows)
    _more(len(plan), limit)
    out_console().print(f"{len(plan):,} variables from {len(inputs)} inputs", highlight=False)


def _cast_plan(plan: Any, shown: Callable[[str], str], limit: int | None) -> None:
    rows = [
        (
            shown(item.name),
            item.dtype.name,
            plan.target.name,
            shape_text(item.shape),
            human_bytes(item.bytes_before),
            human_bytes(item.bytes_after),
        )
        for item in plan.cast[:limit]
    ]
    if rows:
        print_table(
            [
                Column("name", key=True),
                Column("from"),
                Column("to"),
                Column("shape"),
                Column("before", "right"),
                Column("after", "right"),
            ],
            rows,
        )
        _more(len(plan.cast), limit)
    out_console().print(
        f"{len(plan.cast)} cast to {plan.target.name}, {len(plan.items) - len(plan.cast)} "
        f"unchanged; {human_bytes(plan.bytes_before)} -> {human_bytes(plan.bytes_after)}",
        highlight=False,
    )


def render_repair(result: Any, as_json: bool, quiet: bool = False) -> None:
    """``ls --repair``: the old and new path of every entry of the state file."""
    plan = result.plan
    if as_json:
        emit_json("repair", result.to_dict())
    else:
        rows = []
        if plan.latest is not None:
            rows.append(("latest", plan.latest.old, _new(plan.latest), plan.latest.status))
        rows += [(str(i), e.old, _new(e), e.status) for i, e in enumerate(plan.entries)]
        print_table([Column(""), Column("old", key=True), Column("new"), Column("status")], rows)
        counts = plan.counts()
        verdict = (
            "repaired"
            if result.written
            else "needs repair"
            if plan.changed
            else "nothing to repair"
        )
        out_console().print(
            f"{plan.state_path}: {verdict}; {counts['relocated']} relocated, {counts['ok']} ok, "
            f"{counts['missing']} missing",
            highlight=False,
        )
    if result.written:
        note(f"rewrote {plan.state_path}", quiet)
    elif plan.changed and not as_json:
        note("dry run: nothing written", quiet)


def _new(entry: Any) -> str:
    return "(unchanged)" if entry.new == entry.old else entry.new
