"""The "many tensors" scenario: checkpoints of N small tensors, built reproducibly and cached.

``build(count, writer)`` writes ``count`` float32[16] tensors named like a TF1 model trained with
Adam (one variable and its two slots per three tensors, in scopes of 100), either through
tfckpt's native writer (``writer="native"``) or through TensorFlow's own ``SaveV2`` op
(``writer="tf"``, the index layout users have). Values are deterministic, so two builds of the
same size are byte-identical. Run as a script to build one: ``python bench/many.py 200000 tf``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import BENCH_DIR, PYTHON

WIDTH = 16
SLOTS = ("", "/Adam", "/Adam_1")


def tensor_name(i: int) -> str:
    """The name of tensor ``i``: variable ``i // 3`` or one of its Adam slots."""
    var, slot = divmod(i, len(SLOTS))
    return f"model/block_{var // 100:05d}/dense_{var % 100:02d}/kernel{SLOTS[slot]}"


def names(count: int) -> list[str]:
    return [tensor_name(i) for i in range(count)]


def values(count: int):  # type: ignore[no-untyped-def]
    """A (count, WIDTH) float32 array: row i is tensor i (i, i + 1/16, ...)."""
    import numpy as np

    base = np.arange(count, dtype=np.float32)[:, None]
    return base + np.arange(WIDTH, dtype=np.float32)[None, :] / WIDTH


_NATIVE = r"""
import sys
sys.path.insert(0, sys.argv[3])
from bench.many import names, values
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import dtype_from_name

count, prefix = int(sys.argv[1]), sys.argv[2]
f32 = dtype_from_name("float32")
rows = values(count)
with BundleWriter(prefix, force=True) as writer:
    for name, row in zip(names(count), rows):
        writer.add_array(name, row, f32)
    writer.commit()
"""

_TF = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, sys.argv[3])
import tensorflow as tf
from bench.many import names, values

count, prefix = int(sys.argv[1]), sys.argv[2]
with tf.device("/cpu:0"):
    rows = tf.unstack(tf.constant(values(count)))
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names(count), shape_and_slices=[""] * count, tensors=rows
    )
"""


def build(count: int, writer: str = "native") -> str:
    """The prefix of the cached ``count``-tensor checkpoint written by ``writer``."""
    directory = BENCH_DIR / "many" / f"{writer}-{count}"
    prefix = directory / "model.ckpt"
    done = directory / ".complete"
    if done.exists():
        return str(prefix)
    directory.mkdir(parents=True, exist_ok=True)
    print(f"building {count:,} tensors ({writer} writer) in {directory} ...", file=sys.stderr)
    script = _TF if writer == "tf" else _NATIVE
    root = str(Path(__file__).resolve().parent.parent)
    subprocess.run([PYTHON, "-c", script, str(count), str(prefix), root], check=True)
    done.write_text("ok\n")
    return str(prefix)


def have_tf() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


if __name__ == "__main__":
    print(build(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "native"))
