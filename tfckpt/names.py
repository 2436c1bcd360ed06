"""Tensor names: TF2 checkpoint keys and the object paths they stand for (FORMAT.md §9).

A TF2 key such as ``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`` names the attribute
``VARIABLE_VALUE`` of the object reached by the edges ``model``, ``dense``, ``kernel``; its
object path, ``model/dense/kernel``, is what tfckpt shows by default. Pure string functions,
used by every layer (rendering included).
"""

from __future__ import annotations

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
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
