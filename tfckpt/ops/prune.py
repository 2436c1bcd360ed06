"""Prune plans: which tensors go (``--drop``/``--keep`` regexes, ``--optimizer``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tfckpt import objgraph
from tfckpt.checkpoint import OBJECT_GRAPH_KEY
from tfckpt.errors import UsageError

# Name-based optimizer state: tf.compat.v1.train optimizers hang slots under their variable
# (``v/Adam``, ``v/Adam_1``, ``v/Momentum``...) and keep ``beta1_power``/``beta2_power``; Keras
# (optimizer v2) in graph mode, e.g. under an Estimator, keeps everything under its own name
# scope (``training/Adagrad/dense/kernel/accumulator``, ``training/Ftrl/iter``, ``Adam/iter``).
_KERAS_OPTIMIZERS = (
    "Adadelta|Adafactor|Adagrad|Adam|AdamW|Adamax|Ftrl|Lion|LossScaleOptimizer|Nadam|RMSprop|SGD"
)
TF1_SLOT_RE = re.compile(
    r"(/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adagrad_\d+|AdagradDA|AdagradDA_\d+"
    r"|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|Adamax|Adamax_\d+|Nadam|Nadam_\d+"
    r"|ProximalAdagrad|GradientDescent|ExponentialMovingAverage)$)"
    r"|(^|/)(beta1_power|beta2_power)(_\d+)?$"
    rf"|^(training/)?({_KERAS_OPTIMIZERS})(_\d+)?/"
)
TF2_SLOT_MARK = f"/{objgraph.OPTIMIZER_SLOT}/"
GLOBAL_STEP_NAMES = ("global_step",)


def is_tf1_slot(name: str) -> bool:
    return bool(TF1_SLOT_RE.search(name))


@dataclass
class PrunePlan:
    keep: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    # TF2: the serialized object graph as planning read it (for --optimizer), so apply_prune
    # edits it without reading it again; None when planning did not need it.
    source_graph: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "drop": sorted(self.drop),
            "keep": len(self.keep),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_saved": self.bytes_before - self.bytes_after,
        }


def _compile(patterns: list[str], option: str) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"bad {option} regex: {exc}") from None


def plan_prune(
    sizes: dict[str, int],
    drop: list[str] | None = None,
    keep: list[str] | None = None,
    optimizer: bool = False,
    drop_global_step: bool = False,
    object_graph: bytes | None = None,
) -> PrunePlan:
    """Decide per name; ``--keep`` wins over everything; the object graph is always kept.

    ``object_graph`` is a TF2 checkpoint's serialized object graph: with ``optimizer``, the keys
    only an optimizer reaches go too (``objgraph.optimizer_keys``).
    """
    tf2_optimizer_keys: set[str] = set()
    if optimizer and object_graph is not None:
        tf2_optimizer_keys = objgraph.optimizer_keys(object_graph)
    drops = _compile(drop or [], "--drop")
    keeps = _compile(keep or [], "--keep")
    plan = PrunePlan(source_graph=object_graph)
    for name in sorted(sizes):
        plan.bytes_before += sizes[name]
        gone = any(p.search(name) for p in drops)
        if optimizer:
            gone = gone or is_tf1_slot(name) or TF2_SLOT_MARK in name
            gone = gone or name in tf2_optimizer_keys
        if drop_global_step and name.split("/")[-1] in GLOBAL_STEP_NAMES:
            gone = True
        if name == OBJECT_GRAPH_KEY or any(p.search(name) for p in keeps):
            gone = False
        if gone:
            plan.drop.append(name)
        else:
            plan.keep.append(name)
            plan.bytes_after += sizes[name]
    return plan
