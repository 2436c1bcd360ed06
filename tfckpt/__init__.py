"""tfckpt: inspect, compare and edit TensorFlow checkpoints without loading TensorFlow.

Every command of the ``tfckpt`` CLI is a function here, with the same options as keyword
arguments and the same validation; the CLI only parses options and renders the result::

    import tfckpt

    with tfckpt.open("runs/exp1") as ckpt:              # a read-only name -> array mapping
        kernel = ckpt["dense/kernel"]

    listing = tfckpt.variables("runs/exp1", sort="bytes", top=10)  # as `tfckpt vars`

    reader = tfckpt.load_checkpoint("model.ckpt-100")   # tf.train.load_checkpoint, without TF
    tfckpt.rename("model.ckpt-100", "out/model.ckpt-100", add_prefix="pretrained/")
    tfckpt.prune("model.ckpt-100", "small/model.ckpt-100", optimizer=True)
    tfckpt.merge([("a/ckpt", "a/"), ("b/ckpt", "b/")], "out/both")
    report = tfckpt.diff("a/ckpt", "b/ckpt", atol=1e-6)   # report.ok, report.variables
    report = tfckpt.verify("model.ckpt-100", no_nan=True)  # report.ok, report.problems
    report = tfckpt.scan(["export/1"])      # report.ok, report.findings: ops that reach out
    report = tfckpt.check(["export/1"], policy=tfckpt.load_policy("policy.toml"))
    tfckpt.export("model.ckpt-100", "model.safetensors", no_optimizer=True)
    tfckpt.import_weights("model.safetensors", "out/model.ckpt-100", like="model.ckpt-100")
    tfckpt.export("bert_model.ckpt", "hf/", preset="hf-bert", config="bert_config.json")

Errors are ``TfckptError`` subclasses (``tfckpt.errors``), each with the exit code the CLI uses.
Imports are lazy so that ``import tfckpt`` (and ``tfckpt --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfckpt.errors import TfckptError

__version__ = "0.2.0"

if TYPE_CHECKING:
    from tfckpt.api.checks import diff, verify
    from tfckpt.api.listing import variables
    from tfckpt.api.reading import list_checkpoints, open
    from tfckpt.api.scan import PolicyReport, ScanReport, check, load_policy, scan
    from tfckpt.api.surgery import SurgeryResult, cast, merge, prune, rename, repair
    from tfckpt.api.transfer import (
        ExportResult,
        ImportResult,
        export,
        import_weights,
        list_presets,
        load_preset,
    )
    from tfckpt.bundle.checkpoint import Checkpoint, TensorInfo, open_checkpoint
    from tfckpt.bundle.compat import CheckpointReader, load_checkpoint

# Public name -> the module that defines it (imported on first use).
_LAZY = {
    "Checkpoint": "tfckpt.bundle.checkpoint",
    "TensorInfo": "tfckpt.bundle.checkpoint",
    "open_checkpoint": "tfckpt.bundle.checkpoint",
    "open": "tfckpt.api.reading",
    "list_checkpoints": "tfckpt.api.reading",
    "variables": "tfckpt.api.listing",
    "CheckpointReader": "tfckpt.bundle.compat",
    "load_checkpoint": "tfckpt.bundle.compat",
    "rename": "tfckpt.api.surgery",
    "prune": "tfckpt.api.surgery",
    "merge": "tfckpt.api.surgery",
    "cast": "tfckpt.api.surgery",
    "repair": "tfckpt.api.surgery",
    "SurgeryResult": "tfckpt.api.surgery",
    "export": "tfckpt.api.transfer",
    "import_weights": "tfckpt.api.transfer",
    "ExportResult": "tfckpt.api.transfer",
    "ImportResult": "tfckpt.api.transfer",
    "list_presets": "tfckpt.api.transfer",
    "load_preset": "tfckpt.api.transfer",
    "diff": "tfckpt.api.checks",
    "verify": "tfckpt.api.checks",
    "scan": "tfckpt.api.scan",
    "check": "tfckpt.api.scan",
    "load_policy": "tfckpt.api.scan",
    "ScanReport": "tfckpt.api.scan",
    "PolicyReport": "tfckpt.api.scan",
}

__all__ = [
    "Checkpoint",
    "CheckpointReader",
    "ExportResult",
    "ImportResult",
    "PolicyReport",
    "ScanReport",
    "SurgeryResult",
    "TensorInfo",
    "TfckptError",
    "__version__",
    "cast",
    "check",
    "diff",
    "export",
    "import_weights",
    "list_checkpoints",
    "list_presets",
    "load_checkpoint",
    "load_policy",
    "load_preset",
    "merge",
    "open",
    "open_checkpoint",
    "prune",
    "rename",
    "repair",
    "scan",
    "variables",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfckpt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
