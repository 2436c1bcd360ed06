"""The error family tfckpt raises for user-facing problems, and the exit codes scripts rely on.

Every class carries its exit code. The CLI turns any ``TfckptError`` into one line on stderr
(``tfckpt: error: ...``) and that code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes; a stable contract for scripts and CI."""

    OK = 0
    FAILED = 1  # differences found, or a check failed
    ERROR = 2  # usage error, or unreadable / corrupt / missing input
    INTERRUPTED = 130


class TfckptError(Exception):
    """A problem with the user's input or environment, reported in one line.

    ``fix`` names the keyword parameter that would change the outcome (``"force"`` for an
    existing destination): messages speak of the library, and the CLI turns ``fix`` into its
    flag (``use --force``), so neither vocabulary leaks into the other.
    """

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str = "", *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class UsageError(TfckptError):
    """Options that do not make sense together, or a bad argument value."""


class PolicyError(UsageError):
    """A ``check --policy`` file that cannot be read, is not TOML, or has an unknown key or a
    bad value."""


class CheckpointNotFound(TfckptError):
    """No checkpoint at the given path."""


class CorruptCheckpoint(TfckptError):
    """A checkpoint file that cannot be parsed or fails a checksum."""


class UnsupportedCheckpoint(TfckptError):
    """A valid checkpoint using a feature tfckpt does not handle (e.g. big-endian bytes)."""


class GraphError(TfckptError):
    """A graph / MetaGraphDef / SavedModel file that cannot be read."""


class RenameConflict(TfckptError):
    """A rename or merge plan whose names collide."""


class NoChange(TfckptError):
    """A rename whose rules change no name: almost always a typo in a pattern."""


class VariableNotFound(TfckptError, KeyError):
    """A variable name that is not in the checkpoint (also a KeyError, as a mapping raises)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class GraphMergeError(RenameConflict):
    """Two TF2 object graphs that cannot share one root (an attribute name used by both)."""


class CheckFailed(TfckptError):
    """A written output that does not match its source, or an input that does not match the
    checkpoint it must look like (``like``) or the architecture it must fit (a preset's config)."""

    exit_code = ExitCode.FAILED


class MismatchError(CheckFailed):
    """An input that does not fit what it must match: the checkpoint given as ``like``, or the
    model a preset (and its config) describes. Nothing was written; ``result`` holds the whole
    comparison (the result a dry run would have returned)."""

    def __init__(self, message: str = "", *, result: Any = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.result = result


class UnrepresentableTensor(UnsupportedCheckpoint):
    """A tensor the target format cannot hold, refused under ``strict``."""


class OutputExists(TfckptError):
    """The destination exists and ``--force`` was not given."""


class WriteError(TfckptError):
    """The destination could not be written (read-only, disk full, ...)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message  # the cause alone ("disk full"), for other messages


class StorageError(TfckptError):
    """A remote store failed or refused a request (network, server error, access denied)."""


class BackendMissing(TfckptError):
    """A URL whose filesystem backend is not installed (the message names the extra)."""


class TensorFlowMissing(TfckptError):
    """``--engine tf`` was asked for but TensorFlow is not installed."""
