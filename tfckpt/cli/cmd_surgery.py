"""``rename``, ``prune`` and ``merge``: new checkpoints from old ones, without TensorFlow.

Plans are computed and checked first (``--dry-run`` prints them); outputs are written under
temporary names and renamed into place; sources are never modified.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Annotated, Any

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    DryRunOpt,
    ForceOpt,
    JsonOpt,
    MappingOpt,
    QuietOpt,
    SubOpt,
    SyncOpt,
    output_prefix,
    parse_subs,
)
from tfckpt.errors import OutputExists, RenameConflict, UsageError

LinkOpt = Annotated[
    bool,
    typer.Option("--link", help="Hard-link data files instead of copying (falls back to a copy)."),
]


def _data_total(ckpt: Any) -> int:
    from tfckpt.bundle.checkpoint import data_bytes_on_disk

    return data_bytes_on_disk(ckpt.prefix)


@app.command("rename")
def rename_command(
    src: Annotated[str, typer.Argument(help="Source checkpoint (never modified).")],
    dst: Annotated[str, typer.Argument(help="Destination prefix, e.g. out/model.ckpt-100.")],
    sub: SubOpt = None,
    mapping: MappingOpt = None,
    add_prefix: Annotated[
        str | None,
        typer.Option("--add-prefix", help="Prepend SCOPE/ to every name.", metavar="SCOPE/"),
    ] = None,
    strip_prefix: Annotated[
        str | None,
        typer.Option(
            "--strip-prefix", help="Remove a leading SCOPE/ where present.", metavar="SCOPE/"
        ),
    ] = None,
    meta: Annotated[
        bool, typer.Option("--meta", help="Also rename the variables in SRC.meta into DST.meta.")
    ] = False,
    link: LinkOpt = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rename variables. Tensor bytes are reused (copied or --link'ed), only the index is new.

    Rules apply to every name in this order: an exact --mapping entry wins; else each --sub
    (Python re.sub) in order, then --strip-prefix, then --add-prefix. Conflicts (two names to
    one, a clash with an unchanged name, an empty name) stop everything (exit 2). For TF2
    checkpoints the object graph is renamed too, so tf.train.Checkpoint restores into objects
    whose attributes carry the new names.

    Examples:

        tfckpt rename ckpt out/ckpt --add-prefix pretrained/

        tfckpt rename ckpt out/ckpt --sub '^model/' 'net/' --meta --dry-run

        tfckpt rename tf2/ckpt-1 out/ckpt-1 --sub '^net/enc/' 'net/encoder/'

        tfckpt rename ckpt out/ckpt --mapping names.csv --link
    """
    from tfckpt.bundle.checkpoint import open_checkpoint

    dst = output_prefix(dst)
    from tfckpt.ops.rename import plan_renames
    from tfckpt.ops.rules import build_rules
    from tfckpt.render import note, progress
    from tfckpt.render.surgery import render_rename_plan, render_written

    rules = build_rules(parse_subs(sub), mapping, strip_prefix, add_prefix)
    if rules.empty:
        raise UsageError("give at least one rule: --sub, --mapping, --add-prefix, --strip-prefix")
    with open_checkpoint(src) as ckpt:
        for message in ckpt.notes:
            note(message, quiet)
        plan = plan_renames([i.name for i in ckpt.tensors()], rules, ckpt.object_graph_bytes())
        if plan.conflicts:
            raise RenameConflict(
                f"{len(plan.conflicts)} conflict(s), nothing written: " + "; ".join(plan.conflicts)
            )
        for message in plan.notes():
            note(message, quiet)
        meta_src = ckpt.prefix + ".meta"
        if meta and not os.path.exists(meta_src):
            raise UsageError(f"{meta_src}: no .meta to rename (drop --meta)")
        if meta and ckpt.format == "V1":
            raise UsageError(
                f"{meta_src}: the graph of a V1 checkpoint restores only V1 files (RestoreSlice), "
                "but rename writes V2; drop --meta and rebuild the graph with the new names"
            )
        if meta and os.path.exists(dst + ".meta") and not force:
            raise OutputExists(f"{dst}.meta: exists; use --force")
        if dry_run:
            render_rename_plan(plan, as_json, dry_run=True)
            return
        from tfckpt.ops.rename import apply_rename

        new_meta = None
        if meta:
            from tfckpt.graph.rename import rename_metagraph

            with open(meta_src, "rb") as f:
                new_meta = rename_metagraph(f.read(), plan.renames)
        with progress("copy" if not link else "link", _data_total(ckpt), quiet) as bar:
            result = apply_rename(ckpt, dst, plan, link, force, bar.advance, sync, keep_meta=meta)
    if new_meta is not None:
        from tfckpt.storage import write_file_atomic

        write_file_atomic(dst + ".meta", new_meta, force=True)
    elif os.path.exists(meta_src):
        result.notes.append(f"{meta_src} was not carried over (use --meta to rename it too)")
    if not as_json:
        render_rename_plan(plan, False, dry_run=False)
    render_written(result, as_json, {**plan.to_dict(), "meta": new_meta is not None}, quiet)


@app.command("prune")
def prune_command(
    src: Annotated[str, typer.Argument(help="Source checkpoint (never modified).")],
    dst: Annotated[str, typer.Argument(help="Destination prefix.")],
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", help="Drop names matching REGEX (repeatable).", metavar="REGEX"),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="Keep names matching REGEX, whatever else says (repeatable).",
            metavar="REGEX",
        ),
    ] = None,
    optimizer: Annotated[
        bool,
        typer.Option(
            "--optimizer",
            help="Drop optimizer state: TF1 slots (/Adam, /Momentum, /RMSProp*, beta1_power...), "
            "TF2 .OPTIMIZER_SLOT entries and the optimizer's own variables.",
        ),
    ] = False,
    drop_global_step: Annotated[
        bool, typer.Option("--drop-global-step", help="Also drop global_step.")
    ] = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Drop variables and write a compacted checkpoint holding only the kept tensors.

    Kept tensors' bytes are streamed in bounded chunks with their stored checksums; TF2 object
    graphs lose the dropped attributes and slot references, so the model restores without the
    optimizer.

    Examples:

        tfckpt prune model.ckpt-1000 small/model.ckpt-1000 --optimizer

        tfckpt prune ckpt out --drop '^head/' --keep '^head/bias$' --dry-run
    """
    from tfckpt.bundle.checkpoint import open_checkpoint

    dst = output_prefix(dst)
    from tfckpt.ops.prune import plan_prune
    from tfckpt.render import note, progress
    from tfckpt.render.surgery import render_prune_plan, render_written

    if not (drop or optimizer or drop_global_step):
        raise UsageError("give --drop REGEX, --optimizer or --drop-global-step")
    with open_checkpoint(src) as ckpt:
        for message in ckpt.notes:
            note(message, quiet)
        sizes = {i.name: i.nbytes for i in ckpt.tensors()}
        # The object graph is read here only for --optimizer; otherwise apply_prune reads it.
        graph = ckpt.object_graph_bytes() if optimizer else None
        plan = plan_prune(sizes, drop, keep, optimizer, drop_global_step, graph)
        if dry_run:
            render_prune_plan(plan, sizes, as_json, dry_run=True)
            return
        from tfckpt.bundle.writer import check_destination
        from tfckpt.ops.prune import apply_prune

        check_destination(dst, force)
        with progress("prune", plan.bytes_after, quiet) as bar:
            result = apply_prune(ckpt, dst, plan, force, bar.advance, sync)
    if os.path.exists(ckpt.prefix + ".meta"):
        result.notes.append(f"{ckpt.prefix}.meta was not carried over")
    if not as_json:
        render_prune_plan(plan, sizes, False, dry_run=False)
    render_written(result, as_json, plan.to_dict(), quiet)


class Prefer(str, Enum):
    first = "first"
    last = "last"


@app.command("merge")
def merge_command(
    out: Annotated[str, typer.Argument(help="Destination prefix.")],
    inputs: Annotated[
        list[str],
        typer.Argument(help="Inputs, each PATH or PATH:SCOPE/ (names get SCOPE/ prepended)."),
    ],
    prefer: Annotated[
        Prefer | None,
        typer.Option("--prefer", help="On duplicate names, take the first or the last input's."),
    ] = None,
    link: LinkOpt = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mix several checkpoints into one, each under an optional scope.

    Zero-copy where possible: every input data file becomes a shard of the output (copied, or
    hard-linked with --link) and only a new index is written. Duplicate names are an error
    unless --prefer first|last. TF2 object graphs are merged too: an input under SCOPE/ restores
    with tf.train.Checkpoint(SCOPE=tf.train.Checkpoint(model=...)).

    Examples:

        tfckpt merge out/model.ckpt pretrained/model.ckpt-5000:pretrained/ head/model.ckpt-10

        tfckpt merge out/all a:a/ b:b/ --link --dry-run
    """
    from contextlib import ExitStack

    from tfckpt.bundle.checkpoint import open_checkpoint

    out = output_prefix(out)
    from tfckpt.ops.merge import parse_input, plan_merge
    from tfckpt.render import note, progress
    from tfckpt.render.surgery import render_merge_plan, render_written

    if len(inputs) < 1:
        raise UsageError("give at least one input")
    specs = [parse_input(s) for s in inputs]
    with ExitStack() as stack:
        ckpts = [stack.enter_context(open_checkpoint(s.path)) for s in specs]
        for ckpt in ckpts:
            for message in ckpt.notes:
                note(message, quiet)
        names = [[i.name for i in c.tensors(include_object_graph=False)] for c in ckpts]
        graphs = [c.object_graph_bytes() for c in ckpts]
        plan = plan_merge(names, [s.scope for s in specs], prefer.value if prefer else None, graphs)
        if dry_run:
            render_merge_plan(plan, [s.path for s in specs], as_json, dry_run=True)
            return
        from tfckpt.ops.merge import apply_merge

        total = sum(_data_total(c) for c in ckpts)
        with progress("merge", total, quiet) as bar:
            result = apply_merge(ckpts, out, plan, link, force, bar.advance, sync)
    render_written(result, as_json, {**plan.to_dict(), "inputs": [s.path for s in specs]}, quiet)
