"""Reading tensors from safetensors, .npz and .npy directories, as the bytes a TF bundle stores.

Each reader lists ``InputTensor``s (name, shape, the TF dtype it becomes, or why it cannot) and
streams their bytes in bounded chunks: safetensors through a memory map, .npy members through
their file or zip stream. Only arrays that need reordering (Fortran order) or value conversion
of a whole array are read at once. Pickled object arrays are never loaded without
``allow_pickle`` (unpickling runs code from the file).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from tfckpt.bundle.reader import num_elements
from tfckpt.dtypes import DType, dtype_from_name, dtype_from_numpy
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint, UnsupportedCheckpoint
from tfckpt.transfer.fileformats import NpyHeader, read_npy_header, read_st_header
from tfckpt.transfer.formats import (
    NPY_FORMAT_MARK,
    NPY_INDEX,
    NPZ_COMMENT_PREFIX,
    ST_DTYPES_KEY,
    ST_LAYOUT,
    ST_PAIRS,
    ST_TO_TF,
    ST_WIDEN,
    Format,
    tf_dtype,
)

if TYPE_CHECKING:
    import numpy as np

CHUNK = 8 * 1024 * 1024


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
    """Base class: ``tensors`` sorted by name; ``chunks`` / ``strings`` read one tensor."""

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


def open_input(path: str, fmt: Format, allow_pickle: bool = False) -> InputFile:
    if not os.path.exists(path):
        raise CheckpointNotFound(f"{path}: no such file or directory")
    if fmt == Format.safetensors:
        return SafetensorsInput(path)
    if fmt == Format.npz:
        return NpzInput(path, allow_pickle)
    return NpyDirInput(path, allow_pickle)


# ---- dtype decisions ----------------------------------------------------------------------------
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
            return None, "", "pickled object array (loading it runs code; use --allow-pickle)"
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


def resolve_st_dtype(stored: str, declared: str | None) -> tuple[DType | None, str, str | None]:
    base = ST_TO_TF.get(stored)
    if declared is not None and declared != base:
        if ST_LAYOUT.get(declared) == stored:
            return dtype_from_name(declared), "raw", None
        if ST_WIDEN.get(declared) == stored:
            return dtype_from_name(declared), "convert", None
        if ST_PAIRS.get(declared) == stored:
            return dtype_from_name(declared), "pairs", None
        return None, "", f"{stored} cannot hold {declared}"
    if base is None:
        return None, "", f"TensorFlow has no {stored} type"
    return dtype_from_name(base), "raw", None


# ---- safetensors --------------------------------------------------------------------------------
class SafetensorsInput(InputFile):
    format = Format.safetensors

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            size = os.fstat(self._file.fileno()).st_size
            header = read_st_header(self._file, size, path)
            self.metadata = header.metadata
            self._map: mmap.mmap | None = (
                mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
            )
        except BaseException:
            self._file.close()
            raise
        declared = self._declared_dtypes()
        self.tensors = []
        for st in header.tensors:
            dtype, how, reason = resolve_st_dtype(st.dtype, declared.get(st.name))
            shape = st.shape
            if how == "pairs":
                if not shape or shape[-1] != 2:
                    raise CorruptCheckpoint(
                        f"{path}: {st.name!r}: complex pairs need a last dim of 2"
                    )
                shape, how = shape[:-1], "raw"
            nbytes = num_elements(shape) * dtype.itemsize if dtype is not None else 0
            start = header.data_start + st.begin
            self.tensors.append(
                InputTensor(
                    st.name,
                    shape,
                    st.dtype,
                    dtype,
                    reason,
                    how,
                    nbytes,
                    (start, st.end - st.begin),
                )
            )

    def _declared_dtypes(self) -> dict[str, str]:
        raw = self.metadata.get(ST_DTYPES_KEY)
        if raw is None:
            return {}
        try:
            declared = json.loads(raw)
        except json.JSONDecodeError:
            raise CorruptCheckpoint(f"{self.path}: unreadable {ST_DTYPES_KEY} metadata") from None
        if not isinstance(declared, dict):
            raise CorruptCheckpoint(f"{self.path}: {ST_DTYPES_KEY} metadata is not an object")
        return {str(k): str(v) for k, v in declared.items()}

    def _region(self, t: InputTensor) -> memoryview:
        start, length = t.loc
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)[start : start + length]

    def _release(self, start: int, length: int) -> None:
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED") or length <= 0:
            return
        begin = start - start % mmap.PAGESIZE
        end = min(start + length, len(self._map))
        if end > begin:
            self._map.madvise(mmap.MADV_DONTNEED, begin, end - begin)

    def chunks(self, t: InputTensor) -> Iterator[bytes | memoryview]:
        region = self._region(t)
        start = t.loc[0]
        if t.how == "raw":
            for pos in range(0, len(region), CHUNK):
                yield region[pos : pos + CHUNK]
                self._release(start + pos, min(CHUNK, len(region) - pos))
            return
        import numpy as np

        assert t.dtype is not None and t.dtype.numpy is not None
        base = dtype_from_name(ST_TO_TF[t.stored]).numpy
        for pos in range(0, len(region), CHUNK):
            values = np.frombuffer(region[pos : pos + CHUNK], dtype=base)
            yield values.astype(t.dtype.numpy).view(np.uint8).data
        self._release(start, len(region))

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):
                self._map.close()
        self._file.close()


# ---- .npy members (in a zip or a directory) ---------------------------------------------
def _npy_tensor(
    name: str, header: NpyHeader, declared: str | None, allow_pickle: bool, loc: Any
) -> InputTensor:
    dtype, how, reason = resolve_npy_dtype(header.dtype, declared, allow_pickle)
    nbytes = 0
    if dtype is not None and not dtype.is_string:
        nbytes = num_elements(header.shape) * dtype.itemsize
    return InputTensor(name, header.shape, header.dtype.str, dtype, reason, how, nbytes, loc)


def _npy_chunks(
    open_stream: Callable[[], BinaryIO], t: InputTensor, where: str, allow_pickle: bool
) -> Iterator[bytes | memoryview]:
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
            values = _read_whole(fp, where, allow_pickle)
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


def _read_whole(fp: BinaryIO, where: str, allow_pickle: bool) -> np.ndarray:
    from numpy.lib import format as npformat

    try:
        return npformat.read_array(fp, allow_pickle=allow_pickle, max_header_size=1 << 20)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptCheckpoint(f"{where}: unreadable array ({exc})") from None


def _as_strings(values: np.ndarray, where: str) -> np.ndarray:
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


class NpzInput(InputFile):
    format = Format.npz

    def __init__(self, path: str, allow_pickle: bool = False) -> None:
        self.path = path
        self.allow_pickle = allow_pickle
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptCheckpoint(f"{path}: not a readable .npz archive ({exc})") from None
        self.metadata = self._archive_metadata()
        self.tensors = []
        for info in self._zip.infolist():
            if info.is_dir() or not info.filename.endswith(".npy"):
                continue
            name = info.filename[: -len(".npy")]
            declared = None
            if info.comment.startswith(NPZ_COMMENT_PREFIX):
                declared = info.comment[len(NPZ_COMMENT_PREFIX) :].decode("utf-8", "replace")
            where = f"{path}: {info.filename}"
            try:
                with self._zip.open(info) as member:
                    header = read_npy_header(member, where)  # type: ignore[arg-type]
            except (zipfile.BadZipFile, OSError) as exc:
                raise CorruptCheckpoint(f"{where}: unreadable member ({exc})") from None
            self.tensors.append(_npy_tensor(name, header, declared, allow_pickle, info))
        self.tensors.sort(key=lambda t: t.name)

    def _archive_metadata(self) -> dict[str, str]:
        try:
            data = json.loads(self._zip.comment.decode("utf-8")) if self._zip.comment else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _open(self, t: InputTensor) -> Callable[[], BinaryIO]:
        return lambda: self._zip.open(t.loc)  # type: ignore[return-value]

    def chunks(self, t: InputTensor) -> Iterator[bytes | memoryview]:
        try:
            yield from _npy_chunks(
                self._open(t), t, f"{self.path}: {t.loc.filename}", self.allow_pickle
            )
        except zipfile.BadZipFile as exc:
            raise CorruptCheckpoint(f"{self.path}: {t.loc.filename}: {exc}") from None

    def strings(self, t: InputTensor) -> np.ndarray:
        where = f"{self.path}: {t.loc.filename}"
        try:
            with self._zip.open(t.loc) as fp:
                values = _read_whole(fp, where, self.allow_pickle)  # type: ignore[arg-type]
        except zipfile.BadZipFile as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        return _as_strings(values, where)

    def close(self) -> None:
        self._zip.close()


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
            self.tensors.append(_npy_tensor(name, header, declared, allow_pickle, full))

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
        yield from _npy_chunks(lambda: open(t.loc, "rb"), t, t.loc, self.allow_pickle)  # noqa: SIM115

    def strings(self, t: InputTensor) -> np.ndarray:
        with open(t.loc, "rb") as fp:
            values = _read_whole(fp, t.loc, self.allow_pickle)
        return _as_strings(values, t.loc)
