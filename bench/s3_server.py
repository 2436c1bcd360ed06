"""A moto S3 server on 127.0.0.1 behind a counting forwarder, in its own process (so the
benchmark's own RSS stays small). Prints ``<forwarder url> <direct url>`` on its first line, then
answers ``count`` (bytes sent and received through the forwarder since the last ``reset``) and
``reset`` on stdin; exits at end of input."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from remote_servers import S3Server


def main() -> None:
    server = S3Server()
    print(server.proxy.url, server.direct, flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            server.proxy.reset()
            print("ok", flush=True)
        elif line.strip() == "count":
            print(server.proxy.sent, server.proxy.received, flush=True)
    server.stop()


if __name__ == "__main__":
    main()
