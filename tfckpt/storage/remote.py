"""URLs (``s3://``, ``gs://``, ``http(s)://``, ``memory://``, any fsspec protocol) through fsspec.

Reads fetch only the byte ranges asked for: a data shard is read in parts of ``PART`` bytes
with up to ``PARALLEL`` requests in flight, so memory stays below ``PARALLEL * PART`` whatever
the tensor's size, and a reader that announces what it will read (``Shard.prefetch``) gets the
next ranges fetched while it works on the current one (small neighbouring tensors share one
request).

Writes follow the only order that is safe without a rename: data files are written at their
final names first, then the ``.index`` (TensorFlow reads nothing without it; one PUT, so it
appears whole or not at all), then the ``.meta``. With ``force`` the old index is deleted before
the first data byte is written, so no moment exists where an index points at the wrong data (a
failure then leaves no checkpoint there). Data files without an index, from an interrupted
write, are removed by the next write to the prefix. Whole files copied within one store are
copied server-side (S3 CopyObject / UploadPartCopy, GCS rewrite): their bytes never pass
through the client. The destination is locked by an object created with "create only"
semantics (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``), so two writers never
interleave.

Credentials and endpoints come from each backend's own configuration (AWS environment variables
and profiles, ``AWS_ENDPOINT_URL``; Google application default credentials,
``STORAGE_EMULATOR_HOST``); ``configure(anon=True)`` reads public buckets without any.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tfckpt.errors import (
    BackendMissing,
    CorruptCheckpoint,
    OutputExists,
    StorageError,
    TfckptError,
    UsageError,
    WriteError,
)
from tfckpt.storage.base import (
    DIR,
    FILE,
    STEP,
    Blob,
    FileSystem,
    OnBytes,
    Output,
    PrefixWrite,
    Shard,
    Stat,
)
from tfckpt.storage.local import LOCK_SUFFIX, pid_alive

# One ranged request reads at most this much (a stream's step); several are in flight at once.
PART = STEP
PARALLEL = 8
# Neighbouring ranges closer than this are fetched by one request.
GAP = 64 * 1024
# A lock object of a writer elsewhere is waited for this long (seconds) with ``force``.
LOCK_WAIT = 600.0

# Which install extra brings each protocol's backend.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "http": "remote",
    "https": "remote",
}
READ_ONLY = ("http", "https")

_options: dict[str, Any] = {"anon": False}
_instances: dict[tuple[Any, ...], RemoteFS] = {}
_lock = threading.Lock()


def configure(anon: bool = False) -> None:
    """Options for every remote filesystem opened after this call (``anon``: public buckets,
    no credentials)."""
    _options["anon"] = anon


def _backend_kwargs(protocol: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"skip_instance_cache": True}
    if _options["anon"]:
        if protocol in ("s3", "s3a"):
            kwargs["anon"] = True
        elif protocol in ("gs", "gcs"):
            kwargs["token"] = "anon"
    return kwargs


def remote_fs(protocol: str, url: str) -> RemoteFS:
    """The filesystem for ``protocol`` (cached per protocol, options and endpoint)."""
    key = (
        protocol,
        _options["anon"],
        os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_ENDPOINT_URL_S3"),
        os.environ.get("STORAGE_EMULATOR_HOST"),
    )
    with _lock:
        found = _instances.get(key)
        if found is None:
            found = _instances[key] = RemoteFS(protocol, _open_backend(protocol, url))
        return found


def _open_backend(protocol: str, url: str) -> Any:
    # fsspec's event loop reports requests abandoned after a failure ("Task exception was never
    # retrieved") through asyncio's logger; the failure itself is already one line of ours.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    extra = EXTRAS.get(protocol, "remote")
    hint = f"pip install 'tfckpt[{extra}]'"
    try:
        import fsspec
    except ImportError:
        raise BackendMissing(f"{url}: URLs need fsspec; {hint}") from None
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise UsageError(f"{url}: unknown protocol {protocol!r}") from None
    except ImportError:
        raise BackendMissing(f"{url}: the {protocol}:// backend is not installed; {hint}") from None
    try:
        return cls(**_backend_kwargs(protocol))
    except ImportError:
        raise BackendMissing(f"{url}: the {protocol}:// backend is not installed; {hint}") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _mtime(info: dict[str, Any]) -> float | None:
    keys = ("LastModified", "Last-Modified", "mtime", "updated", "last_modified", "created")
    for key in keys:
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            with contextlib.suppress(TypeError, ValueError):  # HTTP: "Tue, 01 Dec 2026 ..."
                return parsedate_to_datetime(value).timestamp()
    return None


def _stat_of(info: dict[str, Any]) -> Stat | None:
    """A listing's or ``info``'s entry; None for a file whose size it does not say (HTTP
    listings), which then needs a request of its own."""
    if info.get("type") == "directory":
        return Stat(DIR, 0, _mtime(info))
    if info.get("size") is None:
        return None
    return Stat(FILE, int(info["size"]), _mtime(info))


class RemoteFS(FileSystem):
    remote = True

    def __init__(self, protocol: str, fs: Any) -> None:
        self.protocol = protocol
        self.fs = fs
        self.pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"tfckpt-{protocol}")
        self.read_only = protocol in READ_ONLY
        # Listings made by this process: {directory url: {name: Stat}}; a stat of a name in a
        # listed directory costs no request. Writes through this object keep it current.
        self._listed: dict[str, dict[str, Stat | None]] = {}

    # ---- names -----------------------------------------------------------------------------
    def url(self, name: str) -> str:
        """A backend's path (``bucket/key``) as a URL again."""
        return name if "://" in name else f"{self.protocol}://{name}"

    def _forget(self, path: str) -> None:
        self._listed.pop(posixpath.dirname(path.rstrip("/")), None)
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache(path)

    def forget_all(self) -> None:
        self._listed.clear()
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache()

    def call(self, what: str, path: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """A backend call with its errors as one-line TfckptErrors (FileNotFoundError and
        FileExistsError pass through for the caller to interpret)."""
        try:
            return fn(*args, **kw)
        except (FileNotFoundError, FileExistsError, TfckptError):
            raise
        except PermissionError as exc:
            raise StorageError(f"{path}: access denied ({_reason(exc)})") from None
        except Exception as exc:  # botocore, aiohttp, google-auth: all one line, exit 2
            raise StorageError(f"{path}: cannot {what} ({_reason(exc)})") from None

    # ---- stats and listings ------------------------------------------------------------------
    def stat(self, path: str) -> Stat | None:
        path = path.rstrip("/") or path
        listed = self._listed.get(posixpath.dirname(path))
        name = posixpath.basename(path)
        if listed is not None and (name not in listed or listed[name] is not None):
            return listed.get(name)
        try:
            info = self.call("stat", path, self.fs.info, path)
        except FileNotFoundError:
            return None
        except StorageError:
            if self.read_only:
                return None  # an HTTP server answering 403/405 to a HEAD: as good as absent
            raise
        return _stat_of(info) or Stat(FILE, 0, _mtime(info))

    def listdir(self, directory: str) -> list[str]:
        directory = directory.rstrip("/") or directory
        if directory in self._listed:
            return list(self._listed[directory])
        try:
            infos = self.call("list", directory, self.fs.ls, directory, detail=True)
        except FileNotFoundError:
            raise FileNotFoundError(2, "No such file or directory", directory) from None
        except StorageError as exc:
            raise OSError(5, str(exc)) from None
        names: dict[str, Stat | None] = {}
        for info in infos:
            name = posixpath.basename(str(info["name"]).rstrip("/"))
            if name and self.url(str(info["name"]).rstrip("/")) != directory:
                names[name] = _stat_of(info)
        self._listed[directory] = names
        return list(names)

    def walk(self, top: str) -> Iterator[tuple[str, list[str], list[str]]]:
        pending = [top.rstrip("/")]
        while pending:
            directory = pending.pop(0)
            try:
                names = self.listdir(directory)
            except OSError:
                continue
            kinds = {n: self.stat(f"{directory}/{n}") for n in names}
            dirs = sorted(n for n, st in kinds.items() if st is not None and st.isdir)
            files = [n for n in names if n not in dirs]
            yield directory, dirs, files
            pending[0:0] = [f"{directory}/{d}" for d in dirs]

    # ---- reading -------------------------------------------------------------------------------
    def cat_range(self, path: str, start: int, end: int) -> bytes:
        data = self.call("read", path, self.fs.cat_file, path, start=start, end=end)
        if len(data) != end - start:
            raise CorruptCheckpoint(
                f"{path}: wanted bytes {start}..{end} but got {len(data)} (object shorter than "
                "the index says; truncated?)"
            )
        return bytes(data)

    def open_blob(self, path: str) -> Blob:
        return RemoteBlob(self, path)

    def open_shard(self, path: str) -> Shard:
        st = self.stat(path)
        if st is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        if not st.isfile:
            raise CorruptCheckpoint(f"{path}: is a directory, not a data file")
        return RemoteShard(self, path, st.size)

    # ---- writing -------------------------------------------------------------------------------
    def check_parent(self, path: str, destination: str | None = None) -> None:
        if self.read_only:
            shown = path if destination is None else destination
            raise UsageError(f"{shown}: {self.protocol}:// is read-only; write elsewhere")

    def write_file(self, path: str, data: bytes, replace: bool) -> None:
        self.check_parent(path)
        try:
            self.call(
                "write",
                path,
                self.fs.pipe_file,
                path,
                data,
                mode="overwrite" if replace else "create",
            )
        except FileExistsError:
            raise OutputExists(f"{path}: exists") from None
        except StorageError as exc:
            raise WriteError(str(exc)) from None
        finally:
            self._forget(path)

    def remove(self, path: str) -> None:
        try:
            self.call("remove", path, self.fs.rm_file, path)
        finally:
            self._forget(path)

    def copy(self, src: str, dst: str) -> None:
        """A server-side copy within this store (the bytes stay on the server)."""
        try:
            self.call("copy", dst, self.fs.cp_file, src, dst)
        except StorageError as exc:
            raise WriteError(str(exc)) from None
        finally:
            self._forget(dst)

    def put(self, local: str, dst: str, on_bytes: OnBytes | None) -> None:
        """Upload a local file (multipart and concurrent where the backend does that)."""
        kw: dict[str, Any] = {}
        if on_bytes is not None:
            from fsspec.callbacks import Callback

            report = on_bytes
            seen = [0]

            class _Count(Callback):  # type: ignore[misc]
                def call(self, *args: Any, **kwargs: Any) -> None:
                    if self.value > seen[0]:
                        report(self.value - seen[0])
                        seen[0] = self.value

            kw["callback"] = _Count()
        try:
            self.call("upload", dst, self.fs.put_file, local, dst, **kw)
        except StorageError as exc:
            raise WriteError(str(exc)) from None
        finally:
            self._forget(dst)

    def begin_prefix_write(
        self, prefix: str, force: bool, sync: bool, refuse: Callable[[], None]
    ) -> PrefixWrite:
        self.check_parent(prefix)
        return RemotePrefixWrite(self, prefix, force, refuse)

    def identity(self, path: str) -> str | None:
        return path if self.stat(path) is not None else None


class RemoteBlob(Blob):
    def __init__(self, rfs: RemoteFS, path: str) -> None:
        self.rfs = rfs
        self.path = path
        st = rfs.stat(path)
        if st is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        if not st.isfile:
            raise CorruptCheckpoint(f"{path}: is a directory, not a regular file")
        self.size = st.size
        self._whole: bytes | None = None

    def pread(self, offset: int, length: int) -> bytes:
        if self._whole is not None:
            return self._whole[offset : offset + length]
        return self.rfs.cat_range(self.path, offset, offset + length)

    def read_all(self) -> bytes:
        if self._whole is None:
            self._whole = bytes(self.rfs.call("read", self.path, self.rfs.fs.cat_file, self.path))
            self.size = len(self._whole)
        return self._whole


def _parts(offset: int, length: int) -> list[tuple[int, int]]:
    return [(offset + k, min(PART, length - k)) for k in range(0, length, PART)] or [(offset, 0)]


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Requests for ``(offset, length)`` ranges read in this order: neighbours (a gap under
    ``GAP``, in increasing order) share one request of at most ``PART`` bytes; ranges larger
    than ``PART`` are split into parts aligned at their start (what ``stream`` asks for)."""
    out: list[tuple[int, int]] = []
    for offset, length in ranges:
        if length > PART:
            out.extend(_parts(offset, length))
            continue
        if out:
            start, size = out[-1]
            end = start + size
            if (
                start <= offset
                and offset - end <= GAP
                and max(end, offset + length) - start <= PART
            ):
                out[-1] = (start, max(end, offset + length) - start)
                continue
        out.append((offset, length))
    return out


class RemoteShard(Shard):
    """Ranged reads of one object, ``PARALLEL`` requests in flight at most.

    After ``prefetch(ranges)``, the planned requests run ahead of the reader (at most
    ``PARALLEL`` fetched and not yet passed); a read inside a planned request is served from it,
    any other read is fetched on its own.
    """

    def __init__(self, rfs: RemoteFS, path: str, size: int) -> None:
        self.rfs = rfs
        self.path = path
        self.size = size
        self._queue: deque[tuple[int, int]] = deque()
        self._active: deque[tuple[int, int, Future[bytes]]] = deque()

    def _fetch(self, offset: int, length: int) -> bytes:
        return self.rfs.cat_range(self.path, offset, offset + length) if length else b""

    def _submit(self, offset: int, length: int) -> Future[bytes]:
        return self.rfs.pool.submit(self._fetch, offset, length)

    # ---- the plan ------------------------------------------------------------------------------
    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        self._drop()
        self._queue = deque(coalesce([r for r in ranges if r[1] > 0]))
        self._fill()

    def _fill(self) -> None:
        while self._queue and len(self._active) < PARALLEL:
            offset, length = self._queue.popleft()
            self._active.append((offset, length, self._submit(offset, length)))

    def _planned(self, offset: int, length: int) -> memoryview | None:
        for i, (start, size, future) in enumerate(self._active):
            if start <= offset and offset + length <= start + size:
                for _ in range(i):  # the reader has moved past the requests before this one
                    self._active.popleft()
                self._fill()
                data = future.result()
                return memoryview(data)[offset - start : offset - start + length]
        return None

    def _drop(self) -> None:
        for _, _, future in self._active:
            future.cancel()
        self._active.clear()
        self._queue.clear()

    # ---- reads ---------------------------------------------------------------------------------
    def _get(self, offset: int, length: int) -> memoryview:
        found = self._planned(offset, length)
        return found if found is not None else memoryview(self._fetch(offset, length))

    def view(self, offset: int, length: int) -> memoryview:
        if length <= PART:
            return self._get(offset, length)
        out = bytearray(length)
        for at, step in zip(range(0, length, PART), self.stream(offset, length)):
            out[at : at + len(step)] = step
        return memoryview(out)

    def stream(self, offset: int, length: int) -> Iterator[memoryview]:
        parts = _parts(offset, length)
        if self._planned(*parts[0]) is not None:
            for part in parts:
                yield self._get(*part)
            return
        ahead: deque[Future[bytes]] = deque()
        pending = iter(parts)
        try:
            for part in pending:
                ahead.append(self._submit(*part))
                if len(ahead) >= PARALLEL:
                    break
            while ahead:
                future = ahead.popleft()
                nxt = next(pending, None)
                if nxt is not None:
                    ahead.append(self._submit(*nxt))
                yield memoryview(future.result())
        finally:
            for future in ahead:
                future.cancel()

    def close(self) -> None:
        self._drop()


# ---- writing -------------------------------------------------------------------------------
class RemoteOutput(Output):
    """A file streamed to the store at its final name (multipart where the backend does it)."""

    def __init__(self, rfs: RemoteFS, final: str) -> None:
        self.rfs = rfs
        self.final = final
        try:
            self._file = rfs.call("write", final, rfs.fs.open, final, "wb")
        except StorageError as exc:
            raise WriteError(str(exc)) from None
        self.closed = False

    def write(self, chunk: bytes | memoryview) -> None:
        try:
            self.rfs.call("write", self.final, self._file.write, chunk)
        except StorageError as exc:
            raise WriteError(str(exc)) from None

    def append_range(self, src: str, offset: int, size: int, on_bytes: OnBytes | None) -> None:
        from tfckpt import storage

        with storage.open_shard(src) as shard:
            for step in shard.stream(offset, size):
                self.write(step)
                if on_bytes is not None:
                    on_bytes(len(step))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.rfs.call("write", self.final, self._file.close)
        except StorageError as exc:
            raise WriteError(str(exc)) from None
        finally:
            self.rfs._forget(self.final)

    def discard(self) -> None:
        """Give up: an unfinished multipart upload is aborted, nothing appears."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if hasattr(self._file, "discard"):
                self._file.discard()
            else:
                self._file.close()


class RemoteLock:
    """``<prefix>.tfckpt-tmp-lock``, created only if absent: the destination's lock.

    It names its holder (host, pid, time). A lock of a dead process on this host is stale and
    taken over; one held elsewhere makes a writer without ``wait`` fail at once, and one with
    ``wait`` (``force``) poll for up to ``LOCK_WAIT`` seconds.
    """

    def __init__(self, rfs: RemoteFS, prefix: str, wait: bool) -> None:
        self.rfs = rfs
        self.path = prefix + LOCK_SUFFIX
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
        body = json.dumps(holder).encode()
        deadline = time.monotonic() + LOCK_WAIT
        self.held = False
        while True:
            try:
                rfs.write_file(self.path, body, replace=False)
                self.held = True
                return
            except OutputExists:
                pass
            other = self._holder()
            if other is not None and self._stale(other):
                with contextlib.suppress(FileNotFoundError, StorageError):
                    rfs.remove(self.path)
                continue
            if not wait or time.monotonic() > deadline:
                who = f" ({other.get('host')}, pid {other.get('pid')})" if other else ""
                raise OutputExists(
                    f"{prefix}: another writer{who} is writing this destination right now (if "
                    f"none is, remove {self.path})"
                )
            time.sleep(0.25)

    def _holder(self) -> dict[str, Any] | None:
        try:
            raw = self.rfs.call("read", self.path, self.rfs.fs.cat_file, self.path)
            value = json.loads(raw)
            return value if isinstance(value, dict) else {}
        except FileNotFoundError:
            return None
        except (ValueError, StorageError):
            return {}

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        return (
            holder.get("host") == socket.gethostname()
            and isinstance(pid, int)
            and not pid_alive(pid)
        )

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(FileNotFoundError, StorageError):
                self.rfs.remove(self.path)


class RemotePrefixWrite(PrefixWrite):
    def __init__(self, rfs: RemoteFS, prefix: str, force: bool, refuse: Callable[[], None]) -> None:
        self.rfs = rfs
        self.prefix = prefix
        self.force = force
        self.cleaned = []
        self._outputs: list[RemoteOutput] = []
        self._written: list[str] = []
        self._retired = False
        self._lock: RemoteLock | None = RemoteLock(rfs, prefix, wait=force)
        rfs.forget_all()  # listings made before the lock may miss another writer's files
        try:
            refuse()
        except BaseException:
            self.release()
            raise

    def _retire_old_index(self) -> None:
        """With ``force``: the old index goes before any data file is overwritten."""
        if self._retired:
            return
        self._retired = True
        index = self.prefix + ".index"
        if self.rfs.stat(index) is not None:
            if not self.force:
                raise OutputExists(f"{self.prefix}: destination appeared meanwhile")
            self.rfs.remove(index)

    def _claim(self, final: str) -> None:
        if final in self._written:
            raise ValueError(f"{final} written twice")
        self._retire_old_index()
        self._written.append(final)

    def output(self, final: str) -> Output:
        self._claim(final)
        out = RemoteOutput(self.rfs, final)
        self._outputs.append(out)
        return out

    def adopt(self, src: str, final: str, link: bool, on_bytes: OnBytes | None) -> None:
        from tfckpt import storage

        self._claim(final)
        size = storage.getsize(src)
        if storage.same_store(src, final):
            self.rfs.copy(src, final)  # server-side: no tensor byte passes through here
            if on_bytes is not None:
                on_bytes(size)
        elif not storage.is_url(src):
            self.rfs.put(src, final, on_bytes)
        else:
            out = RemoteOutput(self.rfs, final)
            try:
                out.append_range(src, 0, size, on_bytes)
                out.close()
            except BaseException:
                out.discard()
                raise

    def commit(self, index: bytes, meta: bytes | None, keep_meta: bool) -> None:
        from tfckpt.storage.cleanup import prefix_files

        index_final = self.prefix + ".index"
        try:
            for out in self._outputs:
                out.close()
            self._retire_old_index()
            written = set(self._written)
            for old in sorted(set(prefix_files(self.prefix)) - written):
                if old == index_final or (old.endswith(".meta") and (keep_meta or meta)):
                    continue
                self.rfs.remove(old)  # old shards, orphans of an interrupted write, old .meta
            self.rfs.write_file(index_final, index, replace=self.force)
            if meta is not None:
                self.rfs.write_file(self.prefix + ".meta", meta, replace=True)
        except BaseException:
            self.abort()
            raise
        self._written = []

    def abort(self) -> None:
        for out in self._outputs:
            out.discard()
        for final in self._written:
            with contextlib.suppress(Exception):
                self.rfs.remove(final)
        self._written = []

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
