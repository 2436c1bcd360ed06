"""safetensors: the header, how TF dtypes map onto it, and its writer, checker and reader.

A safetensors file: an 8-byte little-endian header length N, N bytes of JSON (``{name: {"dtype",
"shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, offsets relative to the
end of the header, padded with spaces), then the tensor bytes, little-endian and row-major.
Writing the header first from the planned sizes lets tensors be streamed one by one afterwards.

safetensors names a fixed set of element types. TF dtypes fall into these groups:

- **direct**: the same element type exists (float16 -> F16, bfloat16 -> BF16, float8_e4m3fn ->
  F8_E4M3, complex64 -> C64, ...); bytes are copied unchanged.
- **as integers**: quantized types (qint8, quint8, qint16, quint16, qint32) are stored with their
  plain integer layout, and the 4/2-bit integers (int4, uint4, int2, uint2) are widened to
  I8/U8 with the same values. The TF dtype is recorded in ``__metadata__["tfckpt.dtypes"]`` so
  ``tfckpt import`` restores it exactly; other readers see ordinary integers.
- **as real pairs**: complex128 is stored as F64 with an extra last dimension of 2 (real,
  imaginary), the layout ``torch.view_as_real`` uses; the bytes are the same. Recorded in the
  metadata too.
- **not representable**: string, variant, and the float8/float4 variants safetensors lacks
  (float8_e4m3b11fnuz, float4_e2m1fn). They are skipped with a warning, or refused under
  ``strict``.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from tfckpt.bundle.reader import num_elements
from tfckpt.dtypes import DType, dtype_from_name
from tfckpt.errors import CheckFailed, CorruptCheckpoint, UnrepresentableTensor
from tfckpt.transfer.columns import ExportColumns, compare_all, copy_runs, output_crcs
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
    crc_of_stream,
    emit_to_fd,
    write_all,
)
from tfckpt.transfer.formats import Format

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.checkpoint import TensorInfo

# safetensors refuses headers above 100 MB.
MAX_ST_HEADER = 100_000_000
METADATA_KEY = "__metadata__"
ST_DTYPES_KEY = "tfckpt.dtypes"  # __metadata__: JSON {name: tf dtype} where the type is ambiguous

# TF dtype name -> safetensors dtype, bytes unchanged.
ST_DIRECT: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "uint32": "U32",
    "int32": "I32",
    "uint64": "U64",
    "int64": "I64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float32": "F32",
    "float64": "F64",
    "complex64": "C64",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
# Quantized types: the integer layout, bytes unchanged.
ST_LAYOUT: dict[str, str] = {
    "qint8": "I8",
    "quint8": "U8",
    "qint16": "I16",
    "quint16": "U16",
    "qint32": "I32",
}
# Sub-byte integers (one element per byte in TF): converted by value to a full byte.
ST_WIDEN: dict[str, str] = {"int4": "I8", "uint4": "U8", "int2": "I8", "uint2": "U8"}
# Complex without a safetensors type: (real, imaginary) pairs along a new last dimension.
ST_PAIRS: dict[str, str] = {"complex128": "F64"}
# safetensors dtype -> the plain TF dtype it reads as.
ST_TO_TF: dict[str, str] = {v: k for k, v in ST_DIRECT.items()}
ST_ITEMSIZE: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E4M3FNUZ": 1,
    "F8_E5M2FNUZ": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "C64": 8,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}


def safetensors_dtype(dtype: DType) -> tuple[str | None, str]:
    """``(safetensors dtype, how)``, how being direct / layout / widen / pairs; or
    ``(None, reason)`` when safetensors cannot hold the dtype."""
    if dtype.name in ST_DIRECT:
        return ST_DIRECT[dtype.name], "direct"
    if dtype.name in ST_LAYOUT:
        return ST_LAYOUT[dtype.name], "layout"
    if dtype.name in ST_WIDEN:
        return ST_WIDEN[dtype.name], "widen"
    if dtype.name in ST_PAIRS:
        return ST_PAIRS[dtype.name], "pairs"
    if dtype.is_string:
        return None, "safetensors has no string type"
    return None, f"safetensors has no {dtype.name} type"


def resolve_st_dtype(stored: str, declared: str | None) -> tuple[DType | None, str, str | None]:
    """``(TF dtype, how, reason)`` for a tensor stored as ``stored``, optionally declared (by
    the metadata an export writes) to be TF dtype ``declared``."""
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


# ---- the header ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StTensor:
    name: str
    dtype: str  # safetensors dtype, e.g. "BF16"
    shape: tuple[int, ...]
    begin: int  # offset from the start of the data area
    end: int


# The data area can be placed at a chosen offset modulo this by padding the header.
ALIGN_GRANULE = 1 << 20
# Below this many copied bytes, aligning the data area is not worth up to 1 MiB of padding.
ALIGN_MIN_BYTES = 64 << 20


def build_st_header(
    tensors: list[StTensor], metadata: dict[str, str], residue: int | None = None
) -> bytes:
    """The 8-byte length and JSON header, padded with spaces so the data starts 8-aligned, and
    (given ``residue``, a multiple of 8) at that offset modulo ``ALIGN_GRANULE``."""
    import numpy as np

    specs: dict[str, int] = {}
    kinds = [specs.setdefault(st_spec(t.dtype, t.shape), len(specs)) for t in tensors]
    return b"".join(
        st_header_pieces(
            [t.name for t in tensors],
            list(specs),
            np.array(kinds, dtype=np.int64),
            np.array([t.begin for t in tensors], dtype=np.int64),
            np.array([t.end for t in tensors], dtype=np.int64),
            metadata,
            residue,
        )
    )


def st_spec(dtype: str, shape: tuple[int, ...]) -> str:
    """The dtype and shape fields of a header entry, as JSON text."""
    return f'"dtype":"{dtype}","shape":[{",".join(map(str, shape))}]'


# Characters JSON escapes (ensure_ascii off): a name without any is written between quotes.
_ESCAPED = re.compile(r'["\\\x00-\x1f]')
# Tensors per piece of a header being built (bounds the memory the assembly takes).
HEADER_STEP = 1 << 16


def _plain(names: list[str]) -> bool:
    """Whether no name needs escaping in JSON (a quick test first, the exact one if it fails)."""
    text = "".join(names)
    if text.isprintable() and '"' not in text and "\\" not in text:
        return True
    return _ESCAPED.search(text) is None


def st_header_pieces(
    names: list[str],
    specs: list[str],
    kinds: np.ndarray,
    begins: np.ndarray,
    ends: np.ndarray,
    metadata: dict[str, str],
    residue: int | None = None,
) -> list[bytes]:
    """``build_st_header`` in pieces (to be written one after another), from columns: the
    tensors' names, the number of each one's ``st_spec`` text among ``specs``, and their data
    offsets. The bytes are what ``json.dumps`` makes of the header object with compact
    separators and ``ensure_ascii=False``, assembled by one ``str.join`` per piece over the
    interleaved columns (no Python code runs per tensor). Refuses a header safetensors would
    not read (UnrepresentableTensor)."""
    plain = _plain(names)
    keys = names if plain else [json.dumps(name, ensure_ascii=False) for name in names]
    quote = '"' if plain else ""  # around the key, when json.dumps has not put it there
    mids = [f'{quote}:{{{spec},"data_offsets":[' for spec in specs]
    text = "{"
    if metadata:
        meta = {METADATA_KEY: dict(metadata)}
        text += json.dumps(meta, separators=(",", ":"), ensure_ascii=False)[1:-1]
        text += "," if names else ""
    pieces = [text.encode("utf-8")]
    for lo in range(0, len(names), HEADER_STEP):
        hi = min(lo + HEADER_STEP, len(names))
        count = hi - lo
        parts: list[str] = [""] * (7 * count)
        parts[0::7] = [quote] * count
        parts[1::7] = keys[lo:hi]
        parts[2::7] = (
            [mids[0]] * count if len(mids) == 1 else [mids[k] for k in kinds[lo:hi].tolist()]
        )
        if count > 1 and (ends[lo : hi - 1] == begins[lo + 1 : hi]).all():  # laid out end to end
            offsets = list(map(str, [*begins[lo:hi].tolist(), int(ends[hi - 1])]))
            parts[3::7], parts[5::7] = offsets[:-1], offsets[1:]
        else:
            parts[3::7] = map(str, begins[lo:hi].tolist())
            parts[5::7] = map(str, ends[lo:hi].tolist())
        parts[4::7] = [","] * count
        parts[6::7] = ["]},"] * count
        pieces.append("".join(parts).encode("utf-8"))
    if names:
        pieces[-1] = pieces[-1][:-1]  # the last entry's comma
    pieces.append(b"}")
    length = sum(map(len, pieces))
    pad = -length % 8
    if residue is not None:
        pad += (residue - 8 - length - pad) % ALIGN_GRANULE
    if length + pad > MAX_ST_HEADER:
        raise UnrepresentableTensor(
            f"{len(names)} tensors need a safetensors header of {length + pad:,} bytes; "
            f"safetensors reads at most {MAX_ST_HEADER:,} (export fewer tensors per file, "
            "or to npz)"
        )
    return [struct.pack("<Q", length + pad), *pieces, b" " * pad]


@dataclass
class StHeader:
    tensors: list[StTensor]
    metadata: dict[str, str]
    data_start: int  # absolute file offset of the data area


def read_st_header(fp: BinaryIO, file_size: int, where: str) -> StHeader:
    """Parse and validate a safetensors header; every offset is checked against the file size."""
    head = fp.read(8)
    if len(head) < 8:
        raise CorruptCheckpoint(f"{where}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", head)
    if length > MAX_ST_HEADER or length > file_size - 8:
        raise CorruptCheckpoint(f"{where}: safetensors header length {length} is impossible")
    try:
        body = json.loads(fp.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"{where}: unreadable safetensors header ({exc})") from None
    if not isinstance(body, dict):
        raise CorruptCheckpoint(f"{where}: safetensors header is not a JSON object")
    data_size = file_size - 8 - length
    metadata_raw = body.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata_raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()
    ):
        raise CorruptCheckpoint(f"{where}: __metadata__ must map strings to strings")
    tensors = []
    for name, spec in body.items():
        tensors.append(_st_tensor(name, spec, data_size, f"{where}: {name!r}"))
    return StHeader(sorted(tensors, key=lambda t: t.name), dict(metadata_raw), 8 + length)


def _st_tensor(name: str, spec: Any, data_size: int, where: str) -> StTensor:
    if not isinstance(spec, dict):
        raise CorruptCheckpoint(f"{where}: entry is not an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(dtype, str):
        raise CorruptCheckpoint(f"{where}: missing dtype")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise CorruptCheckpoint(f"{where}: bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_size
    ):
        raise CorruptCheckpoint(f"{where}: data_offsets {offsets!r} outside the data area")
    dims = tuple(shape)
    itemsize = ST_ITEMSIZE.get(dtype)
    if itemsize is not None and num_elements(dims) * itemsize != offsets[1] - offsets[0]:
        raise CorruptCheckpoint(
            f"{where}: {offsets[1] - offsets[0]} bytes for shape {shape} of {dtype}"
        )
    return StTensor(name, dtype, dims, offsets[0], offsets[1])


def _planned_header(plan: ExportPlan) -> list[StTensor]:
    cols = plan.columns
    if cols is not None:
        assert cols.begin is not None
        shapes, which = cols.unique_shapes()
        stored = [cols.stored[code][1] for code in cols.column("dtype").tolist()]
        begins = cols.begin.tolist()
        return list(
            map(
                StTensor,
                cols.names,
                stored,
                map(shapes.__getitem__, which.tolist()),
                begins,
                (cols.begin + cols.nbytes).tolist(),
            )
        )
    return [
        StTensor(i.name, i.stored, i.out_shape, i.begin, i.begin + i.nbytes) for i in plan.items
    ]


def _columns_header(plan: ExportPlan, cols: ExportColumns) -> list[bytes]:
    import numpy as np

    assert cols.begin is not None
    shapes, which = cols.unique_shapes()
    kinds, kind = np.unique(which * 256 + cols.column("dtype"), return_inverse=True)
    specs = [st_spec(cols.stored[k % 256][1], shapes[k // 256]) for k in kinds.tolist()]
    return st_header_pieces(
        cols.names,
        specs,
        kind.reshape(-1),
        cols.begin,
        cols.begin + cols.nbytes,
        plan.metadata,
        plan.data_residue,
    )


# Headers up to this size are also parsed back (by safetensors and by tfckpt's reader) and
# compared with the plan; larger ones (10^4 tensors and more) are compared byte for byte with
# what was written, as parsing them costs more than the rest of the export.
PARSE_HEADER_MAX = 1 << 20


# ---- export -------------------------------------------------------------------------------------
class Safetensors(FileFormat):
    format = Format.safetensors
    reserved_names: ClassVar[dict[str, str]] = {METADATA_KEY: "safetensors"}

    def raw_storage(self, dtype: DType) -> tuple[str, int] | str | None:
        st_dtype, how = safetensors_dtype(dtype)
        if st_dtype is None:
            return how
        return (st_dtype, ST_ITEMSIZE[st_dtype]) if how in ("direct", "layout") else None

    def storage(self, dtype: DType, info: TensorInfo) -> Storage | str:
        st_dtype, how = safetensors_dtype(dtype)
        if st_dtype is None:
            return how
        if how == "widen":
            target = "int8" if st_dtype == "I8" else "uint8"
            return Storage(st_dtype, info.size * ST_ITEMSIZE[st_dtype], "convert", target)
        if how == "pairs":
            return Storage(st_dtype, info.size * dtype.itemsize, stored_shape=(*info.shape, 2))
        return Storage(st_dtype, info.size * ST_ITEMSIZE[st_dtype])

    def layout(self, plan: ExportPlan) -> None:
        # Largest element size first (as safetensors itself orders them): with the 8-aligned
        # header every tensor starts at a multiple of its element size, so loaders can map it in
        # place. Within one element size, copied tensors keep their order in the source data
        # files ...
        if plan.columns is not None:
            self._layout_columns(plan, plan.columns)
            return

        def key(i: ExportItem) -> tuple[Any, ...]:
            return (-ST_ITEMSIZE[i.stored], i.src_pos is None, i.src_pos or (0, 0), i.name)

        plan.items.sort(key=key)
        offset = 0
        for item in plan.items:
            item.begin = offset
            offset += item.nbytes
        # ... and for big exports the header is padded so that most of them sit at the same
        # offset modulo 1 MiB as in the source: the kernel then moves whole page-cache folios
        # (copy_file_range to another offset within them measured ~1.4x slower on Linux 6.x).
        weights: dict[int, int] = {}
        for item in plan.items:
            if item.src_pos is not None:
                residue = (item.src_pos[1] - item.begin) % ALIGN_GRANULE
                if residue % 8 == 0:
                    weights[residue] = weights.get(residue, 0) + item.nbytes
        if weights and sum(weights.values()) >= ALIGN_MIN_BYTES:
            plan.data_residue = max(sorted(weights), key=lambda r: weights[r])
        recorded = {
            i.name: i.dtype.name for i in plan.items if ST_TO_TF.get(i.stored) != i.dtype.name
        }
        if recorded:
            plan.metadata[ST_DTYPES_KEY] = json.dumps(recorded, sort_keys=True)

    def _layout_columns(self, plan: ExportPlan, cols: ExportColumns) -> None:
        """``layout`` on columns: the same order, offsets, residue and metadata."""
        import numpy as np

        lookup = np.zeros(256, dtype=np.int64)
        for code, (_, stored) in cols.stored.items():
            lookup[code] = ST_ITEMSIZE[stored]
        itemsize = lookup[cols.column("dtype")]
        shard, offset = cols.column("shard"), cols.column("offset")
        order = np.lexsort((offset, shard, -itemsize))
        keys = np.stack([itemsize[order], shard[order], offset[order]])
        if len(order) > 1 and (keys[:, 1:] == keys[:, :-1]).all(axis=0).any():
            # Tensors at the same place (empty ones): the name decides, as in ``layout``.
            table = list(zip((-itemsize).tolist(), shard.tolist(), offset.tolist(), cols.names))
            order = np.array(sorted(range(len(cols)), key=table.__getitem__), dtype=np.int64)
        if (order[1:] < order[:-1]).any():
            cols.take(order)
        cols.begin = np.cumsum(cols.nbytes) - cols.nbytes
        residue = (cols.column("offset") - cols.begin) % ALIGN_GRANULE
        aligned = residue % 8 == 0
        if aligned.any() and int(cols.nbytes[aligned].sum()) >= ALIGN_MIN_BYTES:
            found, which = np.unique(residue[aligned], return_inverse=True)
            weights = np.zeros(len(found), dtype=np.int64)
            np.add.at(weights, which.reshape(-1), cols.nbytes[aligned])
            plan.data_residue = int(found[int(np.argmax(weights))])
        odd = [code for code, (dt, st) in cols.stored.items() if ST_TO_TF.get(st) != dt.name]
        if odd:
            codes = cols.column("dtype")
            recorded = {
                cols.names[k]: cols.stored[int(codes[k])][0].name
                for k in np.flatnonzero(np.isin(codes, odd)).tolist()
            }
            plan.metadata[ST_DTYPES_KEY] = json.dumps(recorded, sort_keys=True)

    def warm_up(self) -> None:
        with contextlib.suppress(ImportError):
            import numpy  # noqa: F401  (safetensors' numpy framework imports it on open)
            import safetensors  # noqa: F401

    def write(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: EarlyCheck | None,
    ) -> list[str]:
        cols = plan.columns
        if cols is not None:
            cols.header = _columns_header(plan, cols)
            header = cols.header
        else:
            header = [build_st_header(_planned_header(plan), plan.metadata, plan.data_residue)]
        start = sum(map(len, header))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for piece in header:
                write_all(fd, piece)
            if cols is not None:

                def written(k: int, at: int) -> None:
                    if early is not None:
                        early.submit(cols.item(k), tmp, at)

                copy_runs(src, cols, fd, on_bytes, written)
                if os.lseek(fd, 0, os.SEEK_CUR) != start + cols.total_bytes:
                    raise CorruptCheckpoint(f"{plan.source}: the tensors have the wrong size")
                return []
            for item in plan.items:
                emit_to_fd(src, item, fd, on_bytes)
                if os.lseek(fd, 0, os.SEEK_CUR) != start + item.begin + item.nbytes:
                    raise CorruptCheckpoint(f"{plan.source}: {item.source!r} has the wrong size")
                if early is not None and item.how == "raw":
                    early.submit(item, tmp, start + item.begin)
        finally:
            os.close(fd)
        return []

    def check(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: dict[str, int],
    ) -> None:
        where = plan.output
        cols = plan.columns
        if cols is not None and cols.header is not None:
            start = sum(map(len, cols.header))
            _same_header(tmp, cols.header, start + cols.total_bytes, where)
            if start <= PARSE_HEADER_MAX:
                _check_header(plan, tmp)
            compare_all(src, cols, output_crcs(tmp, cols, start, on_bytes, early), where)
            return
        header = _check_header(plan, tmp)
        with open(tmp, "rb", buffering=0) as f:
            for item in plan.items:
                actual = early.get(item.name)
                if actual is None:
                    f.seek(header.data_start + item.begin)
                    actual = crc_of_stream(f.readinto, item.nbytes, on_bytes)
                compare(src, item, actual, where)

    def open(self, path: str, allow_pickle: bool = False) -> InputFile:
        return SafetensorsInput(path)


def _check_header(plan: ExportPlan, tmp: str) -> StHeader:
    """The header as safetensors and tfckpt's reader parse it must be the plan's."""
    where = plan.output
    _check_with_safetensors(plan, tmp)
    with open(tmp, "rb", buffering=0) as f:
        header = read_st_header(f, os.fstat(f.fileno()).st_size, where)  # type: ignore[arg-type]
    planned = {t.name: t for t in _planned_header(plan)}
    if {t.name: t for t in header.tensors} != planned or header.metadata != plan.metadata:
        raise CheckFailed(f"{where}: header differs from the plan")
    return header


def _same_header(tmp: str, header: list[bytes], size: int, where: str) -> None:
    """The output holds ``header`` as written and is ``size`` bytes long."""
    with open(tmp, "rb", buffering=0) as f:
        actual = os.fstat(f.fileno()).st_size
        if actual != size:
            raise CheckFailed(f"{where}: {actual} bytes where the plan makes {size}")
        for piece in header:
            if f.read(len(piece)) != piece:
                raise CheckFailed(f"{where}: header differs from the plan")


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
    names = plan.columns.names if plan.columns is not None else [i.name for i in plan.items]
    if keys != set(names) or metadata != plan.metadata:
        raise CheckFailed(f"{plan.output}: safetensors reads other names or metadata")


# ---- import -------------------------------------------------------------------------------------
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
                    st.name, shape, st.dtype, dtype, reason, how, nbytes, (start, st.end - st.begin)
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


SAFETENSORS = Safetensors()
