"""How long-running library calls report progress, without knowing who is watching.

Library functions take ``progress: Progress | None``. The CLI passes a Rich bar
(``tfckpt.render.progress_bar``); scripts may pass their own object (tqdm fits in three lines)
or nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives work measured in bytes: one ``start`` per phase, then ``advance`` calls."""

    def start(self, description: str, total: int) -> None:
        """A new phase (``"copy"``, ``"verify"``...) of ``total`` bytes begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the current phase are done."""

    def describe(self, text: str) -> None:
        """What is being worked on now (e.g. a tensor name)."""


class NoProgress:
    """The progress of nobody watching."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


NO_PROGRESS = NoProgress()


def or_none(progress: Progress | None) -> Progress:
    return NO_PROGRESS if progress is None else progress
