"""``rename``, ``prune``, ``merge`` and ``cast``: new checkpoints from old ones, without TensorFlow.

Each command parses its options, calls one function of ``tfckpt.api.surgery`` (which plans,
checks and writes) and renders the result. Sources come first, the destination last.
"""

from enum import Enum
from typing import Annotated

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    DryRunOpt,
    ForceOpt,
    JsonOpt,
    KeysOpt,
    MappingOpt,
    MatchOpt,
    NoOptimizerOpt,
    NoVerifyOpt,
    QuietOpt,
    RegexOpt,
    SubOpt,
    SyncOpt,
    complete_tensor_names,
    parse_subs,
)

LinkOpt = Annotated[
    bool,
    typer.Option(
        "--link",
        help="Hard-link data files instead of copying (falls back to a copy across file "
        "systems). The output then shares its data files with the source. The tensors' "
        "checksums are still read first (a link reads nothing, so damage would pass unseen); "
        "--no-verify skips that.",
    ),
]
SrcArg = Annotated[str, typer.Argument(help="Source checkpoint (never modified).")]
DstArg = Annotated[str, typer.Argument(help="Destination prefix, e.g. out/model.ckpt-100.")]


@app.command("rename")
def rename_command(
    src: SrcArg,
    dst: DstArg,
    sub: SubOpt = None,
    mapping: MappingOpt = None,
    add_prefix: Annotated[
        str | None,
        typer.Option(
            "--add-prefix", help="Prepend the scope SCOPE/ to every name.", metavar="SCOPE/"
        ),
    ] = None,
    strip_prefix: Annotated[
        str | None,
        typer.Option(
            "--strip-prefix", help="Remove a leading scope SCOPE/ where present.", metavar="SCOPE/"
        ),
    ] = None,
    match: Annotated[
        list[str] | None,
        typer.Option(
            "--match",
            "-m",
            help="Apply the rules only to names matching this glob (repeatable).",
            metavar="GLOB",
            autocompletion=complete_tensor_names,
        ),
    ] = None,
    regex: Annotated[
        list[str] | None,
        typer.Option(
            "--regex",
            "-r",
            help="Apply the rules only to names matching this regex (repeatable).",
            metavar="RE",
        ),
    ] = None,
    meta: Annotated[
        bool, typer.Option("--meta", help="Also rename the variables in SRC.meta into DST.meta.")
    ] = False,
    allow_unchanged: Annotated[
        bool,
        typer.Option(
            "--allow-unchanged",
            help="Write the copy even when no name changes (otherwise exit 2: a typo in a "
            "pattern, most likely).",
        ),
    ] = False,
    link: LinkOpt = False,
    no_verify: NoVerifyOpt = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    keys: KeysOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rename variables. Tensor bytes are reused (copied or --link'ed), only the index is new.

    Within one object store (S3, GCS) the data files are copied server-side: their bytes never
    pass through tfckpt, so only each file's size is checked against the index (truncation);
    their checksums are what `tfckpt verify` checks.

    Rules apply to every name in this order: an exact --mapping entry wins; else each --sub
    (Python re.sub) in order, then --strip-prefix, then --add-prefix (a scope: a missing
    trailing / is added). --match/--regex limit the rules to the names they select.
    Conflicts (two names to one, a clash with an unchanged name, an empty name) stop
    everything (exit 2), and so does a rename that changes no name (with the closest names
    shown). For TF2 checkpoints the object graph is renamed too, so tf.train.Checkpoint
    restores into objects whose attributes carry the new names.

    A damaged source is refused (exit 2, nothing written): every tensor's bytes are checked
    against the index and, while they are copied, against their CRC32C (--no-verify skips
    the CRC). Within one object store (S3, GCS) data files are copied server-side: their bytes
    never pass through tfckpt, so only their sizes are checked against the index (run
    `tfckpt verify` for their checksums).

    Examples:

        tfckpt rename ckpt out/ckpt --add-prefix pretrained/

        tfckpt rename ckpt out/ckpt --sub '^model/' 'net/' --meta --dry-run

        tfckpt rename ckpt out/ckpt --mapping names.csv --link
    """
    from tfckpt.api.surgery import rename
    from tfckpt.render import ProgressBar
    from tfckpt.render.surgery import render_surgery

    with ProgressBar(quiet or as_json) as bar:
        result = rename(
            src,
            dst,
            sub=parse_subs(sub),
            mapping=mapping,
            add_prefix=add_prefix,
            strip_prefix=strip_prefix,
            match=match or (),
            regex=regex or (),
            meta=meta,
            link=link,
            allow_unchanged=allow_unchanged,
            verify=not no_verify,
            dry_run=dry_run,
            force=force,
            sync=sync,
            progress=bar,
        )
    render_surgery(result, as_json, quiet, keys)


@app.command("prune")
def prune_command(
    src: SrcArg,
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
    no_optimizer: NoOptimizerOpt = False,
    optimizer: Annotated[bool, typer.Option("--optimizer", hidden=True)] = False,  # before 0.2
    drop_global_step: Annotated[
        bool, typer.Option("--drop-global-step", help="Also drop global_step.")
    ] = False,
    match: Annotated[
        list[str] | None,
        typer.Option(
            "--match",
            "-m",
            help="Keep only names matching this glob (repeatable; keys or TF2 object paths).",
            metavar="GLOB",
            autocompletion=complete_tensor_names,
        ),
    ] = None,
    regex: Annotated[
        list[str] | None,
        typer.Option(
            "--regex", "-r", help="Keep only names matching this regex (repeatable).", metavar="RE"
        ),
    ] = None,
    no_verify: NoVerifyOpt = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    keys: KeysOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Drop variables and write a compacted checkpoint holding only the kept tensors.

    What goes: names matching --drop, optimizer state (--no-optimizer), global_step
    (--drop-global-step), and with --match/--regex every name they do not select; --keep wins
    over all of these. Kept tensors' bytes are streamed in bounded chunks with their stored
    checksums; TF2 object graphs lose the dropped attributes and slot references, so the model
    restores without them. The source's .meta is not carried over (a note says so). Kept
    tensors are checked against their CRC32C while they are copied (--no-verify skips
    that); a damaged source is refused (exit 2, nothing written).

    Examples:

        tfckpt prune model.ckpt-1000 small/model.ckpt-1000 --no-optimizer

        tfckpt prune ckpt out --drop '^head/' --keep '^head/bias$' --dry-run

        tfckpt prune ckpt encoder_only/ckpt --match 'encoder/*'
    """
    from tfckpt.api.surgery import prune
    from tfckpt.render import ProgressBar
    from tfckpt.render.surgery import render_surgery

    with ProgressBar(quiet or as_json) as bar:
        result = prune(
            src,
            dst,
            drop=drop or (),
            keep=keep or (),
            optimizer=no_optimizer or optimizer,
            drop_global_step=drop_global_step,
            match=match or (),
            regex=regex or (),
            verify=not no_verify,
            dry_run=dry_run,
            force=force,
            sync=sync,
            progress=bar,
        )
    render_surgery(result, as_json, quiet, keys)


class Prefer(str, Enum):
    first = "first"
    last = "last"


@app.command("merge")
def merge_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Inputs, each PATH or PATH:SCOPE/ (names get SCOPE/ prepended).",
            metavar="IN...",
        ),
    ],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Destination prefix (required).", metavar="OUT"),
    ],
    prefer: Annotated[
        Prefer | None,
        typer.Option("--prefer", help="On duplicate names, take the first or the last input's."),
    ] = None,
    link: LinkOpt = False,
    no_verify: NoVerifyOpt = False,
    sync: SyncOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    keys: KeysOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mix several checkpoints into one, each under an optional scope.

    Inputs come first, the output is named by -o (never a positional guess, so no input can be
    taken for the output); --force never overwrites one of the inputs. Zero-copy where
    possible: every input data file becomes a shard of the output (copied, or hard-linked with
    --link) and only a new index is written. Duplicate names are an error unless --prefer
    first|last. TF2 object graphs are merged too: an input under SCOPE/ restores with
    tf.train.Checkpoint(SCOPE=tf.train.Checkpoint(model=...)). Every tensor taken is checked
    against its CRC32C while it is copied (--no-verify skips that); a damaged input is refused
    (exit 2, nothing written). Inputs in the output's object store are copied server-side:
    only their sizes are checked against the index.

    Examples:

        tfckpt merge pre/model.ckpt:pre/ head/model.ckpt -o out/model.ckpt

        tfckpt merge a:a/ b:b/ -o out/all --link --dry-run
    """
    from tfckpt.api.surgery import merge
    from tfckpt.render import ProgressBar
    from tfckpt.render.surgery import render_surgery

    with ProgressBar(quiet or as_json) as bar:
        result = merge(
            inputs,
            output,
            prefer=prefer.value if prefer else None,
            link=link,
            verify=not no_verify,
            dry_run=dry_run,
            force=force,
            sync=sync,
            progress=bar,
        )
    render_surgery(result, as_json, quiet, keys)


@app.command("cast")
def cast_command(
    src: SrcArg,
    dst: Annotated[str, typer.Argument(help="Destination prefix.")],
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype", help="Target: float16, bfloat16, float32 or float64.", metavar="DTYPE"
        ),
    ],
    match: MatchOpt = None,
    regex: RegexOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    sync: SyncOpt = False,
    keys: KeysOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cast floating-point tensors to another float dtype; copy everything else unchanged.

    Casts float16/bfloat16/float32/float64 (and float8) tensors, optionally only those matching
    --match/--regex (which see keys and TF2 object paths); integer, bool, complex and string
    tensors are copied byte for byte. Values are exactly numpy's astype (round to nearest even);
    values that overflow to inf are counted and warned about. Reports the size before and
    after. Partitioned variables stay partitioned; a TF2 object graph is kept.

    Examples:

        tfckpt cast model.ckpt-1000 half/model.ckpt-1000 --dtype float16

        tfckpt cast ckpt bf16/ckpt --dtype bfloat16 --regex 'kernel$' --dry-run
    """
    from tfckpt.api.surgery import cast
    from tfckpt.render import ProgressBar
    from tfckpt.render.surgery import render_surgery

    with ProgressBar(quiet or as_json) as bar:
        result = cast(
            src,
            dst,
            dtype=dtype,
            match=match or (),
            regex=regex or (),
            dry_run=dry_run,
            force=force,
            sync=sync,
            progress=bar,
        )
    render_surgery(result, as_json, quiet, keys)
