"""Rendering for ``export`` and ``import``: plans, results, JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tfckpt.render import (
    emit_json,
    err_console,
    human_bytes,
    note,
    out_console,
    shape_text,
    warn,
)
from tfckpt.render.table import Column, print_table


def _table(*columns: tuple[str, str]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold" if justify == "left" else "ellipsis",
            no_wrap=justify != "left",
        )
    return table


def _items_table(rows: list[tuple[str, str, str, str, str, str]]) -> Table:
    """The dry-run table of (name, source, dtype, stored, shape, bytes) rows; the source
    column only when some name differs from its source."""
    renamed = any(name != source for name, source, *_ in rows)
    columns = [("name", "left")] + ([("source", "left")] if renamed else [])
    table = _table(
        *columns, ("dtype", "left"), ("stored", "left"), ("shape", "left"), ("bytes", "right")
    )
    for name, source, *rest in rows:
        table.add_row(name, *([source] if renamed else []), *rest)
    return table


def _stderr(text: str) -> None:
    err_console().print(text, highlight=False)


def _warn_skipped(skipped: list[Any], where: str, reasons: bool = False) -> None:
    if not skipped:
        return
    listed = ", ".join(f"{s.source} ({s.reason if reasons else s.dtype})" for s in skipped[:8])
    more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
    warn(f"skipped {len(skipped)} tensor(s) {where}: {listed}{more}")


# ---- export -------------------------------------------------------------------------------------
def render_export(result: Any, as_json: bool, quiet: bool = False) -> None:
    """An ``ExportResult``: JSON, or (dry run) the plan as a table on stdout; then the summary
    and notes on stderr."""
    plan = result.plan
    _warn_skipped(plan.skipped, f"{plan.format.value} cannot hold")
    if as_json:
        emit_json("export", result.to_dict())
    elif plan.preset is not None and (result.dry_run or not result.ok):
        if result.dry_run:
            _preset_mapping(plan.preset, "checkpoint", "hf")
        _preset_problems(plan.preset)
        console = out_console()
        verb = "would export" if result.ok else "cannot export"
        console.print(
            f"{_export_summary(plan, verb)}; {_preset_summary(plan.preset)}",
            highlight=False,
            soft_wrap=True,
        )
    elif result.dry_run:
        table = _items_table(
            [
                (
                    item.name,
                    item.source,
                    item.dtype.name,
                    item.stored,
                    shape_text(item.out_shape),
                    human_bytes(item.nbytes),
                )
                for item in plan.items
            ]
        )
        console = out_console()
        console.print(table)
        console.print(_export_summary(plan, "would export"), highlight=False)
    for message in result.notes:
        note(f"note: {message}", quiet or as_json)
    if result.written and not (quiet or as_json):
        checked = "checked against the source" if result.checked else "not checked"
        extra = f"; {_preset_summary(plan.preset)}" if plan.preset is not None else ""
        _stderr(f"{_export_summary(plan, 'exported')}{extra}; {checked}")
        if result.config:
            _stderr(f"tfckpt: wrote {result.config}")


def _export_summary(plan: Any, verb: str) -> str:
    parts = [
        f"{verb} {plan.count:,} tensors ({human_bytes(plan.total_bytes)}) to "
        f"{plan.output} ({plan.format.value})"
    ]
    if plan.dropped:
        parts.append(f"{len(plan.dropped)} optimizer tensors dropped")
    if plan.skipped:
        parts.append(f"{len(plan.skipped)} skipped")
    if plan.filtered:
        parts.append(f"{plan.filtered} filtered out")
    return ", ".join(parts)


# ---- import -------------------------------------------------------------------------------------
def render_import(result: Any, as_json: bool, quiet: bool = False) -> None:
    """An ``ImportResult``: JSON, or the mismatches with ``like`` / (dry run) the plan as a table
    on stdout; then the summary and notes on stderr."""
    plan = result.plan
    _warn_skipped(plan.skipped, "that cannot be imported", reasons=True)
    if any(s.reason.startswith("pickled") for s in plan.skipped):
        warn("pickled arrays load with --allow-pickle (it runs code from the file)")
    if plan.like is not None and plan.like.missing and plan.like.ok:
        warn(
            f"{len(plan.like.missing)} name(s) of {plan.like.like} are not imported "
            f"(--allow-missing): " + ", ".join(plan.like.missing[:5])
        )
    for message in result.notes:
        note(f"note: {message}", quiet or as_json)
    if as_json:
        emit_json("import", result.to_dict())
        return
    if plan.preset is not None and (result.dry_run or not plan.preset.ok):
        if result.dry_run:
            _preset_mapping(plan.preset, "input", "checkpoint", reverse=True)
        _preset_problems(plan.preset)
        out_console().print(
            f"{_import_summary(plan, 'would import' if result.ok else 'cannot import')}; "
            f"{_preset_summary(plan.preset)}",
            highlight=False,
            soft_wrap=True,
        )
        if plan.like is None or plan.like.ok:
            return
    if plan.like is not None and not plan.like.ok:
        render_like_mismatches(plan.like)
        return
    if result.dry_run:
        table = _items_table(
            [
                (
                    item.name,
                    item.source,
                    item.dtype.name,
                    item.tensor.stored,
                    shape_text(item.shape),
                    human_bytes(item.tensor.nbytes),
                )
                for item in plan.items
            ]
        )
        console = out_console()
        console.print(table)
        console.print(_import_summary(plan, "would import"), highlight=False)
        return
    if not quiet:
        checked = "checked against the input" if result.checked else "not checked"
        extra = f"; {_preset_summary(plan.preset)}" if plan.preset is not None else ""
        _stderr(f"{_import_summary(plan, 'imported')}{extra}; {checked}")


def _import_summary(plan: Any, verb: str) -> str:
    parts = [
        f"{verb} {len(plan.items)} tensors ({human_bytes(plan.total_bytes)}) from "
        f"{plan.source} into {plan.output}"
    ]
    if plan.like is not None:
        parts.append(f"{plan.like.matched} match {plan.like.like}")
    if plan.object_graph is not None:
        parts.append("object graph carried over")
    if plan.skipped:
        parts.append(f"{len(plan.skipped)} skipped")
    if plan.filtered:
        parts.append(f"{plan.filtered} filtered out")
    return ", ".join(parts)


def render_like_mismatches(report: Any) -> None:
    table = _table(("problem", "left"), ("name", "left"), ("import", "left"), ("like", "left"))
    for name in report.unexpected:
        table.add_row("not in like", name, "", "")
    if not report.allow_missing:
        for name in report.missing:
            table.add_row("missing", name, "", "")
    for d in report.dtype:
        table.add_row("dtype", d["name"], d["dtype"], d["like"])
    for d in report.shape:
        table.add_row("shape", d["name"], shape_text(d["shape"]), shape_text(d["like"]))
    console = out_console()
    console.print(table)
    console.print(
        f"does not match {report.like}: {len(report.unexpected)} not in it, "
        f"{len(report.missing)} missing, {len(report.dtype)} dtype, {len(report.shape)} shape "
        f"({report.matched} match); nothing written",
        highlight=False,
    )


# ---- presets ------------------------------------------------------------------------------------
def _preset_mapping(report: Any, source: str, target: str, reverse: bool = False) -> None:
    """The whole mapping: name in, name out, transposed?, dtype change, shape written."""
    rows = []
    for m in report.mapped:
        old, new = (m.hf, m.tf) if reverse else (m.tf, m.hf)
        dtype = m.dtype if m.dtype == m.out_dtype else f"{m.dtype} -> {m.out_dtype}"
        flag = "yes" if m.transpose else ""
        if m.alias_of:
            flag = f"{flag} (copy of {m.alias_of})".strip()
        rows.append([old, new, flag, dtype, shape_text(m.shape)])
    print_table(
        [
            Column(source, key=True),
            Column(target),
            Column("transposed"),
            Column("dtype"),
            Column("shape"),
        ],
        rows,
    )


def _preset_problems(report: Any) -> None:
    rows = [["not mapped", name] for name in report.unmapped]
    rows += [["missing", name] for name in report.missing]
    rows += [["shape", text] for text in report.shapes]
    if rows:
        if report.mapped:
            out_console().print()
        print_table([Column("problem"), Column("tensor", key=True)], rows)


def _preset_summary(report: Any) -> str:
    parts = [f"preset {report.preset}: {len(report.mapped)} mapped"]
    if report.dropped:
        reasons: dict[str, int] = {}
        for d in report.dropped:
            reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
        parts.append(
            f"{len(report.dropped)} dropped ("
            + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
            + ")"
        )
    if report.unmapped:
        left = " (left out)" if report.allow_unmapped else ""
        parts.append(f"{len(report.unmapped)} not mapped{left}")
    if report.missing:
        parts.append(f"{len(report.missing)} missing")
    if report.shapes:
        parts.append(f"{len(report.shapes)} shape mismatch(es)")
    if report.config:
        parts.append(f"{report.config_checked} shapes checked against {report.config}")
    return ", ".join(parts)


def render_presets(presets: list[Any], as_json: bool) -> None:
    """The built-in presets, one line each."""
    if as_json:
        emit_json(
            "presets",
            {
                "presets": [
                    {"name": p.name, "description": p.description, "source": p.source}
                    for p in presets
                ]
            },
        )
        return
    print_table(
        [Column("preset", key=True), Column("description")],
        [[p.name, p.description] for p in presets],
    )


def render_preset(preset: Any, as_json: bool) -> None:
    """One preset: what it is, then its rules."""
    if as_json:
        emit_json("presets", {"presets": [preset.to_dict()]})
        return
    console = out_console()
    console.print(f"{preset.name}: {preset.description}", highlight=False)
    if preset.reference:
        console.print(f"reference: {preset.reference}", highlight=False)
    console.print(f"source: {preset.source}", highlight=False)
    if preset.strip_prefixes:
        console.print(f"prefixes removed: {', '.join(preset.strip_prefixes)}", highlight=False)
    for drop in preset.drop:
        console.print(f"drop: {drop.pattern.pattern}  ({drop.reason})", highlight=False)
    for old, new in preset.dtypes.items():
        console.print(f"dtype: {old} -> {new}", highlight=False)
    for tied in preset.tied:
        state = "written" if tied.emit else "left out"
        console.print(f"tied: {tied.hf} = {tied.same_as} ({state})", highlight=False)
    console.print()
    print_table(
        [Column("checkpoint", key=True), Column("hf"), Column("transposed"), Column("shape")],
        [
            [
                r.tf.text + (" (optional)" if r.optional else ""),
                r.hf.text,
                "yes" if r.transpose else "",
                "[" + ", ".join(r.shape) + "]" if r.shape is not None else "",
            ]
            for r in preset.rules
        ],
    )
