"""tfckpt: inspect, compare and edit TensorFlow checkpoints without loading TensorFlow.

Library entry points::

    from tfckpt import open_checkpoint

    with open_checkpoint("runs/exp1") as ckpt:
        for info in ckpt.tensors():
            print(info.name, info.dtype.name, info.shape)
        kernel = ckpt.read("dense/kernel")

Imports are lazy so that ``import tfckpt`` (and ``tfckpt --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfckpt.errors import TfckptError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo, open_checkpoint

__all__ = ["Checkpoint", "TensorInfo", "TfckptError", "__version__", "open_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in ("Checkpoint", "TensorInfo", "open_checkpoint"):
        from tfckpt.bundle import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(name)
