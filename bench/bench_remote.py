"""Benchmark: the 1.2 GB checkpoint in a local S3 server (moto, on 127.0.0.1), read and edited in
place (issue 14).

* ``vars`` on the S3 prefix: bytes moved and time, against downloading the objects with the S3
  client (boto3's managed transfer) and listing the local copy.
* ``verify``: throughput reading by ranges from S3 against the same command on the local files.
* ``rename`` inside the bucket (server-side copies): bytes moved and time, against a client-side
  copy of the objects (download and upload through boto3).

Bytes are counted by a TCP forwarder between the client and the server. moto is a Python
server on the same 2 cores as the client, so absolute throughput is the server's, not the
network's; the bytes-moved figures are what carries over to a real store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PYTHON, TFCKPT, bench_checkpoint, best_of, data_bytes, report, warm

HERE = Path(__file__).resolve().parent
BUCKET = "bench"

_CLIENT = r"""
import sys, boto3
endpoint, action = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x",
                  region_name="us-east-1")
if action == "upload":
    import pathlib
    bucket, key, folder = sys.argv[3:6]
    s3.create_bucket(Bucket=bucket)
    for p in sorted(pathlib.Path(folder).iterdir()):
        if p.is_file() and not p.name.startswith("."):
            s3.upload_file(str(p), bucket, f"{key}/{p.name}")
elif action == "download":
    bucket, key, folder = sys.argv[3:6]
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=key + "/")["Contents"]:
        s3.download_file(bucket, item["Key"], f"{folder}/{item['Key'].rsplit('/', 1)[1]}")
elif action == "copy":
    bucket, src, dst = sys.argv[3:6]
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=src + "/")["Contents"]:
        name = item["Key"].rsplit("/", 1)[1]
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
        s3.upload_fileobj(body, bucket, f"{dst}/{name}")
"""


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "s3_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url, self.direct = self.proc.stdout.readline().split()

    def _ask(self, what: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def reset(self) -> None:
        self._ask("reset")

    def moved(self) -> int:
        sent, received = self._ask("count").split()
        return int(sent) + int(received)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _timed(server: Server, cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    server.reset()
    seconds, rss = best_of(1, cmd, env)
    return seconds, rss, server.moved()


def main() -> None:
    prefix = bench_checkpoint()
    nbytes = data_bytes(prefix)
    index = os.path.getsize(prefix + ".index")
    warm(prefix)
    name = Path(prefix).name
    server = Server()
    env = {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        print(f"remote: {prefix} ({nbytes / 1e9:.2f} GB, index {index:,} B) in moto's S3")
        start = time.perf_counter()
        subprocess.run(
            [
                PYTHON,
                "-c",
                _CLIENT,
                server.direct,
                "upload",
                BUCKET,
                "run",
                str(Path(prefix).parent),
            ],
            check=True,
        )
        print(f"  (upload with boto3 took {time.perf_counter() - start:.1f} s)")
        url = f"s3://{BUCKET}/run/{name}"

        t, rss, moved = _timed(server, [*TFCKPT, "vars", url], env)
        report(f"tfckpt vars s3://... ({moved:,} B moved)", t, rss)
        print(f"  -> moved index + {moved - index:,} B (index {index:,} B)")
        with tempfile.TemporaryDirectory() as tmp:
            server.reset()
            start = time.perf_counter()
            subprocess.run(
                [PYTHON, "-c", _CLIENT, server.url, "download", BUCKET, "run", tmp], check=True
            )
            subprocess.run([*TFCKPT, "vars", f"{tmp}/{name}"], check=True, capture_output=True)
            dt = time.perf_counter() - start
            moved_dl = server.moved()
        report(f"download with boto3, then vars ({moved_dl:,} B moved)", dt, 0.0)
        print(f"  -> vars on S3 is {dt / t:.0f}x faster and moves {moved_dl / moved:,.0f}x less")

        t, rss, moved = _timed(server, [*TFCKPT, "verify", url], env)
        report(f"tfckpt verify s3://... ({moved:,} B moved)", t, rss, nbytes)
        lt, lrss = best_of(2, [*TFCKPT, "verify", prefix])
        report("tfckpt verify (local files)", lt, lrss, nbytes)
        print(
            f"  -> verify reads S3 at {nbytes / t / 1e9:.2f} GB/s, local at "
            f"{nbytes / lt / 1e9:.2f} GB/s"
        )

        dst = f"s3://{BUCKET}/renamed/{name}"
        cmd = [*TFCKPT, "rename", url, dst, "--add-prefix", "x/", "--quiet"]
        t, rss, moved = _timed(server, cmd, env)
        report(f"tfckpt rename in the bucket ({moved:,} B moved)", t, rss)
        server.reset()
        start = time.perf_counter()
        subprocess.run(
            [PYTHON, "-c", _CLIENT, server.url, "copy", BUCKET, "run", "copied"], check=True
        )
        ct = time.perf_counter() - start
        moved_copy = server.moved()
        report(f"client-side copy with boto3 ({moved_copy:,} B moved)", ct, 0.0)
        print(
            f"  -> in-bucket rename moves {moved:,} B ({moved / nbytes:.5%} of the data), "
            f"{ct / t:.1f}x faster than a client-side copy"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
