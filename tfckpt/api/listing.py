"""Listing the tensors of a checkpoint (``tfckpt vars``), from its index alone.

Imports only what a listing needs, so ``tfckpt vars`` on a small checkpoint starts fast.

Example::

    import tfckpt

    result = tfckpt.variables("runs/exp1", sort="bytes", top=10, optimizer=False)
    for record in result.records():
        print(record["name"], record["shape"], record["nbytes"])
    print(result.totals["model_parameters"], result.totals["optimizer_state"])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tfckpt.ops.listing import VarsResult
    from tfckpt.progress import Progress


def _open(path: str | os.PathLike[str], engine: str, need_data: bool) -> Any:
    if engine not in ("native", "tf"):
        from tfckpt.errors import UsageError

        raise UsageError(f"engine {engine!r}: choose 'native' or 'tf'")
    if engine == "tf":
        from tfckpt.tf_engine.adapter import open_tf_checkpoint

        return open_tf_checkpoint(os.fspath(path))
    from tfckpt.bundle.checkpoint import open_checkpoint

    return open_checkpoint(path, need_data=need_data)


def variables(
    path: str | os.PathLike[str],
    *,
    match: list[str] | None = None,
    regex: list[str] | None = None,
    optimizer: bool | None = None,
    sort: str = "name",
    top: int | None = None,
    include_object_graph: bool = False,
    keys: bool = False,
    stats: bool = False,
    engine: str = "native",
    progress: Progress | None = None,
) -> VarsResult:
    """The tensors of a checkpoint as ``tfckpt vars`` lists them, from the index alone (values
    are read only for ``stats``): names matching any ``match`` glob or ``regex`` (keys or TF2
    object paths), only optimizer state (``optimizer=True``) or only the model (``False``),
    sorted by ``"name"``, ``"size"``, ``"bytes"`` or ``"dtype"``, the first ``top``. Totals
    split model parameters from optimizer state. ``result.records()`` yields one dict per
    tensor; ``result.to_dict()`` is the ``--json`` payload.

    >>> result = tfckpt.variables("model.ckpt-1000", sort="bytes", top=3)
    >>> [r["name"] for r in result.records()], result.totals["optimizer_state"]
    (['dense/kernel/Adam_1', 'dense/kernel/Adam', 'dense/kernel'], 24)
    """
    from tfckpt.ops.listing import list_variables, stat_rows

    # A listing needs only the index (missing data shards are a warning); values need the data.
    with _open(path, engine, need_data=stats) as ckpt:
        result = list_variables(
            ckpt,
            match=match,
            regex=regex,
            optimizer=optimizer,
            sort=sort,
            top=top,
            include_object_graph=include_object_graph,
            keys=keys,
        )
        result.notes = list(ckpt.notes) + result.notes
        if stats:
            stat_rows(ckpt, result, progress)
    return result


__all__ = ["variables"]
