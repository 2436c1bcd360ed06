"""``diff`` and ``verify``: the commands CI runs on model artifacts. Exit codes are the contract:
0 no differences / all checks pass, 1 differences found / a check failed, 2 cannot run."""

from typing import Annotated

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    Engine,
    EngineOpt,
    FormatOpt,
    JsonOpt,
    KeysOpt,
    MappingOpt,
    MatchOpt,
    NoHeadersOpt,
    QuietOpt,
    RegexOpt,
    SubOpt,
    parse_subs,
    table_format,
)
from tfckpt.errors import ExitCode, UsageError


@app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="Checkpoint A (prefix, file, directory, SavedModel).")],
    b: Annotated[str, typer.Argument(help="Checkpoint B.")],
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance.")] = 0.0,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance (of |B|).")] = 0.0,
    equal_nan: Annotated[
        bool, typer.Option("--equal-nan", help="NaN in both at the same place counts as equal.")
    ] = False,
    names_only: Annotated[
        bool,
        typer.Option("--names-only", help="Compare names, dtypes and shapes only (index only)."),
    ] = False,
    sub: SubOpt = None,
    mapping: MappingOpt = None,
    match: MatchOpt = None,
    regex: RegexOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list identical variables.")] = False,
    object_graph: Annotated[
        bool,
        typer.Option(
            "--object-graph",
            help="Also compare _CHECKPOINTABLE_OBJECT_GRAPH (TF2; differs after any rename).",
        ),
    ] = False,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="Order: name, max-abs (largest absolute change first) or rel (largest "
            "relative change first).",
            metavar="KEY",
        ),
    ] = "name",
    top: Annotated[
        int | None,
        typer.Option("--top", help="Show only the first N after sorting.", metavar="N", min=1),
    ] = None,
    engine: EngineOpt = Engine.native,
    keys: KeysOpt = False,
    fmt: FormatOpt = "table",
    no_headers: NoHeadersOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compare two checkpoints variable by variable. Exit 0 if equal, 1 if not, 2 on error.

    Reports variables only in A, only in B, with another dtype or shape, and with other values
    (max abs / rel difference, how many elements differ). Tolerances follow numpy.allclose:
    |a - b| <= atol + rtol * |b|. Identical stored bytes are recognized without decoding; other
    tensors are compared in bounded chunks.

    With --engine tf both checkpoints are read through tf.train.load_checkpoint instead.

    Examples:

        tfckpt diff run1/model.ckpt-1000 run2/model.ckpt-1000

        tfckpt diff old new --atol 1e-6 --json | jq .summary

        tfckpt diff src renamed --sub '^model/' 'net/'

        tfckpt diff a b --names-only --match '*/kernel'

        tfckpt diff step100 step300 --sort max-abs --top 5

        tfckpt diff a b --format tsv --no-headers | cut -f1
    """
    from tfckpt.api.checks import diff
    from tfckpt.render import ProgressBar, note
    from tfckpt.render.check import DIFF_SORTS, render_diff

    fmt = table_format(fmt)
    if sort not in DIFF_SORTS:
        raise UsageError(f"--sort {sort!r}: choose one of {', '.join(DIFF_SORTS)}")
    with ProgressBar(quiet or as_json) as bar:
        report = diff(
            a,
            b,
            atol=atol,
            rtol=rtol,
            equal_nan=equal_nan,
            names_only=names_only,
            sub=parse_subs(sub),
            mapping=mapping,
            match=match or (),
            regex=regex or (),
            object_graph=object_graph,
            engine=engine.value,
            progress=bar,
        )
    for message in report.notes:
        note(message, quiet)
    render_diff(report, as_json, show_all, quiet, sort, top, keys, fmt=fmt, headers=not no_headers)
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.FAILED))


@app.command("verify")
def verify_command(
    path: Annotated[str, typer.Argument(help="Checkpoint prefix, file, directory or SavedModel.")],
    no_nan: Annotated[
        bool, typer.Option("--no-nan", help="Fail if a float tensor has NaN.")
    ] = False,
    no_inf: Annotated[
        bool, typer.Option("--no-inf", help="Fail if a float tensor has Inf.")
    ] = False,
    max_abs: Annotated[
        float | None, typer.Option("--max-abs", help="Fail if any |value| exceeds X.", metavar="X")
    ] = None,
    engine: EngineOpt = Engine.native,
    keys: KeysOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a checkpoint's integrity. Exit 0 if every check passes, 1 if any fails, 2 if it
    cannot run (not a checkpoint).

    Checks index block checksums, header version, every data shard present and long enough,
    every entry's range, every tensor's CRC32C (strings: also their length checksum) and that
    partitioned slices cover their tensors exactly once. Value checks: --no-nan, --no-inf,
    --max-abs.

    With --engine tf every tensor is read by TensorFlow's own reader instead (which checks the
    index blocks and each tensor's CRC32C).

    Examples:

        tfckpt verify model.ckpt-1000

        tfckpt verify saved_model_dir --no-nan --no-inf --json
    """
    from tfckpt.api.checks import verify
    from tfckpt.render import ProgressBar
    from tfckpt.render.check import render_verify

    with ProgressBar(quiet or as_json) as bar:
        report = verify(
            path, no_nan=no_nan, no_inf=no_inf, max_abs=max_abs, engine=engine.value, progress=bar
        )
    render_verify(report, as_json, quiet, keys)
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.FAILED))
