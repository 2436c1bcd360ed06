"""``open_checkpoint``: resolve any path a user gives to a checkpoint, and read it (V1 or V2).

A path may be a prefix, any file of a checkpoint (``.index``, ``.data-*``, ``.meta``), a
directory (the latest checkpoint per its ``checkpoint`` state file, else the newest prefix) or
a SavedModel directory (``variables/variables``).
"""

from __future__ import annotations

import contextlib
import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

from tfckpt import storage
from tfckpt.bundle.index import column_view, slice_key_count
from tfckpt.bundle.reader import CHUNK_ELEMENTS, BundleReader, Entry, num_elements, quoted
from tfckpt.bundle.state import reachable_from, read_state
from tfckpt.bundle.table import has_table_magic
from tfckpt.bundle.v1 import V1Reader, looks_like_v1, v1_files
from tfckpt.dtypes import DType, dtype_from_enum
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


class TensorInfo(NamedTuple):
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


class Listing:
    """Every tensor of a checkpoint as columns, sorted by name: what ``vars`` renders.

    Row ``i`` is tensor ``names[i]`` (TF2: object path ``paths[i]``, None for the object graph
    itself) of dtype number ``dtype[i]``, shape ``dims[dim_start[i]:dim_start[i + 1]]``,
    ``nelem[i]`` elements and ``nbytes[i]`` stored bytes in ``nslices[i]`` slices (0: not
    partitioned). ``info(i)`` gives one row as a TensorInfo. For a V2 checkpoint ``source[i]``
    is the row's entry in the bundle's index columns.
    """

    __slots__ = (
        "dim_start",
        "dims",
        "dtype",
        "names",
        "nbytes",
        "nelem",
        "nslices",
        "paths",
        "source",
    )

    def __init__(
        self,
        names: list[str],
        paths: list[str | None] | None,
        dtype: array[int],
        dim_start: array[int],
        dims: array[int],
        nelem: array[int],
        nbytes: array[int],
        nslices: array[int],
        source: range | array[int] | None = None,
    ) -> None:
        self.source = source
        self.names = names
        self.paths = paths
        self.dtype = dtype
        self.dim_start = dim_start
        self.dims = dims
        self.nelem = nelem
        self.nbytes = nbytes
        self.nslices = nslices

    def __len__(self) -> int:
        return len(self.names)

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.dims[self.dim_start[i] : self.dim_start[i + 1]])

    def np(self, name: str) -> np.ndarray:
        """A column (``dtype``, ``nelem``, ``nbytes``, ``nslices``, ``source``...) as a numpy
        array (a view of the column, no copy)."""
        return column_view(getattr(self, name))

    def display_name(self, i: int) -> str:
        return (self.paths[i] if self.paths is not None else None) or self.names[i]

    def display_names(self) -> list[str]:
        if self.paths is None:
            return self.names
        return [p or n for p, n in zip(self.paths, self.names)]

    def info(self, i: int) -> TensorInfo:
        return TensorInfo(
            self.names[i],
            dtype_from_enum(self.dtype[i]),
            tuple(self.dims[self.dim_start[i] : self.dim_start[i + 1]]),
            self.nbytes[i],
            self.nslices[i],
            self.paths[i] if self.paths is not None else None,
        )

    def infos(self) -> list[TensorInfo]:
        """Every row as a TensorInfo (equal shapes share one tuple)."""
        dtypes = {code: dtype_from_enum(code) for code in set(self.dtype)}
        shapes: dict[bytes, tuple[int, ...]] = {}
        raw = self.dims.tobytes()
        start = self.dim_start
        shape_of = []
        for i in range(len(self.names)):
            key = raw[8 * start[i] : 8 * start[i + 1]]
            shape = shapes.get(key)
            if shape is None:
                shape = shapes[key] = tuple(self.dims[start[i] : start[i + 1]])
            shape_of.append(shape)
        paths = self.paths if self.paths is not None else [None] * len(self.names)
        rows = zip(
            self.names,
            map(dtypes.__getitem__, self.dtype),
            shape_of,
            self.nbytes,
            self.nslices,
            paths,
        )
        make = tuple.__new__  # a NamedTuple from a tuple, without a Python call per row
        out: list[TensorInfo] = list(map(make, repeat(TensorInfo), rows))  # type: ignore[arg-type]
        return out

    def row(self, name: str) -> int | None:
        """The row of a name (names are sorted), or None."""
        i = bisect_left(self.names, name)
        return i if i < len(self.names) and self.names[i] == name else None

    def without_row(self, i: int) -> Listing:
        """A copy without row ``i``."""
        start, stop = self.dim_start[i], self.dim_start[i + 1]
        width = stop - start
        return Listing(
            self.names[:i] + self.names[i + 1 :],
            None if self.paths is None else self.paths[:i] + self.paths[i + 1 :],
            self.dtype[:i] + self.dtype[i + 1 :],
            self.dim_start[: i + 1] + array("q", (x - width for x in self.dim_start[i + 2 :])),
            self.dims[:start] + self.dims[stop:],
            self.nelem[:i] + self.nelem[i + 1 :],
            self.nbytes[:i] + self.nbytes[i + 1 :],
            self.nslices[:i] + self.nslices[i + 1 :],
            None
            if self.source is None
            else array("q", self.source[:i]) + array("q", self.source[i + 1 :]),
        )

    @classmethod
    def from_infos(cls, infos: list[TensorInfo]) -> Listing:
        """The columns of TensorInfos (V1 checkpoints, ``--engine tf``), sorted by name."""
        infos = sorted(infos, key=lambda info: info.name)
        dim_start = array("q", [0])
        dims = array("q")
        for info in infos:
            dims.extend(info.shape)
            dim_start.append(len(dims))
        has_paths = any(info.object_path is not None for info in infos)
        return cls(
            [info.name for info in infos],
            [info.object_path for info in infos] if has_paths else None,
            array("i", [info.dtype.enum for info in infos]),
            dim_start,
            dims,
            array("q", [info.size for info in infos]),
            array("q", [info.nbytes for info in infos]),
            array("i", [info.num_slices for info in infos]),
        )


def decode_names(keys: list[bytes]) -> list[str]:
    """Keys (checked UTF-8) as names, in one decode when no name holds a newline."""
    if not keys:
        return []
    joined = b"\n".join(keys)
    if joined.count(b"\n") == len(keys) - 1:
        return joined.decode("utf-8", "surrogateescape").split("\n")
    return [k.decode("utf-8", "surrogateescape") for k in keys]


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
    _listing: Listing | None = None
    _by_path: dict[str, int] | None = None

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
        return self._all().row(OBJECT_GRAPH_KEY) is not None

    def _all(self) -> Listing:
        if self._listing is None:
            self._listing = self._build_listing()
        return self._listing

    def _build_listing(self) -> Listing:
        if self._bundle is None:
            assert self._v1 is not None
            v1 = self._v1
            infos = []
            for name in sorted(v1.tensors):
                t = v1.tensors[name]
                full = len(t.slices) == 1 and all(length == -1 for _, length in t.slices[0])
                infos.append(
                    TensorInfo(name, t.dtype, t.shape, v1.nbytes(t), 0 if full else len(t.slices))
                )
            return Listing.from_infos(infos)
        b = self._bundle
        cols = b.columns
        first = slice_key_count(cols.keys)
        names = decode_names(cols.keys[first:] if first else cols.keys)
        n = len(names)
        if first:
            base = cols.dim_start[first]
            dims = cols.dims[base:]
            dim_start = array("q", (x - base for x in cols.dim_start[first:]))
        else:
            dims, dim_start = cols.dims, cols.dim_start
        nbytes = cols.size[first:]
        nslices = array("i", bytes(4 * n))
        for row, slices in cols.slices.items():
            if row >= first:
                nslices[row - first] = len(slices)
                nbytes[row - first] = b.stored_size(b.entries.entry(row))
        paths: list[str | None] | None = None
        graph_row = bisect_left(names, OBJECT_GRAPH_KEY)
        if graph_row < n and names[graph_row] == OBJECT_GRAPH_KEY:
            paths = [object_path_of(name) for name in names]
            paths[graph_row] = None
        return Listing(
            names,
            paths,
            cols.dtype[first:],
            dim_start,
            dims,
            cols.nelem[first:],
            nbytes,
            nslices,
            range(first, first + n),
        )

    def listing(self, include_object_graph: bool = True) -> Listing:
        """Every tensor TF would list (per-slice keys hidden) as columns, sorted by name."""
        listing = self._all()
        row = None if include_object_graph else listing.row(OBJECT_GRAPH_KEY)
        return listing if row is None else listing.without_row(row)

    def tensors(self, include_object_graph: bool = True) -> list[TensorInfo]:
        """Every tensor TF would list (per-slice keys hidden), sorted by name."""
        return self.listing(include_object_graph).infos()

    def info(self, name: str) -> TensorInfo:
        """What the index says about tensor ``name`` (a key, or for TF2 also its object path);
        VariableNotFound if there is none."""
        listing = self._all()
        row = listing.row(name)
        if row is None and listing.paths is not None:
            # TF2: also accept the object path (model/layer/kernel) for the key.
            if self._by_path is None:
                self._by_path = {}
                for i, path in enumerate(listing.paths):
                    if path is not None:
                        self._by_path.setdefault(path, i)
            row = self._by_path.get(name)
        if row is None:
            raise not_found(self.prefix, name, listing)
        return listing.info(row)

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
        if not self.is_object_based:
            return None
        info = self.info(OBJECT_GRAPH_KEY)
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

        from tfckpt import protos

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
        return iter(self._all().names)

    def __len__(self) -> int:
        return len(self._all())

    # ---- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        if self._bundle is not None:
            self._bundle.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def not_found(prefix: str, name: str, infos: Listing | Iterable[TensorInfo]) -> VariableNotFound:
    """The error for a missing variable, naming the closest names there are (a typo, mostly)."""
    import difflib

    if isinstance(infos, Listing):
        names = set(infos.names) | {p for p in infos.paths or () if p}
    else:
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
        used = sorted(bundle.used_shards())
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
