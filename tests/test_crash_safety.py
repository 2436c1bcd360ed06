"""Writers never leave a damaged checkpoint behind: kill, disk full, read-only, hostile paths.

``rename``, ``prune`` and ``merge`` run as real processes (``python -m tfckpt``) on a ~100 MB
checkpoint of 1,500 tensors and are SIGKILLed
* at random moments while they write (after their first temp file appears), and
* deterministically just before each of their file-system steps (every rename, removal, copy,
  link and mkdir), by a wrapper that SIGKILLs the process at the k-th such call.
After every kill: the source is byte-identical; the destination is absent (no index) or complete
(verify passes and every tensor is the source's, by checksum); leftovers are reported by ``ls``;
the next run to the same destination succeeds and removes them.

Disk full and read-only destinations are injected in-process (``ENOSPC`` / ``EROFS`` from the
writer's file operations) and with ``RLIMIT_FSIZE`` in a subprocess: exit 2, one line, nothing left.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.state import read_state
from tfckpt.bundle.table import crc32c
from tfckpt.bundle.writer import BundleWriter
from tfckpt.cli import app
from tfckpt.dtypes import dtype_from_name
from tfckpt.ops.verify import verify_checkpoint
from tfckpt.storage import TEMP_MARK
from tfckpt.storage import local as local_storage

runner = CliRunner()
RANDOM_KILLS = 3
ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI, SIGKILLing itself just before the k-th file-system step (TFCKPT_KILL_AT=k), or
# printing how many steps there were (TFCKPT_KILL_AT=0).
KILL_WRAPPER = r"""
import builtins, os, signal, sys
target = int(os.environ["TFCKPT_KILL_AT"])
count = [0]
def step(name, real):
    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapped
for name in ("replace", "rename", "remove", "unlink", "link", "mkdir", "rmdir", "copy_file_range",
             "fsync"):
    if hasattr(os, name):
        setattr(os, name, step(name, getattr(os, name)))
real_open = builtins.open
def opener(file, mode="r", *args, **kwargs):
    if "w" in mode and ".tfckpt-tmp-" in str(file):
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_open(file, mode, *args, **kwargs)
builtins.open = opener
sys.argv = ["tfckpt", *sys.argv[1:]]
try:
    from tfckpt.cli import main
    main()
finally:
    if target == 0:
        sys.stderr.write(f"STEPS {count[0]}\n")
"""


# ---- the source checkpoint -----------------------------------------------------------------
@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~100 MB, 1,500 tensors of several sizes plus one large one; one shard."""
    prefix = tmp_path_factory.mktemp("src") / "model.ckpt-5"
    rng = np.random.default_rng(0)
    f32 = dtype_from_name("float32")
    with BundleWriter(str(prefix), force=True) as w:
        for i in range(1500):
            w.add_array(
                f"layer{i // 10}/w{i % 10}",
                rng.standard_normal((i % 7 + 1) * 2000).astype(np.float32),
                f32,
            )
        w.add_array("big/emb", rng.standard_normal((2048, 8192)).astype(np.float32), f32)
        w.add_array("meta/names", np.array([b"a", b"bc"], dtype=object), dtype_from_name("string"))
        w.commit()
    return prefix


def digest(directory: Path) -> dict[str, tuple[int, int]]:
    """{name: (size, crc32c)} of every file under ``directory``."""
    out = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and not p.is_symlink():
            size = p.stat().st_size
            crc = 0
            if size:
                with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    crc = crc32c(memoryview(m))
            out[str(p.relative_to(directory))] = (size, crc)
    return out


def entries_of(prefix: Path) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """{name: (dtype, shape, size, crc)} of a checkpoint's entries."""
    reader = BundleReader(str(prefix))
    try:
        return {e.label: (e.dtype.name, e.shape, e.size, e.crc32c) for e in reader.entries.values()}
    finally:
        reader.close()


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "rename": lambda src, dst: ["rename", str(src), str(dst), "--add-prefix", "r/", "-q"],
    "prune": lambda src, dst: ["prune", str(src), str(dst), "--drop", "^layer1", "-q"],
    "merge": lambda src, dst: ["merge", str(src), f"{src}:b/", "-q", "-o", str(dst)],
}


def tfckpt_process(args: list[str], wrapper_kill_at: int | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if wrapper_kill_at is None:
        cmd = [sys.executable, "-m", "tfckpt", *args]
    else:
        env["TFCKPT_KILL_AT"] = str(wrapper_kill_at)
        cmd = [sys.executable, "-c", KILL_WRAPPER, *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def temp_files(directory: Path) -> list[Path]:
    return (
        sorted(p for p in directory.rglob("*") if TEMP_MARK in p.name) if directory.exists() else []
    )


class Reference:
    """What a complete destination of one command looks like (from an uninterrupted run)."""

    def __init__(self, command: str, src: Path, work: Path) -> None:
        self.command = command
        self.src = src
        self.work = work
        dst = work / "reference" / "out"
        proc = tfckpt_process(COMMANDS[command](src, dst))
        first_temp = published = None
        index = Path(str(dst) + ".index")
        while proc.poll() is None and published is None:
            if first_temp is None and temp_files(dst.parent):
                first_temp = time.monotonic()
            if index.exists():
                published = time.monotonic()
            time.sleep(0.0002)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        # From the first temp file to the index: random kills land in (and just after) it.
        self.window = (published or time.monotonic()) - (first_temp or time.monotonic()) + 0.005
        self.entries = entries_of(dst)
        self.old_entries: dict[str, Any] | None = None
        assert verify_checkpoint(str(dst)).ok

    def check_destination(self, dst: Path, why: str) -> str:
        """Absent or complete; returns which."""
        index = Path(str(dst) + ".index")
        state = dst.parent / "checkpoint"
        if state.exists():
            read_state(str(dst.parent))  # replaced atomically: always parses
        if not index.exists():
            return "absent"
        report = verify_checkpoint(str(dst))
        assert report.ok, (why, report.problems[:3])
        found = entries_of(dst)
        if self.old_entries is not None and found == self.old_entries:
            return "old"
        assert found == self.entries, why
        return "complete"

    def check_leftovers_and_rerun(self, dst: Path, why: str) -> None:
        """Leftovers are reported by ls; the next run to the same destination succeeds and
        removes them."""
        leftovers = temp_files(dst.parent)
        orphans = (
            [p for p in dst.parent.glob(dst.name + ".data-*") if TEMP_MARK not in p.name]
            if not Path(str(dst) + ".index").exists()
            else []
        )
        if leftovers or orphans:
            listing = runner.invoke(app, ["ls", str(dst.parent), "--json"])
            assert listing.exit_code == 0, listing.stderr
            reported = {
                item["path"]
                for item in json.loads(listing.stdout)["items"]
                if item["kind"] == "temp"
            }
            assert {str(p) for p in leftovers + orphans} <= reported, (why, reported)
        proc = tfckpt_process([*COMMANDS[self.command](self.src, dst), "--force"])
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (why, err)
        assert self.check_destination(dst, why + " (rerun)") == "complete"
        assert not temp_files(dst.parent), (why, temp_files(dst.parent))
        reader = BundleReader(str(dst))
        expected = {Path(p).name for p in reader.data_paths()}
        reader.close()
        present = {p.name for p in dst.parent.glob(dst.name + ".data-*")}
        assert present == expected, (why, present - expected)


@pytest.fixture(scope="module")
def references(big_source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    work = tmp_path_factory.mktemp("refs")
    return {name: Reference(name, big_source, work / name) for name in COMMANDS}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_kill_at_random_moments_while_writing(
    command: str, big_source: Path, references: dict[str, Reference], tmp_path: Path
) -> None:
    ref = references[command]
    before = digest(big_source.parent)
    rng = random.Random(f"kill:{command}")
    outcomes = []
    for attempt in range(RANDOM_KILLS):
        dst = tmp_path / f"try{attempt}" / "out"
        proc = tfckpt_process(COMMANDS[command](big_source, dst))
        # Wait until writing has begun (a temp file exists), then kill somewhere inside it.
        deadline = time.monotonic() + 60
        while not temp_files(dst.parent) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, ref.window * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        why = f"{command} killed (attempt {attempt}, exit {proc.returncode})"
        outcomes.append(ref.check_destination(dst, why))
        assert digest(big_source.parent) == before, why
        ref.check_leftovers_and_rerun(dst, why)
        assert digest(big_source.parent) == before, why
    print(command, f"window {ref.window:.3f} s", outcomes)


def _steps(args: list[str]) -> int:
    proc = tfckpt_process(args, wrapper_kill_at=0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return int(err.rsplit("STEPS ", 1)[1].split()[0])


@pytest.mark.parametrize("over_existing", [False, True], ids=["fresh", "force-over-old"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_kill_before_every_file_system_step(
    command: str,
    over_existing: bool,
    big_source: Path,
    small_source: Path,
    references: dict[str, Reference],
    tmp_path: Path,
) -> None:
    """Fresh: absent until the index is renamed, complete after. With --force over an older
    checkpoint of another layout: the old one intact, then absent, then the new one complete."""
    ref = references[command]
    before = digest(big_source.parent)
    old = tmp_path / "old" / "out"
    extra: list[str] = []
    if over_existing:
        # An older checkpoint at the destination, with another shard count than the new one.
        make_old = (
            ["prune", str(small_source), str(old), "--drop", "^a", "-q"]
            if command == "merge"
            else ["merge", str(small_source), f"{small_source}:x/", "-q", "-o", str(old)]
        )
        assert runner.invoke(app, make_old).exit_code == 0
        ref.old_entries = entries_of(old)
        extra = ["--force"]

    def prepare(name: str) -> Path:
        dst = tmp_path / name / "out"
        if over_existing:
            dst.parent.mkdir()
            for f in old.parent.iterdir():
                (dst.parent / f.name).write_bytes(f.read_bytes())
        return dst

    steps = _steps([*COMMANDS[command](big_source, prepare("count")), *extra])
    assert steps >= 4
    seen = []
    try:
        for k in range(1, steps + 1):
            dst = prepare(f"k{k}")
            proc = tfckpt_process([*COMMANDS[command](big_source, dst), *extra], k)
            _, err = proc.communicate(timeout=120)
            why = f"{command} killed before step {k} of {steps}"
            assert proc.returncode == -signal.SIGKILL, (why, err)
            seen.append(ref.check_destination(dst, why))
            assert digest(big_source.parent) == before, why
            if k % 4 == 0 or k == steps:
                ref.check_leftovers_and_rerun(dst, why)
    finally:
        ref.old_entries = None
    print(command, steps, seen)
    expected = {"old", "absent", "complete"} if over_existing else {"absent", "complete"}
    assert set(seen) == expected  # the kills straddle every moment of publication
    order = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert order == [s for s in ("old", "absent", "complete") if s in expected], seen


# ---- disk full, read-only, file-size limits ---------------------------------------------------
def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


class _FailingFile:
    """A file whose writes fail with ``err`` after ``budget`` bytes."""

    def __init__(self, f: Any, budget: list[int], err: int) -> None:
        self._f = f
        self._budget = budget
        self._err = err

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        if self._budget[0] < n:
            raise OSError(self._err, os.strerror(self._err))
        self._budget[0] -= n
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def inject(monkeypatch: pytest.MonkeyPatch, err: int, budget: int, kinds: set[str]) -> None:
    """Make the writer's file operations fail with ``err``: writes after ``budget`` bytes
    ("write"), in-kernel copies and links ("copy"), opening files for writing ("open"),
    renames ("replace")."""
    remaining = [budget]
    real_open = open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and "open" in kinds:
            raise OSError(err, os.strerror(err), str(file))
        f = real_open(file, mode, *args, **kwargs)
        return _FailingFile(f, remaining, err) if "w" in mode and "write" in kinds else f

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OSError(err, os.strerror(err))

    # Every local file the writers create (data, index, state file) is opened in storage.local.
    monkeypatch.setattr(local_storage, "open", fake_open, raising=False)
    if "copy" in kinds:
        monkeypatch.setattr(os, "copy_file_range", failing)
        monkeypatch.setattr(os, "link", failing)
        monkeypatch.setattr(os, "pwrite", failing)
    if "replace" in kinds:
        real_replace = os.replace
        calls = [0]

        real_noreplace = local_storage.rename_noreplace

        def counted(real: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
            def rename(src: Any, dst: Any) -> None:
                calls[0] += 1
                if calls[0] > budget:
                    raise OSError(err, os.strerror(err))
                real(src, dst)

            return rename

        monkeypatch.setattr(os, "replace", counted(real_replace))
        # The index is published with no-replace semantics (renameat2 / link): a rename too.
        monkeypatch.setattr(local_storage, "rename_noreplace", counted(real_noreplace))


@pytest.fixture(scope="module")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("small") / "model.ckpt-1"
    f32 = dtype_from_name("float32")
    with BundleWriter(str(prefix), force=True) as w:
        for i in range(40):
            w.add_array(f"a{i}/w", np.full(5000, i, np.float32), f32)
            w.add_array(f"b{i}/w", np.full(300, -i, np.float32), f32)
        w.commit()
    return prefix


CASES = [
    (errno.ENOSPC, 0, {"write", "copy"}, "disk full"),
    (errno.ENOSPC, 30_000, {"write", "copy"}, "disk full"),
    (errno.ENOSPC, 10**9, {"copy"}, "disk full"),
    (errno.EROFS, 0, {"open", "copy"}, "Read-only file system"),
    (errno.EIO, 1, {"replace"}, "Input/output error"),
    (errno.EIO, 0, {"replace"}, "Input/output error"),
]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("err", "budget", "kinds", "message"), CASES)
def test_write_errors_leave_nothing(
    command: str,
    err: int,
    budget: int,
    kinds: set[str],
    message: str,
    small_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = digest(small_source.parent)
    dst = tmp_path / "out" / "deeper" / "m"
    inject(monkeypatch, err, budget, kinds)
    result = runner.invoke(app, COMMANDS[command](small_source, dst))
    monkeypatch.undo()
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfckpt: error:"), lines
    assert message in lines[0] and "cannot" in lines[0], lines[0]
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == [], _files(tmp_path)
    assert digest(small_source.parent) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_file_size_limit_in_a_subprocess(command: str, small_source: Path, tmp_path: Path) -> None:
    """A real kernel error (EFBIG from RLIMIT_FSIZE, as on a full quota): exit 2, nothing left."""
    before = digest(small_source.parent)
    dst = tmp_path / "out" / "m"
    dst.parent.mkdir()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt", *COMMANDS[command](small_source, dst)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("tfckpt: error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert "File too large" in proc.stderr
    assert _files(dst.parent) == []
    assert digest(small_source.parent) == before


def test_state_file_failure_after_a_complete_write(
    small_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint is complete when only the state-file update fails: say so, leave no temp."""
    dst = tmp_path / "m"
    real_open = open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and Path(str(file)).name.startswith("checkpoint" + TEMP_MARK):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(local_storage, "open", fake_open, raising=False)
    result = runner.invoke(app, COMMANDS["prune"](small_source, dst))
    monkeypatch.undo()
    assert result.exit_code == 2
    assert "cannot update the state file (disk full)" in result.stderr
    assert "itself was written completely" in result.stderr
    assert verify_checkpoint(str(dst)).ok
    assert not temp_files(tmp_path)


# ---- leftovers: cleaned by the next write, reported by ls -------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_are_reported_then_cleaned(small_source: Path, tmp_path: Path) -> None:
    dst = tmp_path / "m"
    dead = _dead_pid()
    junk = [
        tmp_path / f"m.data-00000-of-00001{TEMP_MARK}{dead}-00aa11bb",
        tmp_path / f"m.index{TEMP_MARK}{dead}-00cc22dd",
        tmp_path / f"checkpoint{TEMP_MARK}{dead}-00ee33ff",
        tmp_path / "m.data-00001-of-00002",  # a data file whose index never arrived
    ]
    alive = tmp_path / f"m.index{TEMP_MARK}{os.getppid()}-0badc0de"  # a live writer's: kept
    for p in [*junk, alive]:
        p.write_bytes(b"partial")
    listing = runner.invoke(app, ["ls", str(tmp_path), "--json"])
    items = json.loads(listing.stdout)["items"]
    temps = {i["path"]: i["note"] for i in items if i["kind"] == "temp"}
    assert set(temps) == {str(p) for p in [*junk, alive]}
    assert "without an index" in temps[str(junk[3])]
    table = runner.invoke(app, ["ls", str(tmp_path)])
    assert table.exit_code == 0 and "interrupted write" in table.stdout
    # The orphan data file does not make the destination "exist"; the next write cleans up.
    result = runner.invoke(app, COMMANDS["prune"](small_source, dst))
    assert result.exit_code == 0, result.stderr
    assert not any(p.exists() for p in junk)
    assert alive.exists()
    assert verify_checkpoint(str(dst)).ok


# ---- paths ------------------------------------------------------------------------------------
def test_destination_that_is_the_source_is_refused(small_source: Path, tmp_path: Path) -> None:
    link_dir = tmp_path / "alias"
    link_dir.symlink_to(small_source.parent, target_is_directory=True)
    before = digest(small_source.parent)
    for dst in (small_source, link_dir / small_source.name):
        for command in ("rename", "prune"):
            result = runner.invoke(app, [*COMMANDS[command](small_source, dst), "--force"])
            assert result.exit_code == 2, result.stderr
            assert "the destination is the source checkpoint" in result.stderr
        result = runner.invoke(app, ["merge", str(small_source), "--force", "-o", str(dst)])
        assert result.exit_code == 2 and "is the source" in result.stderr
    assert digest(small_source.parent) == before


def test_symlinked_sources_are_read_never_replaced(small_source: Path, tmp_path: Path) -> None:
    """A source made of symlinks is followed for reading; a destination whose files are
    symlinks (to another checkpoint) gets new files, the link targets stay untouched."""
    links = tmp_path / "links"
    links.mkdir()
    for f in small_source.parent.glob(small_source.name + ".*"):
        (links / f.name).symlink_to(f)
    other = tmp_path / "other"
    other.mkdir()
    for f in small_source.parent.glob(small_source.name + ".*"):
        (other / f.name.replace(small_source.name, "o")).write_bytes(f.read_bytes())
    dst_dir = tmp_path / "dst"
    dst_dir.mkdir()
    for f in other.iterdir():
        (dst_dir / f.name.replace("o.", "m.", 1)).symlink_to(f)
    before = digest(small_source.parent), digest(other)
    src = links / small_source.name
    for command in sorted(COMMANDS):
        result = runner.invoke(app, [*COMMANDS[command](src, dst_dir / "m"), "--force"])
        assert result.exit_code == 0, result.stderr
        assert verify_checkpoint(str(dst_dir / "m")).ok
        assert not Path(str(dst_dir / "m") + ".index").is_symlink()
        assert all((links / f.name).is_symlink() for f in small_source.parent.glob("*.*"))
    assert (digest(small_source.parent), digest(other)) == before


@pytest.mark.parametrize("scope", ["../", "../../x/", "/abs/", "a/../../", "./", "a/./b/", "..\\/"])
def test_merge_scopes_that_would_escape_are_refused(
    scope: str, small_source: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["merge", f"{small_source}:{scope}", "-o", str(tmp_path / "m")])
    if scope == "..\\/":  # a backslash is an ordinary character in a checkpoint key
        assert result.exit_code == 0, result.stderr
        return
    assert result.exit_code == 2 and "bad scope" in result.stderr
    assert _files(tmp_path) == []


def test_names_are_keys_never_paths(small_source: Path, tmp_path: Path) -> None:
    """Mapping and scopes rename keys: '../' inside a name stays a key; no file appears outside
    the destination prefix."""
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"a0/w": "../../../escape/a0/w", "b0/w": "/abs/b0"}))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["rename", str(small_source), str(out / "m"), "--mapping", str(mapping)]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.json", "out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint",
        "m.data-00000-of-00001",
        "m.index",
    ]
    names = entries_of(out / "m")
    assert "../../../escape/a0/w" in names and "/abs/b0" in names
