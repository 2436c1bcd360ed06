"""What every file format of ``export`` / ``import`` shares: the plan records, the checkpoint as
an export source, the byte-streaming and checksum helpers, and ``FileFormat``, the interface each
format module (``safetensors``, ``npz``, ``npy``) implements once.

The drivers (``export.write_export``, ``importer.write_import``) never test which format they
handle: they ask the format object, which plans how a tensor is stored, lays the output out,
writes it, checks it and opens it for reading.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from tfckpt import storage
from tfckpt.bundle.table import crc32c, mask_crc
from tfckpt.dtypes import DType
from tfckpt.errors import CheckFailed, CorruptCheckpoint, OutputExists
from tfckpt.storage import copy_range

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo
    from tfckpt.transfer.columns import ExportColumns
    from tfckpt.transfer.formats import Format
    from tfckpt.transfer.presets import PresetReport

CHUNK = 8 * 1024 * 1024
RELEASE_BYTES = 32 * 1024 * 1024
OnBytes = Callable[[int], None]


# ---- plan records -------------------------------------------------------------------------------
@dataclass
class ExportItem:
    source: str  # the checkpoint key
    name: str  # the name in the output
    dtype: DType
    shape: tuple[int, ...]
    stored: str  # safetensors dtype ("BF16"), numpy descr ("<f4", "|V2") or "string"
    nbytes: int  # data bytes in the output (strings: as stored in the checkpoint)
    how: str  # raw (bytes copied) | decode (values read whole) | convert (values cast) | string
    convert_to: str | None = None  # TF dtype name the values are cast to (how == convert)
    begin: int = 0  # safetensors: offset in the data area
    file: str | None = None  # npy directory: the file name
    stored_shape: tuple[int, ...] | None = None  # when the output's shape differs (pairs)
    src_pos: tuple[int, int] | None = None  # raw items: (shard, offset) in the source
    transpose: bool = False  # values written with their axes reversed (shape is the output's)
    source_dtype: DType | None = None  # set when a preset's dtype rule converted the values

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape if self.stored_shape is None else self.stored_shape

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "source": self.source,
            "name": self.name,
            "dtype": self.dtype.name,
            "stored": self.stored,
            "shape": list(self.shape),
            "bytes": self.nbytes,
        }
        if self.file is not None:
            record["file"] = self.file
        return record


@dataclass
class Skipped:
    source: str
    dtype: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dtype": self.dtype, "reason": self.reason}


@dataclass
class ExportPlan:
    """What an export writes. ``items`` is one ``ExportItem`` per tensor, in output order; a plan
    of many plain tensors keeps them as ``columns`` instead (``transfer.columns``), and ``items``
    builds the records from those on first use (after which the list is the plan)."""

    source: str
    output: str
    format: Format
    _items: list[ExportItem] | None = field(default=None, repr=False)
    columns: ExportColumns | None = field(default=None, repr=False)
    skipped: list[Skipped] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # optimizer state (no_optimizer)
    metadata: dict[str, str] = field(default_factory=dict)
    filtered: int = 0  # tensors left out by the name filters
    data_residue: int | None = None  # safetensors: data area offset modulo ALIGN_GRANULE
    preset: PresetReport | None = None  # what a preset mapped, dropped and could not map

    @property
    def items(self) -> list[ExportItem]:
        if self._items is None:
            self._items = self.columns.items() if self.columns is not None else []
            self.columns = None
        return self._items

    @property
    def count(self) -> int:
        """How many tensors are exported (without building the records)."""
        return len(self.columns) if self.columns is not None else len(self.items)

    @property
    def total_bytes(self) -> int:
        if self.columns is not None:
            return self.columns.total_bytes
        return sum(i.nbytes for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "format": self.format.value,
            "count": self.count,
            "bytes": self.total_bytes,
            "tensors": [i.to_dict() for i in self.items],
            "skipped": [s.to_dict() for s in self.skipped],
            "dropped": sorted(self.dropped),
            "filtered": self.filtered,
            "metadata": dict(self.metadata),
            **({"preset": self.preset.to_dict()} if self.preset is not None else {}),
        }


@dataclass
class Storage:
    """How a format stores one tensor: its stored dtype and byte count, and, when the bytes are
    not the checkpoint's own, how they are made (``convert`` to ``convert_to``, or ``string``)."""

    stored: str
    nbytes: int
    how: str | None = None  # None: the checkpoint's bytes (copied raw, or decoded)
    convert_to: str | None = None
    stored_shape: tuple[int, ...] | None = None


@dataclass
class InputTensor:
    name: str
    shape: tuple[int, ...]
    stored: str  # as the file stores it: "BF16", "<f4", "|S5", "|O"
    dtype: DType | None  # the TF dtype it becomes; None when it cannot be imported
    reason: str | None  # why not
    how: str  # raw (bytes as TF stores them) | convert (cast values) | string
    nbytes: int  # bytes in the output bundle (strings: 0, known after encoding)
    loc: Any = None  # where the data is (reader specific)


class InputFile:
    """A file being imported: ``tensors`` sorted by name; ``chunks`` / ``strings`` read one."""

    format: Format
    path: str
    tensors: list[InputTensor]
    metadata: dict[str, str]

    def chunks(self, t: InputTensor) -> Iterator[bytes | memoryview]:
        raise NotImplementedError

    def strings(self, t: InputTensor) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the checkpoint as an export source ---------------------------------------------------------
class Source:
    """The checkpoint being exported: its tensors as output bytes, and (for in-kernel copies)
    file descriptors of its data shards, opened once each through the storage seam."""

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt
        self._fds: dict[int, int] = {}

    def fd(self, shard: int) -> int:
        if shard not in self._fds:
            path = self.ckpt.bundle.data_path(shard)
            from tfckpt.storage import open_regular

            try:
                with open_regular(path) as f:  # a FIFO shard would block, a device never end
                    self._fds[shard] = os.dup(f.fileno())
            except OSError as exc:
                raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
        return self._fds[shard]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def raw_chunks(self, item: ExportItem) -> Iterator[memoryview]:
        # Bounded steps, pages released behind them; remote sources by range.
        yield from self.ckpt.bundle.stream(self.ckpt.entry(item.source))

    def values(self, item: ExportItem) -> Iterator[np.ndarray]:
        """Flat row-major values (CRC-checked); partitioned tensors are assembled whole."""
        info = self.ckpt.info(item.source)
        if info.num_slices:
            yield self.ckpt.read(item.source).reshape(-1)
        else:
            yield from self.ckpt.iter_chunks(item.source)

    def chunks(self, item: ExportItem) -> Iterator[bytes | memoryview]:
        """The item's bytes exactly as the output stores them."""
        if item.how == "raw":
            yield from self.raw_chunks(item)
            return
        import numpy as np

        target = numpy_dtype(item.convert_to) if item.convert_to else None
        if item.transpose:  # axes reversed: the whole tensor at once
            values = np.transpose(self.ckpt.read(item.source))
            if target is not None:
                values = values.astype(target)
            data = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
            for start in range(0, data.size, CHUNK):
                yield data[start : start + CHUNK].data
            return
        for flat in self.values(item):
            if target is not None:
                flat = flat.astype(target)
            data = np.ascontiguousarray(flat).view(np.uint8)
            for start in range(0, data.size, CHUNK):
                yield data[start : start + CHUNK].data

    def expected_crc(self, item: ExportItem) -> int:
        """Masked CRC32C of the item's output bytes: stored in the index for copied tensors,
        recomputed from the source values for the others."""
        if item.how == "raw":
            return self.ckpt.entry(item.source).crc32c
        crc = 0
        for chunk in self.chunks(item):
            crc = crc32c(chunk, crc)
        return mask_crc(crc)

    def expected_crcs(self, cols: ExportColumns) -> np.ndarray:
        """``expected_crc`` of every item of ``cols`` (all copied: their CRCs in the index), as
        an array of uint64."""
        import numpy as np

        return cols.column("crc").astype(np.uint64)

    def source_problem(self, item: ExportItem) -> None:
        """After a CRC mismatch: raise CorruptCheckpoint if the source itself is corrupt."""
        if item.how == "raw":
            self.ckpt.bundle.check_crc(self.ckpt.entry(item.source))


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a TF dtype name (``bfloat16`` and the other ml_dtypes types too)."""
    from tfckpt.dtypes import dtype_from_name

    dtype = dtype_from_name(name).numpy
    assert dtype is not None, name
    return dtype


# ---- writing ------------------------------------------------------------------------------------
def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def copy_to_fd(src: int, offset: int, size: int, dst: int, on_bytes: OnBytes | None) -> None:
    """Append ``size`` bytes of ``src`` at ``offset`` to ``dst`` (at its file position, which
    ends up after them) without passing them through user space where the kernel allows it."""
    at = os.lseek(dst, 0, os.SEEK_CUR)
    _refuse_short(src, offset + size)
    try:
        copy_range(src, offset, dst, at, size, on_bytes)
    except OSError:
        _refuse_short(src, offset + size)  # the shard shrank while being copied
        raise
    os.lseek(dst, at + size, os.SEEK_SET)


def _refuse_short(src: int, end: int) -> None:
    if os.fstat(src).st_size < end:
        raise CorruptCheckpoint("a data shard ended early (truncated?)")


def counted(chunks: Iterator[bytes | memoryview], on_bytes: OnBytes | None) -> Iterator[Any]:
    """``chunks``, reporting each one's length to ``on_bytes`` once the consumer is done with
    it."""
    for chunk in chunks:
        yield chunk
        if on_bytes is not None:
            on_bytes(len(chunk))


def emit_to_fd(src: Source, item: ExportItem, fd: int, on_bytes: OnBytes | None) -> None:
    """The item's output bytes appended to ``fd``: copied in the kernel when raw."""
    if item.how == "raw" and not storage.is_url(src.ckpt.prefix):
        entry = src.ckpt.entry(item.source)
        copy_to_fd(src.fd(entry.shard_id), entry.offset, entry.size, fd, on_bytes)
        return
    for chunk in counted(src.chunks(item), on_bytes):
        write_all(fd, chunk)


# ---- checking -----------------------------------------------------------------------------------
class EarlyCheck:
    """Re-reads copied tensors on a worker thread while later ones are still being copied.

    The copy runs in the kernel (``copy_file_range``) and the re-read is ``pread`` + CRC32C,
    all without the GIL, so on two cores the check costs little extra time. ``warm_up`` (the
    format's) runs first on the worker, e.g. to load a reference parser ahead of the final check.
    """

    def __init__(self, on_bytes: OnBytes | None, warm_up: Callable[[], None] | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfckpt-check")
        self._on_bytes = on_bytes
        self._pending: list[tuple[str, Any]] = []
        if warm_up is not None:
            self._pool.submit(warm_up)

    def submit(self, item: ExportItem, path: str, offset: int) -> None:
        job = self._pool.submit(crc_of_file, path, offset, item.nbytes, self._on_bytes)
        self._pending.append((item.name, job))

    def results(self) -> dict[str, int]:
        """name -> masked CRC32C of the item's bytes as read back from the output."""
        return {name: job.result() for name, job in self._pending}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def crc_of_file(path: str, offset: int, size: int, on_bytes: OnBytes | None) -> int:
    """Masked CRC32C of ``size`` bytes of ``path`` at ``offset``, hashed straight from the page
    cache through a memory map (no copy into a buffer); pages are dropped behind the hash so
    the resident set stays small."""
    import mmap

    if size == 0:
        return mask_crc(0)
    with open(path, "rb") as f:
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        mapped = mmap.mmap(f.fileno(), offset + size - start, access=mmap.ACCESS_READ, offset=start)
    try:
        if hasattr(mmap, "MADV_SEQUENTIAL"):
            mapped.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mapped)
        crc = 0
        pos, end = offset - start, offset - start + size
        while pos < end:
            step = min(RELEASE_BYTES, end - pos)
            crc = crc32c(view[pos : pos + step], crc)
            if hasattr(mmap, "MADV_DONTNEED"):
                page = pos - pos % mmap.PAGESIZE
                mapped.madvise(mmap.MADV_DONTNEED, page, pos + step - page)
            if on_bytes is not None:
                on_bytes(step)
            pos += step
        view.release()
    finally:
        mapped.close()
    return mask_crc(crc)


def crc_of_stream(read: Callable[[memoryview], int], size: int, on_bytes: OnBytes | None) -> int:
    buf = bytearray(min(CHUNK, max(size, 1)))
    view = memoryview(buf)
    crc = 0
    remaining = size
    while remaining > 0:
        n = read(view[: min(len(buf), remaining)])
        if not n:
            raise CheckFailed("output ended early")
        crc = crc32c(view[:n], crc)
        remaining -= n
        if on_bytes is not None:
            on_bytes(n)
    return mask_crc(crc)


def compare(src: Source, item: ExportItem, actual_crc: int, where: str) -> None:
    if actual_crc != src.expected_crc(item):
        src.source_problem(item)  # a corrupt source raises CorruptCheckpoint (exit 2)
        raise CheckFailed(f"{where}: {item.name!r} differs from {item.source!r} in the source")


# ---- the per-format interface -------------------------------------------------------------------
class FileFormat:
    """One file format: how it stores TF dtypes, lays out, writes, checks and reads an export.

    A single-file format writes ``tmp`` and is published by rename; ``npy`` overrides the
    destination rules and publication for its directory.
    """

    format: Format
    reserved_names: ClassVar[dict[str, str]] = {}  # output names the format keeps for itself -> why

    # export
    def storage(self, dtype: DType, info: TensorInfo) -> Storage | str:
        """How a tensor of ``dtype`` is stored, or why it cannot be."""
        raise NotImplementedError

    def raw_storage(self, dtype: DType) -> tuple[str, int] | str | None:
        """``(stored dtype, bytes per element)`` when the format keeps the checkpoint's own
        bytes of every plain tensor of ``dtype`` (what ``storage`` says, whatever the shape);
        the reason when it cannot hold ``dtype`` at all; None when it depends on the tensor.
        Formats that answer can be planned and written in columns (``transfer.columns``)."""
        return None

    def layout(self, plan: ExportPlan) -> None:
        """Order the plan's items and fill in offsets, file names and metadata."""
        plan.items.sort(key=lambda i: i.name)

    def check_output(self, path: str, force: bool) -> None:
        """Refuse an existing output without ``force``."""
        if os.path.isdir(path):
            raise OutputExists(f"{path}: is a directory")
        if os.path.lexists(path) and not force:
            raise OutputExists(f"{path}: exists", fix="force")

    def final_path(self, output: str) -> str:
        return output

    def warm_up(self) -> None:
        """Work the background checker may do before the first tensor is copied."""

    def write(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: EarlyCheck | None,
    ) -> list[str]:
        """Write the whole output at ``tmp``; returns notes for the user."""
        raise NotImplementedError

    def check(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: dict[str, int],
    ) -> None:
        """Re-read ``tmp`` and compare every tensor with the source (``early``: CRCs already
        taken by the background checker); raises CheckFailed."""
        raise NotImplementedError

    def publish(self, tmp: str, final: str, force: bool = False) -> int:
        """Move the checked output into place; returns its size in bytes. Never over an output
        that appeared meanwhile (another export racing this one) unless ``force``."""
        storage.publish(tmp, final, replace=force)
        return os.path.getsize(final)

    # import
    def open(self, path: str, allow_pickle: bool = False) -> InputFile:
        raise NotImplementedError


def remove_output(path: str, made_dirs: list[str]) -> None:
    """Remove a partial output (file or directory) and the parent directories made for it."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    for directory in reversed(made_dirs):
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only if still empty
