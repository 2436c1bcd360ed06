"""Regenerate the README's tour: run every command on the demo checkpoint, paste the real output.

    python examples/make_tour.py build/demo README.md

The demo directory comes from ``examples/make_demo.py``. Everything the tour writes goes to
``build/tour``. The README section between ``<!-- TOUR -->`` and ``<!-- /TOUR -->`` is replaced.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

BEGIN, END = "<!-- TOUR -->", "<!-- /TOUR -->"

# (heading, explanation, command); {demo} and {out} are filled in.
STEPS: list[tuple[str, str, str]] = [
    ("ls", "What is in a run directory (`*` marks the latest):", "tfckpt ls {demo}"),
    ("vars", "The variables of the latest checkpoint:", "tfckpt vars {demo}"),
    (
        "",
        "Grouped by scope, with value statistics streamed from disk:",
        "tfckpt vars {demo} --tree --stats --match 'model/*'",
    ),
    ("", "One tensor's values:", "tfckpt vars {demo} --show model/dense1/bias"),
    ("", "For scripts, one JSON document:", "tfckpt vars {demo} --match '*bias' --json"),
    (
        "diff",
        "Two steps of one run (exit 1: differences found):",
        "tfckpt diff {demo}/model.ckpt-200 {demo}/model.ckpt-300 --match 'model/*'",
    ),
    (
        "verify",
        "Every checksum, shard and slice, plus value checks:",
        "tfckpt verify {demo} --no-nan",
    ),
    (
        "rename",
        "Move the model under a new scope, `.meta` included (dry run first):",
        "tfckpt rename {demo} {out}/renamed/model.ckpt --sub '^model/' 'net/' --meta --dry-run",
    ),
    (
        "",
        "",
        "tfckpt rename {demo} {out}/renamed/model.ckpt --sub '^model/' 'net/' --meta",
    ),
    (
        "",
        "A renamed copy compares equal to its source under the same rule:",
        "tfckpt diff {demo} {out}/renamed --sub '^model/' 'net/'",
    ),
    (
        "prune",
        "Ship without the optimizer state:",
        "tfckpt prune {demo} {out}/small/model.ckpt --no-optimizer",
    ),
    (
        "merge",
        "Two checkpoints in one, each under its own scope:",
        "tfckpt merge {demo}:teacher/ {out}/small:student/ -o {out}/merged/model.ckpt",
    ),
    ("graph", "The `.meta` graph next to the checkpoint:", "tfckpt graph {demo}"),
    (
        "",
        "Does the graph find its variables in a checkpoint? (exit 1, with the fix):",
        "tfckpt graph {demo} --check {out}/renamed",
    ),
    (
        "scan",
        "What a model's graphs can do outside the process that loads them: every meta graph, "
        "every library function, GraphDefs hidden in constants, init ops. Exit 1 on findings "
        "(`--json`, `--sarif FILE`):",
        "tfckpt scan {demo}",
    ),
    (
        "check",
        "A policy gate for CI, every rule with its evidence (exit 1: a rule failed; the policy "
        "file is shown in [Model gate in CI](#model-gate-in-ci)):",
        "tfckpt check --policy {out}/policy.toml {demo} {out}/small",
    ),
    (
        "convert-pbtxt",
        "Binary <-> text protobuf:",
        "tfckpt convert-pbtxt {demo}/model.ckpt-300.meta {out}/model.pbtxt --elide-constants",
    ),
    (
        "export",
        "Weights for PyTorch / JAX, without TensorFlow:",
        "tfckpt export {demo} {out}/model.safetensors --no-optimizer --sep .",
    ),
    (
        "import",
        "And back, checked against a checkpoint TF code expects:",
        "tfckpt import {out}/model.safetensors {out}/imported/model.ckpt --sub '[.]' '/' "
        "--like {out}/small",
    ),
    (
        "presets",
        "Conversions to Hugging Face transformers are data: the built-in presets of "
        "`export --preset` / `import --preset`, each equal to transformers 4.57's TF loader bit "
        "for bit:",
        "tfckpt presets",
    ),
    ("", "A preset of one's own, checked and shown:", "tfckpt presets {out}/mine.toml"),
    (
        "",
        "The whole mapping before anything is written (a directory gets `model.safetensors`, "
        "and the `config.json` given with `--config`):",
        "tfckpt export {demo} {out}/hf/ --preset {out}/mine.toml --dry-run",
    ),
    ("cast", "Half the size:", "tfckpt cast {out}/small {out}/half/model.ckpt --dtype float16"),
    (
        "ls --repair",
        "A run directory moved after training: its `checkpoint` file still names the old place.",
        "tfckpt ls {out}/moved",
    ),
    ("", "", "tfckpt ls --repair {out}/moved"),
]


def run(command: str, env: dict[str, str]) -> tuple[str, int]:
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).with_name("tfckpt"))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"tour step failed ({proc.returncode}): {command}\n{proc.stderr}")
    return (proc.stdout + proc.stderr).rstrip(), proc.returncode


def moved_run(demo: str, out: str) -> None:
    """A copy of the demo run whose state file holds absolute paths of a place that is gone."""
    moved = os.path.join(out, "moved")
    shutil.copytree(demo, moved)
    gone = "/home/alice/runs/exp1"
    steps = sorted(p[: -len(".index")] for p in os.listdir(moved) if p.endswith(".index"))
    lines = [f'model_checkpoint_path: "{gone}/{steps[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{gone}/{s}"' for s in steps]
    with open(os.path.join(moved, "checkpoint"), "w") as f:
        f.write("\n".join(lines) + "\n")


POLICY = """finite = true
max_parameters = 1_000_000
dtypes = ["float32", "int64"]
no_optimizer_state = true
tensorflow_version = ">=2.12"
"""

MINE = """name = "demo-torch"
description = "the demo's dense layers -> torch.nn.Linear names"
drop = [{ pattern = '^global_step$', reason = "training step counter" }]
[metadata]
format = "pt"
[vars]
layer = { count = "num_layers" }
[[rules]]
tf = "model/dense{layer}/kernel"
hf = "layers.{layer}.weight"
transpose = true
[[rules]]
tf = "model/dense{layer}/bias"
hf = "layers.{layer}.bias"
"""


def main(demo: str, readme: str) -> None:
    out = "build/tour"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    moved_run(demo, out)
    Path(out, "mine.toml").write_text(MINE)
    Path(out, "policy.toml").write_text(POLICY)
    env = dict(os.environ, COLUMNS="80", NO_COLOR="1", TF_CPP_MIN_LOG_LEVEL="3")
    parts = [BEGIN, ""]
    for heading, text, template in STEPS:
        command = template.format(demo=demo, out=out)
        output, code = run(command, env)
        if heading:
            parts += [f"### `{heading}`", ""]
        if text:
            parts += [textwrap.fill(text, 96, break_on_hyphens=False), ""]
        shown = f"$ {command}" + (f"   # exit {code}" if code else "")
        parts += ["```console", shown, output, "```", ""]
    parts.append(END)
    path = Path(readme)
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + "\n".join(parts) + text[end:])
    print(f"updated the tour in {readme}", file=sys.stderr)


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 2 else ("build/demo", "README.md")))
