"""Benchmark: ``tfckpt graph`` natively vs ``--engine tf`` on the 2502-node tensorflow__tfx graph.

Target (issue #5): ``graph`` on the tfx ``model.ckpt-1000.meta`` and ``graph.pbtxt`` in under
0.5 s natively (whole process: interpreter start, imports, parse, summary, rendering), measured
next to the TF engine (``tf.compat.v1.train.import_meta_graph`` / ``import_graph_def``) in the
same run. Also ``convert-pbtxt`` both ways on the same graph.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import ROOT, TFCKPT, best_of, report

CORPUS = Path(os.environ.get("TFCKPT_CORPUS", ROOT.parent / "shared" / "corpus"))
TFX = CORPUS / "tensorflow__tfx/tfx/components/testdata/trainer/current/Format-Serving"
TARGET_S = 0.5


def main() -> int:
    meta = TFX / "model.ckpt-1000.meta"
    pbtxt = TFX / "graph.pbtxt"
    if not meta.exists() or not pbtxt.exists():
        print(f"graph: corpus not found under {CORPUS}; skipped")
        return 0
    print(
        f"graph: tensorflow__tfx {meta.name} ({meta.stat().st_size:,} B binary) and "
        f"{pbtxt.name} ({pbtxt.stat().st_size:,} B text), 2502 nodes"
    )
    for path in (meta, pbtxt):
        path.read_bytes()  # warm the page cache
        native, native_rss = best_of(5, [*TFCKPT, "graph", str(path)])
        report(f"tfckpt graph {path.name}", native, native_rss)
        native_json, json_rss = best_of(5, [*TFCKPT, "graph", str(path), "--json"])
        report(f"tfckpt graph {path.name} --json", native_json, json_rss)
        via_tf, tf_rss = best_of(2, [*TFCKPT, "graph", str(path), "--engine", "tf"])
        report(f"tfckpt graph {path.name} --engine tf", via_tf, tf_rss)
        ok = max(native, native_json) < TARGET_S
        print(
            f"  -> native {native:.3f} s ({'OK' if ok else 'OVER'} target < {TARGET_S} s), "
            f"{via_tf / native:.1f}x faster than the TF engine ({via_tf:.3f} s)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "m.pbtxt")
        t, rss = best_of(3, [*TFCKPT, "convert-pbtxt", str(meta), text, "--force"])
        report("tfckpt convert-pbtxt .meta -> .pbtxt (with round-trip check)", t, rss)
        t, rss = best_of(3, [*TFCKPT, "convert-pbtxt", text, os.path.join(tmp, "m.pb"), "-f"])
        report("tfckpt convert-pbtxt .pbtxt -> .pb (with round-trip check)", t, rss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
