"""``cast``: floating-point tensors to another float dtype, everything else copied unchanged.

``plan_cast`` decides per tensor (floating and selected and not already the target: cast);
``apply_cast`` writes a new V2 prefix (one shard) streaming each tensor in bounded chunks. Cast
values are exactly numpy's ``astype`` (ml_dtypes for bfloat16: round to nearest even); copied
tensors keep their bytes, verified against their stored CRC32C on the way. Partitioned
variables stay partitioned, each slice cast on its own, as TF would save them: a Saver restores
them. (TF can only copy *between* float16/bfloat16 slices that match exactly: its
``load_checkpoint`` cannot assemble such slices, nor can a Saver cut a partition out of a whole
float16 tensor, so writing them whole would not help.) A TF2 object graph is carried over
unchanged, since keys do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfckpt.bundle.checkpoint import Checkpoint
from tfckpt.bundle.reader import num_elements
from tfckpt.dtypes import DType, dtype_from_name
from tfckpt.errors import CorruptCheckpoint, UsageError

if TYPE_CHECKING:
    import numpy as np

CAST_TARGETS = ("float16", "bfloat16", "float32", "float64")
OnBytes = Callable[[int], None]


def cast_target(name: str) -> DType:
    """The DType for ``--dtype``; only float16, bfloat16, float32, float64 (and aliases)."""
    try:
        dtype = dtype_from_name(name.lower())
    except KeyError:
        dtype = None
    if dtype is None or dtype.name not in CAST_TARGETS:
        raise UsageError(f"dtype {name!r}: choose one of {', '.join(CAST_TARGETS)}")
    return dtype


@dataclass
class CastItem:
    name: str
    dtype: DType  # as stored now
    target: DType | None  # None: copied unchanged
    shape: tuple[int, ...]
    bytes_before: int
    num_slices: int = 0
    overflow: int = 0  # finite values that became +-inf
    underflow: int = 0  # non-zero values that became zero

    @property
    def bytes_after(self) -> int:
        if self.target is None:
            return self.bytes_before
        return num_elements(self.shape) * self.target.itemsize

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from": self.dtype.name,
            "to": (self.target or self.dtype).name,
            "shape": list(self.shape),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "overflow": self.overflow,
            "underflow": self.underflow,
        }


@dataclass
class CastPlan:
    source: str
    output: str
    target: DType
    items: list[CastItem] = field(default_factory=list)

    @property
    def cast(self) -> list[CastItem]:
        return [i for i in self.items if i.target is not None]

    @property
    def bytes_before(self) -> int:
        return sum(i.bytes_before for i in self.items)

    @property
    def bytes_after(self) -> int:
        return sum(i.bytes_after for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dtype": self.target.name,
            "cast": [i.to_dict() for i in self.cast],
            "unchanged": len(self.items) - len(self.cast),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "overflow": sum(i.overflow for i in self.items),
            "underflow": sum(i.underflow for i in self.items),
        }


def plan_cast(
    ckpt: Checkpoint,
    output: str,
    target: DType,
    select: Callable[[list[str]], bool] | None = None,
) -> CastPlan:
    """Floating-point tensors (``select``ed ones, if given: it sees the key and the TF2 object
    path) not yet of ``target`` are cast."""
    plan = CastPlan(source=ckpt.prefix, output=output, target=target)
    for info in ckpt.tensors():
        wanted = (
            info.dtype.is_floating
            and info.dtype != target
            and (select is None or select([info.name] + [p for p in (info.object_path,) if p]))
            and info.dtype.numpy is not None
        )
        plan.items.append(
            CastItem(
                info.name,
                info.dtype,
                target if wanted else None,
                info.shape,
                info.nbytes,
                info.num_slices,
            )
        )
    return plan


@dataclass
class CastResult:
    output: str
    tensors: int


# ---- applying ----------------------------------------------------------------------------------
def _cast_array(values: np.ndarray, item: CastItem) -> np.ndarray:
    """numpy's cast of ``values`` to the item's target, counting overflows and underflows."""
    import numpy as np

    assert item.target is not None and item.target.numpy is not None
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = values.astype(item.target.numpy)
        if out.size:
            wide_in = values.astype(np.float64) if values.dtype.kind == "V" else values
            wide_out = out.astype(np.float32) if out.dtype.kind == "V" else out
            item.overflow += int(np.count_nonzero(np.isfinite(wide_in) & ~np.isfinite(wide_out)))
            item.underflow += int(np.count_nonzero((wide_in != 0) & (wide_out == 0)))
    return out


def _cast_chunks(
    chunks: Iterator[np.ndarray], item: CastItem, on_bytes: OnBytes | None
) -> Iterator[memoryview]:
    import numpy as np

    for chunk in chunks:
        out = np.ascontiguousarray(_cast_array(chunk, item)).reshape(-1)
        yield out.view(np.uint8).data
        if on_bytes is not None:
            on_bytes(chunk.nbytes)


def _raw_chunks(ckpt: Checkpoint, entry: Any, on_bytes: OnBytes | None) -> Iterator[memoryview]:
    for step in ckpt.bundle.stream(entry):
        yield step
        if on_bytes is not None:
            on_bytes(len(step))


def apply_cast(
    ckpt: Checkpoint,
    plan: CastPlan,
    force: bool = False,
    on_bytes: OnBytes | None = None,
    sync: bool = False,
) -> CastResult:
    """Write the cast checkpoint at ``plan.output`` (atomically, by BundleWriter)."""
    from tfckpt.bundle.writer import BundleWriter, make_entry

    with BundleWriter(plan.output, num_shards=1, force=force, sync=sync) as writer:
        ckpt.prefetch(item.name for item in plan.items)  # a remote source fetches ahead
        for item in plan.items:
            dtype = item.target or item.dtype
            if ckpt.format != "V2":  # V1 tensors are decoded whole anyway
                value = ckpt.read(item.name)
                writer.add_array(
                    item.name, _cast_array(value, item) if item.target else value, dtype
                )
                if on_bytes is not None:
                    on_bytes(item.bytes_before)
                continue
            entry = ckpt.entry(item.name)
            if not entry.slices:
                offset, size, crc = _write_part(ckpt, writer, entry, item, on_bytes)
                writer.add_entry(item.name, make_entry(dtype, item.shape, 0, offset, size, crc))
                continue
            for spec in entry.slices:  # stays partitioned, each slice cast on its own
                part = ckpt.bundle.slice_entry(entry, spec)
                offset, size, crc = _write_part(ckpt, writer, part, item, on_bytes)
                writer.add_entry(part.key, make_entry(dtype, part.shape, 0, offset, size, crc))
            writer.add_entry(item.name, make_entry(dtype, item.shape, slices=entry.proto.slices))
        writer.commit()
    return CastResult(plan.output, len(plan.items))


def _write_part(
    ckpt: Checkpoint, writer: Any, entry: Any, item: CastItem, on_bytes: OnBytes | None
) -> tuple[int, int, int]:
    """One stored entry (a whole tensor or one slice): cast, or copied with its checksum
    verified on the way."""
    if item.target is not None:
        chunks = ckpt.bundle.iter_chunks(entry)  # CRC-checked as it streams
        return writer.add_stream(_cast_chunks(chunks, item, on_bytes))  # type: ignore[no-any-return]
    if entry.dtype.numpy is None:
        # String checksums cover the lengths as fixed-width integers, not the stored varints
        # (FORMAT.md §5): verify by decoding, then copy with the stored checksum.
        if entry.dtype.is_string:
            ckpt.bundle.read_entry(entry, verify=True)
        return writer.add_stream(  # type: ignore[no-any-return]
            _raw_chunks(ckpt, entry, on_bytes), crc=entry.crc32c
        )
    offset, size, crc = writer.add_stream(_raw_chunks(ckpt, entry, on_bytes))
    if crc != entry.crc32c:
        raise CorruptCheckpoint(
            f"{ckpt.bundle.data_path(entry.shard_id)}: checksum mismatch for {entry.name!r} "
            "(corrupt data)"
        )
    return offset, size, crc
