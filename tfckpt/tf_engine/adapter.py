"""``--engine tf``: the same Checkpoint-like interface, answered by ``tf.train.load_checkpoint``.

Path resolution (prefix, file, directory, SavedModel) is shared with the native engine; every
name, dtype, shape and value then comes from TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tfckpt.bundle.checkpoint import (
    OBJECT_GRAPH_KEY,
    TensorInfo,
    not_found,
    object_path_of,
    resolve_prefix,
)
from tfckpt.bundle.state import STATE_FILENAME, CheckpointStateInfo
from tfckpt.dtypes import dtype_from_name
from tfckpt.errors import CorruptCheckpoint


@dataclass
class TfCheckpoint:
    prefix: str
    format: str
    notes: list[str] = field(default_factory=list)
    _infos: dict[str, TensorInfo] = field(default_factory=dict)

    def tensors(self, include_object_graph: bool = True) -> list[TensorInfo]:
        return [
            self._infos[n]
            for n in sorted(self._infos)
            if include_object_graph or n != OBJECT_GRAPH_KEY
        ]

    def info(self, name: str) -> TensorInfo:
        if name in self._infos:
            return self._infos[name]
        for info in self._infos.values():
            if info.object_path == name:
                return info
        raise not_found(self.prefix, name, self._infos.values())

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        from tfckpt.tf_engine.checkpoint import read_tensor

        value = read_tensor(self.prefix, self.info(name).name)
        return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)

    def iter_chunks(
        self, name: str, chunk_elements: int = 0, verify: bool = True
    ) -> Iterator[np.ndarray]:
        yield self.read(name).reshape(-1)

    def prefetch(self, names: Iterable[str]) -> None:
        """TensorFlow reads on its own; nothing to announce."""

    def close(self) -> None:
        pass

    def __enter__(self) -> TfCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tf_checkpoint(path: str) -> TfCheckpoint:
    from tfckpt.tf_engine.checkpoint import list_variables

    notes: list[str] = []
    prefix, fmt = resolve_prefix(path, notes)
    variables = list_variables(prefix)
    tf2 = any(v.name == OBJECT_GRAPH_KEY for v in variables)
    infos: dict[str, TensorInfo] = {}
    for v in variables:
        dtype = dtype_from_name(v.dtype)
        size = int(np.prod(v.shape)) if v.shape else 1
        infos[v.name] = TensorInfo(
            name=v.name,
            dtype=dtype,
            shape=tuple(v.shape),
            nbytes=size * dtype.itemsize,  # TF does not expose stored sizes
            object_path=object_path_of(v.name) if tf2 and v.name != OBJECT_GRAPH_KEY else None,
        )
    return TfCheckpoint(prefix=prefix, format=fmt, notes=notes, _infos=infos)


def tf_read_state(directory: str) -> CheckpointStateInfo:
    """The ``checkpoint`` state file as ``tf.train.get_checkpoint_state`` parses it."""
    import os

    from tfckpt.tf_engine import import_tf

    tf = import_tf()
    path = os.path.join(directory, STATE_FILENAME)
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as exc:
        raise CorruptCheckpoint(f"{path}: not a checkpoint state file ({exc})") from None
    if state is None:
        raise CorruptCheckpoint(f"{path}: not a checkpoint state file")
    # TF joins relative paths onto the directory itself.
    return CheckpointStateInfo(
        path=path,
        raw_latest=state.model_checkpoint_path,
        latest=state.model_checkpoint_path or None,
        raw_all=list(state.all_model_checkpoint_paths),
        all=list(state.all_model_checkpoint_paths),
        timestamps=list(state.all_model_checkpoint_timestamps),
        last_preserved_timestamp=state.last_preserved_timestamp,
    )
