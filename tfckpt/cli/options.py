"""Options shared by several commands, declared once."""

from enum import Enum
from typing import Annotated

import typer


class Engine(str, Enum):
    native = "native"
    tf = "tf"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="Reader: 'native' (default, no TensorFlow) or 'tf' (tf.train.load_checkpoint).",
        case_sensitive=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (stable schema).")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar or notes on stderr.")
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="Print the plan; write nothing.")]
SyncOpt = Annotated[
    bool,
    typer.Option(
        "--sync",
        help="fsync every written file before publishing it: durable across power loss "
        "(slower; without it, like cp, data reaches the disk when the OS writes it back).",
    ),
]

NoVerifyOpt = Annotated[
    bool,
    typer.Option(
        "--no-verify",
        help="Do not check the copied tensors' bytes against their CRC32C (for sources verified "
        "already); shard sizes are still checked against the index.",
    ),
]


def complete_tensor_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of variable names from the checkpoint already given on the line (its
    index only; nothing on any error: completion must never print one)."""
    given = [ctx.params.get(k) for k in ("path", "src", "a")]
    # While an option still waits for its value, the parser leaves positionals unprocessed.
    given += [a for a in ctx.args if not a.startswith("-")]
    path = next((p for p in given if isinstance(p, str)), None)
    if path is None:
        return []
    try:
        import tfckpt

        with tfckpt.open(path) as ckpt:
            names = [i.display_name for i in ckpt.tensors(include_object_graph=False)]
    except Exception:
        return []
    return [n for n in names if n.startswith(incomplete)][:200]


MatchOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--match",
        "-m",
        help="Only names matching this glob (repeatable).",
        metavar="GLOB",
        autocompletion=complete_tensor_names,
    ),
]
RegexOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--regex", "-r", help="Only names matching this regex (repeatable).", metavar="RE"
    ),
]
SubOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sub",
        help="Rename with a regex: Python re.sub(PATTERN, REPLACEMENT, name); repeatable, "
        "applied in order.",
        metavar="PATTERN REPLACEMENT",
    ),
]
MappingOpt = Annotated[
    str | None,
    typer.Option(
        "--mapping",
        help="File of exact old -> new names: a JSON object or two-column CSV/TSV.",
        metavar="FILE",
    ),
]


NoOptimizerOpt = Annotated[
    bool,
    typer.Option(
        "--no-optimizer",
        help="Without optimizer state: TF1 slots (/Adam, /Momentum, /RMSProp*, beta1_power...), "
        "TF2 .OPTIMIZER_SLOT entries and the optimizer's own variables.",
    ),
]


KeysOpt = Annotated[
    bool,
    typer.Option(
        "--keys",
        help="Show TF2 tensors by checkpoint key (…/.ATTRIBUTES/VARIABLE_VALUE) instead of "
        "object path (both are accepted as input everywhere).",
    ),
]


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Text output: table (default), tsv or csv (plain cells for scripts, no box drawing).",
        metavar="FORMAT",
    ),
]
NoHeadersOpt = Annotated[
    bool, typer.Option("--no-headers", help="With --format tsv/csv: no header line.")
]


def table_format(value: str) -> str:
    """The ``--format`` value, checked."""
    from tfckpt.errors import UsageError

    fmt = value.lower()
    if fmt not in ("table", "tsv", "csv"):
        raise UsageError(f"--format {value!r}: choose table, tsv or csv")
    return fmt


def parse_subs(values: list[str] | None) -> list[tuple[str, str]]:
    """Split the ``--sub`` pairs joined by the CLI group back into (pattern, replacement)."""
    from tfckpt.cli.app import PAIR_JOINER
    from tfckpt.errors import UsageError

    pairs = []
    for value in values or []:
        if PAIR_JOINER not in value:
            raise UsageError("--sub needs two values: PATTERN REPLACEMENT")
        pattern, replacement = value.split(PAIR_JOINER, 1)
        pairs.append((pattern, replacement))
    return pairs
