"""Benchmark: ``diff`` and ``verify`` on the 1.2 GB checkpoint vs a TensorFlow + numpy loop.

Targets (issue #4): ``diff`` against a copy with one changed tensor at >= 1 GB/s with peak RSS
under 200 MB; ``verify`` at >= 2 GB/s (warm page cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (
    BENCH_DIR,
    PYTHON,
    TFCKPT,
    bench_checkpoint,
    best_of,
    data_bytes,
    report,
    warm,
)

_MAKE_CHANGED = r"""
import sys
from tfckpt.bundle.writer import BundleWriter
from tfckpt.bundle.checkpoint import open_checkpoint

with open_checkpoint(sys.argv[1]) as src, BundleWriter(sys.argv[2]) as out:
    for info in src.tensors():
        value = src.read(info.name)
        if info.name == "layer_05/kernel":
            value = value.copy()
            value[7, 7] += 1.0
        out.add_array(info.name, value, info.dtype)
    out.commit()
"""

_TF_DIFF = r"""
import sys, numpy as np, tensorflow as tf
a, b = tf.train.load_checkpoint(sys.argv[1]), tf.train.load_checkpoint(sys.argv[2])
differ = 0
for name in sorted(a.get_variable_to_shape_map()):
    if not np.array_equal(a.get_tensor(name), b.get_tensor(name)):
        differ += 1
sys.exit(1 if differ else 0)
"""


def changed_copy(prefix: str) -> str:
    """A copy of the benchmark checkpoint with one tensor changed (written by tfckpt)."""
    directory = BENCH_DIR / "changed"
    done = directory / ".complete"
    target = str(directory / "model.ckpt-1")
    if done.exists():
        return target
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # In a child process: ru_maxrss survives fork + exec, so the measuring process stays small.
    subprocess.run([PYTHON, "-c", _MAKE_CHANGED, prefix, target], check=True)
    done.write_text("ok\n")
    return target


def main() -> None:
    prefix = bench_checkpoint()
    other = changed_copy(prefix)
    nbytes = data_bytes(prefix)
    warm(prefix)
    warm(other)
    print(f"check: {prefix} vs one-tensor-changed copy ({nbytes / 1e9:.2f} GB each)")
    t, rss = best_of(3, [*TFCKPT, "diff", prefix, other, "--quiet"])
    report("tfckpt diff", t, rss, nbytes)
    tt, trss = best_of(1, [PYTHON, "-c", _TF_DIFF, prefix, other])
    report("tf.train.load_checkpoint + numpy comparison loop", tt, trss, nbytes)
    print(
        f"  -> diff at {nbytes / t / 1e9:.2f} GB/s (target >= 1), {rss:.0f} MB (target < 200), "
        f"{tt / t:.1f}x faster than the TF loop"
    )
    vt, vrss = best_of(3, [*TFCKPT, "verify", prefix, "--quiet"])
    report("tfckpt verify", vt, vrss, nbytes)
    nt, nrss = best_of(3, [*TFCKPT, "verify", prefix, "--quiet", "--no-nan", "--no-inf"])
    report("tfckpt verify --no-nan --no-inf", nt, nrss, nbytes)
    print(f"  -> verify at {nbytes / vt / 1e9:.2f} GB/s (target >= 2)")


if __name__ == "__main__":
    main()
