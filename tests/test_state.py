"""The ``checkpoint`` state file, read and written without protobuf's text format: the same
text protobuf prints, the same fields protobuf parses, and protobuf's parser (with its errors)
for anything that is not the canonical layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from tfckpt import protos
from tfckpt.bundle.state import format_state, read_state
from tfckpt.errors import CorruptCheckpoint

PATHS = [
    "model.ckpt-100",
    "/abs/path with spaces/model.ckpt-200",
    'quote"and\\backslash',
    "tab\tnew\nline\rcr",
    "ünïcödé/模型/ckpt",
    "apostrophe's",
    "\x01\x7f control",
]
STAMPS = [1700000000.0, 1700000300.25, 1.5e-7, 12345678901234.5, 0.1]


def protobuf_text(latest: str, paths: list[str], stamps: list[float], preserved: float) -> str:
    state = protos.CheckpointState(model_checkpoint_path=latest, all_model_checkpoint_paths=paths)
    state.all_model_checkpoint_timestamps.extend(stamps)
    state.last_preserved_timestamp = preserved
    return str(text_format.MessageToString(state))


@pytest.mark.parametrize("latest", PATHS)
def test_written_as_protobuf_prints_it(latest: str) -> None:
    assert format_state(latest, PATHS, STAMPS, 1699999999.5) == protobuf_text(
        latest, PATHS, STAMPS, 1699999999.5
    )
    assert format_state(latest, [latest]) == protobuf_text(latest, [latest], [], 0.0)
    assert format_state("", []) == protobuf_text("", [], [], 0.0) == ""


def _read(tmp_path: Path, text: str) -> tuple[object, ...]:
    (tmp_path / "checkpoint").write_text(text)
    info = read_state(str(tmp_path))
    return info.raw_latest, info.raw_all, info.timestamps, info.last_preserved_timestamp


def _by_protobuf(text: str) -> tuple[object, ...]:
    state = protos.CheckpointState()
    text_format.Parse(text, state)
    return (
        state.model_checkpoint_path,
        list(state.all_model_checkpoint_paths),
        list(state.all_model_checkpoint_timestamps),
        state.last_preserved_timestamp,
    )


@pytest.mark.parametrize(
    "text",
    [
        protobuf_text(PATHS[1], PATHS, STAMPS, 1699999999.5),
        protobuf_text("", [], [], 0.0),
        'model_checkpoint_path: "a"\n\n  all_model_checkpoint_paths:"a"  \n',
        "model_checkpoint_path: 'single quotes'\n",  # not canonical: protobuf reads it
        'model_checkpoint_path: "a" # a comment\n',
        'model_checkpoint_path: "\\x41\\101\\n"\n',
        "all_model_checkpoint_timestamps: 1e3\nall_model_checkpoint_timestamps: -2.5\n",
        'model_checkpoint_path: "a" all_model_checkpoint_paths: "b"\n',  # one line, two fields
        'model_checkpoint_path: "an unknown escape \\q"\n',  # protobuf's reading of it
    ],
)
def test_read_as_protobuf_parses_it(tmp_path: Path, text: str) -> None:
    assert _read(tmp_path, text) == _by_protobuf(text)


@pytest.mark.parametrize(
    "text",
    [
        'model_checkpoint_path: "a"\nmodel_checkpoint_path: "b"\n',  # a singular field twice
        'unknown_field: "a"\n',
        "model_checkpoint_path: 7\n",
        'model_checkpoint_path: "unterminated\n',
    ],
)
def test_what_protobuf_refuses_is_refused_with_its_reason(tmp_path: Path, text: str) -> None:
    with pytest.raises(text_format.ParseError):
        _by_protobuf(text)
    with pytest.raises(CorruptCheckpoint, match="not a checkpoint state file"):
        _read(tmp_path, text)


def test_listing_a_run_directory_imports_neither_protobuf_nor_numpy(native: object) -> None:
    """The start-up of ``tfckpt vars RUN_DIR``: the state file is read without protobuf, the
    listing without numpy, the table without Rich."""
    from clitools import modules_after

    prefix = native("tf1")  # type: ignore[operator]
    modules = modules_after(["vars", str(Path(prefix).parent)])
    assert "tfckpt.bundle.state" in modules
    assert not {"google.protobuf", "numpy", "rich"} & modules
