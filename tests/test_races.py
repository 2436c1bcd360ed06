"""Two writers racing for one destination (issue 12, item 6), as real processes.

Without ``--force`` exactly one wins and the other exits 2 with one line, touching none of the
winner's files; with ``--force`` both succeed and the last one wins, whole. Either way the
destination is never a mix of the two writers' files and nothing is left behind (no temp file,
no lock, no orphan data file). Every writer is raced: ``rename`` many times (its two writers
produce different shard counts, so a mix would show), the others a few times each.

Each process runs the CLI with its file-system steps (rename, link, remove) slowed by a random
0-20 ms, as on a slow or busy filesystem: the window between "the destination is free" and "the
index is published" is then wide enough for two writers to meet in most rounds (without the
destination lock they both succeeded in about half of them). ``TFCKPT_RACE_ROUNDS`` sets how
many rounds ``rename`` runs (default 16).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.writer import BundleWriter
from tfckpt.dtypes import dtype_from_name
from tfckpt.ops.verify import verify_checkpoint
from tfckpt.storage import TEMP_MARK

ROUNDS = int(os.environ.get("TFCKPT_RACE_ROUNDS", "16"))
ROOT = Path(__file__).resolve().parent.parent


def _source(prefix: Path, tag: str, shards: int) -> Path:
    """~6 MB in ``shards`` data files, every name under ``tag/``."""
    f32 = dtype_from_name("float32")
    rng = np.random.default_rng(len(tag))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with BundleWriter(str(prefix), num_shards=shards, force=True, own_shard=0) as w:
        for i in range(60):
            w.add_array(f"{tag}/w{i}", rng.standard_normal(25_000).astype(np.float32), f32)
        for shard in range(1, shards):
            extra = prefix.parent / f"extra{shard}"
            with BundleWriter(str(extra), force=True) as e:
                e.add_array(f"{tag}/x", np.zeros(4, np.float32), f32)
                e.commit()
            w.adopt_shard(f"{extra}.data-00000-of-00001", shard)
        w.commit()
    return prefix


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("race-src")
    one = _source(root / "one" / "model.ckpt-1", "one", 1)
    two = _source(root / "two" / "model.ckpt-2", "two", 2)
    st = root / "values.safetensors"
    from safetensors.numpy import save_file

    save_file({"a": np.arange(100_000, dtype=np.float32)}, str(st))
    return {"one": one, "two": two, "st": st}


# The CLI with every rename, link and removal delayed by 0-20 ms.
SLOW_WRAPPER = r"""
import os, random, sys, time
def slowed(real):
    def step(*args, **kwargs):
        time.sleep(random.uniform(0, 0.02))
        return real(*args, **kwargs)
    return step
for name in ("replace", "rename", "link", "remove", "unlink"):
    setattr(os, name, slowed(getattr(os, name)))
sys.argv = ["tfckpt", *sys.argv[1:]]
from tfckpt.cli import main
main()
"""


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_WRAPPER, *args, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _race(first: list[str], second: list[str]) -> list[tuple[int, str]]:
    procs = [_spawn(first), _spawn(second)]
    out = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        out.append((proc.returncode, err))
    return out


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if TEMP_MARK in p.name)


def _names(prefix: Path) -> set[str]:
    reader = BundleReader(str(prefix))
    try:
        return {e.name for e in reader.entries.values() if not e.is_slice_key}
    finally:
        reader.close()


def _check_whole(prefix: Path, sources: dict[str, Path], compacts: bool = False) -> str:
    """The destination is one writer's output, complete: returns which one (``compacts``:
    the writer writes one data file whatever the source has)."""
    assert verify_checkpoint(str(prefix)).ok
    names = _names(prefix)
    tags = {n.split("/")[0] for n in names}
    assert len(tags) == 1, tags  # never a mix of the two writers' tensors
    tag = tags.pop()
    shards = 2 if tag == "two" and not compacts else 1
    data = sorted(p.name for p in prefix.parent.glob(prefix.name + ".data-*"))
    assert data == [f"{prefix.name}.data-{i:05d}-of-{shards:05d}" for i in range(shards)], data
    return tag


def _one_winner(results: list[tuple[int, str]]) -> int:
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.count("\n") == 1 and loser.startswith("tfckpt: error:"), loser
    assert any(w in loser for w in ("exists", "another writer", "appeared")), loser
    return next(i for i, (code, _) in enumerate(results) if code == 0)


def test_rename_races_have_exactly_one_winner(sources: dict[str, Path], tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        dst = tmp_path / f"r{round_}" / "out"
        results = _race(
            ["rename", str(sources["one"]), str(dst), "--sub", "^one/", "one/r/"],
            ["rename", str(sources["two"]), str(dst), "--sub", "^two/", "two/r/"],
        )
        winner = _one_winner(results)
        assert _check_whole(dst, sources) == ("one", "two")[winner]
        assert _leftovers(dst.parent) == []


def test_forced_rename_races_leave_the_last_writer_whole(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    seen = set()
    for round_ in range(max(ROUNDS // 2, 4)):
        dst = tmp_path / f"f{round_}" / "out"
        _source(dst, "old", 1)  # an existing checkpoint both replace
        results = _race(
            ["rename", str(sources["one"]), str(dst), "--sub", "^one/", "one/r/", "--force"],
            ["rename", str(sources["two"]), str(dst), "--sub", "^two/", "two/r/", "--force"],
        )
        assert [code for code, _ in results] == [0, 0], results
        seen.add(_check_whole(dst, sources))
        assert _leftovers(dst.parent) == []
    assert seen <= {"one", "two"}


def _cmd_prune(src: Path, dst: Path) -> list[str]:
    return ["prune", str(src), str(dst), "--drop", "w1$"]


def _cmd_merge(src: Path, dst: Path) -> list[str]:
    return ["merge", str(src), "-o", str(dst)]


def _cmd_cast(src: Path, dst: Path) -> list[str]:
    return ["cast", str(src), str(dst), "--dtype", "float16"]


def _cmd_export(src: Path, dst: Path) -> list[str]:
    return ["export", str(src), str(dst) + ".safetensors"]


WRITERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "prune": _cmd_prune,
    "merge": _cmd_merge,
    "cast": _cmd_cast,
    "export": _cmd_export,
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_checkpoint_writer_has_one_winner(
    command: str, sources: dict[str, Path], tmp_path: Path
) -> None:
    make = WRITERS[command]
    for round_ in range(3):
        dst = tmp_path / f"r{round_}" / "out"
        results = _race(make(sources["one"], dst), make(sources["two"], dst))
        winner = _one_winner(results)
        if command == "export":
            from safetensors.numpy import load_file

            keys = set(load_file(str(dst) + ".safetensors"))
            assert {k.split("/")[0] for k in keys} == {("one", "two")[winner]}
        else:
            compacts = command in ("prune", "cast")
            assert _check_whole(dst, sources, compacts) == ("one", "two")[winner]
        assert _leftovers(dst.parent) == []


def test_import_and_convert_races_have_one_winner(sources: dict[str, Path], tmp_path: Path) -> None:
    graph_a = tmp_path / "a.pbtxt"
    graph_b = tmp_path / "b.pbtxt"
    graph_a.write_text('node { name: "a" op: "Const" }\n')
    graph_b.write_text('node { name: "b" op: "Const" }\n')
    for round_ in range(3):
        out = tmp_path / f"c{round_}" / "graph.pb"
        out.parent.mkdir()
        results = _race(
            ["convert-pbtxt", str(graph_a), str(out)], ["convert-pbtxt", str(graph_b), str(out)]
        )
        winner = _one_winner(results)
        from tfckpt.graph.load import load_graph

        assert load_graph(str(out)).message.node[0].name == "ab"[winner]
        assert _leftovers(out.parent) == []

        dst = tmp_path / f"i{round_}" / "model.ckpt"
        results = _race(
            ["import", str(sources["st"]), str(dst)], ["import", str(sources["st"]), str(dst)]
        )
        _one_winner(results)
        assert verify_checkpoint(str(dst)).ok
        assert _leftovers(dst.parent) == []
