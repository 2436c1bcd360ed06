"""``verify --engine tf``: what TensorFlow's own reader accepts, plus the same value checks.

``tf.train.load_checkpoint`` checks the index block checksums when it opens a prefix and each
tensor's CRC32C (string lengths included) when it reads it; whatever it refuses becomes a
problem. Path resolution stays native, so "not a checkpoint" is still exit 2. Variant tensors
(tf.data iterator state) are skipped: TF's Python reader cannot return them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfckpt.bundle.checkpoint import resolve_prefix
from tfckpt.dtypes import dtype_from_name
from tfckpt.errors import CheckpointNotFound, CorruptCheckpoint
from tfckpt.ops.verify import Problem, VerifyOptions, VerifyReport, value_problems, wants_values
from tfckpt.tf_engine.checkpoint import list_variables, read_tensor


def verify_with_tf(
    path: str, options: VerifyOptions, on_bytes: Callable[[int], None] | None = None
) -> VerifyReport:
    prefix, fmt = resolve_prefix(path)
    report = VerifyReport(prefix=prefix, format=fmt)
    try:
        variables = list_variables(prefix)
    except (CorruptCheckpoint, CheckpointNotFound) as exc:
        report.problems.append(Problem("index", str(exc), file=prefix))
        return report
    for var in variables:
        report.tensors += 1
        if var.dtype == "variant":
            continue  # TF's Python reader cannot hand variant tensors to numpy at all
        try:
            value = read_tensor(prefix, var.name)
        except (CorruptCheckpoint, CheckpointNotFound) as exc:
            report.problems.append(Problem("crc", str(exc), var.name, prefix))
            continue
        array = np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)
        nbytes = array.nbytes if array.dtype != object else sum(len(bytes(v)) for v in array.flat)
        report.bytes_checked += nbytes
        if on_bytes is not None:
            on_bytes(nbytes)
        if wants_values(dtype_from_name(var.dtype), options):
            report.problems.extend(value_problems(var.name, prefix, [array], options))
    return report
