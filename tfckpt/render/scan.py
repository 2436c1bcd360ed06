"""Rendering for ``scan`` (and ``graph --deny-ops``) and ``check --policy``."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.text import Text

from tfckpt.render import emit_json, out_console

_STYLES = {"high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
# Rows of the text tables; --json always has everything.
MAX_ROWS = 200
MAX_EVIDENCE = 10


def _sources(finding: Any) -> str:
    return "; ".join(s.describe() for s in finding.sources)


def _print_findings(title: str, findings: list[Any], with_tags: bool, with_files: bool) -> None:
    """One block per finding: severity and op on the first line, then where it is, when it
    runs, why, and where its file name comes from (wrapped under the op, never truncated)."""
    from rich.table import Table

    console = out_console()
    console.print(Text(title, style="bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold", ratio=1)
    for f in findings[:MAX_ROWS]:
        style = _STYLES.get(f.severity, "")
        body = Text.assemble((f.op, "bold"), "  ", f.node)
        where = f.where
        if with_tags and f.tags is not None:
            where += f", meta graph {','.join(f.tags) or '(no tags)'}"
        if with_files:
            where += f", {f.file}"
        body.append(f"\n{where}; runs {f.runs}", "dim")
        body.append(f"\n{f.why}")
        sources = _sources(f)
        if sources:
            body.append(f"\nfile name from: {sources}")
        grid.add_row(Text(f.severity, style), body)
    console.print(grid)
    if len(findings) > MAX_ROWS:
        console.print(Text(f"... {len(findings) - MAX_ROWS} more (use --json)", style="dim"))


def render_scan(report: Any, as_json: bool, kind: str = "scan", show_info: bool = True) -> None:
    """The scan report: a table of findings, one of info entries, a verdict line."""
    if as_json:
        emit_json(kind, report.to_dict())
        return
    console = out_console()
    with_tags = len({tuple(g.tags or ()) for g in report.graphs}) > 1
    with_files = len({g.file for g in report.graphs}) > 1
    summary = report.summary()
    where = (
        f"{summary['graphs']} graph(s), {summary['nodes']:,} nodes, "
        f"{summary['functions']} functions"
    )
    if report.findings:
        _print_findings("findings", report.findings, with_tags, with_files)
    if report.info and show_info:
        if report.findings:
            console.print()
        _print_findings("info (reported, not denied)", report.info, with_tags, with_files)
    if report.findings or (report.info and show_info):
        console.print()
    if report.findings:
        counts = ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items() if n)
        console.print(
            Text(
                f"{summary['findings']} finding(s) ({counts}): {', '.join(summary['ops'])} "
                f"in {where}",
                style="bold red",
            )
        )
    else:
        info = f"; {summary['info']} info" if summary["info"] else ""
        console.print(Text(f"clean: no findings in {where}{info}", style="bold green"))


def write_sarif(document: dict[str, Any]) -> None:
    """A SARIF document on stdout (``--sarif -``)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# ---- check --policy -------------------------------------------------------------------------
def render_policy(report: Any, as_json: bool) -> None:
    """Per artifact: a verdict line, then each rule with its result and evidence."""
    if as_json:
        emit_json("check", report.to_dict())
        return
    from rich.table import Table

    console = out_console()
    for n, artifact in enumerate(report.artifacts):
        if n:
            console.print()
        verdict = ("pass", "bold green") if artifact.ok else ("FAIL", "bold red")
        console.print(Text.assemble((artifact.path, "bold"), f" ({artifact.kind}): ", verdict))
        table = Table(show_edge=False, show_header=False, box=None, padding=(0, 1))
        table.add_column("result", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("evidence", overflow="fold", ratio=1)
        for rule in artifact.rules:
            mark = Text("pass", "green") if rule.ok else Text("FAIL", "bold red")
            table.add_row(mark, rule.rule, rule.summary)
            if not rule.ok:
                for item in rule.evidence[:MAX_EVIDENCE]:
                    table.add_row("", "", Text(f"- {_evidence_line(item)}", "dim"))
                if len(rule.evidence) > MAX_EVIDENCE:
                    more = len(rule.evidence) - MAX_EVIDENCE
                    table.add_row("", "", Text(f"... {more} more (use --json)", "dim"))
        console.print(table)
    console.print()
    failed = [a for a in report.artifacts if not a.ok]
    total = len(report.artifacts)
    if failed:
        n = sum(1 for a in report.artifacts for r in a.rules if not r.ok)
        line = f"FAILED: {n} rule(s) failed in {len(failed)} of {total} artifact(s)"
        console.print(Text(line, style="bold red"))
    else:
        line = f"OK: {total} artifact(s) pass every rule of {report.policy}"
        console.print(Text(line, style="bold green"))


def _evidence_line(item: Any) -> str:
    if isinstance(item, dict):
        if "message" in item:
            return str(item["message"])
        return ", ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


__all__ = ["render_policy", "render_scan", "write_sarif"]
