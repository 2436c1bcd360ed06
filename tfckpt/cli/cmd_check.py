"""``diff`` and ``verify``: the commands CI runs on model artifacts. Exit codes are the contract:
0 no differences / all checks pass, 1 differences found / a check failed, 2 cannot run."""

from __future__ import annotations

from typing import Annotated

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    Engine,
    EngineOpt,
    JsonOpt,
    MappingOpt,
    MatchOpt,
    QuietOpt,
    RegexOpt,
    SubOpt,
    parse_subs,
)
from tfckpt.errors import ExitCode


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
    engine: EngineOpt = Engine.native,
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
    """
    from tfckpt.cli.cmd_inspect import open_engine
    from tfckpt.cli.cmd_transfer import name_selector
    from tfckpt.ops.diff import DiffOptions, diff_checkpoints
    from tfckpt.ops.rules import build_rules
    from tfckpt.render import note, progress
    from tfckpt.render.check import render_diff

    rules = build_rules(subs=parse_subs(sub), mapping_file=mapping)
    options = DiffOptions(atol, rtol, equal_nan, names_only, object_graph)
    names_filter = name_selector(match, regex)  # validates the regexes up front
    select = (lambda name: names_filter([name])) if names_filter else None

    with open_engine(a, engine) as ca, open_engine(b, engine) as cb:
        for message in ca.notes + cb.notes:
            note(message, quiet)
        total = 0 if names_only else sum(i.nbytes for i in ca.tensors())
        with progress("diff", total, quiet) as bar:
            report = diff_checkpoints(
                ca, cb, rules, options, select, on_tensor=lambda _n, nbytes: bar.advance(nbytes)
            )
    render_diff(report, as_json, show_all)
    raise typer.Exit(int(ExitCode.OK if report.equal else ExitCode.FAILED))


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
    from tfckpt.bundle.checkpoint import data_bytes_on_disk, resolve_prefix
    from tfckpt.ops.verify import VerifyOptions, verify_checkpoint
    from tfckpt.render import progress
    from tfckpt.render.check import render_verify

    total = data_bytes_on_disk(resolve_prefix(path)[0])
    options = VerifyOptions(no_nan, no_inf, max_abs)
    with progress("verify", total, quiet or as_json) as bar:
        if engine == Engine.tf:
            from tfckpt.tf_engine.verify import verify_with_tf

            report = verify_with_tf(path, options, bar.advance)
        else:
            report = verify_checkpoint(path, options, bar.advance)
    render_verify(report, as_json)
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.FAILED))
