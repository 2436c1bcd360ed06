"""``export``: a checkpoint's tensors into safetensors, .npz or a directory of .npy files.

Plan first (names, dtypes, what is skipped, the format's layout), then stream tensor by tensor
into a temp output that is checked and renamed into place. Plain tensors of a V2 bundle are
copied byte for byte (in-kernel with ``copy_file_range`` where the output is a plain file), so
memory stays bounded by the largest tensor that needs decoding (partitioned, V1, converted) and
is otherwise a few MB. The check re-reads the output and compares every tensor with the source:
copied tensors by their stored CRC32C, the others value by value.

Everything format-specific is asked of the format's object (``formats.file_format``): how a
dtype is stored, the layout, the destination rules, the writer, the checker, publication.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo
from tfckpt.errors import CorruptCheckpoint, UnrepresentableTensor, UsageError
from tfckpt.ops.rules import NameRules
from tfckpt.storage import check_parent, temp_name, write_error
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
    from tfckpt.ops.prune import TF2_SLOT_MARK, is_tf1_slot

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
    unrepresentable tensors with ``strict``)."""
    options = options or ExportOptions()
    target = file_format(fmt)
    plan = ExportPlan(source=ckpt.prefix, output=output, format=fmt)
    is_optimizer = optimizer_filter(ckpt) if options.no_optimizer else None
    by_name: dict[str, list[str]] = {}
    paths = checkpoint_paths(ckpt)
    for info in ckpt.tensors(include_object_graph=False):
        path = paths.get(info.name)
        if options.select is not None:
            candidates = [info.name] + [p for p in (info.object_path, path) if p]
            if not options.select(candidates):
                plan.filtered += 1
                continue
        if is_optimizer is not None and is_optimizer(info.name):
            plan.dropped.append(info.name)
            continue
        item = plan_item(ckpt, info, output_name(info, options, path), fmt)
        if isinstance(item, Skipped):
            plan.skipped.append(item)
            continue
        by_name.setdefault(item.name, []).append(info.name)
        plan.items.append(item)
    check_names(by_name, target.reserved_names or None)
    if plan.skipped and options.strict:
        listed = ", ".join(f"{s.source} ({s.dtype})" for s in plan.skipped[:10])
        more = f" and {len(plan.skipped) - 10} more" if len(plan.skipped) > 10 else ""
        raise UnrepresentableTensor(
            f"{len(plan.skipped)} tensor(s) cannot be stored in {fmt.value}: {listed}{more}",
            fix="strict",
        )
    if ST_DTYPES_KEY in options.metadata:
        raise UsageError(f"metadata key {ST_DTYPES_KEY} is reserved for tfckpt")
    plan.metadata = dict(options.metadata)
    target.layout(plan)
    return plan


def plan_item(ckpt: Checkpoint, info: TensorInfo, name: str, fmt: Format) -> ExportItem | Skipped:
    """How the tensor ``info`` goes into ``fmt`` under ``name``: copied raw (a plain tensor of a
    V2 bundle whose bytes the format keeps), decoded, converted, or skipped with a reason."""
    dtype = info.dtype
    storage = file_format(fmt).storage(dtype, info)
    if isinstance(storage, str):
        return Skipped(info.name, dtype.name, storage)
    if storage.how is not None:  # bytes made by conversion, or strings
        return ExportItem(
            info.name,
            name,
            dtype,
            info.shape,
            storage.stored,
            storage.nbytes,
            storage.how,
            storage.convert_to,
            stored_shape=storage.stored_shape,
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
    notes: list[str] = []
    early = EarlyCheck(on_check_bytes, target.warm_up) if check else None
    try:
        notes += target.write(src, plan, tmp, on_bytes, early)
        if early is not None:
            target.check(src, plan, tmp, on_check_bytes, early.results())
        if sync:
            _sync_tree(tmp)
        size = target.publish(tmp, final)
        if sync:
            _sync_tree(os.path.dirname(os.path.abspath(final)))
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
    return ExportWritten(final, plan.format, len(plan.items), size, check, notes)


def _sync_tree(path: str) -> None:
    """fsync a file, or a directory and the files directly in it."""
    paths = [path]
    if os.path.isdir(path):
        paths = [e.path for e in os.scandir(path) if e.is_file()] + [path]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
