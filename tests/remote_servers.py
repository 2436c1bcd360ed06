"""Real servers on 127.0.0.1 for the remote-storage tests (started by pytest fixtures in
conftest.py; nothing here reaches beyond loopback).

* S3: moto in server mode (``ThreadedMotoServer``), reached by s3fs through ``AWS_ENDPOINT_URL``.
* GCS: ``gcp-storage-emulator``, reached by gcsfs through ``STORAGE_EMULATOR_HOST``.
* HTTP: a small static server with ``Range`` support and directory listings.
* ``Forwarder``: a TCP forwarder in front of a server that counts the bytes passing each way,
  and can be told to cut connections (a server failing mid-read or mid-write).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class Forwarder:
    """Accepts on 127.0.0.1:<port> and forwards each connection to ``target``.

    ``sent`` counts bytes from the client to the server, ``received`` from the server to the
    client. ``cut_after(n)`` makes the forwarder drop every connection once ``n`` more bytes
    (either way) have passed, and refuse new ones, until ``heal()``.
    """

    def __init__(self, target_port: int) -> None:
        self.target = (LOOPBACK, target_port)
        self._lock = threading.Lock()
        self.sent = 0
        self.received = 0
        self._budget: int | None = None
        self._conns: list[socket.socket] = []
        self.open = 0  # connections open now, and the most open at once since reset()
        self.max_open = 0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.sent = self.received = 0
            self.max_open = self.open

    @property
    def total(self) -> int:
        return self.sent + self.received

    def cut_after(self, nbytes: int) -> None:
        with self._lock:
            self._budget = nbytes

    def heal(self) -> None:
        with self._lock:
            self._budget = None

    @property
    def broken(self) -> bool:
        return self._budget is not None and self._budget <= 0

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.broken:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
                self.open += 1
                self.max_open = max(self.max_open, self.open)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    if upward:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                    if self._budget is not None:
                        self._budget -= len(data)
                        cut = self._budget <= 0
                    else:
                        cut = False
                if cut:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if upward:
                with self._lock:
                    self.open -= 1
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.close()


class S3Server:
    """moto's S3 on 127.0.0.1 (port chosen by the OS), with a counting forwarder in front."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self._server.start()
        self.port = self._server._server.server_port  # type: ignore[union-attr]
        self.direct = f"http://{LOOPBACK}:{self.port}"
        self.proxy = Forwarder(self.port)

    def env(self, via_proxy: bool = True) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.proxy.url if via_proxy else self.direct,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 client talking to moto directly (not counted), for checks and setup."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.direct,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def upload_dir(self, local: Path, bucket: str, key_prefix: str) -> None:
        client = self.client()
        for path in sorted(local.rglob("*")):
            if path.is_file():
                key = f"{key_prefix}/{path.relative_to(local).as_posix()}".lstrip("/")
                client.upload_file(str(path), bucket, key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            out += [item["Key"] for item in page.get("Contents", [])]
        return sorted(out)

    def stop(self) -> None:
        self.proxy.close()
        self._server.stop()


class GCSServer:
    """gcp-storage-emulator on 127.0.0.1, in memory, with one bucket."""

    def __init__(self, bucket: str) -> None:
        from gcp_storage_emulator.server import create_server

        self._server = create_server(LOOPBACK, 0, in_memory=True, default_bucket=bucket)
        self._server.start()
        self.port = self._server._api._httpd.server_port
        self.proxy = Forwarder(self.port)

    def env(self) -> dict[str, str]:
        return {
            "STORAGE_EMULATOR_HOST": self.proxy.url,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }

    def stop(self) -> None:
        self.proxy.close()
        self._server.stop()


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` (206) and plain HTML directory listings."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        names = sorted(os.listdir(path))
        body = "".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>\n' for n in names)
        data = f"<html><body>\n{body}</body></html>\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        import io

        return io.BytesIO(data)

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        spec = self.headers.get("Range")
        if spec is None or os.path.isdir(path):
            return super().send_head()
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", spec.strip())
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1)) if m.group(1) else max(size - int(m.group(2) or 0), 0)
        end = min(int(m.group(2)), size - 1) if m.group(1) and m.group(2) else size - 1
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")  # noqa: SIM115 - copied and closed by the handler
        f.seek(start)
        import io

        data = f.read(end - start + 1)
        f.close()
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)

    def end_headers(self) -> None:
        if self.command == "HEAD" or "Range" not in self.headers:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class HTTPServer:
    """A read-only static server over ``root`` with Range support, and a counting forwarder."""

    def __init__(self, root: Path) -> None:
        from functools import partial

        handler = partial(_RangeHandler, directory=str(root))
        self._server = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.proxy = Forwarder(self.port)

    @property
    def url(self) -> str:
        return self.proxy.url

    def stop(self) -> None:
        self.proxy.close()
        self._server.shutdown()
        self._server.server_close()
