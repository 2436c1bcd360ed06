"""``graph`` and ``convert-pbtxt``: .meta, GraphDef .pb/.pbtxt and SavedModels."""

import sys
from typing import Annotated, Any

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import Engine, ForceOpt, JsonOpt, QuietOpt
from tfckpt.errors import ExitCode, UsageError

GraphEngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="Parser: 'native' (default, no TensorFlow) or 'tf' (import_meta_graph / "
        "import_graph_def, then as_graph_def; --check then reads the checkpoint with "
        "tf.train.load_checkpoint).",
        case_sensitive=False,
    ),
]
TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        help="Message type, instead of detecting it from the content: graphdef, metagraph, "
        "savedmodel (convert-pbtxt also: checkpoint, the state file's CheckpointState).",
        metavar="TYPE",
    ),
]


def _ops(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@app.command("graph")
def graph_command(
    path: Annotated[
        str,
        typer.Argument(
            help="A .meta, GraphDef .pb/.pbtxt, SavedModel (directory or saved_model.pb), or a "
            "checkpoint prefix/directory whose .meta exists."
        ),
    ],
    type_name: TypeOpt = None,
    scope: Annotated[
        str | None,
        typer.Option("--scope", help="Only nodes in this name scope.", metavar="PREFIX"),
    ] = None,
    nodes: Annotated[
        bool, typer.Option("--nodes", help="List nodes: name, op, inputs, device.")
    ] = False,
    op: Annotated[
        list[str] | None,
        typer.Option(
            "--op",
            help="Only nodes of this op type (glob; repeatable or comma-separated); lists "
            "nodes unless another mode is chosen.",
            metavar="TYPE",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="'text' (summary tables) or 'dot' (Graphviz).", metavar="FORMAT"
        ),
    ] = "text",
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", help="With --format dot: collapse nodes into scopes N levels deep.", min=1
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="With --format dot: write to FILE.", metavar="FILE"),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="Compare the graph's variables with this checkpoint; exit 1 if the graph "
            "needs a variable it lacks or has with another shape/dtype.",
            metavar="CKPT",
        ),
    ] = None,
    deny_ops: Annotated[
        str | None,
        typer.Option(
            "--deny-ops",
            help="Find these ops (comma-separated globs; 'default' = the default policy of "
            "`tfckpt scan`, which this runs) anywhere, library functions included; exit 1 if "
            "any occur.",
            metavar="OPS",
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags",
            help="SavedModel meta graph to use, by its comma-separated tag set (default: the "
            "only one, else 'serve').",
            metavar="TAGS",
        ),
    ] = None,
    signature: Annotated[
        str | None,
        typer.Option(
            "--signature",
            help="Show one SavedModel signature in full (inputs and outputs with dtype, shape "
            "and tensor name), as saved_model_cli show does.",
            metavar="NAME",
        ),
    ] = None,
    engine: GraphEngineOpt = Engine.native,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Summarize a graph: versions, node and op counts, inputs, outputs, variables, collections,
    saver, signatures, library functions, SavedModel tags.

    The message type comes from the content (a MetaGraphDef saved as .pb is recognised);
    --type forces it. Outputs are nodes nothing consumes, minus initialisation, saver, summary
    and gradient machinery (a heuristic). --engine tf loads the graph through TensorFlow
    (import_meta_graph / import_graph_def, then as_graph_def) instead of parsing it natively;
    with --check the checkpoint side is then read by tf.train.load_checkpoint.

    --check matches what the graph restores against the checkpoint: TF1 graphs by the saver's
    tensor names (else the variable nodes, partitions folded into one name), TF2 SavedModels by
    object-graph keys (layer/kernel/.ATTRIBUTES/VARIABLE_VALUE). When a prefix change would fix
    the mismatch it prints the `tfckpt rename` command that does it.

    Examples:

        tfckpt graph model.ckpt-1000.meta

        tfckpt graph saved_model_dir --json | jq '.meta_graphs[0].signatures'

        tfckpt graph saved_model_dir --signature serving_default

        tfckpt graph graph.pbtxt --scope dnn --op MatMul

        tfckpt graph model.ckpt-1000 --format dot --depth 2 -o graph.dot

        tfckpt graph export_dir --check runs/model.ckpt-1000

        tfckpt graph saved_model_dir --deny-ops default,PyFunc
    """
    from tfckpt.api import graphs
    from tfckpt.render import note

    fmt = fmt.lower()
    if fmt not in ("text", "dot"):
        raise UsageError(f"--format {fmt}: expected 'text' or 'dot'")
    ops = _ops(op)
    listing = nodes or (
        bool(ops) and fmt == "text" and check is None and deny_ops is None and signature is None
    )
    modes = [m for m, on in (("--nodes", listing), ("--format dot", fmt == "dot"),
                             ("--check", check is not None), ("--deny-ops", deny_ops is not None),
                             ("--signature", signature is not None))
             if on]  # fmt: skip
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined; run them one at a time")
    if fmt == "dot" and as_json:
        raise UsageError("--format dot and --json cannot be combined")
    if (depth is not None or output is not None) and fmt != "dot":
        raise UsageError("--depth and --output go with --format dot")
    options: dict[str, Any] = {"type": type_name, "tags": tags, "engine": engine.value}

    if deny_ops is not None:
        if type_name is not None:
            raise UsageError("--type does not apply to --deny-ops (the scan reads every graph)")
        _deny(path, deny_ops, scope, tags, engine, as_json, quiet)
        return
    if signature is not None:
        report = graphs.signature(path, signature, tags=tags, engine=engine.value)
    elif check is not None:
        report = graphs.check_graph(path, check, scope=scope, **options)
    elif fmt == "dot":
        to_file = output if output not in (None, "-") else None
        text, count, notes = graphs.graph_dot(
            path, scope=scope, ops=ops, depth=depth, output=to_file, force=force, **options
        )
        for message in notes:
            note(message, quiet)
        if to_file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            note(f"wrote {output} ({count} nodes)", quiet)
        return
    elif listing:
        _, report = graphs.graph_nodes(path, scope=scope, ops=ops, **options)
    else:
        report = graphs.graph_summary(path, scope=scope, **options)
    for message in report.notes:
        note(message, quiet)
    from tfckpt.render.graph import render_check, render_nodes, render_signature, render_summary

    if signature is not None:
        render_signature(report, as_json)
    elif check is not None:
        render_check(report.to_dict(), as_json)
        if not report.ok:
            raise typer.Exit(int(ExitCode.FAILED))
    elif listing:
        render_nodes(report.data, as_json)
    else:
        render_summary(report.data, as_json)


def _deny(
    path: str,
    value: str,
    scope: str | None,
    tags: str | None,
    engine: Engine,
    as_json: bool,
    quiet: bool,
) -> None:
    """``--deny-ops``: an alias of ``tfckpt scan PATH`` (one implementation). ``default`` is
    the scan's default policy; other names are added to it, or are all there is without it."""
    from tfckpt.api.scan import scan
    from tfckpt.render import note
    from tfckpt.render.scan import render_scan

    names = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    default = any(n.lower() == "default" for n in names)
    globs = [n for n in names if n.lower() != "default"]
    if not globs and not default:
        raise UsageError("--deny-ops needs op names (or 'default')")
    report = scan(
        path, deny_ops=globs, default_policy=default, tags=tags, scope=scope, engine=engine.value
    )
    for message in report.notes:
        note(message, quiet)
    render_scan(report, as_json, kind="graph")
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("convert-pbtxt")
def convert_command(
    src: Annotated[
        str, typer.Argument(help="Input: .pb/.meta (binary) or .pbtxt/.txt (text) file.")
    ],
    dst: Annotated[
        str,
        typer.Argument(
            help="Output file (.pbtxt/.txt = text, .pb/.meta = binary), or - for stdout."
        ),
    ],
    type_name: TypeOpt = None,
    elide_constants: Annotated[
        bool,
        typer.Option(
            "--elide-constants",
            help="Text output only: replace constant tensor_content over 1 KiB with a marker "
            "(for reading; the result does NOT convert back).",
        ),
    ] = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Convert a GraphDef, MetaGraphDef, SavedModel or `checkpoint` state file between binary
    and text protobuf.

    The direction comes from the extensions (.pb/.meta <-> .pbtxt/.txt; a file named
    `checkpoint` is text); the message type from the content (--type forces it). With - the
    output goes to stdout in the other encoding. The output is parsed back and compared with
    the input before anything is written, so nothing is silently lost. Outputs are written
    atomically; an existing one needs --force.

    Examples:

        tfckpt convert-pbtxt model.ckpt-1000.meta model.pbtxt

        tfckpt convert-pbtxt graph.pbtxt graph.pb

        tfckpt convert-pbtxt saved_model.pb - --elide-constants | less
    """
    from tfckpt.api.graphs import convert_graph
    from tfckpt.render import emit_json, note, warn

    if as_json and dst == "-":
        raise UsageError("--json and output to stdout (-) cannot be combined")
    plan = convert_graph(src, dst, type=type_name, elide_constants=elide_constants, force=force)
    for message in plan.notes:
        note(message, quiet)
    if plan.elided:
        total = sum(e["bytes"] for e in plan.elided)
        warn(
            f"--elide-constants: {len(plan.elided)} constant(s), {total:,} bytes, replaced by "
            "markers; this text is for reading and will NOT convert back to the original"
        )
    if dst == "-":
        out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        if out is not None:
            out.write(plan.data)
            out.flush()
        else:  # pragma: no cover - a text-only stdout
            sys.stdout.write(plan.data.decode("utf-8", "replace"))
        return
    if as_json:
        emit_json("convert-pbtxt", {**plan.to_dict(), "written": True})
    else:
        note(f"wrote {dst} ({plan.encoding} {plan.source.type}, {len(plan.data):,} bytes)", quiet)
