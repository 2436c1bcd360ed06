"""The error family tfckpt raises for user-facing problems, and the exit codes scripts rely on.

Every class carries its exit code. The CLI turns any ``TfckptError`` into one line on stderr
(``tfckpt: error: ...``) and that code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; a stable contract for scripts and CI."""

    OK = 0
    FAILED = 1  # differences found, or a check failed
    ERROR = 2  # usage error, or unreadable / corrupt / missing input
    INTERRUPTED = 130


class TfckptError(Exception):
    """A problem with the user's input or environment, reported in one line."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(TfckptError):
    """Options that do not make sense together, or a bad argument value."""


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


class OutputExists(TfckptError):
    """The destination exists and ``--force`` was not given."""


class WriteError(TfckptError):
    """The destination could not be written (read-only, disk full, ...)."""


class TensorFlowMissing(TfckptError):
    """``--engine tf`` was asked for but TensorFlow is not installed."""
