"""Errors of ``export`` / ``import``: members of the TfckptError family with their exit codes."""

from __future__ import annotations

from tfckpt.errors import ExitCode, TfckptError, UnsupportedCheckpoint


class CheckFailed(TfckptError):
    """The written output does not match its source, or ``--like`` found mismatches."""

    exit_code = ExitCode.FAILED


class UnrepresentableTensor(UnsupportedCheckpoint):
    """A tensor the target format cannot hold, refused under ``--strict``."""
