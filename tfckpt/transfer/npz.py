""".npz: a zip archive (stored, not deflated) of .npy members, one per tensor, as ``np.savez``
writes it. A member whose .npy descriptor does not say its TF dtype (bfloat16 as ``|V2``, the
quantized types) carries it in its zip comment (``tfckpt:dtype=bfloat16``); export metadata goes
into the archive comment as JSON. The members are written, checked and read by ``npy``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from tfckpt.errors import CheckFailed, CorruptCheckpoint, UsageError
from tfckpt.transfer.common import (
    EarlyCheck,
    ExportPlan,
    FileFormat,
    InputFile,
    InputTensor,
    OnBytes,
    Source,
    Storage,
)
from tfckpt.transfer.formats import Format
from tfckpt.transfer.npy import (
    as_strings,
    check_npy_member,
    needs_dtype_note,
    npy_chunks,
    npy_raw_storage,
    npy_storage,
    npy_tensor,
    read_npy_header,
    read_whole,
    write_npy_item,
)

if TYPE_CHECKING:
    import numpy as np

    from tfckpt.bundle.checkpoint import TensorInfo
    from tfckpt.dtypes import DType

NPZ_COMMENT_PREFIX = b"tfckpt:dtype="  # each member's zip comment
MAX_ZIP_FIELD = 0xFFFF  # zip names and comments have 16-bit lengths


class Npz(FileFormat):
    format = Format.npz

    def storage(self, dtype: DType, info: TensorInfo) -> Storage | str:
        return npy_storage(dtype, info)

    def raw_storage(self, dtype: DType) -> tuple[str, int] | str | None:
        return npy_raw_storage(dtype)

    def write(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: EarlyCheck | None,
    ) -> list[str]:
        notes = []
        too_long = [i.name for i in plan.items if len((i.name + ".npy").encode()) > MAX_ZIP_FIELD]
        if too_long:
            raise UsageError(
                f"{len(too_long)} name(s) too long for a .npz member (64 KiB), e.g. "
                f"{too_long[0][:60]!r}...; export to .safetensors or rename them"
            )
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for item in plan.items:
                info = zipfile.ZipInfo(item.name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                if needs_dtype_note(item):
                    info.comment = NPZ_COMMENT_PREFIX + item.dtype.name.encode()
                with zf.open(info, "w", force_zip64=True) as member:
                    note = write_npy_item(src, item, member, None, on_bytes)  # type: ignore[arg-type]
                if note:
                    notes.append(note)
            if plan.metadata:
                comment = json.dumps(plan.metadata, sort_keys=True).encode()
                if len(comment) > MAX_ZIP_FIELD:
                    raise UsageError("metadata is too long for a .npz archive comment (64 KiB)")
                zf.comment = comment
        return notes

    def check(
        self,
        src: Source,
        plan: ExportPlan,
        tmp: str,
        on_bytes: OnBytes | None,
        early: dict[str, int],
    ) -> None:
        import numpy as np

        where = plan.output
        with np.load(tmp, allow_pickle=False) as npz:  # numpy's own reader sees the same names
            if sorted(npz.files) != sorted(i.name for i in plan.items):
                raise CheckFailed(f"{where}: numpy lists other names")
        with zipfile.ZipFile(tmp) as zf:
            for item in plan.items:
                with zf.open(item.name + ".npy") as member:
                    check_npy_member(src, item, member, where, on_bytes)

    def open(self, path: str, allow_pickle: bool = False) -> InputFile:
        return NpzInput(path, allow_pickle)


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
            self.tensors.append(npy_tensor(name, header, declared, allow_pickle, info))
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
            yield from npy_chunks(
                self._open(t), t, f"{self.path}: {t.loc.filename}", self.allow_pickle
            )
        except zipfile.BadZipFile as exc:
            raise CorruptCheckpoint(f"{self.path}: {t.loc.filename}: {exc}") from None

    def strings(self, t: InputTensor) -> np.ndarray:
        where = f"{self.path}: {t.loc.filename}"
        try:
            with self._zip.open(t.loc) as fp:
                values = read_whole(fp, where, self.allow_pickle)  # type: ignore[arg-type]
        except zipfile.BadZipFile as exc:
            raise CorruptCheckpoint(f"{where}: {exc}") from None
        return as_strings(values, where)

    def close(self) -> None:
        self._zip.close()


NPZ = Npz()
