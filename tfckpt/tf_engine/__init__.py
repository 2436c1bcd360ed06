"""The TensorFlow reference engine: the only package that imports TensorFlow, and only lazily.

``--engine tf`` runs a command through TensorFlow's own readers; tests use the same functions as
the oracle for differential checks.
"""

from __future__ import annotations

import os
from typing import Any

from tfckpt.errors import TensorFlowMissing


def import_tf() -> Any:
    """Import TensorFlow quietly, or explain how to install it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TensorFlowMissing(
            f"--engine tf needs TensorFlow ({exc}); install it with: pip install 'tfckpt[tf]'"
        ) from None
    tf.get_logger().setLevel("ERROR")
    return tf


def tf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None
