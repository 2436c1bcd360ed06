"""Shared benchmark helpers: the cached 1.2 GB TF1 checkpoint and a time + peak-RSS runner.

The checkpoint is built once with TensorFlow (24 layers of 2048x2048 float32 with Adam slots:
75 variables, ~1.2 GB) under ``.bench/`` and reused by every benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("TFCKPT_BENCH_DIR", ROOT / ".bench"))
LAYERS = 24
WIDTH = 2048
PYTHON = sys.executable
TFCKPT = [PYTHON, "-m", "tfckpt"]

_BUILD = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
layers, width, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tf1 = tf.compat.v1
g = tf.Graph()
with g.as_default():
    rng = np.random.default_rng(0)
    step = tf1.train.get_or_create_global_step()
    kernels = []
    for i in range(layers):
        with tf1.variable_scope(f"layer_{i:02d}"):
            init = rng.standard_normal((width, width), dtype=np.float32) * 0.01
            kernels.append(tf1.get_variable("kernel", initializer=init))
    loss = tf.add_n([tf.reduce_sum(k) for k in kernels])
    train = tf1.train.AdamOptimizer(1e-3).minimize(loss, global_step=step)
    saver = tf1.train.Saver(max_to_keep=1)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        sess.run(train)
        saver.save(sess, prefix, global_step=step, write_meta_graph=False)
"""


def bench_checkpoint() -> str:
    """The prefix of the cached benchmark checkpoint, building it on first use."""
    directory = BENCH_DIR / "ckpt"
    done = directory / ".complete"
    prefix = directory / "model.ckpt-1"
    if done.exists():
        return str(prefix)
    directory.mkdir(parents=True, exist_ok=True)
    print(
        f"building the {LAYERS}x{WIDTH}x{WIDTH} benchmark checkpoint in {directory} ...",
        file=sys.stderr,
    )
    subprocess.run(
        [PYTHON, "-c", _BUILD, str(LAYERS), str(WIDTH), str(directory / "model.ckpt")],
        check=True,
    )
    done.write_text("ok\n")
    return str(prefix)


def data_bytes(prefix: str) -> int:
    directory = Path(prefix).parent
    base = Path(prefix).name
    return sum(p.stat().st_size for p in directory.glob(base + ".data-*"))


def measure(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB) of that process and its children.

    Linux keeps ru_maxrss across fork and exec, so the calling process must itself stay small
    (do heavy preparation in child processes).
    """
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Installed packages run from compiled .pyc files; a sandbox that disables writing them
    # would charge every run for compiling tfckpt's sources.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0


def best_of(n: int, cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Best wall time of ``n`` runs (and the peak RSS seen in any of them)."""
    times, rss = [], []
    for _ in range(n):
        t, r = measure(cmd, env)
        times.append(t)
        rss.append(r)
    return min(times), max(rss)


def warm(prefix: str) -> None:
    """Read the checkpoint's files once so timings are on a warm page cache."""
    directory = Path(prefix).parent
    for p in directory.glob(Path(prefix).name + ".*"):
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def report(label: str, seconds: float, rss_mb: float, nbytes: int | None = None) -> None:
    rate = f"  {nbytes / seconds / 1e9:6.2f} GB/s" if nbytes else ""
    print(f"  {label:<58} {seconds:8.3f} s  {rss_mb:8.1f} MB{rate}")
