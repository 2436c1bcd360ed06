"""Benchmark: ``rename``, ``prune --no-optimizer`` and ``merge`` on the 1.2 GB checkpoint.

Targets (issue #3), as ratios measured in the same run: ``rename`` within 1.5x the time of
``cp`` of the data file and under 0.5 s with ``--link``; ``prune --no-optimizer`` (keeping one
third of the bytes) within 1.5x of copying the kept bytes; peak RSS under 150 MB for all three.
Every copied tensor is CRC32C-checked by default (issue 12); the ``--no-verify`` runs show what
that check costs.
The load-and-save approach (``tf.train.load_variable`` + ``tf.Variable`` + ``Saver``) is measured
once for comparison; set ``TFCKPT_BENCH_QUICK=1`` to skip it (it needs ~15 GB of RAM).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import BENCH_DIR, PYTHON, TFCKPT, bench_checkpoint, data_bytes, measure, report

OUT = BENCH_DIR / "surgery"

# What people do today: load every variable into a graph under its new name and save again.
_TF_RENAME = r"""
import sys, tensorflow as tf
src, dst = sys.argv[1], sys.argv[2]
tf1 = tf.compat.v1
with tf.Graph().as_default():
    variables = [
        tf1.Variable(tf.train.load_variable(src, name), name="scope/" + name)
        for name, _ in tf.train.list_variables(src)
    ]
    saver = tf1.train.Saver(variables)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        saver.save(sess, dst)
"""


def fresh_run(cmd: Sequence[str], runs: int = 3) -> tuple[float, float]:
    """Best wall time of ``runs`` runs, each into an empty output directory (and max RSS)."""
    times, rss = [], []
    for _ in range(runs):
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        t, r = measure(cmd)
        times.append(t)
        rss.append(r)
    return min(times), max(rss)


def kept_bytes(prefix: str) -> int:
    plan = subprocess.run(
        [*TFCKPT, "prune", prefix, str(OUT / "plan"), "--no-optimizer", "--dry-run", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(json.loads(plan.stdout)["bytes_after"])


def main() -> None:
    prefix = bench_checkpoint()
    data = Path(prefix + ".data-00000-of-00001")
    nbytes = data_bytes(prefix)
    print(f"surgery: {prefix} ({nbytes / 1e9:.2f} GB)")
    out = str(OUT / "model.ckpt-1")

    st, _ = fresh_run([*TFCKPT, "--help"], runs=5)
    report("tfckpt --help (interpreter + CLI start-up)", st, 0.0)
    cp_t, cp_rss = fresh_run(["cp", str(data), str(OUT / "copy")])
    report("cp of the data file", cp_t, cp_rss, nbytes)
    rt, rrss = fresh_run([*TFCKPT, "rename", prefix, out, "--add-prefix", "scope/", "-q"])
    report("tfckpt rename --add-prefix scope/", rt, rrss, nbytes)
    rnv, rnv_rss = fresh_run(
        [*TFCKPT, "rename", prefix, out, "--add-prefix", "scope/", "-q", "--no-verify"]
    )
    report("tfckpt rename --no-verify (no CRC check)", rnv, rnv_rss, nbytes)
    lt, lrss = fresh_run([*TFCKPT, "rename", prefix, out, "--add-prefix", "scope/", "--link"])
    report("tfckpt rename --link (CRC checked before linking)", lt, lrss, nbytes)
    lnv, lnv_rss = fresh_run(
        [*TFCKPT, "rename", prefix, out, "--add-prefix", "scope/", "--link", "--no-verify"]
    )
    report("tfckpt rename --link --no-verify", lnv, lnv_rss)
    # Durable variants: both flush the bytes to the disk before returning.
    cps_t, _ = fresh_run(["sh", "-c", f'cp "{data}" "{OUT}/copy" && sync -f "{OUT}/copy"'])
    report("cp + sync of the data file", cps_t, 0.0, nbytes)
    rs_t, rs_rss = fresh_run([*TFCKPT, "rename", prefix, out, "--add-prefix", "s/", "--sync"])
    report("tfckpt rename --sync", rs_t, rs_rss, nbytes)

    keep = kept_bytes(prefix)
    dd = ["dd", f"if={data}", f"of={OUT / 'kept'}", "bs=8M", f"count={keep}", "iflag=count_bytes"]
    dt, drss = fresh_run(dd)
    report(f"dd of the kept bytes ({keep / nbytes:.0%})", dt, drss, keep)
    pt, prss = fresh_run([*TFCKPT, "prune", prefix, out, "--no-optimizer", "-q"])
    report("tfckpt prune --no-optimizer", pt, prss, keep)
    pnv, pnv_rss = fresh_run([*TFCKPT, "prune", prefix, out, "--no-optimizer", "-q", "--no-verify"])
    report("tfckpt prune --no-optimizer --no-verify", pnv, pnv_rss, keep)

    merge = [*TFCKPT, "merge", f"{prefix}:a/", f"{prefix}:b/", "-o", out, "-q"]
    mt, mrss = fresh_run(merge)
    report("tfckpt merge (the checkpoint twice, under a/ and b/)", mt, mrss, 2 * nbytes)
    mnv, mnv_rss = fresh_run([*merge, "--no-verify"])
    report("tfckpt merge --no-verify", mnv, mnv_rss, 2 * nbytes)

    print(
        f"  -> rename {rt / cp_t:.2f}x the time of cp (target <= 1.5x); --link {lt:.2f} s "
        f"(target < 0.5 s); prune {pt / dt:.2f}x the time of copying the kept bytes "
        f"(target <= 1.5x); merge {mt / (2 * cp_t):.2f}x two cps; rename --sync "
        f"{rs_t / cps_t:.2f}x cp + sync"
    )
    print(
        f"  -> without the fixed {st:.2f} s start-up: rename {(rt - st) / cp_t:.2f}x cp, prune "
        f"{(pt - st) / dt:.2f}x dd of the kept bytes"
    )
    print(
        f"  -> CRC32C checks cost: rename +{rt - rnv:.2f} s, --link +{lt - lnv:.2f} s, prune "
        f"+{pt - pnv:.2f} s, merge +{mt - mnv:.2f} s"
    )
    print(
        f"  -> peak RSS: rename {rrss:.0f} MB, --link {lrss:.0f} MB, prune {prss:.0f} MB, "
        f"merge {mrss:.0f} MB (target < 150 MB each)"
    )
    if os.environ.get("TFCKPT_BENCH_QUICK"):
        print("  (TFCKPT_BENCH_QUICK set: load-and-save with TensorFlow not measured)")
    else:
        tt, trss = fresh_run([PYTHON, "-c", _TF_RENAME, prefix, out], runs=1)
        report("TF load_variable + tf.Variable + Saver (load-and-save)", tt, trss, nbytes)
        print(f"  -> rename is {tt / rt:.0f}x faster and uses {trss / rrss:.0f}x less memory")
    shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
