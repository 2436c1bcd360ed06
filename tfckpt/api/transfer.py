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

    @property
    def output(self) -> str:
        return str(self.plan.output)

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the same keys with and without ``dry_run``."""
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "written": self.written,
            "checked": self.checked,
            "notes": list(self.notes),
        }


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
        return self.plan.like is None or bool(self.plan.like.ok)

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

    >>> result = tfckpt.export("model.ckpt-1000", "model.safetensors", sep=".")
    >>> result.written, len(result.plan.items)
    (True, 12)
    """
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.ops.rules import name_selector
    from tfckpt.transfer.export import ExportOptions, check_output, plan_export, write_export
    from tfckpt.transfer.formats import detect_format

    out = os.fspath(out)
    fmt = detect_format(out, _format(format), reading=False)
    notes: list[str] = []
    options = ExportOptions(
        rules=build_name_rules(sub, mapping, notes=notes),
        sep=_sep(sep),
        select=name_selector(_patterns(match, "match"), _patterns(regex, "regex")),
        no_optimizer=no_optimizer,
        keep_keys=keep_keys,
        strict=strict,
        metadata=_metadata(metadata),
    )
    progress = or_none(progress)
    with open_checkpoint(src) as ckpt:
        notes = ckpt.notes + notes
        plan = plan_export(ckpt, out, fmt, options)
        result = ExportResult(plan, dry_run, notes=notes)
        if dry_run:
            return result
        check_output(out, fmt, force)
        progress.start("export", plan.total_bytes * (2 if check else 1))  # write, re-read
        written = write_export(
            ckpt, plan, force, check, progress.advance, progress.advance, sync=sync
        )
    result.written, result.checked, result.size = True, written.checked, written.bytes
    plan.output = written.output
    result.notes += written.notes
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

    The output is re-read and compared with the input (``check=False`` skips it); the
    ``checkpoint`` state file beside it is updated, as TF's Saver does.

    >>> tfckpt.import_weights("model.safetensors", "out/model.ckpt", like="model.ckpt-1000").ok
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
    notes: list[str] = []
    names_filter = name_selector(_patterns(match, "match"), _patterns(regex, "regex"))
    options = ImportOptions(
        rules=build_name_rules(sub, mapping, notes=notes),
        sep=_sep(sep),
        select=(lambda name: names_filter([name])) if names_filter else None,
        strict=strict,
        allow_missing=allow_missing,
    )
    progress = or_none(progress)
    with ExitStack() as stack:
        inp = stack.enter_context(open_input(src, fmt, allow_pickle))
        like_ckpt = stack.enter_context(open_checkpoint(like)) if like is not None else None
        if like_ckpt is not None:
            notes = like_ckpt.notes + notes
        plan = plan_import(inp, dst, options, like_ckpt)
        result = ImportResult(plan, dry_run, notes=notes)
        if dry_run:
            return result
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


__all__ = ["ExportResult", "ImportResult", "export", "import_weights"]
