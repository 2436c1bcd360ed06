"""Rendering for ``graph``: the summary, node lists and ``--check`` reports (``--deny-ops`` is
``scan``, rendered by ``render.scan``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tfckpt.render import emit_json, out_console, print_more, shape_text
from tfckpt.render.table import Column, print_table

# Longest lists shown in the text summary; --json always has everything.
MAX_OPS = 15
MAX_ROWS = 50
MAX_OUTPUTS = 20
MAX_FUNCTIONS = 10
MAX_UNUSED = 20


def _shape(shape: list[int | None] | None) -> str:
    if shape is None:
        return "<unknown>"
    return shape_text(shape)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(
        show_edge=False, header_style="bold", title=title, title_justify="left", title_style="bold"
    )
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=i > 0, ratio=1 if i == 0 else None)
    return table


def _rows(
    console: Console,
    title: str | None,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    style: str | None = None,
) -> None:
    """A titled table whose first column identifies the row (kept whole at any width)."""
    if title:
        console.print(Text(title, style="bold"))
    numeric = ("count", "size")  # counts line up on the right
    columns = [
        Column(h, justify="right" if h in numeric else "left", key=i == 0)
        for i, h in enumerate(headers)
    ]
    print_table(columns, rows, styles=[style] * len(rows) if style else None)


def _more(items: Sequence[Any], limit: int, what: str) -> None:
    """The "... N more" line for ``items`` shown up to ``limit``."""
    print_more(limit, len(items), f"{what} (--json lists all)")


# ---- summary ----------------------------------------------------------------------------------
# A SavedModel rarely holds more than a few meta graphs; a hostile one may hold 50,000.
MAX_META_GRAPHS = 8


def render_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("graph", summary)
        return
    console = out_console()
    encoding = summary["encoding"]
    if summary["type"] == "SavedModel":
        extras = []
        if "has_variables" in summary:
            extras.append("variables/" if summary["has_variables"] else "no variables/")
        if summary.get("has_fingerprint"):
            extras.append("fingerprint.pb")
        graphs = summary["meta_graphs"]
        console.print(
            Text.assemble(
                (summary["path"], "bold"),
                f": SavedModel ({encoding}), schema {summary['schema_version']}, "
                f"{len(graphs)} meta graph(s)" + (", " + ", ".join(extras) if extras else ""),
            )
        )
        for i, graph in enumerate(graphs[:MAX_META_GRAPHS]):
            tags = ",".join(graph["tags"]) or "(no tags)"
            console.print()
            console.print(Text(f"meta graph {i}: tags {tags}", style="bold underline"))
            _graph(console, graph)
        if len(graphs) > MAX_META_GRAPHS:
            more = len(graphs) - MAX_META_GRAPHS
            console.print(
                Text(f"... {more:,} more meta graphs (--tags picks one; --json lists all)", "dim")
            )
        return
    console.print(Text.assemble((summary["path"], "bold"), f": {summary['type']} ({encoding})"))
    _graph(console, summary)


def _graph(console: Console, g: dict[str, Any]) -> None:
    facts = []
    if g.get("tensorflow_version"):
        facts.append(f"TensorFlow {g['tensorflow_version']}")
    if g.get("producer") is not None:
        facts.append(f"producer {g['producer']}")
        facts.append(f"min_consumer {g['min_consumer']}")
    if facts:
        console.print(", ".join(facts))
    counts = f"{g['nodes']:,} nodes, {len(g['ops']):,} op types, {len(g['functions']):,} functions"
    if g.get("scope"):
        counts += f" in scope {g['scope']}/"
    console.print(Text(counts, style="bold"))

    ops = list(g["ops"].items())
    op_rows = [(name, f"{count:,}") for name, count in ops[:MAX_OPS]]
    _rows(console, "Ops", ("op", "count"), op_rows)
    _more(ops, MAX_OPS, "op types")

    rows: list[tuple[str, ...]]
    if g["inputs"]:
        rows = [
            (r["name"], r["op"], r["dtype"] or "", _shape(r["shape"]))
            for r in g["inputs"][:MAX_ROWS]
        ]
        _rows(console, f"Inputs ({len(g['inputs'])})", ("input", "op", "dtype", "shape"), rows)
        _more(g["inputs"], MAX_ROWS, "inputs")
    if g["outputs"]:
        rows = [(r["name"], r["op"]) for r in g["outputs"][:MAX_OUTPUTS]]
        _rows(console, f"Outputs ({len(g['outputs'])})", ("output", "op"), rows)
        _more(g["outputs"], MAX_OUTPUTS, "outputs")
    if g["variables"]:
        variables = g["variables"]
        rows = []
        for r in variables[:MAX_ROWS]:
            name = r["name"]
            if "partition_of" in r:
                name += f"  (part of {r['partition_of']} {_shape(r['full_shape'])})"
            rows.append((name, r["op"], r["dtype"] or "", _shape(r["shape"])))
        title = f"Variables ({len(variables)})"
        _rows(console, title, ("variable", "op", "dtype", "shape"), rows)
        _more(variables, MAX_ROWS, "variables")
    if g.get("collections"):
        rows = [(name, str(size)) for name, size in g["collections"].items()]
        _rows(console, "Collections", ("collection", "size"), rows)
    if g.get("saver"):
        s = g["saver"]
        console.print(
            Text.assemble(
                ("Saver: ", "bold"),
                f"{s['version']}, restore {s['restore_op_name']}, filename "
                f"{s['filename_tensor_name']}, max_to_keep {s['max_to_keep']}"
                + (", sharded" if s["sharded"] else ""),
            )
        )
    for key, sig in (g.get("signatures") or {}).items():
        # One block per signature: its name is a line of its own, never squeezed by a column.
        label = f"Signature {key}" + (f" ({sig['method']})" if sig["method"] else "")
        console.print(Text(label, style="bold"))
        print_table(
            [
                Column("key", key=True),
                Column(""),
                Column("tensor"),
                Column("dtype"),
                Column("shape"),
            ],
            _signature_rows(sig),
        )
    if g["functions"]:
        functions = g["functions"]
        rows = [(f["name"], str(f["nodes"])) for f in functions[:MAX_FUNCTIONS]]
        _rows(console, f"Library functions ({len(functions)})", ("function", "nodes"), rows)
        _more(functions, MAX_FUNCTIONS, "functions")
    if g.get("object_graph_nodes"):
        console.print(f"Object graph: {g['object_graph_nodes']} objects (TF2)")


SIGNATURE_COLUMNS = (
    Column("key", key=True),
    Column(""),
    Column("tensor"),
    Column("dtype"),
    Column("shape"),
)


def _signature_rows(sig: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = [("in", k, v) for k, v in sig["inputs"].items()]
    rows += [("out", k, v) for k, v in sig["outputs"].items()]
    return [
        (
            k,
            direction,
            v["name"] or "(composite)",
            v["dtype"] or "",
            "" if v["dtype"] is None and v["shape"] is None else _shape(v["shape"]),
        )
        for direction, k, v in rows
    ]


def render_signature(report: Any, as_json: bool) -> None:
    """``graph --signature NAME``: every input and output of one signature."""
    data = report.data
    if as_json:
        emit_json("graph", report.to_dict())
        return
    console = out_console()
    label = f"Signature {data['signature']}" + (f" ({data['method']})" if data["method"] else "")
    console.print(Text(label, style="bold"))
    print_table(SIGNATURE_COLUMNS, _signature_rows(data))


# ---- --nodes ----------------------------------------------------------------------------------
def render_nodes(records: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json("graph", {"nodes": list(records)})
        return
    console = out_console()
    rows = [(r["name"], r["op"], ", ".join(r["inputs"]), r["device"]) for r in records]
    _rows(console, None, ("name", "op", "inputs", "device"), rows)
    console.print(Text(f"{len(records):,} nodes", style="bold"))


# ---- --check ----------------------------------------------------------------------------------
def _name(record: dict[str, Any]) -> str:
    return record.get("path", record["name"])


def render_check(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("graph", report)
        return
    console = out_console()
    console.print(
        Text.assemble(
            ("graph ", "dim"),
            report["graph"],
            ("  checkpoint ", "dim"),
            report["checkpoint"],
            ("  matching by ", "dim"),
            report["method"],
        )
    )
    rows: list[tuple[str, ...]]
    if report["missing"]:
        console.print(
            Text(
                f"The graph needs {len(report['missing'])} variable(s) the checkpoint lacks "
                "(TF: Key ... not found in checkpoint):",
                style="bold red",
            )
        )
        rows = [(_name(r), r["dtype"] or "", _shape(r["shape"])) for r in report["missing"]]
        _rows(console, None, ("missing from the checkpoint", "dtype", "shape"), rows, "red")
    if report["mismatched"]:
        console.print(Text("Shape/dtype mismatch:", style="bold red"))
        rows = [
            (
                r["name"],
                "+".join(r["problems"]),
                f"{r['graph']['dtype'] or '?'} {_shape(r['graph']['shape'])}",
                f"{r['checkpoint']['dtype']} {_shape(r['checkpoint']['shape'])}",
            )
            for r in report["mismatched"]
        ]
        _rows(console, None, ("variable", "problem", "graph", "checkpoint"), rows, "red")
    if report["unused"]:
        console.print(Text(f"Unused ({len(report['unused'])}):", style="bold"))
        rows = [(_name(r), r["dtype"], _shape(r["shape"])) for r in report["unused"][:MAX_UNUSED]]
        _rows(console, None, ("in the checkpoint, not used by the graph", "dtype", "shape"), rows)
        _more(report["unused"], MAX_UNUSED, "unused")
    if report["unsaved"]:
        console.print(
            Text(
                f"{len(report['unsaved'])} graph variable(s) the saver does not save (not "
                f"checked): {', '.join(report['unsaved'][:10])}"
                + (" ..." if len(report["unsaved"]) > 10 else ""),
                style="dim",
            )
        )
    for s in report["suggestions"]:
        if s["command"] is None:
            console.print(Text.assemble(("suggestion: ", "bold yellow"), s["description"]))
            continue
        console.print(
            Text.assemble(
                ("suggestion: ", "bold yellow"),
                f"{s['description']}; renaming fixes {s['fixes']} of {s['of']} missing:",
            )
        )
        console.print(Text("  " + s["command"]), soft_wrap=True)
    for c in report["close_matches"]:
        console.print(
            Text.assemble(("did you mean: ", "yellow"), f"{c['missing']}  <-  {c['candidate']}")
        )
    verdict = (
        f"OK: all {report['needed']} variable(s) the graph needs are in the checkpoint"
        if report["ok"]
        else f"MISMATCH: {report['matched']} of {report['needed']} match, "
        f"{len(report['missing'])} missing, {len(report['mismatched'])} with another "
        "shape/dtype"
    )
    if report["unused"]:
        verdict += f"; {len(report['unused'])} unused in the checkpoint"
    console.print(Text(verdict, style="bold green" if report["ok"] else "bold red"))
