"""Checkpoints in S3, GCS and over HTTP, against real servers on 127.0.0.1 (issue 14).

moto's S3 server, gcp-storage-emulator and a static HTTP server with Range support are started
by fixtures (conftest.py, tests/remote_servers.py); a counting TCP forwarder in front of each
measures the bytes that pass between tfckpt and the server. TensorFlow is the oracle on what
the writers produce (downloaded with boto3, straight from the server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, run
from test_reader import same_value
from test_surgery import assert_same_values, tf_map

from tfckpt.bundle.checkpoint import OBJECT_GRAPH_KEY, open_checkpoint
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import VARIANT, dtype_from_name
from tfckpt.storage import TEMP_MARK

from fixtures import Fixture

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "ckpts"
KiB = 1024


def _big(prefix: Path) -> dict[str, np.ndarray]:
    """~24 MB of data: one 16 MiB tensor and 2,000 small ones (a ~100 KB index)."""
    rng = np.random.default_rng(7)
    f32 = dtype_from_name("float32")
    values = {"big/emb": rng.standard_normal(4 * 1024 * 1024).astype(np.float32)}
    for i in range(2000):
        values[f"layer{i // 20}/w{i % 20}"] = rng.standard_normal(1000).astype(np.float32)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with BundleWriter(str(prefix), force=True) as w:
        for name, value in values.items():
            w.add_array(name, value, f32)
        w.commit()
    return values


@pytest.fixture(scope="module")
def local_big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    prefix = tmp_path_factory.mktemp("big") / "run" / "model.ckpt-100"
    return prefix, _big(prefix)


@pytest.fixture(scope="module")
def s3_big(s3: Any, local_big: tuple[Path, dict[str, np.ndarray]]) -> str:
    prefix, _ = local_big
    s3.upload_dir(prefix.parent, BUCKET, "big/run")
    return f"s3://{BUCKET}/big/run/model.ckpt-100"


def s3_upload(s3: Any, fixture: Fixture, key: str) -> str:
    """Upload a TF fixture's directory; returns the URL of its prefix (or directory)."""
    local = fixture.path if fixture.path.is_dir() else fixture.path.parent
    s3.upload_dir(local, BUCKET, key)
    if fixture.path.is_dir():
        return f"s3://{BUCKET}/{key}"
    return f"s3://{BUCKET}/{key}/{fixture.path.name}"


def download(s3: Any, url: str, dest: Path) -> Path:
    """Every object of the URL's directory into ``dest``; returns the local path of the URL."""
    key = url.removeprefix(f"s3://{BUCKET}/")
    directory = key.rsplit("/", 1)[0]
    client = s3.client()
    for name in s3.keys(BUCKET, directory + "/"):
        target = dest / name.removeprefix(directory + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, name, str(target))
    return dest / key.rsplit("/", 1)[1]


def payload(result: Any) -> Any:
    return json.loads(result.stdout)


def listed(result: Any) -> list[Any]:
    """The tensors of ``vars --json``."""
    return list(payload(result)["tensors"])


# ---- reading ---------------------------------------------------------------------------------
READ_KINDS = ["tf1_adam", "sharded", "partitioned", "dtypes", "tf2_keras", "v1"]


@pytest.mark.parametrize("kind", READ_KINDS)
def test_read_commands_on_s3_match_the_local_copy(
    s3: Any, fx: dict[str, Fixture], kind: str, tmp_path: Path
) -> None:
    url = s3_upload(s3, fx[kind], f"read/{kind}")
    local = str(fx[kind].path)
    for args in (["vars"], ["vars", "--stats"], ["verify"]):
        remote_out = payload(ok(args[0], url, *args[1:], "--json"))
        local_out = payload(ok(args[0], local, *args[1:], "--json"))
        for where in ("path", "prefix"):  # the documents name what they read
            assert remote_out.pop(where, url) != local_out.pop(where, None)
        assert remote_out == local_out, args
    ok("diff", local, url)  # across local and remote: identical (exit 0)
    # every value through --show equals TF's reading of the local copy
    values = tf_map(local)
    with open_checkpoint(url) as ckpt:
        for info in ckpt.tensors():
            if info.name != OBJECT_GRAPH_KEY and info.dtype.enum != VARIANT:
                assert same_value(ckpt.read(info.name), values[info.name]), info.name


def test_export_reads_a_remote_checkpoint(s3: Any, fx: dict[str, Fixture], tmp_path: Path) -> None:
    url = s3_upload(s3, fx["tf1_adam"], "export/tf1_adam")
    ok("export", url, tmp_path / "remote.safetensors")
    ok("export", fx["tf1_adam"].path, tmp_path / "local.safetensors")
    assert (tmp_path / "remote.safetensors").read_bytes() == (
        tmp_path / "local.safetensors"
    ).read_bytes()


def test_vars_and_graph_check_read_only_the_index(
    s3: Any, s3_big: str, local_big: tuple[Path, Any]
) -> None:
    prefix, _ = local_big
    index = (prefix.parent / (prefix.name + ".index")).stat().st_size
    data = (prefix.parent / (prefix.name + ".data-00000-of-00001")).stat().st_size
    assert data > 200 * index
    s3.proxy.reset()
    assert len(listed(ok("vars", s3_big, "--json"))) == 2001
    moved = s3.proxy.total
    assert index <= moved <= index + 64 * KiB, (moved, index)
    # A directory: the state file and a listing, then the same index.
    s3.proxy.reset()
    ok("vars", s3_big.rsplit("/", 1)[0])
    assert s3.proxy.total <= index + 64 * KiB


def test_reads_fetch_each_byte_once_by_range(s3: Any, s3_big: str, local_big: Any) -> None:
    prefix, _ = local_big
    data = (prefix.parent / (prefix.name + ".data-00000-of-00001")).stat().st_size
    s3.proxy.reset()
    report = payload(ok("verify", s3_big, "--json"))
    assert report["ok"] and report["tensors"] == 2001
    assert data <= s3.proxy.received <= data + 512 * KiB, (s3.proxy.received, data)
    # One tensor's values: its bytes, not the shard's.
    s3.proxy.reset()
    shown = payload(ok("vars", s3_big, "--show", "layer3/w7", "--json"))
    assert s3.proxy.total < 256 * KiB
    assert shown is not None


def test_verify_reads_ranges_in_parallel_with_bounded_memory(tmp_path: Path) -> None:
    """A real fsspec backend that takes its time per request and records how many requests run
    at once and how many bytes they hold."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    from tfckpt.storage import remote

    state = {"now": 0, "most": 0, "bytes": 0, "most_bytes": 0}
    lock = threading.Lock()

    class SlowMemory(MemoryFileSystem):  # type: ignore[misc]
        protocol = "slowmem"

        @classmethod
        def _strip_protocol(cls, path: Any) -> Any:
            return super()._strip_protocol(str(path).replace("slowmem://", "memory://", 1))

        def cat_file(self, path: str, start: Any = None, end: Any = None, **kw: Any) -> bytes:
            size = (end or 0) - (start or 0)
            with lock:
                state["now"] += 1
                state["bytes"] += size
                state["most"] = max(state["most"], state["now"])
                state["most_bytes"] = max(state["most_bytes"], state["bytes"])
            time.sleep(0.05)
            try:
                return bytes(super().cat_file(path, start=start, end=end, **kw))
            finally:
                with lock:
                    state["now"] -= 1
                    state["bytes"] -= size

    fsspec.register_implementation("slowmem", SlowMemory, clobber=True)
    prefix = tmp_path / "m"
    rng = np.random.default_rng(1)
    f32 = dtype_from_name("float32")
    with BundleWriter(str(prefix)) as w:
        w.add_array("huge", rng.standard_normal(12 * 1024 * 1024).astype(np.float32), f32)
        for i in range(300):
            w.add_array(f"small{i}", np.full(5000, i, np.float32), f32)
        w.commit()
    fs = fsspec.filesystem("slowmem")
    for p in tmp_path.iterdir():
        if p.name.startswith("m."):
            fs.pipe_file(f"/ck/{p.name}", p.read_bytes())
    started = time.monotonic()
    report = payload(ok("verify", "slowmem://ck/m", "--json"))
    elapsed = time.monotonic() - started
    assert report["ok"] and report["tensors"] == 301
    assert state["most"] >= 4  # several ranges in flight
    assert state["most_bytes"] <= remote.PARALLEL * remote.PART  # bounded memory
    # 48 MiB in 8 MiB parts and 300 small tensors (6 MB) coalesced: ~13 requests of 50 ms each;
    # one at a time would take over 0.65 s of waiting alone.
    assert elapsed < 30
    corrupt = bytearray(fs.cat_file("/ck/m.data-00000-of-00001"))
    corrupt[40_000_000] ^= 1
    fs.pipe_file("/ck/m.data-00000-of-00001", bytes(corrupt))
    broken = run("verify", "slowmem://ck/m", "--json")
    assert broken.exit_code == 1
    assert [p["name"] for p in payload(broken)["problems"]] == ["huge"]


def test_ls_lists_prefixes_state_and_leftovers(s3: Any, s3_big: str) -> None:
    items = payload(ok("ls", f"s3://{BUCKET}/big/run", "--json"))["items"]
    assert [(i["kind"], i["path"], i["shards"]) for i in items] == [("checkpoint", s3_big, 1)]
    recursive = payload(ok("ls", "-R", f"s3://{BUCKET}/big", "--json"))["items"]
    assert [i["path"] for i in recursive] == [s3_big]


# ---- writing ---------------------------------------------------------------------------------
def test_every_writer_to_s3_is_read_back_by_tensorflow(
    s3: Any, fx: dict[str, Fixture], tmp_path: Path, tf: Any
) -> None:
    src = s3_upload(s3, fx["tf1_adam"], "w/src")
    local = str(fx["tf1_adam"].path)
    before = tf_map(local)
    out = f"s3://{BUCKET}/w/out"

    ok("rename", src, f"{out}/renamed", "--add-prefix", "scope/", "--meta")
    got = tf_map(str(download(s3, f"{out}/renamed", tmp_path / "1")))
    assert_same_values(before, got, {k: "scope/" + k for k in before})
    meta = tmp_path / "1" / "renamed.meta"
    assert meta.exists()
    # the renamed graph imports and restores in TF
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        saver = tf.compat.v1.train.import_meta_graph(str(meta))
        saver.restore(sess, str(tmp_path / "1" / "renamed"))

    ok("prune", src, f"{out}/pruned", "--optimizer")
    pruned = tf_map(str(download(s3, f"{out}/pruned", tmp_path / "2")))
    assert pruned and set(pruned) < set(before)
    assert_same_values({k: before[k] for k in pruned}, pruned, {})

    ok("merge", f"{src}:a/", f"{local}:b/", "-o", f"{out}/merged")
    merged = tf_map(str(download(s3, f"{out}/merged", tmp_path / "3")))
    assert set(merged) == {"a/" + k for k in before} | {"b/" + k for k in before}

    ok("cast", src, f"{out}/half", "--dtype", "float16")
    half = tf_map(str(download(s3, f"{out}/half", tmp_path / "4")))
    assert set(half) == set(before)

    ok("export", local, tmp_path / "v.safetensors")
    ok("import", tmp_path / "v.safetensors", f"{out}/imported")
    imported = tf_map(str(download(s3, f"{out}/imported", tmp_path / "5")))
    assert imported

    ok("convert-pbtxt", f"{src}.meta", f"{out}/graph.pbtxt")
    assert s3.client().get_object(Bucket=BUCKET, Key="w/out/graph.pbtxt")["Body"].read()
    state = s3.client().get_object(Bucket=BUCKET, Key="w/out/checkpoint")["Body"].read()
    assert b'model_checkpoint_path: "imported"' in state
    assert not [k for k in s3.keys(BUCKET, "w/out/") if TEMP_MARK in k]


def test_rename_inside_a_bucket_copies_server_side(
    s3: Any, s3_big: str, local_big: Any, tmp_path: Path
) -> None:
    prefix, values = local_big
    data = (prefix.parent / (prefix.name + ".data-00000-of-00001")).stat().st_size
    dst = f"s3://{BUCKET}/big/renamed/model.ckpt-100"
    seen: list[int] = []
    from tfckpt.ops.rename import apply_rename, plan_renames
    from tfckpt.ops.rules import build_rules

    s3.proxy.reset()
    with open_checkpoint(s3_big) as ckpt:
        plan = plan_renames([i.name for i in ckpt.tensors()], build_rules([], None, None, "x/"))
        apply_rename(ckpt, dst, plan, on_bytes=seen.append)
    index = (prefix.parent / (prefix.name + ".index")).stat().st_size
    assert s3.proxy.total < 3 * index + 256 * KiB, (s3.proxy.total, data)  # no tensor bytes
    assert sum(seen) == data  # progress still counts the bytes copied
    local = download(s3, dst, tmp_path)
    with open_checkpoint(str(local)) as ckpt:
        np.testing.assert_array_equal(ckpt.read("x/big/emb"), values["big/emb"])
        assert len(ckpt.tensors()) == 2001


def test_mixed_local_and_remote_inputs(s3: Any, fx: dict[str, Fixture], tmp_path: Path) -> None:
    url = s3_upload(s3, fx["sharded"], "mixed/sharded")
    local = fx["sharded"].path
    ok("merge", f"{url}:remote/", f"{local}:local/", "-o", tmp_path / "out")
    merged = tf_map(str(tmp_path / "out"))
    before = tf_map(str(local))
    assert set(merged) == {"remote/" + k for k in before} | {"local/" + k for k in before}
    for name, value in before.items():
        np.testing.assert_array_equal(merged["remote/" + name], value)
    different = run("diff", local, f"s3://{BUCKET}/w/src/model.ckpt", "--json")
    assert different.exit_code in (1, 2)


# ---- faults ----------------------------------------------------------------------------------
def test_server_failing_mid_write_leaves_no_index(s3: Any, local_big: Any, tmp_path: Path) -> None:
    prefix, _ = local_big
    dst = f"s3://{BUCKET}/fault/out/model"
    s3.proxy.reset()
    s3.proxy.cut_after(5 * 1024 * 1024)  # the connection dies after 5 MB of the upload
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tfckpt", "rename", str(prefix), dst, "--add-prefix", "x/"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_MAX_ATTEMPTS": "2"},
        )
    finally:
        s3.proxy.heal()
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("tfckpt: error:") and result.stderr.count("\n") == 1
    keys = s3.keys(BUCKET, "fault/out/")
    assert "fault/out/model.index" not in keys
    # A rerun succeeds and leaves exactly one complete checkpoint (what the first one left of
    # its data is replaced; its lock, if one stayed, belonged to a dead process here).
    ok("rename", prefix, dst, "--add-prefix", "x/")
    keys = s3.keys(BUCKET, "fault/out/")
    assert keys == [
        "fault/out/checkpoint",
        "fault/out/model.data-00000-of-00001",
        "fault/out/model.index",
    ]
    assert payload(ok("verify", dst, "--json"))["ok"]


def test_server_failing_mid_read_is_one_line_exit_2(s3: Any, s3_big: str) -> None:
    s3.proxy.reset()
    s3.proxy.cut_after(3 * 1024 * 1024)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tfckpt", "vars", s3_big, "--stats"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_MAX_ATTEMPTS": "2"},
        )
    finally:
        s3.proxy.heal()
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("tfckpt: error:") and result.stderr.count("\n") == 1


def test_racing_remote_writers_have_one_winner(s3: Any, local_big: Any, tmp_path: Path) -> None:
    prefix, _ = local_big
    dst = f"s3://{BUCKET}/race/out/model"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tfckpt", "rename", str(prefix), dst, "--sub", "^", tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a/", "b/")
    ]
    results = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            import signal

            p.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = p.communicate()
            raise AssertionError(err[-6000:]) from None
        results.append((p.returncode, err))
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 2], [0, 0]), results
    if codes == [0, 2]:
        loser = next(err for code, err in results if code == 2)
        assert "another writer" in loser or "exists" in loser, loser
    with open_checkpoint(dst) as ckpt:
        assert len({t.name[:2] for t in ckpt.tensors()}) == 1
    assert not [k for k in s3.keys(BUCKET, "race/") if TEMP_MARK in k]


def test_http_reads_and_refuses_writes(
    fx: dict[str, Fixture], tmp_path: Path, local_big: Any
) -> None:
    from remote_servers import HTTPServer

    prefix, _ = local_big
    server = HTTPServer(prefix.parent.parent)
    try:
        url = f"{server.url}/run/{prefix.name}"
        index = (prefix.parent / (prefix.name + ".index")).stat().st_size
        server.proxy.reset()
        assert len(listed(ok("vars", url, "--json"))) == 2001
        assert server.proxy.total <= index + 64 * KiB
        assert payload(ok("verify", url, "--json"))["ok"]
        ok("diff", prefix, url)
        refused = run("rename", str(prefix), f"{server.url}/run/copy", "--add-prefix", "x/")
        assert refused.exit_code == 2 and "read-only" in refused.stderr
        assert refused.stderr.count("\n") == 1
    finally:
        server.stop()


def test_gcs_reads_by_range_and_copies_server_side(
    gcs: Any, local_big: Any, tmp_path: Path
) -> None:
    import gcsfs

    prefix, values = local_big
    fs = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)  # direct, not counted
    for p in prefix.parent.iterdir():
        fs.put_file(str(p), f"ckpts/run/{p.name}")
    url = f"gs://ckpts/run/{prefix.name}"
    index = (prefix.parent / (prefix.name + ".index")).stat().st_size
    gcs.proxy.reset()
    ok("vars", url)
    assert gcs.proxy.total <= index + 64 * KiB
    assert payload(ok("verify", url, "--json"))["ok"]
    with open_checkpoint(url) as ckpt:
        np.testing.assert_array_equal(ckpt.read("big/emb"), values["big/emb"])
    gcs.proxy.reset()
    ok("rename", url, "gs://ckpts/renamed/m", "--add-prefix", "x/")
    assert gcs.proxy.total < 3 * index + 256 * KiB  # rewrite: the data stays on the server
    assert payload(ok("verify", "gs://ckpts/renamed/m", "--json"))["ok"]


def test_a_missing_backend_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['s3fs'] = None; sys.modules['gcsfs'] = None\n"
        "sys.argv = ['tfckpt', *sys.argv[1:]]\n"
        "from tfckpt.cli import main; main()\n"
    )
    for url, extra in (("s3://b/x", "tfckpt[s3]"), ("gs://b/x", "tfckpt[gcs]")):
        proc = subprocess.run(
            [sys.executable, "-c", code, "vars", url],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and extra in proc.stderr, proc.stderr


def test_server_side_copies_check_sizes_against_the_index(s3: Any, fx: dict[str, Fixture]) -> None:
    """Bytes copied server-side never pass through tfckpt: a truncated data object is refused by
    its size before anything is written."""
    url = s3_upload(s3, fx["sharded"], "trunc/src")
    client = s3.client()
    key = url.removeprefix(f"s3://{BUCKET}/") + ".data-00001-of-00002"
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=body[:-3])
    result = run("rename", url, f"s3://{BUCKET}/trunc/out/m", "--add-prefix", "x/")
    assert result.exit_code == 2 and "truncated" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert s3.keys(BUCKET, "trunc/out/") == []


def test_anon_reads_a_public_bucket(s3: Any, local_big: Any) -> None:
    prefix, _ = local_big
    client = s3.client()
    client.create_bucket(Bucket="public")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::public", "arn:aws:s3:::public/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket="public", Policy=json.dumps(policy))
    client.put_bucket_acl(Bucket="public", ACL="public-read")
    for path in prefix.parent.iterdir():
        client.upload_file(
            str(path), "public", f"run/{path.name}", ExtraArgs={"ACL": "public-read"}
        )
    url = f"s3://public/run/{prefix.name}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(key)
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = os.devnull
    anon = subprocess.run(
        [sys.executable, "-m", "tfckpt", "--anon", "vars", url],
        capture_output=True,
        text=True,
        env=env,
    )
    assert anon.returncode == 0, anon.stderr
    assert "2,001 variables" in anon.stdout
    signed = subprocess.run(
        [sys.executable, "-m", "tfckpt", "vars", url], capture_output=True, text=True, env=env
    )
    assert signed.returncode == 2 and signed.stderr.count("\n") == 1, signed.stderr
