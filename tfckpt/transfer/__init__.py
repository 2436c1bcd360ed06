"""Getting weights out of and into TensorFlow checkpoints without TensorFlow.

``export``: a checkpoint -> safetensors, .npz, or a directory of .npy files (streamed, checked).
``import``: those formats -> a V2 checkpoint, optionally shaped ``like`` an existing one.
``presets``: conversions to another framework's names and layouts (Hugging Face), as TOML data.
One module per file format (``safetensors``, ``npz``, ``npy``), each with its header code,
writer, checker and reader; ``export`` and ``importer`` drive them through ``formats.file_format``.
"""

from __future__ import annotations

from tfckpt.errors import CheckFailed, UnrepresentableTensor
from tfckpt.transfer.common import InputFile
from tfckpt.transfer.export import (
    ExportOptions,
    ExportPlan,
    ExportWritten,
    check_output,
    plan_export,
    write_export,
)
from tfckpt.transfer.formats import Format, detect_format
from tfckpt.transfer.importer import (
    ImportOptions,
    ImportPlan,
    ImportWritten,
    LikeReport,
    open_input,
    plan_import,
    write_import,
)

__all__ = [
    "CheckFailed",
    "ExportOptions",
    "ExportPlan",
    "ExportWritten",
    "Format",
    "ImportOptions",
    "ImportPlan",
    "ImportWritten",
    "InputFile",
    "LikeReport",
    "UnrepresentableTensor",
    "check_output",
    "detect_format",
    "open_input",
    "plan_export",
    "plan_import",
    "write_export",
    "write_import",
]
