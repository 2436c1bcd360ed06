"""``open_checkpoint``: resolve any path a user gives to a checkpoint, and read it (V1 or V2).

A path may be a prefix, any file of a checkpoint (``.index``, ``.data-*``, ``.meta``), a
directory (the latest checkpoint per its ``checkpoint`` state file, else the newest prefix) or
a SavedModel directory (``variables/variables``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfckpt import protos, storage
from tfckpt.bundle.reader import CHUNK_ELEMENTS, BundleReader, Entry, num_elements, quoted
from tfckpt.bundle.state import reachable_from, read_state
from tfckpt.bundle.table import has_table_magic
from tfckpt.bundle.v1 import V1Reader, looks_like_v1, v1_files
from tfckpt.dtypes import DType
from tfckpt.errors import (
    CheckpointNotFound,
    CorruptCheckpoint,
    UsageError,
    VariableNotFound,
)
from tfckpt.names import OBJECT_GRAPH_KEY, object_path_of

_STEP_RE = re.compile(r"-(\d+)$")
_DATA_RE = re.compile(r"\.data-\d{5,}-of-\d{5,}$")

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """What the index says about one tensor, as TF's ``list_variables`` shows it."""

    name: str  # the key TF lists (TF2: the escaped object-path key)
    dtype: DType
    shape: tuple[int, ...]
    nbytes: int  # bytes stored in the data files (all slices)
    num_slices: int = 0  # > 0 for partitioned variables
    object_path: str | None = None  # TF2: the object path, e.g. model/layer/kernel

    @property
    def size(self) -> int:
        return num_elements(self.shape)

    @property
    def display_name(self) -> str:
        return self.object_path or self.name


@dataclass(eq=False)
class Checkpoint(Mapping[str, "np.ndarray"]):
    """An opened checkpoint: a read-only, lazy mapping of tensor name -> numpy array.

    ``keys()`` are the names TensorFlow lists (TF2: the checkpoint keys); ``ckpt[name]`` reads
    one tensor (a TF2 object path works too); ``tensors()`` / ``info(name)`` give dtypes,
    shapes and sizes from the index without reading any tensor. Use as a context manager, or
    call ``close()``.

    >>> with tfckpt.open("runs/exp1") as ckpt:
    ...     kernel = ckpt["dense/kernel"]
    ...     shapes = {info.name: info.shape for info in ckpt.tensors()}
    """

    prefix: str
    format: str  # "V1" or "V2"
    notes: list[str] = field(default_factory=list)  # things the user should hear about
    # Data shards the index uses that do not exist (only with open_checkpoint(need_data=False)).
    missing_shards: list[int] = field(default_factory=list)
    _bundle: BundleReader | None = None
    _v1: V1Reader | None = None
    _infos: dict[str, TensorInfo] | None = None

    # ---- listing --------------------------------------------------------------------------
    @property
    def bundle(self) -> BundleReader:
        if self._bundle is None:
            raise UsageError(f"{self.prefix}: this operation needs a V2 checkpoint (this is V1)")
        return self._bundle

    @property
    def num_shards(self) -> int:
        if self._bundle is not None:
            return self._bundle.num_shards
        assert self._v1 is not None
        return len(self._v1.files)

    @property
    def files(self) -> list[str]:
        if self._bundle is not None:
            return [self._bundle.index_path, *self._bundle.data_paths()]
        assert self._v1 is not None
        return list(self._v1.files)

    @property
    def is_object_based(self) -> bool:
        return OBJECT_GRAPH_KEY in self._all_infos()

    def _all_infos(self) -> dict[str, TensorInfo]:
        if self._infos is None:
            self._infos = self._build_infos()
        return self._infos

    def _build_infos(self) -> dict[str, TensorInfo]:
        infos: dict[str, TensorInfo] = {}
        if self._bundle is not None:
            b = self._bundle
            tf2 = OBJECT_GRAPH_KEY.encode() in b.entries
            for entry in b.entries.values():
                if entry.is_slice_key:
                    continue
                name = entry.name
                infos[name] = TensorInfo(
                    name=name,
                    dtype=entry.dtype,
                    shape=entry.shape,
                    nbytes=b.stored_size(entry),
                    num_slices=len(entry.slices),
                    object_path=object_path_of(name) if tf2 and name != OBJECT_GRAPH_KEY else None,
                )
        else:
            assert self._v1 is not None
            for name in sorted(self._v1.tensors):
                t = self._v1.tensors[name]
                full = len(t.slices) == 1 and all(length == -1 for _, length in t.slices[0])
                infos[name] = TensorInfo(
                    name=name,
                    dtype=t.dtype,
                    shape=t.shape,
                    nbytes=self._v1.nbytes(t),
                    num_slices=0 if full else len(t.slices),
                )
        return infos

    def tensors(self, include_object_graph: bool = True) -> list[TensorInfo]:
        """Every tensor TF would list (per-slice keys hidden), sorted by name."""
        infos = self._all_infos()
        return [infos[n] for n in sorted(infos) if include_object_graph or n != OBJECT_GRAPH_KEY]

    def info(self, name: str) -> TensorInfo:
        """What the index says about tensor ``name`` (a key, or for TF2 also its object path);
        VariableNotFound if there is none."""
        infos = self._all_infos()
        if name in infos:
            return infos[name]
        # TF2: also accept the object path (model/layer/kernel) for the key.
        for info in infos.values():
            if info.object_path == name:
                return info
        raise not_found(self.prefix, name, infos.values())

    def entry(self, name: str) -> Entry:
        return self.bundle.entries[self.info(name).name.encode("utf-8", "surrogateescape")]

    # ---- values ---------------------------------------------------------------------------
    def read(self, name: str, verify: bool = True) -> np.ndarray:
        """The whole value of one tensor (CRC32C-checked for V2)."""
        info = self.info(name)
        if self._bundle is not None:
            return self._bundle.read(self.entry(info.name), verify)
        assert self._v1 is not None
        return self._v1.read(info.name)

    def iter_chunks(
        self, name: str, chunk_elements: int = CHUNK_ELEMENTS, verify: bool = True
    ) -> Iterator[np.ndarray]:
        """Flat chunks of one tensor's values; bounded memory for V2 numeric tensors."""
        info = self.info(name)
        if self._bundle is not None:
            yield from self._bundle.iter_chunks(self.entry(info.name), chunk_elements, verify)
        else:
            yield self.read(info.name).reshape(-1)

    def prefetch(self, names: Iterable[str]) -> None:
        """Say which tensors will be read next, in this order: a remote checkpoint fetches
        their bytes ahead of the reader, several requests in flight (a no-op locally)."""
        if self._bundle is None or not storage.is_url(self.prefix):
            return
        entries = []
        for name in names:
            entry = self.entry(name)
            if entry.slices:
                entries += [self._bundle.slice_entry(entry, spec) for spec in entry.slices]
            else:
                entries.append(entry)
        self._bundle.prefetch(entries)

    def object_graph_bytes(self) -> bytes | None:
        """The serialized TF2 object graph (a scalar string tensor), or None for name-based
        checkpoints; CorruptCheckpoint when the entry is not one string."""
        infos = self._all_infos()
        info = infos.get(OBJECT_GRAPH_KEY)
        if info is None:
            return None
        if not info.dtype.is_string or info.size != 1:
            raise CorruptCheckpoint(
                f"{self.prefix}: {OBJECT_GRAPH_KEY} is a {info.dtype.name} tensor of shape "
                f"{list(info.shape)}, not one string (corrupt object graph)"
            )
        return bytes(self.read(OBJECT_GRAPH_KEY).reshape(-1)[0])

    def object_graph(self) -> Any | None:
        """The TF2 TrackableObjectGraph, or None for name-based checkpoints."""
        raw = self.object_graph_bytes()
        if raw is None:
            return None
        from google.protobuf.message import DecodeError

        try:
            return protos.TrackableObjectGraph.FromString(raw)
        except DecodeError:
            raise CorruptCheckpoint(f"{self.prefix}: unreadable object graph") from None

    # ---- the read-only mapping: name -> numpy array ------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        """``ckpt[name]``: the whole value (partitioned variables assembled; CRC-checked)."""
        return self.read(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.info(name)
        except VariableNotFound:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all_infos()))

    def __len__(self) -> int:
        return len(self._all_infos())

    # ---- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        if self._bundle is not None:
            self._bundle.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def not_found(prefix: str, name: str, infos: Iterable[TensorInfo]) -> VariableNotFound:
    """The error for a missing variable, naming the closest names there are (a typo, mostly)."""
    import difflib

    names = {n for info in infos for n in (info.name, info.object_path) if n}
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.7)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return VariableNotFound(f"{prefix}: no variable named {name!r}{hint}")


# ---- path resolution ------------------------------------------------------------------------
def strip_checkpoint_suffix(path: str) -> str:
    """``x.index`` / ``x.meta`` / ``x.data-00000-of-00001`` -> ``x``; other paths unchanged."""
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    m = _DATA_RE.search(path)
    if m:
        return path[: m.start()]
    return path


def is_v2_prefix(prefix: str) -> bool:
    return storage.isfile(prefix + ".index")


def is_savedmodel_dir(path: str) -> bool:
    return storage.isdir(path) and (
        storage.isfile(storage.join(path, "saved_model.pb"))
        or storage.isfile(storage.join(path, "saved_model.pbtxt"))
    )


def prefixes_in_dir(directory: str) -> list[str]:
    """Checkpoint prefixes directly in ``directory`` (V2 by .index; V1 by table content)."""
    found: list[str] = []
    try:
        names = storage.listdir(directory)
    except OSError:
        return found
    for name in names:
        full = storage.join(directory, name)
        if name.endswith(".index") and storage.isfile(full):
            found.append(full[: -len(".index")])
    v2 = set(found)
    for name in names:
        full = storage.join(directory, name)
        if (
            may_be_v1(name)
            and not any(full.startswith(p + ".") for p in v2)
            and looks_like_v1(full)
        ):
            found.append(full)
    return found


_NOT_V1_RE = re.compile(
    r"(\.(index|meta|pb|pbtxt|json|txt|csv|py|md|npz|npy|safetensors|h5|keras)$)"
    r"|\.data-\d+-of-\d+$|\.tfevents\.|\.tfckpt-tmp-|\.tempstate\d+$"
)


def may_be_v1(name: str) -> bool:
    """Whether a file name could be a V1 checkpoint table (they have no fixed suffix: ``export``,
    ``model.ckpt``, ``model.ckpt-00000-of-00002``); the content decides (``looks_like_v1``)."""
    return name != "checkpoint" and not _NOT_V1_RE.search(name)


def newest_prefix(prefixes: list[str]) -> str:
    """The checkpoint a directory without a usable state file stands for: the newest."""

    def mtime(p: str) -> float:
        for candidate in (p + ".index", p):
            st = storage.stat(candidate)
            if st is not None:
                return st.mtime or 0.0
        return 0.0

    # Checkpoints copied together share a modification time: then the higher step wins.
    return max(prefixes, key=lambda p: (mtime(p), -1 if step_of(p) is None else step_of(p), p))


def data_bytes_on_disk(prefix: str) -> int:
    """Bytes in the regular files named like ``<prefix>.data-*`` (or a V1 prefix's tables), from
    one directory listing; for progress totals, so missing or odd files just count 0."""
    directory = storage.dirname(prefix) or "."
    base = storage.basename(prefix)
    try:
        names = storage.listdir(directory)
    except OSError:
        return 0
    total = 0
    for name in names:
        if not (name.startswith(base + ".data-") or name == base or name.startswith(base + "-")):
            continue
        st = storage.stat(storage.join(directory, name))  # None: dangling or looping symlinks
        if st is not None and st.isfile:
            total += st.size
    return total


def step_of(prefix: str) -> int | None:
    """The global step in a checkpoint's name (``model.ckpt-1000`` -> 1000), if any."""
    m = _STEP_RE.search(storage.basename(prefix))
    return int(m.group(1)) if m else None


def _checkpoint_exists(prefix: str) -> bool:
    return is_v2_prefix(prefix) or bool(v1_files(prefix))


def resolve_prefix(path: str, notes: list[str] | None = None) -> tuple[str, str]:
    """Turn a user-given path into ``(prefix, "V1"|"V2")``, or raise CheckpointNotFound."""
    notes = [] if notes is None else notes
    if storage.is_url(path):
        path = path.rstrip("/") or path
    found = storage.stat(path)
    dangling = found is None and not storage.is_url(path) and os.path.lexists(path)
    if found is None and not dangling and not _checkpoint_exists(path):
        stripped = strip_checkpoint_suffix(path)
        if stripped == path or not _checkpoint_exists(stripped):
            raise CheckpointNotFound(f"{path}: no such file or checkpoint")
    if found is not None and found.isdir:
        return _resolve_dir(path, notes)
    if is_v2_prefix(path):
        return path, "V2"
    stripped = strip_checkpoint_suffix(path)
    if stripped != path and is_v2_prefix(stripped):
        return stripped, "V2"
    parent = storage.dirname(path) or "."
    if storage.basename(path) in ("saved_model.pb", "saved_model.pbtxt"):
        return _resolve_dir(parent, notes)
    is_file = found is not None and found.isfile
    if is_file and storage.basename(path) == "checkpoint":
        return _resolve_dir(parent, notes)
    if stripped != path and storage.isfile(stripped) and looks_like_v1(stripped):
        return stripped, "V1"  # e.g. the .meta of a V1 checkpoint
    if stripped != path and v1_files(stripped):
        return stripped, "V1"  # the .meta of a sharded V1 checkpoint (export-00000-of-00001)
    if is_file:
        # A file named explicitly that ends like a table is taken as V1 even if damaged, so
        # the reader can say what is wrong with it (a directory scan stays strict).
        if looks_like_v1(path) or has_table_magic(path):
            return path, "V1"
        from tfckpt.storage.lfs import LFS_POINTER, is_lfs_pointer

        if is_lfs_pointer(path):
            raise CorruptCheckpoint(f"{path}: {LFS_POINTER}")
        raise CorruptCheckpoint(f"{path}: not a checkpoint (neither a V2 index nor a V1 table)")
    if v1_files(path):
        return path, "V1"
    raise CheckpointNotFound(f"{path}: no such file or checkpoint")


def _resolve_dir(directory: str, notes: list[str]) -> tuple[str, str]:
    if is_savedmodel_dir(directory):
        prefix = storage.join(directory, "variables", "variables")
        if not is_v2_prefix(prefix):
            raise CheckpointNotFound(_savedmodel_without_variables(directory))
        return prefix, "V2"
    state_path = storage.join(directory, "checkpoint")
    if storage.isfile(state_path) and not is_v2_prefix(state_path):
        try:
            state = read_state(directory)
        except CorruptCheckpoint as exc:
            # As TF's get_checkpoint_state: an unreadable state file is ignored, with a word.
            notes.append(f"{exc}; using the newest checkpoint in the directory")
            state = None
        if state is not None and state.latest:
            latest = state.latest
            if reachable_from(directory, latest):
                v1 = v1_files(latest)
                if is_v2_prefix(latest) or (v1 and looks_like_v1(v1[0])):
                    return latest, "V2" if is_v2_prefix(latest) else "V1"
                problem = "is not a checkpoint" if storage.lexists(latest) else "does not exist"
            else:
                problem = "is a local path, not in this store"
            notes.append(
                f"{state_path}: latest checkpoint {quoted(state.raw_latest)} {problem}; "
                "using the newest checkpoint in the directory"
            )
    prefixes = prefixes_in_dir(directory)
    if not prefixes:
        raise CheckpointNotFound(f"{directory}: no checkpoint in this directory")
    prefix = newest_prefix(prefixes)
    return prefix, "V2" if is_v2_prefix(prefix) else "V1"


def _savedmodel_without_variables(directory: str) -> str:
    """What is wrong with a SavedModel directory that has no ``variables/variables`` index."""
    beside = sorted(prefixes_in_dir(directory))
    if beside:
        # A "flattened" copy: the variables checkpoint sits next to saved_model.pb, where
        # TensorFlow's loader does not look for it.
        return (
            f"{directory}: SavedModel without variables/variables.index, but the checkpoint "
            f"{beside[0]} lies beside saved_model.pb (flattened copy?); give that prefix to read "
            "it, or move its files into variables/ for TensorFlow to load the SavedModel"
        )
    variables = storage.join(directory, "variables")
    if storage.isdir(variables) and any(
        name.startswith("variables.data-") for name in storage.listdir(variables)
    ):
        return (
            f"{variables}/variables.index: no such file (the data files are there; "
            "incomplete copy?)"
        )
    return f"{directory}: SavedModel has no variables/ checkpoint (it holds no variables)"


def open_checkpoint(path: str | os.PathLike[str], need_data: bool = True) -> Checkpoint:
    """Open the checkpoint at ``path`` (see the module docstring for what a path may be).

    A V2 checkpoint whose index names data shards that are missing raises CorruptCheckpoint,
    unless ``need_data`` is False (listing names, dtypes and shapes needs only the index, as
    ``tf.train.list_variables`` does): then it opens with a warning in ``notes``, its
    ``missing_shards`` listed, and reading a value from a missing shard raises.
    """
    notes: list[str] = []
    prefix, fmt = resolve_prefix(os.fspath(path), notes)
    if fmt == "V2":
        bundle = BundleReader(prefix)
        # A checkpoint without all its data cannot give values: say so at once rather than when
        # the first value is read (verify lists every gap).
        used = sorted({e.shard_id for e in bundle.entries.values() if not e.slices})
        if storage.is_url(prefix):
            with contextlib.suppress(OSError):  # one listing answers the checks below
                storage.listdir(storage.dirname(prefix))
        missing = [i for i in used if not storage.exists(bundle.data_path(i))]
        if missing:
            problem = (
                f"{bundle.data_path(missing[0])}: data shard is missing ({len(missing)} of "
                f"{bundle.num_shards} shards missing; incomplete copy?)"
            )
            if need_data:
                bundle.close()
                raise CorruptCheckpoint(problem)
            notes.append(f"warning: {problem}: listed from the index alone; values cannot be read")
        return Checkpoint(
            prefix=prefix, format="V2", notes=notes, missing_shards=missing, _bundle=bundle
        )
    return Checkpoint(prefix=prefix, format="V1", notes=notes, _v1=V1Reader(prefix))
