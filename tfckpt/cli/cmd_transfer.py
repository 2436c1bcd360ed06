"""Commands of this group are registered on the shared app."""

from __future__ import annotations

from tfckpt.cli.app import app  # noqa: F401
