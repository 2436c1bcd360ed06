"""``export``: a checkpoint's tensors into safetensors, .npz or a directory of .npy files.

Plan first (names, dtypes, what is skipped, the format's layout), then stream tensor by tensor
into a temp output that is checked and renamed into place. Plain tensors of a V2 bundle are
copied byte for byte (in-kernel with ``copy_file_range`` where the output is a plain file), so
memory stays bounded by the largest tensor that needs decoding (partitioned, V1, converted) and
is otherwise a few MB. The check re-reads the output and compares every tensor with the source:
copied tensors by their stored CRC32C, the others value by value.

Everything format-specific is asked of the format's object (``formats.file_format``): how a
dtype is stored, the layout, the destination rules, the writer, the checker, publication.

An export of plain tensors only (no preset; none partitioned or converted) is planned in
columns (``transfer.columns``): arrays instead of one record per tensor, so that 10^5-10^6
small tensors cost a few microseconds each; safetensors also writes and checks them that way.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo
from tfckpt.dtypes import DType, dtype_from_enum
from tfckpt.errors import CorruptCheckpoint, UnrepresentableTensor, UsageError
from tfckpt.ops.rules import NameRules
from tfckpt.storage import check_parent, is_url, sync_tree, temp_name, write_error
from tfckpt.transfer.common import (
    EarlyCheck,
    ExportItem,
    ExportPlan,
    OnBytes,
    Skipped,
    Source,
    remove_output,
)
from tfckpt.transfer.formats import Format, file_format
from tfckpt.transfer.names import check_names, checkpoint_paths
from tfckpt.transfer.presets import (
    META_PRESET,
    META_SOURCE_DTYPES,
    META_TF_NAMES,
    Mapped,
    Preset,
    PresetReport,
    check_against,
)
from tfckpt.transfer.safetensors import ST_DTYPES_KEY

__all__ = [
    "ExportItem",
    "ExportOptions",
    "ExportPlan",
    "ExportWritten",
    "Skipped",
    "check_output",
    "output_name",
    "plan_export",
    "write_export",
]


@dataclass
class ExportOptions:
    rules: NameRules = field(default_factory=NameRules)
    preset: Preset | None = None  # checkpoint names -> another framework's, after the rules
    config: dict[str, Any] | None = None  # the HF config.json the preset's shapes must fit
    config_path: str | None = None
    allow_unmapped: bool = False
    allow_missing: bool = False
    sep: str | None = None  # replaces "/" in output names (after the rules)
    select: Callable[[list[str]], bool] | None = None  # sees the key and the object paths
    no_optimizer: bool = False
    keep_keys: bool = False  # TF2: keep checkpoint keys instead of object paths
    strict: bool = False  # refuse tensors the format cannot hold instead of skipping them
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ExportWritten:
    output: str
    format: Format
    tensors: int
    bytes: int  # size of the output (file, or all files of the directory)
    checked: bool
    notes: list[str] = field(default_factory=list)


# ---- planning ---------------------------------------------------------------------------------
def optimizer_filter(ckpt: Checkpoint) -> Callable[[str], bool]:
    """Whether a key of ``ckpt`` is optimizer state: TF2 by the object graph, TF1 by name."""
    from tfckpt.names import TF2_SLOT_MARK, is_tf1_slot

    if not ckpt.is_object_based:
        return is_tf1_slot
    from tfckpt.bundle.objgraph import optimizer_keys

    graph = ckpt.object_graph_bytes()
    keys = optimizer_keys(graph) if graph is not None else set()
    return lambda name: TF2_SLOT_MARK in name or name in keys


def output_name(info: TensorInfo, options: ExportOptions, path: str | None = None) -> str:
    """``path`` (TF2: the readable object path), rules, then ``sep``."""
    base = info.name if options.keep_keys or path is None else path
    name = options.rules.apply(base)
    if options.sep:
        name = name.replace("/", options.sep)
    return name


def plan_export(
    ckpt: Checkpoint, output: str, fmt: Format, options: ExportOptions | None = None
) -> ExportPlan:
    """Decide names, stored dtypes, layout and skips; raises on name conflicts (and on
    unrepresentable tensors with ``strict``). With a preset, ``plan.preset`` reports what it
    mapped, dropped, could not map, and found missing; the caller decides what to refuse."""
    options = options or ExportOptions()
    target = file_format(fmt)
    plan = ExportPlan(source=ckpt.prefix, output=output, format=fmt)
    mapper = None
    if options.preset is not None or not _plan_columns(ckpt, plan, fmt, options):
        mapper = _plan_items(ckpt, plan, fmt, options)
    if plan.skipped and options.strict:
        listed = ", ".join(f"{s.source} ({s.dtype})" for s in plan.skipped[:10])
        more = f" and {len(plan.skipped) - 10} more" if len(plan.skipped) > 10 else ""
        raise UnrepresentableTensor(
            f"{len(plan.skipped)} tensor(s) cannot be stored in {fmt.value}: {listed}{more}",
            fix="strict",
        )
    reserved = {ST_DTYPES_KEY, META_PRESET, META_TF_NAMES, META_SOURCE_DTYPES}
    taken = sorted(reserved & set(options.metadata))
    if taken:
        raise UsageError(f"metadata key {taken[0]} is reserved for tfckpt")
    if mapper is not None:
        plan.preset = mapper.finish()
        plan.metadata = {**mapper.metadata(), **options.metadata}
    else:
        plan.metadata = dict(options.metadata)
    target.layout(plan)
    return plan


def _plan_items(
    ckpt: Checkpoint, plan: ExportPlan, fmt: Format, options: ExportOptions
) -> _PresetMapper | None:
    """Plan tensor by tensor, one ``ExportItem`` each (presets, partitioned, converted, V1)."""
    target = file_format(fmt)
    preset = options.preset
    mapper = _PresetMapper(options, ckpt) if preset is not None else None
    is_optimizer = optimizer_filter(ckpt) if options.no_optimizer or preset else None
    by_name: dict[str, list[str]] = {}
    paths = checkpoint_paths(ckpt)
    for info in ckpt.tensors(include_object_graph=False):
        path = paths.get(info.name)
        if options.select is not None:
            candidates = [info.name] + [p for p in (info.object_path, path) if p]
            if not options.select(candidates):
                plan.filtered += 1
                continue
        if mapper is not None:
            item = mapper.item(ckpt, info, output_name(info, options, path), fmt, is_optimizer)
            if item is None:
                continue
        elif is_optimizer is not None and is_optimizer(info.name):
            plan.dropped.append(info.name)
            continue
        else:
            item = plan_item(ckpt, info, output_name(info, options, path), fmt)
        if isinstance(item, Skipped):
            plan.skipped.append(item)
            continue
        by_name.setdefault(item.name, []).append(info.name)
        plan.items.append(item)
    if mapper is not None:
        for alias in mapper.aliases(plan.items):
            by_name.setdefault(alias.name, []).append(alias.source)
            plan.items.append(alias)
    check_names(by_name, target.reserved_names or None)
    return mapper


# Tests set this False to plan (and so write and check) every export tensor by tensor.
COLUMNS = True


def _plan_columns(ckpt: Checkpoint, plan: ExportPlan, fmt: Format, options: ExportOptions) -> bool:
    """``_plan_items`` for an export of plain tensors only (no preset; a local or remote V2
    bundle; no partitioned tensor; every dtype stored as the checkpoint's bytes or not at all),
    as ``ExportColumns``: the same names, checks, skips and errors, a few passes over arrays
    instead of one ``ExportItem`` per tensor. False (and the plan untouched) otherwise."""
    target = file_format(fmt)
    if not COLUMNS or ckpt.format != "V2":
        return False
    listing = ckpt.listing(include_object_graph=False)
    if listing.nslices.count(0) != len(listing):
        return False
    kinds: dict[int, tuple[str, int] | str] = {}
    for code in set(listing.dtype):
        kind = target.raw_storage(dtype_from_enum(code))
        if kind is None:
            return False
        kinds[code] = kind
    import numpy as np

    from tfckpt.transfer.columns import ExportColumns

    names = listing.names
    source = listing.source
    assert source is not None  # a V2 listing knows its index rows
    rows = (
        np.arange(source.start, source.stop, dtype=np.int64)
        if isinstance(source, range)
        else np.frombuffer(source, dtype=np.int64)
    )
    paths = checkpoint_paths(ckpt)
    is_optimizer = optimizer_filter(ckpt) if options.no_optimizer else None
    skipping = any(isinstance(kind, str) for kind in kinds.values())
    if options.select is not None or is_optimizer is not None or skipping:
        keep = []
        objects = listing.paths or [None] * len(names)
        for i, (name, code, obj) in enumerate(zip(names, listing.dtype, objects)):
            if options.select is not None:
                candidates = [name] + [p for p in (obj, paths.get(name)) if p]
                if not options.select(candidates):
                    plan.filtered += 1
                    continue
            if is_optimizer is not None and is_optimizer(name):
                plan.dropped.append(name)
                continue
            kind = kinds[code]
            if isinstance(kind, str):
                plan.skipped.append(Skipped(name, dtype_from_enum(code).name, kind))
                continue
            keep.append(i)
        names = [names[i] for i in keep]
        rows = rows[np.array(keep, dtype=np.int64)]
    bases = names
    if paths and not options.keep_keys:
        bases = [p if (p := paths.get(name)) is not None else name for name in names]
    if not options.rules.empty:
        bases = list(map(options.rules.apply, bases))
    if options.sep:
        bases = [base.replace("/", options.sep) for base in bases]
    index = ckpt.bundle.columns
    stored = {}
    lookup = np.zeros(256, dtype=np.int64)
    for code, kind in kinds.items():
        if not isinstance(kind, str):
            stored[code] = (dtype_from_enum(code), kind[0])
            lookup[code] = kind[1]
    nbytes = index.np("size")[rows]
    wrong = np.flatnonzero(nbytes != index.np("nelem")[rows] * lookup[index.np("dtype")[rows]])
    if wrong.size:  # raised as the per-tensor plan raises it
        plan_item(ckpt, ckpt.info(names[int(wrong[0])]), bases[int(wrong[0])], fmt)
        raise AssertionError("plan_item accepted a size the columns refused")  # not reached
    reserved = target.reserved_names
    if bases is names:  # the keys themselves: sorted and distinct
        problem = (bool(names) and not names[0]) or bool(_found(names, reserved))
    else:
        distinct = set(bases)
        problem = len(distinct) != len(bases) or "" in distinct or not distinct.isdisjoint(reserved)
    if problem:
        by_name: dict[str, list[str]] = {}
        for base, name in zip(bases, names):
            by_name.setdefault(base, []).append(name)
        check_names(by_name, reserved or None)
    plan.columns = ExportColumns(index, rows, names, bases, stored, nbytes)
    return True


def _found(names: list[str], wanted: Iterable[str]) -> list[str]:
    """Those of ``wanted`` that the sorted ``names`` hold (binary search)."""
    out = []
    for name in wanted:
        i = bisect_left(names, name)
        if i < len(names) and names[i] == name:
            out.append(name)
    return out


def plan_item(
    ckpt: Checkpoint,
    info: TensorInfo,
    name: str,
    fmt: Format,
    dtype: DType | None = None,
    transpose: bool = False,
) -> ExportItem | Skipped:
    """How the tensor ``info`` goes into ``fmt`` under ``name``: copied raw (a plain tensor of a
    V2 bundle whose bytes the format keeps), decoded, converted, or skipped with a reason.
    ``dtype`` (another dtype to write the values as) and ``transpose`` (axes reversed) come
    from a preset; both make the values pass through numpy."""
    source_dtype = info.dtype
    dtype = dtype or source_dtype
    shape = tuple(reversed(info.shape)) if transpose else info.shape
    view = info._replace(dtype=dtype, shape=shape)  # TensorInfo is a NamedTuple
    storage = file_format(fmt).storage(dtype, view)
    if isinstance(storage, str):
        return Skipped(info.name, dtype.name, storage)
    if storage.how is None and (dtype != source_dtype or transpose):
        storage.how = "convert"
        storage.convert_to = storage.convert_to or dtype.name
    if storage.how is not None:  # bytes made by conversion, or strings
        return ExportItem(
            info.name,
            name,
            dtype,
            shape,
            storage.stored,
            storage.nbytes,
            storage.how,
            storage.convert_to,
            stored_shape=storage.stored_shape,
            transpose=transpose,
            source_dtype=source_dtype if dtype != source_dtype else None,
        )
    raw_ok = ckpt.format == "V2" and info.num_slices == 0
    entry = ckpt.entry(info.name) if raw_ok else None
    if entry is not None and entry.size != storage.nbytes:
        raise CorruptCheckpoint(
            f"{ckpt.prefix}: {info.name!r} stores {entry.size} bytes, shape "
            f"{list(info.shape)} of {dtype.name} needs {storage.nbytes}"
        )
    item = ExportItem(
        info.name,
        name,
        dtype,
        info.shape,
        storage.stored,
        storage.nbytes,
        "raw" if raw_ok else "decode",
        stored_shape=storage.stored_shape,
    )
    if entry is not None:
        item.src_pos = (entry.shard_id, entry.offset)
    return item


class _PresetMapper:
    """Checkpoint names -> HF names through a preset, collecting its report."""

    def __init__(self, options: ExportOptions, ckpt: Checkpoint) -> None:
        assert options.preset is not None
        self.preset = options.preset
        self.config = options.config
        self.report = PresetReport(
            preset=self.preset.name,
            direction="export",
            config=options.config_path,
            allow_unmapped=options.allow_unmapped,
            allow_missing=options.allow_missing,
        )
        self.matches: list[tuple[Any, dict[str, Any], str, tuple[int, ...]]] = []
        self.tf_names: dict[str, str] = {}  # hf -> checkpoint name, where import would differ
        self.source_dtypes: dict[str, str] = {}  # hf -> checkpoint dtype, where converted

    def item(
        self,
        ckpt: Checkpoint,
        info: TensorInfo,
        name: str,
        fmt: Format,
        is_optimizer: Callable[[str], bool] | None,
    ) -> ExportItem | Skipped | None:
        from tfckpt.dtypes import dtype_from_name

        preset = self.preset
        _, stripped = preset.strip(name)
        reason = preset.dropped(stripped)
        if reason is None and is_optimizer is not None and is_optimizer(info.name):
            reason = "optimizer state"
        if reason is not None:
            self.report.dropped.append({"name": info.name, "reason": reason})
            return None
        found = preset.to_hf(stripped)
        if found is None:
            self.report.unmapped.append(info.name)
            return None
        rule, values, hf = found
        dtype = dtype_from_name(preset.dtypes.get(info.dtype.name, info.dtype.name))
        item = plan_item(ckpt, info, hf, fmt, dtype, rule.transpose)
        if isinstance(item, Skipped):
            return item
        self.matches.append((rule, values, hf, item.shape))
        back = preset.to_tf(hf)
        if back is None or back[2] != name:
            self.tf_names[hf] = name
        if dtype != info.dtype:
            self.source_dtypes[hf] = info.dtype.name
        self.report.mapped.append(
            Mapped(
                info.name, hf, rule.index, rule.transpose, info.dtype.name, dtype.name, item.shape
            )
        )
        return item

    def aliases(self, items: list[ExportItem]) -> list[ExportItem]:
        """Copies of tied tensors the preset emits under their alias names too."""
        by_name = {i.name: i for i in items}
        out = []
        for tied in self.preset.tied:
            if not tied.emit:
                continue
            target = by_name.get(tied.same_as)
            if target is None:
                self.report.missing.append(tied.hf)
                continue
            out.append(replace(target, name=tied.hf, begin=0, file=None))
            self.report.mapped.append(
                Mapped(
                    target.source,
                    tied.hf,
                    -1,
                    target.transpose,
                    (target.source_dtype or target.dtype).name,
                    target.dtype.name,
                    target.shape,
                    alias_of=tied.same_as,
                )
            )
        return out

    def finish(self) -> PresetReport:
        check_against(self.preset, self.report, self.matches, self.config)
        return self.report

    def metadata(self) -> dict[str, str]:
        out = {**self.preset.metadata, META_PRESET: self.preset.name}
        if self.tf_names:
            out[META_TF_NAMES] = json.dumps(self.tf_names, sort_keys=True)
        if self.source_dtypes:
            out[META_SOURCE_DTYPES] = json.dumps(self.source_dtypes, sort_keys=True)
        return out


# ---- destination --------------------------------------------------------------------------------
def check_output(path: str, fmt: Format, force: bool) -> None:
    """Refuse an existing output without ``force`` (the format's rules: a directory format never
    replaces a directory that is not one of its exports, even with ``force``)."""
    check_parent(path.rstrip("/") or "/", path)
    file_format(fmt).check_output(path, force)


# ---- writing ----------------------------------------------------------------------------------
def write_export(
    ckpt: Checkpoint,
    plan: ExportPlan,
    force: bool = False,
    check: bool = True,
    on_bytes: OnBytes | None = None,
    on_check_bytes: OnBytes | None = None,
    sync: bool = False,
) -> ExportWritten:
    """Write the plan's output under a temp name, check it, and rename it into place.

    Like ``cp``, TensorFlow's own writer and safetensors, nothing is fsync'ed unless ``sync``:
    the rename already makes the output appear whole or not at all (kill, Ctrl-C, disk full);
    ``sync`` adds durability across power loss at the disk's write speed. Missing parent
    directories are created (and removed again if the export fails).
    """
    from tfckpt.storage import make_dirs

    target = file_format(plan.format)
    check_output(plan.output, plan.format, force)
    final = target.final_path(plan.output)
    made = make_dirs(os.path.dirname(os.path.abspath(final)))
    tmp = temp_name(final)
    src = Source(ckpt)
    if is_url(ckpt.prefix):  # streamed tensor by tensor, fetched ahead
        ckpt.prefetch(item.source for item in plan.items)
    notes: list[str] = []
    early = EarlyCheck(on_check_bytes, target.warm_up) if check else None
    try:
        notes += target.write(src, plan, tmp, on_bytes, early)
        if early is not None:
            target.check(src, plan, tmp, on_check_bytes, early.results())
        if sync:
            sync_tree(tmp)
        size = target.publish(tmp, final, force)
        if sync:
            sync_tree(os.path.dirname(os.path.abspath(final)))
    except OSError as exc:
        remove_output(tmp, made)
        raise write_error(final, exc) from None
    except BaseException:
        remove_output(tmp, made)
        raise
    finally:
        if early is not None:
            early.close()
        src.close()
    return ExportWritten(final, plan.format, plan.count, size, check, notes)
