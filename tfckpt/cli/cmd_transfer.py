"""``export`` and ``import``: weights out of and into checkpoints, without TensorFlow."""

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from tfckpt.cli.app import app
from tfckpt.cli.options import (
    DryRunOpt,
    ForceOpt,
    JsonOpt,
    MappingOpt,
    MatchOpt,
    QuietOpt,
    RegexOpt,
    SubOpt,
    SyncOpt,
    parse_subs,
)
from tfckpt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from tfckpt.errors import MismatchError

    pass

NoCheckOpt = Annotated[
    bool,
    typer.Option(
        "--no-check",
        help="Skip re-reading the output and comparing it with the source (bytes copied "
        "unchanged then go unverified against their stored checksums too).",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict", help="Fail (exit 2) instead of skipping tensors the target cannot hold."
    ),
]
SepOpt = Annotated[
    str | None,
    typer.Option(
        "--sep",
        help="Export: replace '/' in names with SEP after the rules (e.g. '.' for PyTorch-style "
        "names). Import: the input's separator, turned back into '/' before the rules.",
        metavar="SEP",
    ),
]


PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Convert names and layouts with a preset: a built-in one (see `tfckpt presets`) or "
        "a preset file (./mine.toml).",
        metavar="NAME|FILE",
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="With --preset: the Hugging Face config.json; every shape and layer count is checked "
        "against it before anything is written (exit 1 on a mismatch).",
        metavar="FILE",
    ),
]
AllowUnmappedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-unmapped",
        help="With --preset: leave out tensors the preset does not map instead of refusing "
        "(exit 1).",
    ),
]


def _refused(
    exc: "MismatchError", render: Callable[..., None], as_json: bool, quiet: bool
) -> NoReturn:
    """A plan refused for a mismatch: its report (table, or the JSON document with ok false),
    the one-line error on stderr, exit 1."""
    if exc.result is None:
        raise exc
    render(exc.result, as_json, quiet)
    from tfckpt.cli.app import error_line

    sys.stderr.write(f"tfckpt: error: {error_line(exc)}\n")
    raise typer.Exit(int(exc.exit_code))


def _parse_metadata(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        key, eq, text = value.partition("=")
        if not eq or not key:
            raise UsageError(f"--metadata {value!r}: expected KEY=VALUE")
        out[key] = text
    return out


@app.command("export")
def export_command(
    src: Annotated[str, typer.Argument(help="Checkpoint (prefix, file, directory, SavedModel).")],
    out: Annotated[
        str,
        typer.Argument(help="Output: FILE.safetensors, FILE.npz, or DIR/ for one .npy per tensor."),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Format, when OUT's name does not say: safetensors|npz|npy."),
    ] = None,
    sub: SubOpt = None,
    mapping: MappingOpt = None,
    sep: SepOpt = None,
    match: MatchOpt = None,
    regex: RegexOpt = None,
    no_optimizer: Annotated[
        bool,
        typer.Option(
            "--no-optimizer",
            help="Drop optimizer state: TF2 by the object graph (slots and the optimizer's own "
            "variables), TF1 by slot names (/Adam, /Momentum, beta1_power, ...).",
        ),
    ] = False,
    keep_keys: Annotated[
        bool,
        typer.Option(
            "--keep-keys",
            help="TF2: keep checkpoint keys (…/.ATTRIBUTES/VARIABLE_VALUE) instead of object "
            "paths.",
        ),
    ] = False,
    strict: StrictOpt = False,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            help="safetensors __metadata__ entry (repeatable), e.g. format=pt for transformers.",
            metavar="KEY=VALUE",
        ),
    ] = None,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    allow_unmapped: AllowUnmappedOpt = False,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="With --preset: write even when tensors the model needs are missing (they "
            "would stay randomly initialised in transformers).",
        ),
    ] = False,
    no_check: NoCheckOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    sync: SyncOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Export tensors to safetensors, .npz or a directory of .npy files (no TensorFlow).

    Names: TF2 keys become object paths (model/dense/kernel); then --mapping / --sub rules (as
    in rename); then --sep. Filters (--match, --regex) see the key and the object path. The
    object graph is never exported.

    Dtypes in safetensors: float16/bfloat16/float32/float64, int8..uint64, bool, complex64 and
    float8_e4m3fn/e5m2 (+fnuz) are stored as such (bytes copied). qint8/quint8/qint16/quint16/
    qint32 keep their integer layout and int4/uint4/int2/uint2 widen to I8/U8; complex128
    becomes F64 pairs in an extra last dimension of 2. Their TF dtype goes into __metadata__
    ("tfckpt.dtypes"), so `tfckpt import` restores it. Strings, variants,
    float8_e4m3b11fnuz and float4_e2m1fn cannot be stored: skipped with a warning, or an error
    with --strict. .npz and .npy keep every dtype including strings (bfloat16 and other
    ml_dtypes types are written as raw |V bytes with their TF dtype in the zip member comment /
    index.json).

    Streams tensor by tensor (memory stays bounded by the largest tensor that needs decoding),
    writes a temp file, re-reads it and compares every tensor with the source (--no-check to
    skip), then renames it into place. Exit 1 if the check fails.

    --preset converts to Hugging Face transformers (hf-bert, hf-albert, hf-electra,
    hf-electra-generator, hf-t5, hf-t5-v1.1; `tfckpt presets` lists them): names, transposes
    and dtypes exactly as transformers 4.57's TF loaders made them. Optimizer state is dropped;
    any other tensor the preset does not map is an error (exit 1, --allow-unmapped), and so is
    one the model needs that the checkpoint lacks (--allow-missing). With --config, shapes are
    checked against the config. OUT may then be a directory: it gets model.safetensors and a
    copy of the config, for from_pretrained(OUT). --dry-run shows the whole mapping.

    Examples:

        tfckpt export model.ckpt-1000 model.safetensors

        tfckpt export bert_model.ckpt hf/ --preset hf-bert --config config.json

        tfckpt export t5/model.ckpt-1000000 t5.safetensors --preset hf-t5-v1.1 -n

        tfckpt export ckpt w.safetensors --no-optimizer --metadata format=pt

        tfckpt export ckpt weights.npz --match 'encoder/*'

        tfckpt export ckpt arrays/ --sub '^model/' ''
    """
    from tfckpt.api.transfer import export
    from tfckpt.errors import MismatchError
    from tfckpt.render import ProgressBar
    from tfckpt.render.transfer import render_export

    try:
        with ProgressBar(quiet or as_json) as bar:
            result = export(
                src,
                out,
                format=to,
                sub=parse_subs(sub),
                mapping=mapping,
                sep=sep,
                match=match or (),
                regex=regex or (),
                no_optimizer=no_optimizer,
                keep_keys=keep_keys,
                strict=strict,
                metadata=_parse_metadata(metadata),
                preset=preset,
                config=config,
                allow_unmapped=allow_unmapped,
                allow_missing=allow_missing,
                check=not no_check,
                dry_run=dry_run,
                force=force,
                sync=sync,
                progress=bar,
            )
    except MismatchError as exc:
        _refused(exc, render_export, as_json, quiet)
    render_export(result, as_json, quiet)
    if not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("import")
def import_command(
    src: Annotated[
        str, typer.Argument(help="Input: FILE.safetensors, FILE.npz, or a directory of .npy.")
    ],
    dst: Annotated[str, typer.Argument(help="Output checkpoint prefix, e.g. out/model.ckpt.")],
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Format, when SRC's name does not say: safetensors|npz|npy."),
    ] = None,
    sub: SubOpt = None,
    mapping: MappingOpt = None,
    sep: SepOpt = None,
    match: MatchOpt = None,
    regex: RegexOpt = None,
    like: Annotated[
        str | None,
        typer.Option(
            "--like",
            help="Check names, dtypes and shapes against this checkpoint before writing (exit 1 "
            "on mismatch); TF2 object paths become its keys and its object graph is carried over.",
            metavar="CKPT",
        ),
    ] = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="With --like: accept names of CKPT that the input lacks (e.g. optimizer slots).",
        ),
    ] = False,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Load pickled object arrays from .npz/.npy (runs code from the file: trusted "
            "files only).",
        ),
    ] = False,
    strict: StrictOpt = False,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    allow_unmapped: AllowUnmappedOpt = False,
    no_check: NoCheckOpt = False,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    sync: SyncOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build a TF checkpoint (V2, one shard) from safetensors, .npz or .npy files.

    Names: --sep SEP turns SEP back into '/', then --mapping / --sub rules apply. Dtypes come from
    the file (and from the tfckpt metadata `export` writes, so bfloat16, quantized, int4 and
    complex128 come back exactly); dtypes TensorFlow lacks (F8_E8M0, F4, ...) are skipped with a
    warning (--strict: an error). Strings come from .npz/.npy S/U arrays; pickled object arrays
    only with --allow-pickle.

    With --like CKPT, mismatched names, dtypes and shapes are reported before anything is
    written (exit 1): the "Key not found" TF would raise, shown up front. For a TF2 CKPT the
    object graph is copied, so tf.train.Checkpoint can restore the result.

    --preset runs a preset backwards: Hugging Face names become the original release's
    checkpoint names (then --mapping / --sub), transposes are undone, and the names and dtypes
    a preset export recorded come back, so TF -> HF -> TF is bit-identical and the release's TF
    code restores the result. Tied aliases and buffers are skipped; other names the preset does
    not map are an error (exit 1, --allow-unmapped).

    The output is re-read and compared with the input (--no-check to skip). The `checkpoint`
    state file beside it is updated, as TF's Saver does.

    Examples:

        tfckpt import model.safetensors out/model.ckpt --like model.ckpt-1000

        tfckpt import hf/model.safetensors tf/bert_model.ckpt --preset hf-bert

        tfckpt import torch.safetensors out/ckpt --sep . --mapping names.csv -n

        tfckpt import arrays/ out/model.ckpt --force
    """
    from tfckpt.api.transfer import import_weights
    from tfckpt.errors import MismatchError
    from tfckpt.render import ProgressBar
    from tfckpt.render.transfer import render_import

    try:
        with ProgressBar(quiet or as_json) as bar:
            result = import_weights(
                src,
                dst,
                format=from_,
                sub=parse_subs(sub),
                mapping=mapping,
                sep=sep,
                match=match or (),
                regex=regex or (),
                like=like,
                allow_missing=allow_missing,
                allow_pickle=allow_pickle,
                strict=strict,
                preset=preset,
                config=config,
                allow_unmapped=allow_unmapped,
                check=not no_check,
                dry_run=dry_run,
                force=force,
                sync=sync,
                progress=bar,
            )
    except MismatchError as exc:
        _refused(exc, render_import, as_json, quiet)
    render_import(result, as_json, quiet)
    if not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("presets")
def presets_command(
    name: Annotated[
        str | None,
        typer.Argument(help="Show this preset's rules (a built-in name, or a preset file)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the built-in presets of `export --preset` / `import --preset`, or show one.

    A preset is a TOML file of ordered name rules (checkpoint name template -> Hugging Face name
    template, with transposes and config shapes), tensors to drop, dtype rules and tied
    aliases. The built-in ones live in tfckpt/presets/; write your own in the same format and
    pass its path (--preset ./mine.toml). With NAME, the preset's rules are shown; a preset
    file given as NAME is checked (exit 2 with the file and key of a mistake).

    Examples:

        tfckpt presets

        tfckpt presets hf-t5-v1.1

        tfckpt presets ./mine.toml --json
    """
    from tfckpt.api.transfer import list_presets, load_preset
    from tfckpt.render.transfer import render_preset, render_presets

    if name is None:
        render_presets(list_presets(), as_json)
    else:
        render_preset(load_preset(name), as_json)
