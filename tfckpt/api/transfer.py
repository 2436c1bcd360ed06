"""Weights out of and into checkpoints, without TensorFlow: ``export`` to safetensors, .npz or a
directory of .npy files, and ``import_weights`` from them into a TF checkpoint.

Both validate every option and the whole plan before anything is written (name conflicts,
tensors the format cannot hold under ``strict``, an existing destination without ``force``),
write under a temporary name, re-read the output and compare it with the source (unless
``check=False``), and publish it atomically. With ``dry_run=True`` they return the plan and
write nothing.

Example::

    import tfckpt

    result = tfckpt.export("run/model.ckpt-1000", "model.safetensors", no_optimizer=True)
    print(result.plan.total_bytes, "bytes in", result.output)

    tfckpt.import_weights("model.safetensors", "out/model.ckpt", like="run/model.ckpt-1000")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from tfckpt.api.surgery import PathLike, build_name_rules, output_prefix
from tfckpt.errors import MismatchError, UsageError
from tfckpt.progress import Progress, or_none
from tfckpt.transfer.formats import Format
from tfckpt.transfer.presets import Preset


@dataclass
class ExportResult:
    """The plan of an export and, unless ``dry_run``, what was written.

    ``plan`` is the ``ExportPlan`` (``plan.items``: one record per tensor with its source key,
    output name, dtype and stored type; ``plan.skipped``, ``plan.dropped``, ``plan.filtered``).
    ``output`` is the file (or .npy directory) written, ``size`` its bytes on disk.
    """

    plan: Any
    dry_run: bool
    written: bool = False
    checked: bool = False
    size: int | None = None
    notes: list[str] = field(default_factory=list)
    config: str | None = None  # with a preset and an output directory: the config.json copy

    @property
    def output(self) -> str:
        return str(self.plan.output)

    @property
    def ok(self) -> bool:
        """False when a preset found problems (only a dry run returns such a result)."""
        return self.plan.preset is None or bool(self.plan.preset.ok)

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the same keys with and without ``dry_run``."""
        out = {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "written": self.written,
            "checked": self.checked,
            "notes": list(self.notes),
        }
        if self.plan.preset is not None:
            out["ok"] = self.ok
            out["config_written"] = self.config
        return out


@dataclass
class ImportResult:
    """The plan of an import and, unless ``dry_run``, what was written.

    ``plan`` is the ``ImportPlan`` (``plan.items``; ``plan.like``: the comparison with the
    ``like`` checkpoint, whose ``ok`` says whether it matched). ``ok`` is False when the input
    does not match (only a dry run returns such a result; otherwise ``MismatchError`` is raised).
    """

    plan: Any
    dry_run: bool
    written: bool = False
    checked: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return str(self.plan.output)

    @property
    def ok(self) -> bool:
        like_ok = self.plan.like is None or bool(self.plan.like.ok)
        return like_ok and (self.plan.preset is None or bool(self.plan.preset.ok))

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the same keys with and without ``dry_run``."""
        return {
            **self.plan.to_dict(),
            "ok": self.ok,
            "dry_run": self.dry_run,
            "written": self.written,
            "checked": self.checked,
            "notes": list(self.notes),
        }


# ---- option checks -------------------------------------------------------------------------------
def _format(value: str | Format | None) -> Format | None:
    if value is None or isinstance(value, Format):
        return value
    try:
        return Format(str(value).lower())
    except ValueError:
        raise UsageError(f"format {value!r}: choose safetensors, npz or npy") from None


def _patterns(value: Iterable[str], what: str) -> list[str]:
    if isinstance(value, str | bytes):
        raise UsageError(f"{what}: expected a list of patterns, got the string {value!r}")
    out = list(value)
    if not all(isinstance(p, str) for p in out):
        raise UsageError(f"{what}: patterns must be strings")
    return out


def _metadata(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise UsageError("metadata: expected a mapping of non-empty string keys to strings")
    return dict(value)


def _sep(value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise UsageError(f"sep: expected a string, got {value!r}")
    return value or None


def _preset(value: str | PathLike | Preset | None) -> Preset | None:
    from tfckpt.transfer.presets import Preset, load_preset

    if value is None or isinstance(value, Preset):
        return value
    if not isinstance(value, str | os.PathLike):
        raise UsageError(f"preset: expected a name, a path or a Preset, got {value!r}")
    return load_preset(value)


def _config(
    value: PathLike | Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, bytes | None, str | None]:
    """A config.json given as a path or a mapping: (fields, bytes to copy, where)."""
    import json

    from tfckpt.transfer.presets import load_config

    if value is None:
        return None, None, None
    if isinstance(value, Mapping):
        data = (json.dumps(dict(value), indent=2, sort_keys=True) + "\n").encode()
        return dict(value), data, "config"
    if not isinstance(value, str | os.PathLike):
        raise UsageError(f"config: expected a config.json path or a mapping, got {value!r}")
    fields, data = load_config(value)
    return fields, data, os.fspath(value)


def _preset_only(preset: Preset | None, **given: Any) -> None:
    if preset is None:
        for name, value in given.items():
            if value:
                raise UsageError(f"{name} goes with preset")


HF_WEIGHTS = "model.safetensors"
HF_CONFIG = "config.json"


def _hf_directory(out: str, fmt: Format | None) -> tuple[str, str]:
    """A preset's output directory: (its model.safetensors, its config.json)."""
    if fmt not in (None, Format.safetensors):
        raise UsageError(
            f"{out}: a preset writes a directory as {HF_WEIGHTS}; name a .safetensors or .npz "
            "file to write another format"
        )
    return os.path.join(out, HF_WEIGHTS), os.path.join(out, HF_CONFIG)


def _mismatch(report: Any, result: Any, what: str) -> MismatchError:
    problem, fix = report.problem()
    return MismatchError(f"{what}: {problem}; nothing written", result=result, fix=fix)


# ---- presets -----------------------------------------------------------------------------------
def list_presets() -> list[Preset]:
    """The presets shipped with tfckpt (``hf-bert``, ``hf-t5``, ...), each with its ``name``,
    one-line ``description`` and rules.

    >>> [p.name for p in tfckpt.list_presets()][:2]
    ['hf-albert', 'hf-bert']
    """
    from tfckpt.transfer.presets import list_presets as builtins

    return builtins()


def load_preset(spec: str | PathLike) -> Preset:
    """A built-in preset by name, or a preset file (TOML, the built-in ones' format) by path;
    raises UsageError naming the file and key for a mistake in it.

    >>> tfckpt.load_preset("hf-bert").to_hf("bert/pooler/dense/kernel")[2]
    'bert.pooler.dense.weight'
    """
    from tfckpt.transfer.presets import load_preset as load

    return load(spec)


# ---- export ------------------------------------------------------------------------------------
def export(
    src: PathLike,
    out: PathLike,
    *,
    format: str | Format | None = None,
    sub: Iterable[tuple[str, str]] = (),
    mapping: Mapping[str, str] | PathLike | None = None,
    sep: str | None = None,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    no_optimizer: bool = False,
    keep_keys: bool = False,
    strict: bool = False,
    metadata: Mapping[str, str] | None = None,
    preset: str | PathLike | Preset | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    allow_unmapped: bool = False,
    allow_missing: bool = False,
    check: bool = True,
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the tensors of checkpoint ``src`` to ``out``: a ``.safetensors`` file, a ``.npz``
    archive, or a directory (``"dir/"``) of ``.npy`` files; ``format`` names it when ``out``
    does not.

    Names: TF2 keys become object paths (``model/dense/kernel``) unless ``keep_keys``; then
    ``mapping`` / ``sub`` rules (as in ``rename``); then ``sep`` replaces ``/``. ``match``
    (globs) and ``regex`` keep only matching tensors (they see the key and the object path);
    ``no_optimizer`` drops optimizer state. Tensors the format cannot hold (strings in
    safetensors, ...) are skipped, or refused with ``strict``. ``metadata`` goes into the
    safetensors ``__metadata__`` (the .npz comment, the .npy index).

    Streams tensor by tensor (bytes copied in the kernel where possible), re-reads the output
    and compares every tensor with the source (``check=False`` skips that), then renames it
    into place. Raises ``CheckFailed`` if the check fails, ``RenameConflict`` for colliding
    names, ``OutputExists`` without ``force``; nothing is left behind on error.

    ``preset`` (a built-in name such as ``"hf-bert"``, a preset file, or a ``Preset``) converts
    to another framework's names and layouts (Hugging Face transformers for the built-in ones):
    its rules rename (after ``mapping`` / ``sub``), transpose and convert dtypes, and drop
    optimizer state. Before anything is written, every other tensor of the checkpoint that the
    preset does not map is an error unless ``allow_unmapped``, and so is every tensor the model
    needs that the checkpoint lacks unless ``allow_missing``; with ``config`` (a Hugging Face
    ``config.json``), every shape is checked against the architecture. Those raise
    ``MismatchError`` (``result.plan.preset`` has the details). With a preset, ``out`` may be a
    directory: it gets ``model.safetensors`` and a copy of ``config``, what
    ``from_pretrained(out)`` loads.

    >>> result = tfckpt.export("model.ckpt-1000", "model.safetensors", sep=".")
    >>> result.written, len(result.plan.items)
    (True, 12)
    >>> tfckpt.export("bert_model.ckpt", "hf/", preset="hf-bert", config="bert_config.json").output
    'hf/model.safetensors'
    """
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.ops.rules import name_selector
    from tfckpt.transfer.export import ExportOptions, check_output, plan_export, write_export
    from tfckpt.transfer.formats import detect_format

    out = os.fspath(out)
    chosen = _preset(preset)
    _preset_only(chosen, config=config, allow_unmapped=allow_unmapped, allow_missing=allow_missing)
    if chosen is not None and sep:
        raise UsageError("sep does not go with preset (the preset names the tensors)")
    config_fields, config_bytes, config_where = _config(config)
    config_dst = None
    if chosen is not None and (os.path.isdir(out) or out.endswith(("/", os.sep))):
        out, config_dst = _hf_directory(out, _format(format))
        fmt = Format.safetensors
    else:
        fmt = detect_format(out, _format(format), reading=False)
        if chosen is not None and fmt == Format.npy:
            raise UsageError("a preset writes a .safetensors or .npz file, or a directory of it")
    notes: list[str] = []
    options = ExportOptions(
        rules=build_name_rules(sub, mapping, notes=notes),
        sep=_sep(sep),
        select=name_selector(_patterns(match, "match"), _patterns(regex, "regex")),
        no_optimizer=no_optimizer,
        keep_keys=keep_keys,
        strict=strict,
        metadata=_metadata(metadata),
        preset=chosen,
        config=config_fields,
        config_path=config_where,
        allow_unmapped=allow_unmapped,
        allow_missing=allow_missing,
    )
    if config_dst is not None and config_bytes is None:
        notes.append(f"no {HF_CONFIG} written (none given): from_pretrained needs one beside it")
    progress = or_none(progress)
    with open_checkpoint(src) as ckpt:
        notes = ckpt.notes + notes
        plan = plan_export(ckpt, out, fmt, options)
        result = ExportResult(plan, dry_run, notes=notes)
        if plan.preset is not None:
            result.notes += plan.preset.notes
        if dry_run:
            return result
        if plan.preset is not None and not plan.preset.ok:
            raise _mismatch(plan.preset, result, f"{ckpt.prefix} -> {plan.preset.preset}")
        check_output(out, fmt, force)
        if config_dst is not None and config_bytes is not None:
            check_output(config_dst, Format.safetensors, force)  # a plain file, like the weights
        progress.start("export", plan.total_bytes * (2 if check else 1))  # write, re-read
        written = write_export(
            ckpt, plan, force, check, progress.advance, progress.advance, sync=sync
        )
    result.written, result.checked, result.size = True, written.checked, written.bytes
    plan.output = written.output
    result.notes += written.notes
    if config_dst is not None and config_bytes is not None:
        from tfckpt.storage import write_file_atomic

        write_file_atomic(config_dst, config_bytes, force=True)
        result.config = config_dst
    return result


# ---- import ------------------------------------------------------------------------------------
def import_weights(
    src: PathLike,
    dst: PathLike,
    *,
    format: str | Format | None = None,
    sub: Iterable[tuple[str, str]] = (),
    mapping: Mapping[str, str] | PathLike | None = None,
    sep: str | None = None,
    match: Iterable[str] = (),
    regex: Iterable[str] = (),
    like: PathLike | None = None,
    allow_missing: bool = False,
    allow_pickle: bool = False,
    strict: bool = False,
    preset: str | PathLike | Preset | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    allow_unmapped: bool = False,
    check: bool = True,
    dry_run: bool = False,
    force: bool = False,
    sync: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Build a TF checkpoint (V2, one shard) at prefix ``dst`` from ``src``: a ``.safetensors``
    file, a ``.npz`` archive or a directory of ``.npy`` files (``format`` names it when the path
    does not). ``import`` is a Python keyword, hence the name.

    Names: ``sep`` is turned back into ``/``, then ``mapping`` / ``sub`` rules apply; ``match``
    / ``regex`` keep only matching input names. Dtypes come from the file and from the metadata
    ``export`` writes (bfloat16, quantized, int4 and complex128 come back exactly); tensors
    TensorFlow cannot hold are skipped, or refused with ``strict``. Pickled object arrays load
    only with ``allow_pickle`` (it runs code from the file).

    With ``like`` (a checkpoint), every name, dtype and shape is compared with it before
    anything is written: a mismatch raises ``MismatchError`` (its ``result`` holds the
    comparison; with ``dry_run`` the result is returned with ``ok`` False). Names that are its
    TF2 object paths become its keys, and a TF2 ``like``'s object graph is carried over so
    ``tf.train.Checkpoint`` restores the result. ``allow_missing`` accepts names of ``like``
    that the input lacks (optimizer slots, say).

    ``preset`` runs a preset backwards: Hugging Face names become the checkpoint names of the
    original release (then ``mapping`` / ``sub`` apply), transposes are undone, and the names
    and dtypes a preset export recorded come back, so TF -> HF -> TF is bit-identical. Tied
    aliases and buffers are skipped; other names the preset does not map raise
    ``MismatchError`` unless ``allow_unmapped``; ``config`` checks the input's shapes.

    The output is re-read and compared with the input (``check=False`` skips it); the
    ``checkpoint`` state file beside it is updated, as TF's Saver does.

    >>> tfckpt.import_weights("model.safetensors", "out/model.ckpt", like="model.ckpt-1000").ok
    True
    >>> tfckpt.import_weights("hf/model.safetensors", "tf/bert_model.ckpt", preset="hf-bert").ok
    True
    """
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.bundle.writer import check_destination
    from tfckpt.ops.rules import name_selector
    from tfckpt.transfer.formats import detect_format
    from tfckpt.transfer.importer import ImportOptions, open_input, plan_import, write_import

    src = os.fspath(src)
    dst = output_prefix(dst)
    fmt = detect_format(src, _format(format), reading=True)
    if allow_missing and like is None:
        raise UsageError("allow_missing goes with like (a checkpoint to compare with)")
    chosen = _preset(preset)
    _preset_only(chosen, config=config, allow_unmapped=allow_unmapped)
    if chosen is not None and sep:
        raise UsageError("sep does not go with preset (the preset names the tensors)")
    config_fields, _, config_where = _config(config)
    notes: list[str] = []
    names_filter = name_selector(_patterns(match, "match"), _patterns(regex, "regex"))
    options = ImportOptions(
        rules=build_name_rules(sub, mapping, notes=notes),
        sep=_sep(sep),
        select=(lambda name: names_filter([name])) if names_filter else None,
        strict=strict,
        allow_missing=allow_missing,
        preset=chosen,
        config=config_fields,
        config_path=config_where,
        allow_unmapped=allow_unmapped,
    )
    progress = or_none(progress)
    with ExitStack() as stack:
        inp = stack.enter_context(open_input(src, fmt, allow_pickle))
        like_ckpt = stack.enter_context(open_checkpoint(like)) if like is not None else None
        if like_ckpt is not None:
            notes = like_ckpt.notes + notes
        plan = plan_import(inp, dst, options, like_ckpt)
        result = ImportResult(plan, dry_run, notes=notes)
        if plan.preset is not None:
            result.notes += plan.preset.notes
        if dry_run:
            return result
        if plan.preset is not None and not plan.preset.ok:
            raise _mismatch(plan.preset, result, f"{plan.source} -> {plan.preset.preset}")
        if plan.like is not None and not plan.like.ok:
            raise MismatchError(
                f"{plan.source} does not match {plan.like.like}: {plan.like.summary()}; "
                "nothing written",
                result=result,
            )
        check_destination(dst, force)
        progress.start("import", plan.total_bytes * (2 if check else 1))
        written = write_import(inp, plan, force, check, progress.advance, progress.advance, sync)
    result.written, result.checked = True, written.checked
    return result


__all__ = [
    "ExportResult",
    "ImportResult",
    "export",
    "import_weights",
    "list_presets",
    "load_preset",
]
