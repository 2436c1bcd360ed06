"""Writing and reading test checkpoints: with TensorFlow itself (the oracle), or with tfckpt's own
writer and reader where TensorFlow is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

HAVE_TF = importlib.util.find_spec("tensorflow") is not None


def save_with_tf(prefix: str, tensors: dict[str, Any]) -> str:
    """Save ``{name: numpy array or bytes}`` with ``tf.raw_ops.SaveV2``; returns the prefix."""
    from tfckpt.tf_engine import import_tf

    tf = import_tf()
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[n]) for n in names],
    )
    return prefix


def save_native(prefix: str, tensors: dict[str, Any]) -> str:
    """What ``save_with_tf`` saves, written by tfckpt's writer (no state file, like SaveV2)."""
    import numpy as np
    from native_fixtures import _write

    values = {
        name: np.array(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)
        for name, value in tensors.items()
    }
    _write(Path(prefix), values, state=False)
    return prefix


SAVERS = {"native": save_native, "tf": save_with_tf}


def tf_values(prefix: str) -> dict[str, Any]:
    from tfckpt.tf_engine.checkpoint import read_all

    return read_all(prefix)


def native_values(prefix: str) -> dict[str, Any]:
    """Every tensor as tfckpt's reader returns it, in the types TF's reader uses (a scalar
    string as ``bytes``)."""
    from tfckpt.bundle.checkpoint import open_checkpoint

    out: dict[str, Any] = {}
    with open_checkpoint(prefix) as ckpt:
        for info in ckpt.tensors():
            value = ckpt.read(info.name)
            out[info.name] = value.item() if value.dtype == object and value.shape == () else value
    return out


def oracle_values(path: Any) -> dict[str, Any]:
    """Every tensor of the checkpoint at ``path`` (any path form tfckpt takes) as TensorFlow's
    reader returns it when TF is installed, else as tfckpt's reader does (``native_values``)."""
    from tfckpt.bundle.checkpoint import resolve_prefix

    prefix = resolve_prefix(str(path))[0]
    return tf_values(prefix) if HAVE_TF else native_values(prefix)
