""".npy arrays, one per tensor: the header, the member writer, checker and reader (shared with
``npz``, whose members are .npy arrays), and the directory format (``DIR/`` + ``index.json``).

.npy keeps every numeric dtype (ml_dtypes types such as bfloat16 are written with numpy's raw
``V`` descriptor, their TF dtype recorded beside them: in ``index.json`` here, in the zip member
comment for .npz) and strings (``S`` arrays, or pickled object arrays when an element ends in a
NUL byte that ``S`` would drop). Reading streams arrays in bounded chunks; only arrays that need
reordering (Fortran order) or value conversion of a whole array are read at once, and pickled
object arrays are never loaded without ``allow_pickle`` (unpickling runs code from the file).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from tfckpt import storage
from tfckpt.bundle.reader import num_elements
from tfckpt.dtypes import DType, dtype_from_name, dtype_from_numpy
from tfckpt.errors import (
    CheckFailed,
    CheckpointNotFound,
    CorruptCheckpoint,
    OutputExists,
    UnsupportedCheckpoint,
)
from tfckpt.storage import temp_name
from tfckpt.transfer.common import (
    CHUNK,
    EarlyCheck,
    ExportItem,
    ExportPlan,
    FileFormat,
    InputFile,
    InputTensor,
    OnBytes,
    Source,
    Storage,
    compare,
    counted,
    crc_of_stream,
    emit_to_fd,
    write_all,
)
from tfckpt.transfer.formats import Format, tf_dtype

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.checkpoint import TensorInfo

NPY_INDEX = "index.json"  # .npy directory: {"format": NPY_FORMAT_MARK, "tensors": {...}}
NPY_FORMAT_MARK = "tfckpt-npy"
MAX_NPY_HEADER = 1 << 20


# ---- the header ---------------------------------------------------------------------------------
def npy_descr(dtype: np.dtype) -> str:
    """numpy's descriptor for ``dtype`` if numpy can read it back as the same dtype, else raw
    bytes ``|V<itemsize>`` (ml_dtypes types such as bfloat16 have no readable descriptor)."""
    from numpy.lib import format as npformat

    descr = npformat.dtype_to_descr(dtype)
    try:
        if isinstance(descr, str) and npformat.descr_to_dtype(descr) == dtype:
            return descr
    except (ValueError, TypeError):
        pass
    return f"|V{dtype.itemsize}"


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A .npy header (format 1.0, or 2.0 when the header is too long) for a C-order array."""
    from numpy.lib import format as npformat

    header = {
        "descr": descr,
        "fortran_order": False,
        "shape": tuple(shape),
    }
    buf = io.BytesIO()
    try:
        npformat.write_array_header_1_0(buf, header)
    except ValueError:
        buf = io.BytesIO()
        npformat.write_array_header_2_0(buf, header)
    return buf.getvalue()


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype


def read_npy_header(fp: BinaryIO, where: str) -> NpyHeader:
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(
                fp, max_header_size=MAX_NPY_HEADER
            )
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(
                fp, max_header_size=MAX_NPY_HEADER
            )
        else:
            reader = getattr(npformat, "_read_array_header", None)
            if reader is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = reader(fp, version, max_header_size=MAX_NPY_HEADER)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptCheckpoint(f"{where}: not a readable .npy array ({exc})") from None
    if any(d < 0 for d in shape):
        raise CorruptCheckpoint(f"{where}: negative dimension in {shape}")
    return NpyHeader(tuple(int(d) for d in shape), bool(fortran), dtype)


# ---- dtypes -------------------------------------------------------------------------------------
def npy_representable(dtype: DType) -> str | None:
    """None if .npz/.npy can hold the dtype, else the reason it cannot."""
    if dtype.is_string or dtype.numpy is not None:
        return None
    return f"numpy has no {dtype.name} type"


def npy_raw_storage(dtype: DType) -> tuple[str, int] | str | None:
    """``FileFormat.raw_storage`` for the npz and npy formats (strings go tensor by tensor)."""
    reason = npy_representable(dtype)
    if reason is not None or dtype.numpy is None:
        return reason
    return npy_descr(dtype.numpy), dtype.itemsize


def npy_storage(dtype: DType, info: TensorInfo) -> Storage | str:
    """How a .npy array stores a tensor of ``dtype`` (for the npz and npy formats)."""
    reason = npy_representable(dtype)
    if reason is not None:
        return reason
    if dtype.is_string:
        return Storage("string", info.nbytes, "string")
    assert dtype.numpy is not None
    return Storage(npy_descr(dtype.numpy), info.size * dtype.itemsize)


def needs_dtype_note(item: ExportItem) -> bool:
    """Whether the stored .npy descriptor alone would read back as another TF dtype."""
    if item.dtype.is_string:
        return False
    from numpy.lib import format as npformat

    try:
        return dtype_from_numpy(npformat.descr_to_dtype(item.stored)) != item.dtype  # type: ignore[arg-type]
    except (UnsupportedCheckpoint, ValueError, TypeError):
        return True


_SUB_BYTE = ("int4", "uint4", "int2", "uint2")


def resolve_npy_dtype(
    stored: np.dtype, declared: str | None, allow_pickle: bool
) -> tuple[DType | None, str, str | None]:
    """``(TF dtype, how, reason)`` for an .npy array of ``stored`` dtype, optionally declared
    (by an export's zip comment or index) to be TF dtype ``declared``."""
    kind = stored.kind
    if kind in "SUO" or (declared == "string"):
        if kind not in "SUO":
            return None, "", f"{stored.str} cannot hold strings"
        if kind == "O" and not allow_pickle:
            return None, "", "pickled object array (loading it runs code from the file)"
        return dtype_from_name("string"), "string", None
    if declared is not None:
        target = tf_dtype(declared)
        if target is None or target.numpy is None:
            return None, "", f"unknown dtype {declared!r} recorded for it"
        if declared in _SUB_BYTE and kind in "iu":
            return target, "convert", None
        if stored.itemsize == target.itemsize and kind in "iubfcV":
            if stored.byteorder == ">":
                return None, "", f"big-endian {stored.str} declared as {declared}"
            return target, "raw", None
        return None, "", f"{stored.str} cannot hold {declared}"
    if kind == "V":
        return None, "", f"raw bytes {stored.str} of unknown type (no dtype recorded)"
    try:
        target = dtype_from_numpy(stored.newbyteorder("<") if stored.byteorder == ">" else stored)
    except UnsupportedCheckpoint:
        return None, "", f"TensorFlow has no {stored} type"
    return target, "convert" if stored.byteorder == ">" else "raw", None


# ---- writing one array --------------------------------------------------------------------------
def _string_array(src: Source, item: ExportItem) -> tuple[np.ndarray, bool]:
    """The strings as a fixed-width ``S`` array, or (when an element ends in NUL, which ``S``
    would drop) an object array that must be pickled."""
    import numpy as np

    values = src.ckpt.read(item.source)
    flat = [bytes(v) for v in values.reshape(-1)]
    if any(v.endswith(b"\x00") for v in flat):
        return np.asarray(values, dtype=object), True
    width = max([len(v) for v in flat] + [1])
    return np.array(flat, dtype=f"S{width}").reshape(item.shape), False


def write_npy_item(
    src: Source, item: ExportItem, out: BinaryIO, fd: int | None, on_bytes: OnBytes | None
) -> str | None:
    """One .npy payload into ``out`` (through ``fd`` when given, so copies stay in the kernel);
    returns a note when strings had to be pickled."""
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
        write_all(fd, header)
        emit_to_fd(src, item, fd, on_bytes)
    else:
        out.write(header)
        for chunk in counted(src.chunks(item), on_bytes):
            out.write(chunk)
    return None


# ---- checking one array -------------------------------------------------------------------------
def check_npy_member(
    src: Source,
    item: ExportItem,
    fp: Any,
    where: str,
    on_bytes: OnBytes | None,
    actual: int | None = None,
) -> None:
    """Compare one written .npy array with its source tensor (``actual``: its data CRC, when
    already taken)."""
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
        actual = crc_of_stream(fp.readinto, item.nbytes, on_bytes)
    compare(src, item, actual, where)


# ---- reading one array --------------------------------------------------------------------------
def npy_tensor(
    name: str, header: NpyHeader, declared: str | None, allow_pickle: bool, loc: Any
) -> InputTensor:
    dtype, how, reason = resolve_npy_dtype(header.dtype, declared, allow_pickle)
    nbytes = 0
    if dtype is not None and not dtype.is_string:
        nbytes = num_elements(header.shape) * dtype.itemsize
    return InputTensor(name, header.shape, header.dtype.str, dtype, reason, how, nbytes, loc)


def npy_chunks(
    open_stream: Callable[[], BinaryIO], t: InputTensor, where: str, allow_pickle: bool
) -> Iterator[bytes | memoryview]:
    """The array's values as the bytes a TF bundle stores, in bounded chunks."""
    import numpy as np

    assert t.dtype is not None and t.dtype.numpy is not None
    with open_stream() as fp:
        header = read_npy_header(fp, where)
        stored = header.dtype
        if t.how == "raw" and not header.fortran_order:
            remaining = num_elements(header.shape) * stored.itemsize
            while remaining > 0:
                data = fp.read(min(CHUNK, remaining))
                if not data:
                    raise CorruptCheckpoint(f"{where}: {t.name!r} is truncated")
                remaining -= len(data)
                yield data
            return
        if header.fortran_order or stored.kind == "V" or stored.hasobject:
            fp.seek(0)
            values = read_whole(fp, where, allow_pickle)
            flat = np.ascontiguousarray(values).reshape(-1)
            steps: Iterable[np.ndarray] = [flat]
        else:
            steps = _stream_values(fp, stored, num_elements(header.shape), where)
        for flat in steps:
            if t.how == "raw":
                out = flat.view(np.uint8)
            else:
                out = flat.astype(t.dtype.numpy).view(np.uint8)
            for pos in range(0, out.size, CHUNK):
                yield out[pos : pos + CHUNK].data


def _stream_values(fp: BinaryIO, dtype: np.dtype, count: int, where: str) -> Iterator[np.ndarray]:
    import numpy as np

    per_chunk = max(1, CHUNK // max(dtype.itemsize, 1))
    remaining = count
    while remaining > 0:
        n = min(per_chunk, remaining)
        data = fp.read(n * dtype.itemsize)
        if len(data) != n * dtype.itemsize:
            raise CorruptCheckpoint(f"{where}: array data is truncated")
        remaining -= n
        yield np.frombuffer(data, dtype=dtype)


def read_whole(fp: BinaryIO, where: str, allow_pickle: bool) -> np.ndarray:
    from numpy.lib import format as npformat

    try:
        return npformat.read_array(fp, allow_pickle=allow_pickle, max_header_size=MAX_NPY_HEADER)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptCheckpoint(f"{where}: unreadable array ({exc})") from None


def as_strings(values: np.ndarray, where: str) -> np.ndarray:
    """An object array of bytes from an ``S``/``U``/object array (``U`` encoded as UTF-8)."""
    import numpy as np

    out = np.empty(values.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1)):
        if isinstance(v, bytes | np.bytes_):
            flat_out[i] = bytes(v)
        elif isinstance(v, str):
            flat_out[i] = v.encode("utf-8")
        else:
            raise CorruptCheckpoint(f"{where}: object array holds {type(v).__name__}, not strings")
    return out


# ---- the directory format -----------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILE_STEM = 180


def safe_file_name(name: str, taken: set[str]) -> str:
    """A portable file name for tensor ``name`` (``/`` -> ``.``, other unsafe runs -> ``_``),
    unique in ``taken`` ignoring case (case-insensitive file systems); adds it to ``taken``."""
    stem = _UNSAFE.sub("_", name.replace("/", ".")).strip(".") or "_"
    if len(stem) > _MAX_FILE_STEM:
        digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        stem = f"{stem[:_MAX_FILE_STEM]}-{digest}"
    candidate, n = stem, 1
    while candidate.lower() + ".npy" in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate.lower() + ".npy")
    return candidate + ".npy"


def is_npy_export(path: str) -> bool:
    try:
        with open(os.path.join(path, NPY_INDEX), encoding="utf-8") as f:
            return bool(json.load(f).get("format") == NPY_FORMAT_MARK)
    except (OSError, ValueError, AttributeError):
        return False


class NpyDir(FileFormat):
    """A directory of .npy files and an ``index.json`` (names, files, TF dtypes, metadata)."""

    format = Format.npy

    def storage(self, dtype: DType, info: TensorInfo) -> Storage | str:
        return npy_storage(dtype, info)

    def raw_storage(self, dtype: DType) -> tuple[str, int] | str | None:
        return npy_raw_storage(dtype)

    def layout(self, plan: ExportPlan) -> None:
        plan.items.sort(key=lambda i: i.name)
        taken: set[str] = set()
        for item in plan.items:
            item.file = safe_file_name(item.name, taken)

    def check_output(self, path: str, force: bool) -> None:
        """Never replace a directory that is not a previous .npy export, even with ``force``."""
        if os.path.exists(path) and not os.path.isdir(path):
            raise OutputExists(f"{path}: exists and is not a directory")
        if os.path.isdir(path) and os.listdir(path):
            if not force:
                raise OutputExists(f"{path}: directory exists and is not empty", fix="force")
            if not is_npy_export(path):
                raise OutputExists(
                    f"{path}: not a tfckpt .npy export (no {NPY_INDEX}); refusing to replace it "
                    "even when forced"
                )

    def final_path(self, output: str) -> str:
        return output.rstrip("/")

    def write(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: EarlyCheck | None,
    ) -> list[str]:
        os.mkdir(tmp)
        notes = []
        index: dict[str, Any] = {}
        for item in plan.items:
            assert item.file is not None
            path = os.path.join(tmp, item.file)
            with open(path, "xb", buffering=0) as f:
                note = write_npy_item(src, item, f, f.fileno(), on_bytes)  # type: ignore[arg-type]
                header_size = f.tell() - item.nbytes
            if early is not None and item.how == "raw":
                early.submit(item, path, header_size)
            if note:
                notes.append(note)
            index[item.name] = {
                "file": item.file,
                "dtype": item.dtype.name,
                "shape": list(item.shape),
            }
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

    def check(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: dict[str, int],
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
                check_npy_member(
                    src, item, f, f"{where}/{item.file}", on_bytes, early.get(item.name)
                )

    def publish(self, tmp: str, final: str, force: bool = False) -> int:
        """Never over a directory that appeared meanwhile (another export racing this one)
        unless ``force``, and then whole: the last one wins."""
        for _ in range(100):  # with force, a racing export may publish between our two steps
            old = None
            if os.path.isdir(final) and os.listdir(final):
                if not force:
                    raise OutputExists(
                        f"{final}: exists (appeared while this was written)", fix="force"
                    )
                old = temp_name(final)
                with contextlib.suppress(FileNotFoundError):
                    os.rename(final, old)  # checked by check_output: a previous export
            elif os.path.isdir(final):
                with contextlib.suppress(OSError):
                    os.rmdir(final)  # an empty directory made for the output
            try:
                storage.publish(tmp, final, replace=False)
                break
            except OutputExists:
                if not force:
                    raise
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        else:
            raise OutputExists(f"{final}: other exports keep replacing it; try again")
        return sum(e.stat().st_size for e in os.scandir(final) if e.is_file())

    def open(self, path: str, allow_pickle: bool = False) -> InputFile:
        return NpyDirInput(path, allow_pickle)


class NpyDirInput(InputFile):
    """A directory of .npy files: the names and dtypes of its ``index.json`` (as ``export``
    writes it), else every ``*.npy`` file named by its stem."""

    format = Format.npy

    def __init__(self, path: str, allow_pickle: bool = False) -> None:
        if not os.path.isdir(path):
            raise CheckpointNotFound(f"{path}: not a directory of .npy files")
        self.path = path
        self.allow_pickle = allow_pickle
        self.metadata = {}
        files: dict[str, tuple[str, str | None]] = {}  # name -> (file, declared dtype)
        index = self._index()
        if index is not None:
            self.metadata = {str(k): str(v) for k, v in (index.get("metadata") or {}).items()}
            for name, record in index["tensors"].items():
                file = record.get("file") if isinstance(record, dict) else None
                if not isinstance(file, str) or os.path.basename(file) != file:
                    raise CorruptCheckpoint(f"{path}/{NPY_INDEX}: bad file for {name!r}")
                files[name] = (file, record.get("dtype"))
        else:
            for entry in sorted(os.listdir(path)):
                if entry.endswith(".npy") and os.path.isfile(os.path.join(path, entry)):
                    files[entry[: -len(".npy")]] = (entry, None)
        self.tensors = []
        for name, (file, declared) in sorted(files.items()):
            full = os.path.join(path, file)
            try:
                with open(full, "rb") as f:
                    header = read_npy_header(f, full)
            except FileNotFoundError:
                raise CorruptCheckpoint(f"{full}: listed in {NPY_INDEX} but missing") from None
            self.tensors.append(npy_tensor(name, header, declared, allow_pickle, full))

    def _index(self) -> dict[str, Any] | None:
        index_path = os.path.join(self.path, NPY_INDEX)
        if not os.path.isfile(index_path):
            return None
        try:
            with open(index_path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError) as exc:
            raise CorruptCheckpoint(f"{index_path}: unreadable ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != NPY_FORMAT_MARK:
            return None  # someone else's index.json: fall back to the files
        if not isinstance(index.get("tensors"), dict):
            raise CorruptCheckpoint(f"{index_path}: no tensors object")
        return index

    def chunks(self, t: InputTensor) -> Iterator[bytes | memoryview]:
        yield from npy_chunks(lambda: open(t.loc, "rb"), t, t.loc, self.allow_pickle)  # noqa: SIM115

    def strings(self, t: InputTensor) -> np.ndarray:
        with open(t.loc, "rb") as fp:
            values = read_whole(fp, t.loc, self.allow_pickle)
        return as_strings(values, t.loc)


NPY = NpyDir()
