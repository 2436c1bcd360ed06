"""Rendering for ``rename``, ``prune`` and ``merge``: plans (dry runs) and results."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tfckpt.render import err_console, human_bytes, out_console, print_json


def render_rename_plan(plan: Any, as_json: bool, dry_run: bool) -> None:
    if as_json:
        print_json({**plan.to_dict(), "dry_run": dry_run})
        return
    console = out_console()
    if not plan.renames:
        console.print("nothing to rename (no name matches the rules)")
        return
    table = Table(show_edge=False, header_style="bold")
    table.add_column("old", overflow="fold", ratio=1)
    table.add_column("", no_wrap=True)
    table.add_column("new", overflow="fold", ratio=1)
    for old, new in sorted(plan.renames.items()):
        table.add_row(old, "->", new)
    console.print(table)
    console.print(f"{len(plan.renames)} renamed, {len(plan.unchanged)} unchanged", highlight=False)


def render_prune_plan(plan: Any, sizes: dict[str, int], as_json: bool, dry_run: bool) -> None:
    if as_json:
        print_json({**plan.to_dict(), "dry_run": dry_run})
        return
    console = out_console()
    if plan.drop:
        table = Table(show_edge=False, header_style="bold", title="dropped", title_justify="left")
        table.add_column("name", overflow="fold", ratio=1)
        table.add_column("bytes", justify="right", no_wrap=True)
        for name in sorted(plan.drop):
            table.add_row(name, human_bytes(sizes[name]))
        console.print(table)
    saved = plan.bytes_before - plan.bytes_after
    console.print(
        f"{len(plan.drop)} dropped, {len(plan.keep)} kept; {human_bytes(plan.bytes_before)} -> "
        f"{human_bytes(plan.bytes_after)} ({human_bytes(saved)} saved)",
        highlight=False,
    )


def render_merge_plan(plan: Any, inputs: list[str], as_json: bool, dry_run: bool) -> None:
    if as_json:
        print_json({**plan.to_dict(), "inputs": inputs, "dry_run": dry_run})
        return
    console = out_console()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("name", overflow="fold", ratio=1)
    table.add_column("from", overflow="fold")
    for name, (index, source) in sorted(plan.sources.items()):
        table.add_row(name, f"{inputs[index]}: {source}" if source != name else inputs[index])
    console.print(table)
    console.print(f"{len(plan.sources)} variables from {len(inputs)} inputs", highlight=False)


def render_written(
    result: Any, as_json: bool, extra: dict[str, Any] | None = None, quiet: bool = False
) -> None:
    record = {
        "output": result.prefix,
        "shards": result.shards,
        "tensors": result.tensors,
        **(extra or {}),
    }
    if as_json:
        print_json(record)
    else:
        err_console().print(
            f"wrote {result.prefix} ({result.tensors} tensors, {result.shards} shard(s))",
            highlight=False,
        )
    for note in [] if quiet else result.notes:
        err_console().print(f"tfckpt: note: {note}", highlight=False)
