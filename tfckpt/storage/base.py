"""What a filesystem offers the layers above: stats and listings, reads by byte range, and
writing a checkpoint prefix with a safe publication order. ``local`` implements it for local
paths (mmap, ``copy_file_range``, hard links, renames); ``remote`` for URLs through fsspec
(ranged requests in parallel, put/pipe, server-side copies)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

OnBytes = Callable[[int], None]

# Streams of tensor bytes come in steps of this size (the last may be shorter), locally and
# remotely alike, so two streams of equal ranges line up step by step.
STEP = 8 * 1024 * 1024

FILE, DIR, OTHER = "file", "dir", "other"


@dataclass(frozen=True)
class Stat:
    """One directory entry: ``kind`` is file, dir or other (FIFO, device, socket, dangling
    link); ``mtime`` in seconds since the epoch, None where the store has none."""

    kind: str
    size: int = 0
    mtime: float | None = None

    @property
    def isfile(self) -> bool:
        return self.kind == FILE

    @property
    def isdir(self) -> bool:
        return self.kind == DIR


class Blob(ABC):
    """Random-access reads of one regular file (an index table, a graph, a state file)."""

    path: str
    size: int

    @abstractmethod
    def pread(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset`` (CorruptCheckpoint if the file shrank)."""

    def read_all(self) -> bytes:
        return self.pread(0, self.size) if self.size else b""

    def close(self) -> None:
        return None

    def __enter__(self) -> Blob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Shard(ABC):
    """The tensor bytes of one data file: zero-copy views of a local mapping, or ranged
    requests (several in flight, bounded memory) for a remote object."""

    path: str
    size: int

    @abstractmethod
    def view(self, offset: int, length: int) -> memoryview:
        """The bytes of one range, whole (the caller checked the range against ``size``)."""

    @abstractmethod
    def stream(self, offset: int, length: int) -> Iterator[memoryview]:
        """The bytes of one range in steps of ``STEP`` bytes (the last may be shorter), memory
        released behind the consumer."""

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Hint: these ``(offset, length)`` ranges will be read in this order (remote shards
        start fetching them ahead of the reader)."""
        return None

    def release(self, offset: int, length: int) -> None:
        """The reader is done with these bytes (a local mapping drops its pages)."""
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Output(ABC):
    """One file a prefix write produces, written front to back."""

    final: str

    @abstractmethod
    def write(self, chunk: bytes | memoryview) -> None: ...

    @abstractmethod
    def append_range(self, src: str, offset: int, size: int, on_bytes: OnBytes | None) -> None:
        """Append ``size`` bytes of the file ``src`` (local or remote) from ``offset``."""

    @abstractmethod
    def close(self) -> None: ...


class PrefixWrite(ABC):
    """The files of one new checkpoint prefix, written under the destination's lock (so two
    writers never interleave) and published in TensorFlow's safe order: data files first, then
    the ``.index`` (TF reads nothing without it), then the ``.meta``.

    Create it with ``storage.begin_prefix_write``; use as a context manager (the lock is held
    until it exits, so state-file updates after ``commit`` are covered too).
    """

    prefix: str
    force: bool
    cleaned: list[str]

    @abstractmethod
    def output(self, final: str) -> Output:
        """A new file of the prefix (a data shard), opened for writing."""

    @abstractmethod
    def adopt(self, src: str, final: str, link: bool, on_bytes: OnBytes | None) -> None:
        """An existing file becomes ``final``: hard-linked or copied in the kernel locally,
        copied server-side within one store, streamed otherwise."""

    @abstractmethod
    def commit(self, index: bytes, meta: bytes | None, keep_meta: bool) -> None:
        """Publish: every output and adopted file, then the index, then ``meta`` if given.
        Old files of the prefix that nothing replaces go (and the old .meta unless
        ``keep_meta``)."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything this write produced (nothing is published)."""

    @abstractmethod
    def release(self) -> None:
        """Drop the destination lock (after commit or abort)."""

    def __enter__(self) -> PrefixWrite:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.release()


class FileSystem(ABC):
    """One kind of storage (local files, or one fsspec protocol)."""

    remote: bool = False

    @abstractmethod
    def stat(self, path: str) -> Stat | None:
        """What is at ``path`` (following links), or None."""

    @abstractmethod
    def listdir(self, directory: str) -> list[str]:
        """Names in a directory (OSError when it cannot be listed). Remote listings are
        cached, so ``stat`` of the names that follow costs nothing."""

    @abstractmethod
    def walk(self, top: str) -> Iterator[tuple[str, list[str], list[str]]]:
        """``os.walk``: (directory, subdirectory names, file names), top-down."""

    @abstractmethod
    def open_blob(self, path: str) -> Blob: ...

    @abstractmethod
    def open_shard(self, path: str) -> Shard: ...

    @abstractmethod
    def write_file(self, path: str, data: bytes, replace: bool) -> None:
        """Publish one small file atomically; without ``replace`` an existing file is never
        overwritten (OutputExists), even by a writer racing this one."""

    @abstractmethod
    def remove(self, path: str) -> None: ...

    @abstractmethod
    def check_parent(self, path: str, destination: str | None = None) -> None:
        """Refuse a destination that cannot be written (WriteError)."""

    @abstractmethod
    def begin_prefix_write(
        self, prefix: str, force: bool, sync: bool, refuse: Callable[[], None]
    ) -> PrefixWrite:
        """Lock the destination prefix and check it (``refuse`` raises for one that must not
        be written, e.g. a checkpoint being read), then return the write."""

    def identity(self, path: str) -> Any:
        """What makes two paths the same file (None if ``path`` does not exist)."""
        return path
