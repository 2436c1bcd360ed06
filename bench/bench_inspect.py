"""Benchmark: ``tfckpt vars`` / ``vars --stats`` / ``ls`` vs TensorFlow's inspect_checkpoint.

Targets (issue #2): ``vars`` at least 10x faster than
``python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX`` and under 80 MB peak
RSS; ``vars --stats`` over all 1.2 GB at no less than 1 GB/s on a warm page cache.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PYTHON, TFCKPT, bench_checkpoint, best_of, data_bytes, report, warm


def main() -> None:
    prefix = bench_checkpoint()
    nbytes = data_bytes(prefix)
    warm(prefix)
    print(f"inspect: {prefix} ({nbytes / 1e9:.2f} GB)")
    tf_t, tf_rss = best_of(
        2,
        [PYTHON, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={prefix}"],
    )
    report("TF inspect_checkpoint (listing)", tf_t, tf_rss)
    t, rss = best_of(5, [*TFCKPT, "vars", prefix])
    report("tfckpt vars", t, rss)
    jt, jrss = best_of(5, [*TFCKPT, "vars", prefix, "--json"])
    report("tfckpt vars --json", jt, jrss)
    print(
        f"  -> vars is {tf_t / t:.1f}x faster than TF (target >= 10x); peak RSS {rss:.0f} MB "
        "(target < 80 MB)"
    )
    st, srss = best_of(3, [*TFCKPT, "vars", prefix, "--stats", "--json"])
    report("tfckpt vars --stats (all values, CRC-checked)", st, srss, nbytes)
    print(f"  -> vars --stats at {nbytes / st / 1e9:.2f} GB/s (target >= 1 GB/s)")
    lt, lrss = best_of(5, [*TFCKPT, "ls", os.path.dirname(prefix)])
    report("tfckpt ls", lt, lrss)
    ht, hrss = best_of(5, [*TFCKPT, "--help"])
    report("tfckpt --help", ht, hrss)


if __name__ == "__main__":
    main()
