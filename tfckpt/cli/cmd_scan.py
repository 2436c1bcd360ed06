"""``scan`` and ``check --policy``: the model-artifact gate CI runs. Exit 0 clean / all rules
pass, 1 findings / a rule failed, 2 unreadable input or a bad policy."""

from typing import Annotated

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import ForceOpt, JsonOpt, QuietOpt
from tfckpt.errors import ExitCode, UsageError

SarifOpt = Annotated[
    str | None,
    typer.Option(
        "--sarif",
        help="Also write a SARIF 2.1.0 log to FILE (for code-scanning UIs); - for stdout "
        "(instead of the table).",
        metavar="FILE",
    ),
]


def _ops(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _sarif(sarif: str | None, as_json: bool) -> str | None:
    """The file the library writes SARIF to (None: none, or stdout, which the CLI writes)."""
    if sarif == "-" and as_json:
        raise UsageError("--json and --sarif - both write stdout; give --sarif a file")
    return None if sarif == "-" else sarif


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="SavedModel directories (every meta graph; saved_model.pb and .pbtxt), .meta "
            "files, GraphDef .pb/.pbtxt files.",
            metavar="PATH...",
        ),
    ],
    deny_ops: Annotated[
        list[str] | None,
        typer.Option(
            "--deny-ops",
            help="Also report these ops (names or globs; repeatable or comma-separated).",
            metavar="OPS",
        ),
    ] = None,
    allow_ops: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-ops",
            help="Report these ops as info instead of findings (names or globs).",
            metavar="OPS",
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags",
            help="Only the SavedModel meta graph with this comma-separated tag set "
            "(default: every meta graph).",
            metavar="TAGS",
        ),
    ] = None,
    no_info: Annotated[
        bool, typer.Option("--no-info", help="Leave info entries out of the table.")
    ] = False,
    sarif: SarifOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Find ops that reach outside the process in SavedModels and graphs. Exit 0 if clean, 1 if
    there are findings, 2 if an input cannot be read.

    Loading a SavedModel runs its graph. The scan looks at every meta graph, every node, every
    library function (called or not), GraphDefs hidden in string constants that
    `DatasetFromGraph` runs, init ops and asset initialisers. The default policy is a table of
    TensorFlow ops by capability (files, network, Python, the process, checkpoints, debug and
    print ops); for ops that name a file it shows where the name comes from (a constant, an
    input, an asset). The SavedModel's own saver is allowed only in the exact shape TensorFlow
    generates; a vocabulary table reading a file in assets/ is info, the same op reading
    another path a finding.

    Each finding: op, node, function, meta graph tags, capability, severity, why, where the
    file name comes from, and when it runs (at load, when called, never).

    Examples:

        tfckpt scan export/1

        tfckpt scan export/1 frozen.pb --json | jq '.findings[].op'

        tfckpt scan export/1 --sarif scan.sarif

        tfckpt scan export/1 --allow-ops PrintV2 --deny-ops 'Stateful*Random*'
    """
    from tfckpt.api.scan import scan
    from tfckpt.render import note
    from tfckpt.render.scan import render_scan, write_sarif

    report = scan(
        paths,
        deny_ops=_ops(deny_ops),
        allow_ops=_ops(allow_ops),
        tags=tags,
        sarif=_sarif(sarif, as_json),
        force=force,
    )
    for message in report.notes:
        note(message, quiet)
    if sarif == "-":
        write_sarif(report.to_sarif())
    else:
        render_scan(report, as_json, show_info=not no_info)
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.FAILED))


@app.command("check")
def check_command(
    artifacts: Annotated[
        list[str],
        typer.Argument(
            help="SavedModel directories, checkpoints (prefix, file or directory), .meta or "
            "GraphDef files.",
            metavar="ARTIFACT...",
        ),
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="The policy: a TOML file of rules (see the README: deny_ops, allow_ops, "
            "signatures, finite, max_bytes, max_parameters, dtypes, no_optimizer_state, "
            "tensorflow_version).",
            metavar="POLICY.toml",
        ),
    ],
    sarif: SarifOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check model artifacts against a policy file. Exit 0 if every rule passes for every
    artifact, 1 if any fails, 2 if an artifact or the policy cannot be read.

    One gate for CI with the checks people script by hand: the ops scan (deny_ops / allow_ops
    extend or narrow the default policy of `tfckpt scan`), required signatures with their
    dtypes and shapes, finite values, size budgets (bytes on disk, parameters), a dtype
    allowlist, no optimizer state, the producing TensorFlow version. Each rule reports pass or
    fail with its evidence.

    Examples:

        tfckpt check --policy policy.toml export/1

        tfckpt check --policy policy.toml export/* --json | jq .summary

        tfckpt check --policy policy.toml export/1 --sarif policy.sarif
    """
    from tfckpt.api.scan import check, load_policy
    from tfckpt.render import ProgressBar, note
    from tfckpt.render.scan import render_policy, write_sarif

    destination = _sarif(sarif, as_json)
    rules = load_policy(policy)
    with ProgressBar(quiet or as_json) as bar:
        report = check(artifacts, policy=rules, sarif=destination, force=force, progress=bar)
    for message in report.notes:
        note(message, quiet)
    if sarif == "-":
        write_sarif(report.to_sarif())
    else:
        render_policy(report, as_json)
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.FAILED))
