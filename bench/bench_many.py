"""Benchmark: many tensors (issue 13). Every command on 200,000 float32[16] tensors against
TensorFlow's ``inspect_checkpoint`` on the same checkpoint in the same run, the growth curve of
``vars --json`` and ``rename`` from 2,000 to 1,000,000 tensors, and start-up.

Targets: each command at least 5x faster than ``inspect_checkpoint`` and under 300 MB peak RSS
at 200,000 tensors; linear growth to 1,000,000 tensors under 1 GB; ``tfckpt --help`` and
``tfckpt vars`` on a small checkpoint in at most 100 ms.

The 200,000-tensor checkpoint is written by TensorFlow's SaveV2 when TensorFlow is installed
(the index layout users have), else by tfckpt's writer; the curve uses tfckpt's writer (SaveV2
of 10^6 tensors takes minutes). Checkpoints are cached under ``.bench/many``. Each figure is
the median of ``TFCKPT_BENCH_RUNS`` runs (default 5; the machine may be shared), RSS the peak.
``TFCKPT_BENCH_SIZES=2000,20000`` limits the curve.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import BENCH_DIR, PYTHON, TFCKPT, measure, warm
from bench.many import build, have_tf

RUNS = int(os.environ.get("TFCKPT_BENCH_RUNS", "5"))
SIZES = [
    int(s) for s in os.environ.get("TFCKPT_BENCH_SIZES", "2000,20000,200000,1000000").split(",")
]
OUT = BENCH_DIR / "many-out"
TARGET_RATIO = 5.0
TARGET_RSS = 300.0


def median_run(cmd: Sequence[str], runs: int = RUNS, fresh: bool = False) -> tuple[float, float]:
    """Median wall time of ``runs`` runs and the peak RSS of any (MB); ``fresh`` empties the
    output directory before each run."""
    times, peaks = [], []
    for _ in range(runs):
        if fresh:
            shutil.rmtree(OUT, ignore_errors=True)
            OUT.mkdir(parents=True)
        t, r = measure(cmd)
        times.append(t)
        peaks.append(r)
    return statistics.median(times), max(peaks)


def commands(prefix: str) -> list[tuple[str, list[str], bool]]:
    out = str(OUT / "out")
    return [
        ("vars (table)", ["vars", prefix], False),
        ("vars --json", ["vars", prefix, "--json"], False),
        ("vars --tree", ["vars", prefix, "--tree"], False),
        ("vars --stats", ["vars", prefix, "--stats"], False),
        ("verify", ["verify", prefix], False),
        ("diff A A", ["diff", prefix, prefix], False),
        ("rename --add-prefix x/", ["rename", prefix, out, "--add-prefix", "x/", "-q"], True),
        ("prune --drop Adam_1", ["prune", prefix, out, "--drop", "Adam_1$", "-q"], True),
        ("merge (two inputs)", ["merge", f"{prefix}:a/", f"{prefix}:b/", "-o", out, "-q"], True),
        ("export to safetensors", ["export", prefix, out + ".safetensors", "-q"], True),
    ]


def scenario(count: int) -> None:
    writer = "tf" if have_tf() else "native"
    prefix = build(count, writer)
    warm(prefix)
    print(f"many tensors: {count:,} float32[16] tensors written by {writer} ({prefix})")
    tf_t = tf_rss = None
    if have_tf():
        inspect = [PYTHON, "-m", "tensorflow.python.tools.inspect_checkpoint"]
        tf_t, tf_rss = median_run([*inspect, f"--file_name={prefix}"], runs=max(RUNS // 2, 1))
        print(f"  {'TF inspect_checkpoint':<28} {tf_t:7.2f} s {tf_rss:7.0f} MB")
    print(f"  {'command':<28} {'time':>9} {'peak RSS':>10} {'vs TF':>8}  target")
    for label, args, writes in commands(prefix):
        t, rss = median_run([*TFCKPT, *args], fresh=writes)
        ratio = f"{tf_t / t:6.1f}x" if tf_t else "   n/a"
        ok = (tf_t is None or tf_t / t >= TARGET_RATIO) and rss <= TARGET_RSS
        print(f"  {label:<28} {t:7.2f} s {rss:7.0f} MB {ratio}  {'met' if ok else 'NOT MET'}")
    shutil.rmtree(OUT, ignore_errors=True)


def growth() -> None:
    print("growth (tfckpt's writer): seconds and peak MB; per tensor above the 2,000 run")
    rows = []
    for count in SIZES:
        prefix = build(count, "native")
        warm(prefix)
        jt, jr = median_run([*TFCKPT, "vars", prefix, "--json"], runs=max(RUNS // 2, 1))
        rt, rr = median_run(
            [*TFCKPT, "rename", prefix, str(OUT / "out"), "--add-prefix", "x/", "-q"],
            runs=max(RUNS // 2, 1),
            fresh=True,
        )
        rows.append((count, jt, jr, rt, rr))
    base = rows[0]
    for count, jt, jr, rt, rr in rows:
        extra = count - base[0]
        per_j = f"{(jt - base[1]) / extra * 1e6:5.2f} us" if extra else "     -"
        per_r = f"{(rt - base[3]) / extra * 1e6:5.2f} us" if extra else "     -"
        print(
            f"  {count:>9,}  vars --json {jt:6.2f} s {jr:6.0f} MB ({per_j})   "
            f"rename {rt:6.2f} s {rr:6.0f} MB ({per_r})"
        )
    shutil.rmtree(OUT, ignore_errors=True)


def startup() -> None:
    small = build(30, "native")
    warm(small)
    ht, hr = median_run([*TFCKPT, "--help"], runs=max(RUNS, 5))
    vt, vr = median_run([*TFCKPT, "vars", small], runs=max(RUNS, 5))
    bare, _ = median_run([PYTHON, "-c", "pass"], runs=max(RUNS, 5))
    print(f"start-up: python -c pass {bare * 1000:.0f} ms")
    print(f"  tfckpt --help                  {ht * 1000:5.0f} ms {hr:5.0f} MB (target <= 100 ms)")
    print(f"  tfckpt vars (30 tensors)       {vt * 1000:5.0f} ms {vr:5.0f} MB (target <= 100 ms)")


def main() -> None:
    startup()
    scenario(200_000)
    growth()


if __name__ == "__main__":
    main()
