"""Reading: open a checkpoint, TF's reader without TF, and listing a directory of runs.

Example::

    import tfckpt

    with tfckpt.open("runs/exp1") as ckpt:          # the latest checkpoint of the run
        for info in ckpt.tensors():
            print(info.name, info.dtype.name, info.shape)
        kernel = ckpt["dense/kernel"]

    for found in tfckpt.list_checkpoints("runs", recursive=True):
        print(found.path, found.step, found.latest)
"""

from __future__ import annotations

import os

from tfckpt.bundle.checkpoint import Checkpoint, open_checkpoint
from tfckpt.bundle.compat import CheckpointReader, load_checkpoint
from tfckpt.bundle.discover import Found


def open(path: str | os.PathLike[str], *, need_data: bool = True) -> Checkpoint:
    """Open the checkpoint at ``path``: a prefix, any of its files (``.index``, ``.data-*``,
    ``.meta``), a directory (the latest checkpoint per its ``checkpoint`` file, else the
    newest) or a SavedModel directory. Returns a read-only ``Checkpoint`` mapping
    (name -> numpy array) to use as a context manager.

    Data shards the index names must exist (``CorruptCheckpoint`` otherwise), unless
    ``need_data=False``: then an index alone opens for listing (as ``tf.train.list_variables``
    does), with a warning in ``ckpt.notes``; reading a value from a missing shard raises.

    >>> with tfckpt.open("model.ckpt-1000") as ckpt:
    ...     len(ckpt), "dense/kernel" in ckpt
    (12, True)
    """
    return open_checkpoint(path, need_data=need_data)


def list_checkpoints(
    path: str | os.PathLike[str] = ".", *, recursive: bool = False, engine: str = "native"
) -> list[Found]:
    """Checkpoints, SavedModels, events files and leftovers of interrupted writes in directory
    ``path`` (the whole tree with ``recursive=True``), as ``tfckpt ls`` shows them: prefix,
    global step, format, shards, data size, whether a ``.meta`` exists, and which checkpoint
    is the latest (the one every other command picks for the directory). ``engine="tf"`` reads
    the state files with ``tf.train.get_checkpoint_state``.

    >>> [f.path for f in tfckpt.list_checkpoints("runs/exp1") if f.latest]
    ['runs/exp1/model.ckpt-1000']
    """
    from tfckpt.api.checks import _check_engine
    from tfckpt.bundle.discover import discover

    _check_engine(engine)
    if engine == "tf":
        from tfckpt.tf_engine.adapter import tf_read_state

        return discover(os.fspath(path), recursive, state_reader=tf_read_state)
    return discover(os.fspath(path), recursive)


__all__ = [
    "Checkpoint",
    "CheckpointReader",
    "Found",
    "list_checkpoints",
    "load_checkpoint",
    "open",
]


def configure_remote(*, anon: bool = False) -> None:
    """Options for checkpoints at URLs (``s3://``, ``gs://``...), for everything opened after
    this call: ``anon`` reads public buckets without credentials.

    >>> tfckpt.api.reading.configure_remote(anon=True)
    """
    from tfckpt.storage import configure

    configure(anon=anon)
