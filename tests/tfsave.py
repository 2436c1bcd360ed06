"""Writing test checkpoints with TensorFlow itself (the oracle writer)."""

from __future__ import annotations

from typing import Any


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


def tf_values(prefix: str) -> dict[str, Any]:
    from tfckpt.tf_engine.checkpoint import read_all

    return read_all(prefix)
