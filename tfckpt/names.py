"""Tensor names: TF2 checkpoint keys and the object paths they stand for (FORMAT.md §9).

A TF2 key such as ``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`` names the attribute
``VARIABLE_VALUE`` of the object reached by the edges ``model``, ``dense``, ``kernel``; its
object path, ``model/dense/kernel``, is what tfckpt shows by default. Pure string functions,
used by every layer (rendering included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
OPTIMIZER_SLOT = ".OPTIMIZER_SLOT"  # the object-graph edge from a variable to its slots
_ATTR_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def is_object_key(key: str) -> bool:
    """Whether ``key`` is a TF2 object-based key (an attribute of an object)."""
    return "/.ATTRIBUTES/" in key or key.startswith(".ATTRIBUTES/")


def display_name(key: str) -> str:
    """What tfckpt shows for a tensor: the object path of a TF2 key, else the key itself."""
    return object_path_of(key) if is_object_key(key) else key


def key_of(path: str) -> str:
    """The key of a variable's value at object path ``path`` (the inverse of display_name for
    ``VARIABLE_VALUE`` attributes)."""
    return path + _ATTR_SUFFIX


def object_path_of(key: str) -> str:
    """The readable object path of a TF2 key: suffix folded, local names unescaped."""
    if key.endswith(_ATTR_SUFFIX):
        key = key[: -len(_ATTR_SUFFIX)]
    if "." not in key:  # nothing escaped (most keys): no per-part work
        return key
    return "/".join(unescape_local_name(part) for part in key.split("/"))


def unescape_local_name(local_name: str) -> str:
    """An object-graph edge name from its key component (FORMAT.md §9: '.' was escaped as
    '..', '/' as '.S')."""
    out = []
    i = 0
    while i < len(local_name):
        ch = local_name[i]
        if ch == "." and i + 1 < len(local_name) and local_name[i + 1] in ".S":
            out.append("." if local_name[i + 1] == "." else "/")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# Name-based optimizer state: tf.compat.v1.train optimizers hang slots under their variable
# (``v/Adam``, ``v/Adam_1``, ``v/Momentum``...) and keep ``beta1_power``/``beta2_power``; Keras
# (optimizer v2) in graph mode, e.g. under an Estimator, keeps everything under its own name
# scope (``training/Adagrad/dense/kernel/accumulator``, ``training/Ftrl/iter``, ``Adam/iter``).
_KERAS_OPTIMIZERS = (
    "Adadelta|Adafactor|Adagrad|Adam|AdamW|Adamax|Ftrl|Lion|LossScaleOptimizer|Nadam|RMSprop|SGD"
)
# The rule, by name component: the last component is a TF1 slot (``Adam``, ``Momentum_1``...)
# under a variable, or ``beta1_power``/``beta2_power`` (also ``_N``) anywhere; or the first
# component (after an optional ``training/``) is a Keras optimizer's scope (``Adam/``, ``SGD_1/``).
_TF1_SLOT_LAST = re.compile(
    r"Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adagrad_\d+|AdagradDA|AdagradDA_\d+"
    r"|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|Adamax|Adamax_\d+|Nadam|Nadam_\d+"
    r"|ProximalAdagrad|GradientDescent|ExponentialMovingAverage"
)
_POWER_LAST = re.compile(r"(?:beta1_power|beta2_power)(?:_\d+)?")
_KERAS_SCOPE = re.compile(rf"(?:{_KERAS_OPTIMIZERS})(?:_\d+)?")
TF2_SLOT_MARK = f"/{OPTIMIZER_SLOT}/"


def tf1_slot_flags(names: Iterable[str]) -> bytearray:
    """1 for each name that is name-based optimizer state (see ``is_tf1_slot``), 0 otherwise.

    Each distinct component is matched once, so 10^6 names cost a dictionary lookup or two
    each, not a regex search."""
    last_memo: dict[str, bool] = {}  # last component ("\0" + it when the name has no "/")
    scope_memo: dict[str, bool] = {}  # first component, or "training/" + the second
    out = bytearray()
    append = out.append
    for name in names:
        _, nested, last = name.rpartition("/")
        key = last if nested else "\0" + last
        hit = last_memo.get(key)
        if hit is None:
            hit = bool(_POWER_LAST.fullmatch(last) or (nested and _TF1_SLOT_LAST.fullmatch(last)))
            last_memo[key] = hit
        if not hit and nested:
            first = name[: name.find("/")]
            scope = first
            if first == "training":
                second, more, _ = name[9:].partition("/")
                if more:
                    scope = "training/" + second
            hit = scope_memo.get(scope)
            if hit is None:
                hit = bool(_KERAS_SCOPE.fullmatch(scope.removeprefix("training/")))
                scope_memo[scope] = hit
        append(hit)
    return out


def is_tf1_slot(name: str) -> bool:
    """True when ``name`` is name-based optimizer state: a tf.compat.v1.train optimizer's slot
    (``v/Adam``, ``v/Adam_1``, ``v/Momentum``), its ``beta1_power``/``beta2_power``, or a
    graph-mode Keras optimizer's variable (``Adam/iter``, ``training/Ftrl/...``)."""
    return tf1_slot_flags((name,))[0] == 1
