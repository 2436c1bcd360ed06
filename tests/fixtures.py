"""The fixture registry (checkpoints made by TensorFlow) and the real-world corpus.

``build_fixtures(dest)`` runs examples/make_fixtures.py once into ``dest`` (a cache keyed by the
script's hash) and returns ``{name: Fixture}``. Corpus helpers return [] when ../shared/corpus is
absent, so tests skip cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CORPUS = Path(os.environ.get("TFCKPT_CORPUS", ROOT.parent / "shared" / "corpus"))

V1_CORPUS = (
    "tensorflow__serving/tensorflow_serving/servables/tensorflow/testdata/bad_half_plus_two/"
    "00000123/export",
    "tensorflow__serving/tensorflow_serving/session_bundle/testdata/half_plus_two/00000123/"
    "export-00000-of-00001",
)


@dataclass(frozen=True)
class Fixture:
    name: str
    kind: str  # tf1 | dir | raw | tf2 | savedmodel | graphs | v1 | damaged | index_only
    path: Path  # checkpoint prefix, or a directory
    meta: Path | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        """A whole, undamaged checkpoint (not a damaged copy or an index without its data)."""
        return self.kind not in ("damaged", "index_only", "graphs")


def fixtures_key() -> str:
    digest = hashlib.sha1()
    for name in ("make_fixtures.py", "fixture_models.py"):
        digest.update((EXAMPLES / name).read_bytes())
    return digest.hexdigest()[:12]


def default_dir() -> Path:
    override = os.environ.get("TFCKPT_FIXTURES")
    return Path(override) if override else ROOT / ".fixtures" / fixtures_key()


def build_fixtures(dest: Path | None = None) -> dict[str, Fixture]:
    dest = dest or default_dir()
    if not (dest / ".complete").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run(
            [sys.executable, str(EXAMPLES / "make_fixtures.py"), str(dest)], check=True, env=env
        )
    manifest = json.loads((dest / "manifest.json").read_text())
    out = {}
    for name, entry in manifest.items():
        if name.startswith("_"):
            continue
        out[name] = Fixture(
            name=name,
            kind=entry["kind"],
            path=dest / entry["path"],
            meta=dest / entry["meta"] if entry.get("meta") else None,
            info=entry,
        )
    return out


def hostile_key() -> str:
    return hashlib.sha1((EXAMPLES / "make_hostile_models.py").read_bytes()).hexdigest()[:12]


def build_hostile(dest: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The models of examples/make_hostile_models.py (built once per script version, like
    ``build_fixtures``): ``(directory, manifest)``; each case's ``path`` is made absolute."""
    dest = dest or ROOT / ".fixtures" / f"hostile-{hostile_key()}"
    if not (dest / ".complete").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run(
            [sys.executable, str(EXAMPLES / "make_hostile_models.py"), str(dest)],
            check=True,
            env=env,
        )
    manifest = json.loads((dest / "manifest.json").read_text())
    for entry in manifest.values():
        entry["path"] = str(dest / entry["path"])
    return dest, manifest


@dataclass(frozen=True)
class HfFixture:
    """A checkpoint in an original release's layout (examples/make_hf_checkpoints.py), with the
    Hugging Face config of its architecture and the preset that converts it."""

    name: str
    path: Path  # checkpoint prefix
    config: Path
    preset: str
    model: str  # the transformers class the preset targets
    info: dict[str, Any] = field(default_factory=dict)


def hf_fixtures_key() -> str:
    return hashlib.sha1((EXAMPLES / "make_hf_checkpoints.py").read_bytes()).hexdigest()[:12]


def build_hf_checkpoints(dest: Path | None = None) -> dict[str, HfFixture]:
    """Run examples/make_hf_checkpoints.py once into ``dest`` (default: .fixtures/hf-<hash of the
    script>, or $TFCKPT_HF_FIXTURES) and return ``{name: HfFixture}``."""
    override = os.environ.get("TFCKPT_HF_FIXTURES")
    dest = dest or (Path(override) if override else ROOT / ".fixtures" / f"hf-{hf_fixtures_key()}")
    if not (dest / ".complete").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run(
            [sys.executable, str(EXAMPLES / "make_hf_checkpoints.py"), str(dest)],
            check=True,
            env=env,
        )
    return read_hf_manifest(dest)


def read_hf_manifest(dest: Path) -> dict[str, HfFixture]:
    """``{name: HfFixture}`` from the manifest examples/make_hf_checkpoints.py wrote in ``dest``."""
    manifest = json.loads((dest / "manifest.json").read_text())
    return {
        name: HfFixture(
            name=name,
            path=dest / entry["path"],
            config=dest / entry["config"],
            preset=entry["preset"],
            model=entry["model"],
            info=entry,
        )
        for name, entry in manifest.items()
    }


def corpus_checkpoints() -> list[Path]:
    """Every checkpoint prefix in the corpus (V2 by .index, incl. SavedModel variables; V1)."""
    if not CORPUS.is_dir():
        return []
    found = sorted(p.with_suffix("") for p in CORPUS.rglob("*.index"))
    found += [CORPUS / p for p in V1_CORPUS if (CORPUS / p).exists()]
    return found


def corpus_savedmodels() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p.parent for p in CORPUS.rglob("*") if p.name in ("saved_model.pb", "saved_model.pbtxt")
    )


def corpus_graphs() -> list[Path]:
    """Every .pb / .pbtxt / .meta graph file in the corpus (SavedModels included)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pb", ".pbtxt", ".meta"))
