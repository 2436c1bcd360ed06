"""``import``: a TF checkpoint (V2 bundle, one shard) from safetensors, .npz or .npy files.

Names go through ``--sep`` (the given separator back to ``/``), then the rename rules. With a
``like`` checkpoint, names that are its TF2 object paths become its keys, every name, dtype and
shape is compared with it before anything is written, and a TF2 ``like``'s object graph is
carried over (minus the keys the input lacks) so ``tf.train.Checkpoint`` can restore the result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from tfckpt.bundle.reader import data_filename, num_elements
from tfckpt.bundle.state import record_latest
from tfckpt.bundle.table import crc32c, mask_crc
from tfckpt.dtypes import DType
from tfckpt.errors import (
    CheckFailed,
    CheckpointNotFound,
    CorruptCheckpoint,
    UnrepresentableTensor,
)
from tfckpt.ops.rules import NameRules
from tfckpt.transfer.common import CHUNK, InputFile, InputTensor, Skipped, counted
from tfckpt.transfer.formats import Format, file_format
from tfckpt.transfer.names import check_names
from tfckpt.transfer.presets import (
    META_SOURCE_DTYPES,
    META_TF_NAMES,
    Mapped,
    Preset,
    PresetReport,
    check_against,
    recorded,
)

OnBytes = Callable[[int], None]


def open_input(path: str, fmt: Format, allow_pickle: bool = False) -> InputFile:
    """The file (or .npy directory) at ``path`` opened for reading as ``fmt``."""
    if not os.path.exists(path):
        raise CheckpointNotFound(f"{path}: no such file or directory")
    return file_format(fmt).open(path, allow_pickle)


@dataclass
class ImportOptions:
    rules: NameRules = field(default_factory=NameRules)
    sep: str | None = None  # the input's separator, turned back into "/"
    select: Callable[[str], bool] | None = None  # on the input's names
    strict: bool = False
    allow_missing: bool = False  # with a like checkpoint: its names may be absent
    preset: Preset | None = None  # the input's names (HF) -> checkpoint names, before the rules
    config: dict[str, Any] | None = None  # the HF config.json the input's shapes must fit
    config_path: str | None = None
    allow_unmapped: bool = False


@dataclass
class ImportItem:
    source: str  # the name in the input
    name: str  # the checkpoint key
    dtype: DType  # as written (a preset may restore the checkpoint's original dtype)
    shape: tuple[int, ...]  # as written (a preset's transpose undone)
    tensor: InputTensor
    transpose: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes in the output bundle (strings: 0, known after encoding)."""
        if self.dtype.is_string:
            return 0
        return num_elements(self.shape) * self.dtype.itemsize

    @property
    def reshaped(self) -> bool:
        """Whether the values pass through numpy (transposed or converted by a preset)."""
        return self.transpose or self.dtype != self.tensor.dtype

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "dtype": self.dtype.name,
            "stored": self.tensor.stored,
            "shape": list(self.shape),
            "bytes": self.nbytes,
        }


def item_chunks(inp: InputFile, item: ImportItem) -> Iterator[bytes | memoryview]:
    """The item's bytes as the bundle stores them: the input's, or (transposed / converted by a
    preset) the whole tensor passed through numpy."""
    t = item.tensor
    if not item.reshaped:
        yield from inp.chunks(t)
        return
    import numpy as np

    assert t.dtype is not None and t.dtype.numpy is not None and item.dtype.numpy is not None
    data = b"".join(bytes(chunk) for chunk in inp.chunks(t))
    values = np.frombuffer(data, dtype=t.dtype.numpy).reshape(t.shape)
    if item.transpose:
        values = np.transpose(values)
    if item.dtype != t.dtype:
        values = values.astype(item.dtype.numpy)
    out = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
    for pos in range(0, out.size, CHUNK):
        yield out[pos : pos + CHUNK].data


@dataclass
class LikeReport:
    """Names, dtypes and shapes of the import compared with an existing checkpoint."""

    like: str
    matched: int = 0
    missing: list[str] = field(default_factory=list)  # in the like checkpoint, not imported
    unexpected: list[str] = field(default_factory=list)  # imported, not in the like checkpoint
    dtype: list[dict[str, Any]] = field(default_factory=list)
    shape: list[dict[str, Any]] = field(default_factory=list)
    allow_missing: bool = False

    @property
    def ok(self) -> bool:
        return not (
            self.unexpected or self.dtype or self.shape or (self.missing and not self.allow_missing)
        )

    def summary(self) -> str:
        """``2 not in it, 1 missing, 0 dtype, 1 shape (5 match)``."""
        missing = 0 if self.allow_missing else len(self.missing)
        return (
            f"{len(self.unexpected)} not in it, {missing} missing, {len(self.dtype)} dtype, "
            f"{len(self.shape)} shape ({self.matched} match)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "like": self.like,
            "ok": self.ok,
            "matched": self.matched,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "dtype": self.dtype,
            "shape": self.shape,
            "allow_missing": self.allow_missing,
        }


@dataclass
class ImportPlan:
    source: str
    output: str
    format: Format
    items: list[ImportItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    filtered: int = 0
    like: LikeReport | None = None
    object_graph: bytes | None = None  # carried over from a TF2 like checkpoint
    preset: PresetReport | None = None  # what a preset mapped back, and could not

    @property
    def total_bytes(self) -> int:
        return sum(i.nbytes for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "format": self.format.value,
            "count": len(self.items),
            "bytes": self.total_bytes,
            "tensors": [i.to_dict() for i in self.items],
            "skipped": [s.to_dict() for s in self.skipped],
            "filtered": self.filtered,
            "like": self.like.to_dict() if self.like else None,
            "object_graph": self.object_graph is not None,
            **({"preset": self.preset.to_dict()} if self.preset is not None else {}),
        }


@dataclass
class ImportWritten:
    output: str
    tensors: int
    checked: bool


def plan_import(
    inp: InputFile,
    output: str,
    options: ImportOptions | None = None,
    like: Checkpoint | None = None,
) -> ImportPlan:
    options = options or ImportOptions()
    plan = ImportPlan(source=inp.path, output=output, format=inp.format)
    like_keys: dict[str, Any] = {}
    by_path: dict[str, str] = {}
    if like is not None:
        from tfckpt.transfer.names import checkpoint_paths

        for key, path in checkpoint_paths(like).items():
            by_path.setdefault(path, key)
        for info in like.tensors(include_object_graph=False):
            like_keys[info.name] = info
            if info.object_path:
                by_path.setdefault(info.object_path, info.name)
    sources: dict[str, list[str]] = {}
    mapper = _ReversePreset(inp, options) if options.preset is not None else None
    for t in inp.tensors:
        if options.select is not None and not options.select(t.name):
            plan.filtered += 1
            continue
        if t.dtype is None:
            plan.skipped.append(Skipped(t.name, t.stored, t.reason or "not importable"))
            continue
        if mapper is not None:
            item = mapper.item(t)
            if item is None:
                continue
            item.name = options.rules.apply(item.name)
        else:
            name = t.name.replace(options.sep, "/") if options.sep else t.name
            item = ImportItem(t.name, options.rules.apply(name), t.dtype, t.shape, t)
        if like is not None and item.name not in like_keys and item.name in by_path:
            item.name = by_path[item.name]
        sources.setdefault(item.name, []).append(t.name)
        plan.items.append(item)
    check_names(sources)
    if mapper is not None:
        plan.preset = mapper.finish()
    if plan.skipped and options.strict:
        listed = ", ".join(f"{s.source} ({s.reason})" for s in plan.skipped[:10])
        raise UnrepresentableTensor(
            f"{len(plan.skipped)} tensor(s) cannot be imported: {listed}", fix="strict"
        )
    plan.items.sort(key=lambda i: i.name)
    if like is not None:
        plan.like = _compare_like(like, like_keys, plan.items, options.allow_missing)
        if like.is_object_based and not any(i.name == OBJECT_GRAPH_KEY for i in plan.items):
            from tfckpt.bundle.objgraph import drop_keys

            graph = like.object_graph_bytes()
            if graph is not None:
                missing = set(plan.like.missing)
                plan.object_graph = drop_keys(graph, missing) if missing else graph
    return plan


class _ReversePreset:
    """HF names -> checkpoint names through a preset (transposes undone, and the names and
    dtypes a preset export recorded in the metadata restored), collecting its report."""

    def __init__(self, inp: InputFile, options: ImportOptions) -> None:
        assert options.preset is not None
        self.preset = options.preset
        self.config = options.config
        # A missing tensor is reported, not refused: `like` checks the result against the
        # checkpoint the original code restores.
        self.report = PresetReport(
            preset=self.preset.name,
            direction="import",
            config=options.config_path,
            allow_unmapped=options.allow_unmapped,
            allow_missing=True,
        )
        self.names = recorded(inp.metadata, META_TF_NAMES, inp.path)
        self.dtypes = recorded(inp.metadata, META_SOURCE_DTYPES, inp.path)
        self.matches: list[tuple[Any, dict[str, Any], str, tuple[int, ...]]] = []
        self.where = inp.path

    def item(self, t: InputTensor) -> ImportItem | None:
        from tfckpt.dtypes import dtype_from_name

        assert t.dtype is not None
        preset = self.preset
        tied = preset.tied_alias(t.name)
        if tied is not None:
            self.report.dropped.append({"name": t.name, "reason": f"tied to {tied.same_as}"})
            return None
        if preset.ignored_hf(t.name):
            self.report.dropped.append({"name": t.name, "reason": "not a weight (a buffer)"})
            return None
        found = preset.to_tf(t.name)
        if found is None:
            self.report.unmapped.append(t.name)
            return None
        rule, values, tf_name = found
        tf_name = self.names.get(t.name, tf_name)
        dtype = t.dtype
        if t.name in self.dtypes:
            try:
                dtype = dtype_from_name(self.dtypes[t.name])
            except KeyError:
                raise CorruptCheckpoint(
                    f"{self.where}: unknown dtype {self.dtypes[t.name]!r} recorded for {t.name!r}"
                ) from None
        if dtype.numpy is None or (dtype != t.dtype and not dtype.is_floating):
            dtype = t.dtype
        shape = tuple(reversed(t.shape)) if rule.transpose else t.shape
        self.matches.append((rule, values, t.name, t.shape))
        self.report.mapped.append(
            Mapped(tf_name, t.name, rule.index, rule.transpose, t.dtype.name, dtype.name, shape)
        )
        return ImportItem(t.name, tf_name, dtype, shape, t, transpose=rule.transpose)

    def finish(self) -> PresetReport:
        check_against(self.preset, self.report, self.matches, self.config)
        if self.report.missing:
            self.report.notes.append(
                f"{len(self.report.missing)} tensor(s) {self.preset.name} maps are not in the "
                "input: " + ", ".join(self.report.missing[:5])
            )
        return self.report


def _compare_like(
    like: Checkpoint, like_keys: dict[str, Any], items: list[ImportItem], allow_missing: bool
) -> LikeReport:
    report = LikeReport(like=like.prefix, allow_missing=allow_missing)
    names = {i.name for i in items}
    report.missing = sorted(set(like_keys) - names)
    for item in items:
        info = like_keys.get(item.name)
        if info is None:
            report.unexpected.append(item.name)
            continue
        if info.dtype != item.dtype:
            report.dtype.append(
                {"name": item.name, "dtype": item.dtype.name, "like": info.dtype.name}
            )
        elif info.shape != item.shape:
            report.shape.append(
                {"name": item.name, "shape": list(item.shape), "like": list(info.shape)}
            )
        else:
            report.matched += 1
    return report


def write_import(
    inp: InputFile,
    plan: ImportPlan,
    force: bool = False,
    check: bool = True,
    on_bytes: OnBytes | None = None,
    on_check_bytes: OnBytes | None = None,
    sync: bool = False,
) -> ImportWritten:
    """Write the bundle (atomically, by BundleWriter; fsync'ed with ``sync``), then re-read it
    against the input."""

    from tfckpt.bundle.writer import BundleWriter, make_entry
    from tfckpt.ops.writing import add_object_graph

    if plan.like is not None and not plan.like.ok:
        raise CheckFailed(f"{plan.source} does not match {plan.like.like}: nothing written")
    with BundleWriter(plan.output, num_shards=1, force=force, sync=sync) as writer:
        for item in plan.items:
            t = item.tensor
            if t.how == "string":
                writer.add_array(item.name, inp.strings(t), item.dtype)
                continue
            offset, size, crc = writer.add_stream(counted(item_chunks(inp, item), on_bytes))
            if size != item.nbytes:
                raise CorruptCheckpoint(
                    f"{plan.source}: {item.source!r} gave {size} bytes, expected {item.nbytes}"
                )
            writer.add_entry(item.name, make_entry(item.dtype, item.shape, 0, offset, size, crc))
        if plan.object_graph is not None:
            add_object_graph(writer, plan.object_graph)
        writer.commit()
        record_latest(writer.prefix)
    if check:
        try:
            _check_import(inp, plan, on_check_bytes)
        except CheckFailed:
            _remove_prefix(plan.output)
            raise
    return ImportWritten(plan.output, len(plan.items), check)


def _remove_prefix(prefix: str) -> None:
    for path in (prefix + ".index", data_filename(prefix, 0, 1)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _check_import(inp: InputFile, plan: ImportPlan, on_bytes: OnBytes | None) -> None:
    from tfckpt.bundle.checkpoint import open_checkpoint

    with open_checkpoint(plan.output) as out:
        infos = {i.name: i for i in out.tensors(include_object_graph=False)}
        if sorted(infos) != [i.name for i in plan.items]:
            raise CheckFailed(f"{plan.output}: holds other names than planned")
        for item in plan.items:
            info = infos[item.name]
            if info.dtype != item.dtype or info.shape != item.shape:
                raise CheckFailed(f"{plan.output}: {item.name!r} has another dtype or shape")
            if item.tensor.how == "string":
                written = [bytes(v) for v in out.read(item.name).reshape(-1)]
                given = [bytes(v) for v in inp.strings(item.tensor).reshape(-1)]
                if written != given:
                    raise CheckFailed(f"{plan.output}: {item.name!r} differs from the input")
                continue
            entry = out.entry(item.name)
            try:
                out.bundle.check_crc(entry)  # the stored bytes are intact ...
            except CorruptCheckpoint as exc:
                raise CheckFailed(str(exc)) from None
            crc = 0
            for chunk in counted(item_chunks(inp, item), on_bytes):
                crc = crc32c(chunk, crc)
            if mask_crc(crc) != entry.crc32c:  # ... and equal to the input's
                raise CheckFailed(f"{plan.output}: {item.name!r} differs from {item.source!r}")
