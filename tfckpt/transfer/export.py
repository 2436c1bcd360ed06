"""``export``: a checkpoint's tensors into safetensors, .npz or a directory of .npy files.

Plan first (names, dtypes, what is skipped, the safetensors layout), then stream tensor by
tensor into a temp file that is checked and renamed into place. Plain tensors of a V2 bundle are
copied byte for byte (in-kernel with ``copy_file_range`` where the output is a plain file), so
memory stays bounded by the largest tensor that needs decoding (partitioned, V1, converted) and
is otherwise a few MB. The check re-reads the output and compares every tensor with the source:
copied tensors by their stored CRC32C, the others value by value.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo
from tfckpt.bundle.table import crc32c, mask_crc
from tfckpt.dtypes import DType
from tfckpt.errors import (
    CheckFailed,
    CorruptCheckpoint,
    OutputExists,
    UnrepresentableTensor,
    UsageError,
)
from tfckpt.ops.rules import NameRules
from tfckpt.storage import check_parent, copy_range, temp_name, write_error
from tfckpt.transfer.fileformats import (
    ALIGN_GRANULE,
    METADATA_KEY,
    StTensor,
    build_st_header,
    npy_descr,
    npy_header,
    read_npy_header,
    read_st_header,
)
from tfckpt.transfer.formats import (
    NPY_FORMAT_MARK,
    NPY_INDEX,
    NPZ_COMMENT_PREFIX,
    ST_DTYPES_KEY,
    ST_ITEMSIZE,
    Format,
    npy_representable,
    safe_file_name,
    safetensors_dtype,
)
from tfckpt.transfer.names import check_names, checkpoint_paths

if TYPE_CHECKING:
    import numpy as np

CHUNK = 8 * 1024 * 1024
RELEASE_BYTES = 32 * 1024 * 1024
OnBytes = Callable[[int], None]


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
class ExportItem:
    source: str  # the checkpoint key
    name: str  # the name in the output
    dtype: DType
    shape: tuple[int, ...]
    stored: str  # safetensors dtype ("BF16"), numpy descr ("<f4", "|V2") or "string"
    nbytes: int  # data bytes in the output (strings: as stored in the checkpoint)
    how: str  # raw (bytes copied) | decode (values read whole) | convert (values cast) | string
    convert_to: str | None = None  # numpy dtype the values are cast to (how == convert)
    begin: int = 0  # safetensors: offset in the data area
    file: str | None = None  # npy directory: the file name
    stored_shape: tuple[int, ...] | None = None  # when the output's shape differs (pairs)
    src_pos: tuple[int, int] | None = None  # raw items: (shard, offset) in the source

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
    source: str
    output: str
    format: Format
    items: list[ExportItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # optimizer state (--no-optimizer)
    metadata: dict[str, str] = field(default_factory=dict)
    filtered: int = 0  # tensors left out by --match / --regex
    data_residue: int | None = None  # safetensors: data area offset modulo ALIGN_GRANULE

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
            "dropped": sorted(self.dropped),
            "filtered": self.filtered,
            "metadata": dict(self.metadata),
        }


@dataclass
class ExportResult:
    output: str
    format: Format
    tensors: int
    bytes: int  # size of the output (file, or all files of the directory)
    checked: bool
    notes: list[str] = field(default_factory=list)


# ---- planning ---------------------------------------------------------------------------------
def _optimizer_filter(ckpt: Checkpoint) -> Callable[[str], bool]:
    from tfckpt.ops.prune import TF2_SLOT_MARK, is_tf1_slot

    if not ckpt.is_object_based:
        return is_tf1_slot
    from tfckpt.bundle.objgraph import optimizer_keys

    graph = ckpt.object_graph_bytes()
    keys = optimizer_keys(graph) if graph is not None else set()
    return lambda name: TF2_SLOT_MARK in name or name in keys


def output_name(info: TensorInfo, options: ExportOptions, path: str | None = None) -> str:
    """``path`` (TF2: the readable object path), rules, then ``--sep``."""
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
    plan = ExportPlan(source=ckpt.prefix, output=output, format=fmt)
    is_optimizer = _optimizer_filter(ckpt) if options.no_optimizer else None
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
        item = _plan_item(ckpt, info, output_name(info, options, path), fmt)
        if isinstance(item, Skipped):
            plan.skipped.append(item)
            continue
        by_name.setdefault(item.name, []).append(info.name)
        plan.items.append(item)
    check_names(by_name, {METADATA_KEY: "safetensors"} if fmt == Format.safetensors else None)
    if plan.skipped and options.strict:
        listed = ", ".join(f"{s.source} ({s.dtype})" for s in plan.skipped[:10])
        more = f" and {len(plan.skipped) - 10} more" if len(plan.skipped) > 10 else ""
        raise UnrepresentableTensor(
            f"{len(plan.skipped)} tensor(s) cannot be stored in {fmt.value}: {listed}{more} "
            "(drop --strict to skip them, or filter them out with --match/--regex)"
        )
    if ST_DTYPES_KEY in options.metadata:
        raise UsageError(f"--metadata {ST_DTYPES_KEY} is reserved for tfckpt")
    plan.metadata = dict(options.metadata)
    if fmt == Format.safetensors:
        _layout_safetensors(plan)
    else:
        plan.items.sort(key=lambda i: i.name)
        if fmt == Format.npy:
            taken: set[str] = set()
            for item in plan.items:
                item.file = safe_file_name(item.name, taken)
    return plan


def _plan_item(ckpt: Checkpoint, info: TensorInfo, name: str, fmt: Format) -> ExportItem | Skipped:
    dtype = info.dtype
    raw_ok = ckpt.format == "V2" and info.num_slices == 0
    stored: str
    if fmt == Format.safetensors:
        st_dtype, how = safetensors_dtype(dtype)
        if st_dtype is None:
            return Skipped(info.name, dtype.name, how)
        stored = st_dtype
        nbytes = info.size * dtype.itemsize if how == "pairs" else info.size * ST_ITEMSIZE[stored]
        if how == "widen":
            target = "int8" if stored == "I8" else "uint8"
            return ExportItem(info.name, name, dtype, info.shape, stored, nbytes, "convert", target)
    else:
        reason = npy_representable(dtype)
        if reason is not None:
            return Skipped(info.name, dtype.name, reason)
        if dtype.is_string:
            return ExportItem(info.name, name, dtype, info.shape, "string", info.nbytes, "string")
        assert dtype.numpy is not None
        stored = npy_descr(dtype.numpy)
        nbytes = info.size * dtype.itemsize
    entry = ckpt.entry(info.name) if raw_ok else None
    if entry is not None and entry.size != nbytes:
        raise CorruptCheckpoint(
            f"{ckpt.prefix}: {info.name!r} stores {entry.size} bytes, shape "
            f"{list(info.shape)} of {dtype.name} needs {nbytes}"
        )
    item = ExportItem(
        info.name, name, dtype, info.shape, stored, nbytes, "raw" if raw_ok else "decode"
    )
    if entry is not None:
        item.src_pos = (entry.shard_id, entry.offset)
    if fmt == Format.safetensors and how == "pairs":
        item.stored_shape = (*info.shape, 2)
    return item


# Below this many copied bytes, aligning the data area is not worth up to 1 MiB of padding.
ALIGN_MIN_BYTES = 64 << 20


def _layout_safetensors(plan: ExportPlan) -> None:
    # Largest element size first (as safetensors itself orders them): with the 8-aligned header
    # every tensor starts at a multiple of its element size, so loaders can map it in place.
    # Within one element size, copied tensors keep their order in the source data files ...
    def key(i: ExportItem) -> tuple[Any, ...]:
        return (-ST_ITEMSIZE[i.stored], i.src_pos is None, i.src_pos or (0, 0), i.name)

    plan.items.sort(key=key)
    offset = 0
    for item in plan.items:
        item.begin = offset
        offset += item.nbytes
    # ... and for big exports the header is padded so that most of them sit at the same offset
    # modulo 1 MiB as in the source: the kernel then moves whole page-cache folios
    # (copy_file_range to another offset within them measured ~1.4x slower on Linux 6.x).
    weights: dict[int, int] = {}
    for item in plan.items:
        if item.src_pos is not None:
            residue = (item.src_pos[1] - item.begin) % ALIGN_GRANULE
            if residue % 8 == 0:
                weights[residue] = weights.get(residue, 0) + item.nbytes
    if weights and sum(weights.values()) >= ALIGN_MIN_BYTES:
        plan.data_residue = max(sorted(weights), key=lambda r: weights[r])
    recorded = {i.name: i.dtype.name for i in plan.items if _st_needs_note(i)}
    if recorded:
        plan.metadata[ST_DTYPES_KEY] = json.dumps(recorded, sort_keys=True)


def _st_needs_note(item: ExportItem) -> bool:
    from tfckpt.transfer.formats import ST_TO_TF

    return ST_TO_TF.get(item.stored) != item.dtype.name


def _npy_needs_note(item: ExportItem) -> bool:
    """Whether the stored .npy descriptor alone would read back as another TF dtype."""
    if item.dtype.is_string:
        return False
    from numpy.lib import format as npformat

    from tfckpt.dtypes import dtype_from_numpy
    from tfckpt.errors import UnsupportedCheckpoint

    try:
        return dtype_from_numpy(npformat.descr_to_dtype(item.stored)) != item.dtype  # type: ignore[arg-type]
    except (UnsupportedCheckpoint, ValueError, TypeError):
        return True


# ---- destination --------------------------------------------------------------------------------
def check_output(path: str, fmt: Format, force: bool) -> None:
    """Refuse an existing output without ``force``; never replace a directory that is not a
    previous .npy export, even with ``force``."""
    check_parent(path.rstrip("/") or "/", path)
    if fmt == Format.npy:
        if os.path.exists(path) and not os.path.isdir(path):
            raise OutputExists(f"{path}: exists and is not a directory")
        if os.path.isdir(path) and os.listdir(path):
            if not force:
                raise OutputExists(f"{path}: directory exists and is not empty; use --force")
            if not _is_npy_export(path):
                raise OutputExists(
                    f"{path}: not a tfckpt .npy export (no {NPY_INDEX}); refusing to replace it "
                    "even with --force"
                )
        return
    if os.path.isdir(path):
        raise OutputExists(f"{path}: is a directory")
    if os.path.lexists(path) and not force:
        raise OutputExists(f"{path}: exists; use --force")


def _is_npy_export(path: str) -> bool:
    try:
        with open(os.path.join(path, NPY_INDEX), encoding="utf-8") as f:
            return bool(json.load(f).get("format") == NPY_FORMAT_MARK)
    except (OSError, ValueError, AttributeError):
        return False


# ---- reading the source -----------------------------------------------------------------------
class _Source:
    """The checkpoint being exported, with raw file descriptors of its data shards."""

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
        entry = self.ckpt.entry(item.source)
        bundle = self.ckpt.bundle
        raw = bundle.raw(entry)
        for start in range(0, len(raw), CHUNK):
            yield raw[start : start + CHUNK]
            bundle.release(entry.shard_id, entry.offset + start, min(CHUNK, len(raw) - start))

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

        target = np.dtype(item.convert_to) if item.convert_to else None
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

    def source_problem(self, item: ExportItem) -> None:
        """After a CRC mismatch: raise CorruptCheckpoint if the source itself is corrupt."""
        if item.how == "raw":
            self.ckpt.bundle.check_crc(self.ckpt.entry(item.source))


# ---- writing ----------------------------------------------------------------------------------
def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _copy_range(src: int, offset: int, size: int, dst: int, on_bytes: OnBytes | None) -> None:
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


def _emit_to_fd(src: _Source, item: ExportItem, fd: int, on_bytes: OnBytes | None) -> None:
    if item.how == "raw":
        entry = src.ckpt.entry(item.source)
        _copy_range(src.fd(entry.shard_id), entry.offset, entry.size, fd, on_bytes)
        return
    for chunk in counted(src.chunks(item), on_bytes):
        _write_all(fd, chunk)


def _string_array(src: _Source, item: ExportItem) -> tuple[np.ndarray, bool]:
    """The strings as a fixed-width ``S`` array, or (when an element ends in NUL, which ``S``
    would drop) an object array that must be pickled."""
    import numpy as np

    values = src.ckpt.read(item.source)
    flat = [bytes(v) for v in values.reshape(-1)]
    if any(v.endswith(b"\x00") for v in flat):
        return np.asarray(values, dtype=object), True
    width = max([len(v) for v in flat] + [1])
    return np.array(flat, dtype=f"S{width}").reshape(item.shape), False


def _write_npy_item(
    src: _Source, item: ExportItem, out: BinaryIO, fd: int | None, on_bytes: OnBytes | None
) -> str | None:
    """One .npy payload; returns a note when strings had to be pickled."""
    if item.dtype.is_string:
        from numpy.lib import format as npformat

        array, pickled = _string_array(src, item)
        npformat.write_array(out, array, allow_pickle=pickled)
        if on_bytes is not None:
            on_bytes(item.nbytes)
        if pickled:
            return (
                f"{item.name}: strings ending in NUL bytes were pickled "
                "(np.load needs allow_pickle=True)"
            )
        return None
    assert item.dtype.numpy is not None
    header = npy_header(item.stored, item.shape)
    if fd is not None:
        _write_all(fd, header)
        _emit_to_fd(src, item, fd, on_bytes)
    else:
        out.write(header)
        for chunk in counted(src.chunks(item), on_bytes):
            out.write(chunk)
    return None


def write_export(
    ckpt: Checkpoint,
    plan: ExportPlan,
    force: bool = False,
    check: bool = True,
    on_bytes: OnBytes | None = None,
    on_check_bytes: OnBytes | None = None,
    sync: bool = False,
) -> ExportResult:
    """Write the plan's output under a temp name, check it, and rename it into place.

    Like ``cp``, TensorFlow's own writer and safetensors, nothing is fsync'ed unless ``sync``:
    the rename already makes the output appear whole or not at all (kill, Ctrl-C, disk full);
    ``sync`` adds durability across power loss at the disk's write speed. Missing parent
    directories are created (and removed again if the export fails).
    """
    from tfckpt.storage import make_dirs

    check_output(plan.output, plan.format, force)
    final = plan.output.rstrip("/") if plan.format == Format.npy else plan.output
    made = make_dirs(os.path.dirname(os.path.abspath(final)))
    tmp = temp_name(final)
    src = _Source(ckpt)
    notes: list[str] = []
    early = _EarlyCheck(on_check_bytes, plan.format) if check else None
    try:
        if plan.format == Format.safetensors:
            _write_safetensors(src, plan, tmp, on_bytes, early)
        elif plan.format == Format.npz:
            notes += _write_npz(src, plan, tmp, on_bytes)
        else:
            notes += _write_npy_dir(src, plan, tmp, on_bytes, early)
        if early is not None:
            _check(src, plan, tmp, on_check_bytes, early.results())
        if sync:
            _sync_tree(tmp)
        size = _publish(tmp, final, plan.format)
        if sync:
            _sync_tree(os.path.dirname(os.path.abspath(final)))
    except OSError as exc:
        _remove(tmp, made)
        raise write_error(final, exc) from None
    except BaseException:
        _remove(tmp, made)
        raise
    finally:
        if early is not None:
            early.close()
        src.close()
    return ExportResult(final, plan.format, len(plan.items), size, check, notes)


def _remove(path: str, made_dirs: list[str]) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    for directory in reversed(made_dirs):
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only if still empty


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


def _publish(tmp: str, final: str, fmt: Format) -> int:
    if fmt != Format.npy:
        os.replace(tmp, final)
        return os.path.getsize(final)
    old = None
    if os.path.isdir(final) and os.listdir(final):
        old = temp_name(final)
        os.rename(final, old)  # checked by check_output: a previous export, and --force
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return sum(e.stat().st_size for e in os.scandir(final) if e.is_file())


def _write_safetensors(
    src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None, early: _EarlyCheck | None
) -> None:
    header = build_st_header(
        [StTensor(i.name, i.stored, i.out_shape, i.begin, i.begin + i.nbytes) for i in plan.items],
        plan.metadata,
        plan.data_residue,
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, header)
        for item in plan.items:
            _emit_to_fd(src, item, fd, on_bytes)
            if os.lseek(fd, 0, os.SEEK_CUR) != len(header) + item.begin + item.nbytes:
                raise CorruptCheckpoint(f"{plan.source}: {item.source!r} has the wrong size")
            if early is not None and item.how == "raw":
                early.submit(item, tmp, len(header) + item.begin)
    finally:
        os.close(fd)


def _write_npz(src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None) -> list[str]:
    notes = []
    too_long = [i.name for i in plan.items if len((i.name + ".npy").encode()) > 0xFFFF]
    if too_long:  # a zip entry name has a 16-bit length
        raise UsageError(
            f"{len(too_long)} name(s) too long for a .npz member (64 KiB), e.g. "
            f"{too_long[0][:60]!r}...; export to .safetensors or rename them"
        )
    with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for item in plan.items:
            info = zipfile.ZipInfo(item.name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if _npy_needs_note(item):
                info.comment = NPZ_COMMENT_PREFIX + item.dtype.name.encode()
            with zf.open(info, "w", force_zip64=True) as member:
                note = _write_npy_item(src, item, member, None, on_bytes)  # type: ignore[arg-type]
            if note:
                notes.append(note)
        if plan.metadata:
            comment = json.dumps(plan.metadata, sort_keys=True).encode()
            if len(comment) > 0xFFFF:
                raise UsageError("--metadata is too long for a .npz archive comment (64 KiB)")
            zf.comment = comment
    return notes


def _write_npy_dir(
    src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None, early: _EarlyCheck | None
) -> list[str]:
    os.mkdir(tmp)
    notes = []
    index: dict[str, Any] = {}
    for item in plan.items:
        assert item.file is not None
        path = os.path.join(tmp, item.file)
        with open(path, "xb", buffering=0) as f:
            note = _write_npy_item(src, item, f, f.fileno(), on_bytes)  # type: ignore[arg-type]
            header_size = f.tell() - item.nbytes
        if early is not None and item.how == "raw":
            early.submit(item, path, header_size)
        if note:
            notes.append(note)
        index[item.name] = {"file": item.file, "dtype": item.dtype.name, "shape": list(item.shape)}
    document = {
        "format": NPY_FORMAT_MARK,
        "version": 1,
        "source": plan.source,
        "metadata": plan.metadata,
        "tensors": index,
    }
    with open(os.path.join(tmp, NPY_INDEX), "x", encoding="utf-8") as f:
        json.dump(document, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return notes


# ---- checking ---------------------------------------------------------------------------------
class _EarlyCheck:
    """Re-reads copied tensors on a worker thread while later ones are still being copied.

    The copy runs in the kernel (``copy_file_range``) and the re-read is ``pread`` + CRC32C,
    all without the GIL, so on two cores the check costs little extra time. The worker also
    loads the safetensors reference parser (and numpy under it) ahead of the final check.
    """

    def __init__(self, on_bytes: OnBytes | None, fmt: Format) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfckpt-check")
        self._on_bytes = on_bytes
        self._pending: list[tuple[str, Any]] = []
        if fmt == Format.safetensors:
            self._pool.submit(_load_reference_parser)

    def submit(self, item: ExportItem, path: str, offset: int) -> None:
        job = self._pool.submit(_crc_of_file, path, offset, item.nbytes, self._on_bytes)
        self._pending.append((item.name, job))

    def results(self) -> dict[str, int]:
        """name -> masked CRC32C of the item's bytes as read back from the output."""
        return {name: job.result() for name, job in self._pending}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _load_reference_parser() -> None:
    with contextlib.suppress(ImportError):
        import numpy  # noqa: F401  (safetensors' numpy framework imports it on open)
        import safetensors  # noqa: F401


def _crc_of_file(path: str, offset: int, size: int, on_bytes: OnBytes | None) -> int:
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


def _check(
    src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None, early: dict[str, int]
) -> None:
    if plan.format == Format.safetensors:
        _check_safetensors(src, plan, tmp, on_bytes, early)
    elif plan.format == Format.npz:
        _check_npz(src, plan, tmp, on_bytes)
    else:
        _check_npy_dir(src, plan, tmp, on_bytes, early)


def _crc_of_stream(read: Callable[[memoryview], int], size: int, on_bytes: OnBytes | None) -> int:
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


def _compare(src: _Source, item: ExportItem, actual_crc: int, where: str) -> None:
    if actual_crc != src.expected_crc(item):
        src.source_problem(item)  # a corrupt source raises CorruptCheckpoint (exit 2)
        raise CheckFailed(f"{where}: {item.name!r} differs from {item.source!r} in the source")


def _check_with_safetensors(plan: ExportPlan, tmp: str) -> None:
    """The header as the safetensors package itself parses it (names, dtypes, offsets)."""
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return
    try:
        with safe_open(tmp, framework="np") as f:
            keys, metadata = set(f.keys()), f.metadata() or {}
    except Exception as exc:  # the Rust parser's own error types
        raise CheckFailed(f"{plan.output}: safetensors rejects the file ({exc})") from None
    if keys != {i.name for i in plan.items} or metadata != plan.metadata:
        raise CheckFailed(f"{plan.output}: safetensors reads other names or metadata")


def _check_safetensors(
    src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None, early: dict[str, int]
) -> None:
    where = plan.output
    _check_with_safetensors(plan, tmp)
    with open(tmp, "rb", buffering=0) as f:
        header = read_st_header(f, os.fstat(f.fileno()).st_size, where)  # type: ignore[arg-type]
        planned = {
            i.name: StTensor(i.name, i.stored, i.out_shape, i.begin, i.begin + i.nbytes)
            for i in plan.items
        }
        if {t.name: t for t in header.tensors} != planned or header.metadata != plan.metadata:
            raise CheckFailed(f"{where}: header differs from the plan")
        for item in plan.items:
            actual = early.get(item.name)
            if actual is None:
                f.seek(header.data_start + item.begin)
                actual = _crc_of_stream(f.readinto, item.nbytes, on_bytes)
            _compare(src, item, actual, where)


def _check_npy_member(
    src: _Source,
    item: ExportItem,
    fp: Any,
    where: str,
    on_bytes: OnBytes | None,
    actual: int | None = None,
) -> None:
    header = read_npy_header(fp, where)
    if header.shape != item.shape or header.fortran_order:
        raise CheckFailed(f"{where}: {item.name!r} has shape {list(header.shape)}")
    import numpy as np

    if item.dtype.is_string:
        from numpy.lib import format as npformat

        fp.seek(0)
        array = npformat.read_array(fp, allow_pickle=header.dtype.kind == "O")  # our own file
        expected = src.ckpt.read(item.source)
        if [bytes(v) for v in array.reshape(-1)] != [bytes(v) for v in expected.reshape(-1)]:
            raise CheckFailed(f"{where}: {item.name!r} differs from {item.source!r}")
        if on_bytes is not None:
            on_bytes(item.nbytes)
        return
    if np.dtype(header.dtype) != np.dtype(item.stored):
        raise CheckFailed(f"{where}: {item.name!r} is stored as {header.dtype}")
    if actual is None:
        actual = _crc_of_stream(fp.readinto, item.nbytes, on_bytes)
    _compare(src, item, actual, where)


def _check_npz(src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None) -> None:
    import numpy as np

    where = plan.output
    with np.load(tmp, allow_pickle=False) as npz:  # numpy's own reader sees the same names
        if sorted(npz.files) != sorted(i.name for i in plan.items):
            raise CheckFailed(f"{where}: numpy lists other names")
    with zipfile.ZipFile(tmp) as zf:
        for item in plan.items:
            with zf.open(item.name + ".npy") as member:
                _check_npy_member(src, item, member, where, on_bytes)  # type: ignore[arg-type]


def _check_npy_dir(
    src: _Source, plan: ExportPlan, tmp: str, on_bytes: OnBytes | None, early: dict[str, int]
) -> None:
    where = plan.output
    with open(os.path.join(tmp, NPY_INDEX), encoding="utf-8") as f:
        index = json.load(f)["tensors"]
    for item in plan.items:
        record = index.get(item.name)
        if record is None or record["file"] != item.file or record["dtype"] != item.dtype.name:
            raise CheckFailed(f"{where}: {NPY_INDEX} lists {item.name!r} wrongly")
        assert item.file is not None
        with open(os.path.join(tmp, item.file), "rb") as f:
            _check_npy_member(src, item, f, f"{where}/{item.file}", on_bytes, early.get(item.name))
