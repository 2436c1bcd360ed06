"""``ls`` and ``vars``: the read-only commands people run most."""

import os
from typing import Annotated

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    DryRunOpt,
    Engine,
    EngineOpt,
    FormatOpt,
    JsonOpt,
    KeysOpt,
    MatchOpt,
    NoHeadersOpt,
    QuietOpt,
    RegexOpt,
    complete_tensor_names,
    table_format,
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
    fmt: FormatOpt = "table",
    no_headers: NoHeadersOpt = False,
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

        tfckpt ls -R runs --json | jq '.items[] | select(.latest)'

        tfckpt ls -R runs --format tsv --no-headers | cut -f1

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

    fmt = table_format(fmt)
    items = list_checkpoints(path, recursive=recursive, engine=engine.value)
    render_ls(items, as_json, base=path, fmt=fmt, headers=not no_headers, path=path)
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


SORTS = ("name", "size", "bytes", "dtype")


@app.command("vars")
def vars_command(
    path: Annotated[str, typer.Argument(help="Checkpoint prefix, file, directory or SavedModel.")],
    match: MatchOpt = None,
    regex: RegexOpt = None,
    optimizer: Annotated[
        bool | None,
        typer.Option(
            "--optimizer/--no-optimizer",
            help="Only optimizer state (slots, beta powers, TF2 optimizer variables), or only "
            "the model; both by default.",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="Order rows by name, size (elements), bytes or dtype; size and bytes largest "
            "first.",
            metavar="KEY",
        ),
    ] = "name",
    top: Annotated[
        int | None,
        typer.Option("--top", help="Show only the first N rows after sorting.", metavar="N", min=0),
    ] = None,
    tree: Annotated[bool, typer.Option("--tree", help="Group by scope, with subtotals.")] = False,
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", help="With --tree: expand scopes N levels deep.", metavar="N", min=1
        ),
    ] = None,
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
    keys: KeysOpt = False,
    engine: EngineOpt = Engine.native,
    fmt: FormatOpt = "table",
    no_headers: NoHeadersOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the variables of a checkpoint: name, dtype, shape, elements, bytes.

    TF2 object-based checkpoints show object paths (model/layer_with_weights-0/kernel); JSON keeps
    the key as "name" and adds "path". Totals split model parameters from optimizer state.
    --stats streams every tensor (CRC-checked) in bounded memory. Listing reads only the index:
    with data files missing it still lists, with a warning (--stats and --show need the data
    and exit 2). Long listings page on a terminal ($PAGER, else less).

    Examples:

        tfckpt vars model.ckpt-1000

        tfckpt vars runs/exp1 --sort bytes --top 10 --no-optimizer

        tfckpt vars runs/exp1 --match '*/kernel' --stats

        tfckpt vars saved_model_dir --tree --depth 2

        tfckpt vars ckpt --show dense/bias --full

        tfckpt vars ckpt --format tsv --no-headers | sort -t$'\\t' -k4 -n

        tfckpt vars ckpt --json | jq '.tensors[].name'
    """
    from tfckpt.render import note

    fmt = table_format(fmt)
    if sort not in SORTS:
        raise UsageError(f"--sort {sort!r}: choose one of {', '.join(SORTS)}")
    if depth is not None and not tree:
        raise UsageError("--depth goes with --tree")
    if tree and fmt != "table" and not as_json:
        raise UsageError("--tree draws a table of scopes; drop --format (or use --json)")
    if show is not None:
        _show(path, show, full, as_json, engine, quiet)
        return
    from tfckpt.api.listing import variables
    from tfckpt.render import ProgressBar
    from tfckpt.render.inspect import render_vars
    from tfckpt.render.stream import pager

    with ProgressBar(quiet or as_json) as bar:
        result = variables(
            path,
            match=match,
            regex=regex,
            optimizer=optimizer,
            sort=sort,
            top=top,
            include_object_graph=show_all,
            keys=keys,
            stats=stats,
            engine=engine.value,
            progress=bar,
        )
    for message in result.notes:
        note(message, quiet)
    lines = len(result.rows) * (1 if tree else 2) + 4
    with pager(0 if as_json or fmt != "table" else lines):
        render_vars(
            result,
            as_json=as_json,
            fmt=fmt,
            headers=not no_headers,
            tree=tree,
            depth=depth,
            keys=keys,
            quiet=quiet,
        )


def _show(path: str, name: str, full: bool, as_json: bool, engine: Engine, quiet: bool) -> None:
    from tfckpt.api.checks import open_engine
    from tfckpt.render import note
    from tfckpt.render.inspect import render_value, var_record

    with open_engine(path, engine.value) as ckpt:  # values need the data
        for message in ckpt.notes:
            note(message, quiet)
        info = ckpt.info(name)
        render_value(var_record(info), ckpt.read(info.name), full, as_json, ckpt.prefix)
