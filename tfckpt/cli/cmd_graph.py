"""``graph`` and ``convert-pbtxt``: .meta, GraphDef .pb/.pbtxt and SavedModels."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import Engine, EngineOpt, ForceOpt, JsonOpt, QuietOpt
from tfckpt.errors import ExitCode, UsageError

TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        help="Message type, instead of detecting it from the content: graphdef, metagraph, "
        "savedmodel (convert-pbtxt also: checkpoint, the state file's CheckpointState).",
        metavar="TYPE",
    ),
]


def _load(path: str, type_name: str | None, engine: Engine) -> Any:
    from tfckpt.graph.load import GRAPH_TYPES, parse_type_option

    kind = parse_type_option(type_name, GRAPH_TYPES)
    if engine == Engine.tf:
        from tfckpt.tf_engine.graph import tf_load_graph

        return tf_load_graph(path, kind)
    from tfckpt.graph.load import load_graph

    return load_graph(path, kind)


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
            help="Find these ops (comma-separated globs; 'default' = ops that touch files, the "
            "network or Python) anywhere, library functions included; exit 1 if any occur.",
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
    engine: EngineOpt = Engine.native,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Summarize a graph: versions, node and op counts, inputs, outputs, variables, collections,
    saver, signatures, library functions, SavedModel tags.

    The message type comes from the content (a MetaGraphDef saved as .pb is recognised);
    --type forces it. Outputs are nodes nothing consumes, minus initialisation, saver, summary
    and gradient machinery (a heuristic). --engine tf loads the graph through TensorFlow
    (import_meta_graph / import_graph_def, then as_graph_def) instead of parsing it natively.

    --check matches what the graph restores against the checkpoint: TF1 graphs by the saver's
    tensor names (else the variable nodes, partitions folded into one name), TF2 SavedModels by
    object-graph keys (layer/kernel/.ATTRIBUTES/VARIABLE_VALUE). When a prefix change would fix
    the mismatch it prints the `tfckpt rename` command that does it.

    Examples:

        tfckpt graph model.ckpt-1000.meta

        tfckpt graph saved_model_dir --json | jq '.meta_graphs[0].signatures'

        tfckpt graph graph.pbtxt --scope dnn --op MatMul

        tfckpt graph model.ckpt-1000 --format dot --depth 2 -o graph.dot

        tfckpt graph export_dir --check runs/model.ckpt-1000

        tfckpt graph saved_model_dir --deny-ops default,PyFunc
    """
    from tfckpt.render import note

    fmt = fmt.lower()
    if fmt not in ("text", "dot"):
        raise UsageError(f"--format {fmt}: expected 'text' or 'dot'")
    ops = _ops(op)
    listing = nodes or (bool(ops) and fmt == "text" and check is None and deny_ops is None)
    modes = [m for m, on in (("--nodes", listing), ("--format dot", fmt == "dot"),
                             ("--check", check is not None), ("--deny-ops", deny_ops is not None))
             if on]  # fmt: skip
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined; run them one at a time")
    if fmt == "dot" and as_json:
        raise UsageError("--format dot and --json cannot be combined")
    if (depth is not None or output is not None) and fmt != "dot":
        raise UsageError("--depth and --output go with --format dot")

    loaded = _load(path, type_name, engine)
    for message in loaded.notes:
        note(message, quiet)

    if deny_ops is not None:
        _deny(loaded, deny_ops, scope, tags, as_json)
        return
    if check is not None:
        _check(loaded, check, scope, tags, engine, as_json, quiet)
        return
    if listing or fmt == "dot":
        from tfckpt.graph.summary import pick_meta_graph, select_nodes

        graph_def, _, pick_note = pick_meta_graph(loaded, tags)
        if pick_note:
            note(pick_note, quiet)
        selected = select_nodes(graph_def, scope, ops)
        if fmt == "dot":
            _dot(selected, depth, output, force, loaded.path, quiet)
            return
        from tfckpt.graph.summary import node_records
        from tfckpt.render.graph import render_nodes

        render_nodes(node_records(selected), as_json)
        return
    from tfckpt.graph.summary import summarize
    from tfckpt.render.graph import render_summary

    meta_graphs = None
    if tags is not None and loaded.type == "SavedModel":
        from tfckpt.graph.summary import pick_meta_graph

        _, meta, _ = pick_meta_graph(loaded, tags)
        meta_graphs = [meta]
    elif tags is not None:
        raise UsageError("--tags only applies to SavedModels")
    render_summary(summarize(loaded, scope, meta_graphs), as_json)


def _dot(
    selected: list[Any], depth: int | None, output: str | None, force: bool, title: str, quiet: bool
) -> None:
    from tfckpt.graph.summary import to_dot
    from tfckpt.render import note

    text = "\n".join(to_dot(selected, depth, title)) + "\n"
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from tfckpt.storage import write_file_atomic

    write_file_atomic(output, text.encode("utf-8"), force)
    note(f"wrote {output} ({len(selected)} nodes)", quiet)


def _deny(loaded: Any, value: str, scope: str | None, tags: str | None, as_json: bool) -> None:
    from tfckpt.graph.scan import parse_deny_option, scan_graph
    from tfckpt.graph.summary import pick_meta_graph
    from tfckpt.render.graph import render_deny

    deny = parse_deny_option(value)
    if not deny:
        raise UsageError("--deny-ops needs op names (or 'default')")
    hits: list[dict[str, Any]] = []
    metas = loaded.meta_graphs
    graphs: list[tuple[str | None, Any, Any]]
    if tags is not None or not metas:
        graph_def, meta, _ = pick_meta_graph(loaded, tags)
        graphs = [(None, graph_def, meta)]
    else:
        graphs = [
            (",".join(m.meta_info_def.tags) if len(metas) > 1 else None, m.graph_def, m)
            for m in metas
        ]
    for label, graph_def, meta in graphs:
        for hit in scan_graph(graph_def, meta, deny, scope):
            if label is not None:
                hit["meta_graph"] = label
            hits.append(hit)
    report = {"path": loaded.path, "denied": deny, "hits": hits, "ok": not hits}
    render_deny(report, as_json)
    if hits:
        raise typer.Exit(int(ExitCode.FAILED))


def _check(
    loaded: Any,
    ckpt_path: str,
    scope: str | None,
    tags: str | None,
    engine: Engine,
    as_json: bool,
    quiet: bool,
) -> None:
    from tfckpt.api.checks import open_engine
    from tfckpt.graph.check import check_against_checkpoint, graph_needs
    from tfckpt.graph.summary import pick_meta_graph
    from tfckpt.render import note
    from tfckpt.render.graph import render_check

    graph_def, meta, pick_note = pick_meta_graph(loaded, tags)
    if pick_note:
        note(pick_note, quiet)
    needs = graph_needs(graph_def, meta)
    with open_engine(ckpt_path, engine.value) as ckpt:
        for message in ckpt.notes:
            note(message, quiet)
        report = check_against_checkpoint(needs, ckpt, ckpt_path, loaded.path, scope)
    render_check(report, as_json)
    if not report["ok"]:
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
    from tfckpt.graph.convert import apply_conversion, plan_conversion
    from tfckpt.graph.load import parse_type_option
    from tfckpt.render import note, print_json, warn

    if as_json and dst == "-":
        raise UsageError("--json and output to stdout (-) cannot be combined")
    plan = plan_conversion(src, dst, parse_type_option(type_name), elide_constants)
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
    apply_conversion(plan, force)
    if as_json:
        print_json({**plan.to_dict(), "written": True})
    else:
        note(f"wrote {dst} ({plan.encoding} {plan.source.type}, {len(plan.data):,} bytes)", quiet)
