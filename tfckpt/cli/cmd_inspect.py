"""``ls`` and ``vars``: the read-only commands people run most."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    DryRunOpt,
    Engine,
    EngineOpt,
    JsonOpt,
    MatchOpt,
    QuietOpt,
    RegexOpt,
    complete_tensor_names,
)
from tfckpt.errors import UsageError


@app.command("ls")
def ls_command(
    path: Annotated[str, typer.Argument(help="Directory (or a checkpoint in it) to list.")] = ".",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Walk the whole directory tree.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Rewrite the `checkpoint` state file with paths relative to PATH (after a "
            "move or copy); with --dry-run, only show the plan.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    write: Annotated[bool, typer.Option("--write", hidden=True)] = False,  # before 0.2: opt-in
    engine: EngineOpt = Engine.native,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List checkpoints, SavedModels and events files in a directory.

    Shows prefix, global step, format (V1/V2), shards, data size, whether a .meta exists,
    modification time, which checkpoint the `checkpoint` file marks latest (*), checkpoints it
    lists that are missing, and leftover temp files from interrupted writes. With --engine tf
    the state files are parsed by tf.train.get_checkpoint_state.

    Examples:

        tfckpt ls runs/exp1

        tfckpt ls -R runs --json | jq '.[] | select(.latest)'

        tfckpt ls --repair moved_dir --dry-run
    """
    if (write or dry_run) and not repair:
        raise UsageError("--dry-run goes with --repair (ls itself writes nothing)")
    if repair:
        _repair(path, dry_run, as_json, quiet)
        return
    from tfckpt.api.reading import list_checkpoints
    from tfckpt.render import note
    from tfckpt.render.inspect import render_ls

    items = list_checkpoints(path, recursive=recursive, engine=engine.value)
    render_ls(items, as_json, base=path)
    stale = sorted(
        {os.path.dirname(i.extra["state_file"]) for i in items if "state_file" in i.extra}
    )
    for directory in stale:
        note(
            f"hint: the `checkpoint` file in {directory} names checkpoints that are not there; "
            f"`tfckpt ls --repair {directory}` points it at the ones beside it",
            quiet or as_json,
        )


def _repair(path: str, dry_run: bool, as_json: bool, quiet: bool) -> None:
    from tfckpt.api.surgery import repair
    from tfckpt.render.surgery import render_repair

    render_repair(repair(path, dry_run=dry_run), as_json, quiet)


@app.command("vars")
def vars_command(
    path: Annotated[str, typer.Argument(help="Checkpoint prefix, file, directory or SavedModel.")],
    match: MatchOpt = None,
    regex: RegexOpt = None,
    tree: Annotated[bool, typer.Option("--tree", help="Group by scope, with subtotals.")] = False,
    stats: Annotated[
        bool,
        typer.Option(
            "--stats", help="Add min/max/mean/std (finite values) and NaN/Inf/zero counts."
        ),
    ] = False,
    show: Annotated[
        str | None,
        typer.Option(
            "--show",
            help="Print the values of one tensor.",
            metavar="NAME",
            autocompletion=complete_tensor_names,
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="With --show: print every value.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list _CHECKPOINTABLE_OBJECT_GRAPH (TF2).")
    ] = False,
    engine: EngineOpt = Engine.native,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the variables of a checkpoint: name, dtype, shape, elements, bytes.

    TF2 object-based checkpoints show object paths (model/layer_with_weights-0/kernel); JSON keeps
    the key as "name" and adds "path". --stats streams every tensor (CRC-checked) in bounded
    memory. Listing reads only the index: with data files missing it still lists, with a
    warning (--stats and --show need the data and exit 2).

    Examples:

        tfckpt vars model.ckpt-1000

        tfckpt vars runs/exp1 --match '*/kernel' --stats

        tfckpt vars saved_model_dir --tree

        tfckpt vars ckpt --show dense/bias --full

        tfckpt vars ckpt --json | jq '.[].name'
    """
    from tfckpt.api.checks import open_engine
    from tfckpt.render import note, progress
    from tfckpt.render.inspect import render_value, render_vars, var_record

    # A listing needs only the index (missing data is a warning); values need the data.
    with open_engine(path, engine.value, need_data=stats or show is not None) as ckpt:
        for message in ckpt.notes:
            note(message, quiet)
        if show is not None:
            info = ckpt.info(show)
            render_value(var_record(info), ckpt.read(info.name), full, as_json)
            return
        infos = ckpt.tensors(include_object_graph=show_all)
        by_name = {i.name: i for i in infos}
        # Filters see the key and, for TF2, the object path.
        keys = {i.display_name: i.name for i in infos} | {i.name: i.name for i in infos}
        from tfckpt.ops.rules import select_names

        wanted = set(keys[n] for n in select_names(sorted(keys), match, regex))
        selected = [by_name[n] for n in sorted(wanted)]
        records = []
        if stats:
            from tfckpt.ops.stats import tensor_stats

            total = sum(i.nbytes for i in selected)
            with progress("stats", total, quiet or as_json) as bar:
                ckpt.prefetch(i.name for i in selected)
                for info in selected:
                    bar.describe(info.display_name)
                    result = tensor_stats(ckpt.iter_chunks(info.name), info.dtype)
                    records.append(var_record(info, _stats_dict(result)))
                    bar.advance(info.nbytes)
        else:
            records = [var_record(i) for i in selected]
        render_vars(records, as_json, stats, tree, title=None if as_json else ckpt.prefix)


def _stats_dict(result: Any) -> dict[str, Any]:
    if result is None:
        return {k: None for k in ("min", "max", "mean", "std", "nan", "inf", "zeros")}
    return result.to_dict()
