"""Presets: ``export --preset`` / ``import --preset`` on checkpoints in the original BERT, ALBERT,
ELECTRA and T5 layouts (made by TensorFlow: examples/make_hf_checkpoints.py), judged by
TensorFlow itself. The comparison with transformers' loaders is in test_presets_hf.py. What needs
no TF runs on their twins written by tfckpt's writer (``hf_nfx``: same names, dtypes, values).

A round trip TF -> HF -> TF gives back every mapped tensor bit for bit (names, dtypes, shapes)
and restores with a TF1 Saver in a graph built the original way; what a preset cannot map, what
the model would miss and shapes that disagree with the config stop the export (exit 1) before
anything is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clitools import ok, ok_json, run

import tfckpt
from tfckpt.errors import MismatchError, UsageError

from fixtures import HfFixture

CASES = ["bert", "albert", "albert_hub", "electra", "electra_generator", "t5", "t5_v11"]


def values(prefix: Any) -> dict[str, np.ndarray]:
    with tfckpt.open(prefix) as ckpt:
        return {name: ckpt[name] for name in ckpt}


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


# ---- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_round_trip_is_bit_identical_and_restores_in_the_original_graph(
    hf_fx: dict[str, HfFixture], tmp_path: Path, tf: Any, name: str
) -> None:
    fx = hf_fx[name]
    exported = tfckpt.export(fx.path, f"{tmp_path}/hf/", preset=fx.preset, config=fx.config)
    assert exported.ok and (tmp_path / "hf" / "config.json").read_bytes() == fx.config.read_bytes()
    mapped = {m.tf for m in exported.plan.preset.mapped}
    back = tmp_path / "tf" / "model.ckpt"
    imported = tfckpt.import_weights(
        tmp_path / "hf" / "model.safetensors", back, preset=fx.preset, config=fx.config
    )
    assert imported.ok and imported.written and imported.checked
    original, restored = values(fx.path), values(back)
    assert set(restored) == mapped
    for key in mapped:
        assert same(restored[key], original[key]), key

    # The release's own way of reading it: variables by name in a TF1 graph, a Saver restore.
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        variables = {
            key: tf1.get_variable(
                key, shape=value.shape, dtype=tf.as_dtype(original[key].dtype.name)
            )
            for key, value in original.items()
            if key in mapped
        }
        with tf1.Session() as sess:
            tf1.train.Saver(variables).restore(sess, str(back))
            for key, variable in variables.items():
                assert sess.run(variable).tobytes() == original[key].tobytes(), key


def test_layouts_and_dtypes_as_transformers_expects(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    """Kernels transposed, embeddings and output_weights not; T5: bfloat16 -> float32, every
    matrix but the shared embedding transposed (relative_attention_bias too)."""
    from safetensors.numpy import load_file

    bert = values(hf_nfx["bert"].path)
    tfckpt.export(hf_nfx["bert"].path, tmp_path / "b.safetensors", preset="hf-bert")
    out = load_file(str(tmp_path / "b.safetensors"))
    kernel = "bert/encoder/layer_1/intermediate/dense/kernel"
    assert same(out["bert.encoder.layer.1.intermediate.dense.weight"], bert[kernel].T.copy())
    assert same(
        out["bert.embeddings.word_embeddings.weight"], bert["bert/embeddings/word_embeddings"]
    )
    weights = bert["cls/seq_relationship/output_weights"]
    assert same(out["cls.seq_relationship.weight"], weights)
    assert "cls.predictions.decoder.weight" not in out  # tied, left out as transformers does

    t5 = values(hf_nfx["t5_v11"].path)
    assert t5["shared/embedding"].dtype.name == "bfloat16"
    result = tfckpt.export(hf_nfx["t5_v11"].path, tmp_path / "t.safetensors", preset="hf-t5-v1.1")
    out = load_file(str(tmp_path / "t.safetensors"))
    assert {v.dtype for v in out.values()} == {np.dtype(np.float32)}
    assert same(out["shared.weight"], t5["shared/embedding"].astype(np.float32))
    bias = "encoder/block_000/layer_000/SelfAttention/relative_attention_bias"
    rel = out["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    assert same(rel, t5[bias].T.astype(np.float32))
    assert same(out["lm_head.weight"], t5["decoder/logits/kernel"].T.astype(np.float32))
    metadata = result.plan.metadata
    assert metadata["format"] == "pt" and metadata["tfckpt.preset"] == "hf-t5-v1.1"
    assert json.loads(metadata["tfckpt.source_dtypes"])["shared.weight"] == "bfloat16"


def test_optimizer_slots_under_every_name_are_dropped(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    """adam_m/adam_v, tf.train Adam's /Adam, /Adam_1 and beta powers, Adafactor's _slot_*,
    global_step: never exported; bert_tf_adam (same weights, other slots) exports the very same
    file as bert."""
    for name in ("bert", "bert_tf_adam"):
        ok("export", hf_nfx[name].path, tmp_path / f"{name}.safetensors", "--preset", "hf-bert")
    assert (tmp_path / "bert.safetensors").read_bytes() == (
        tmp_path / "bert_tf_adam.safetensors"
    ).read_bytes()
    doc = ok_json(
        "export", hf_nfx["t5"].path, tmp_path / "t5.safetensors", "--preset", "hf-t5", "-n"
    )
    reasons = {d["name"]: d["reason"] for d in doc["preset"]["dropped"]}
    assert reasons["global_step"] == "training step counter"
    assert reasons["shared/embedding_slot_vr"] == "optimizer slot (Adafactor)"
    assert reasons["decoder/final_layer_norm/scale_slot_v"] == "optimizer slot (Adafactor)"
    assert not any("slot" in t["source"] or "step" in t["source"] for t in doc["tensors"])


def test_one_electra_checkpoint_two_models(hf_nfx: dict[str, HfFixture], tmp_path: Path) -> None:
    disc = tfckpt.export(hf_nfx["electra"].path, tmp_path / "d.safetensors", preset="hf-electra")
    gen = tfckpt.export(
        hf_nfx["electra"].path, tmp_path / "g.safetensors", preset="hf-electra-generator"
    )
    d = {m.tf: m.hf for m in disc.plan.preset.mapped}
    g = {m.tf: m.hf for m in gen.plan.preset.mapped}
    shared = "electra/embeddings/word_embeddings"
    assert d[shared] == g[shared] == "electra.embeddings.word_embeddings.weight"
    assert g["generator/encoder/layer_1/output/dense/kernel"] == (
        "electra.encoder.layer.1.output.dense.weight"
    )
    assert g["generator_predictions/output_bias"] == "generator_lm_head.bias"
    assert not any(k.startswith("generator") for k in d)
    reasons = {x["name"]: x["reason"] for x in gen.plan.preset.dropped}
    assert "hf-electra" in reasons["discriminator_predictions/dense_1/kernel"]


# ---- what stops an export ------------------------------------------------------------------------
def test_unmapped_tensors_are_exit_1_and_write_nothing(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    """A v1.1 checkpoint (untied lm_head, gated wi_0/wi_1) through the v1.0 preset."""
    out = tmp_path / "x" / "t5.safetensors"
    result = run("export", hf_nfx["t5_v11"].path, out, "--preset", "hf-t5")
    assert result.exit_code == 1
    assert result.stderr.startswith("tfckpt: error: ") and result.stderr.count("\n") == 1
    assert "not mapped by hf-t5: decoder/block_000/layer_002/DenseReluDense/wi_0" in result.stderr
    assert "use --allow-unmapped" in result.stderr and "nothing written" in result.stderr
    assert "decoder/logits/kernel" in result.stdout and "not mapped" in result.stdout
    assert not (tmp_path / "x").exists()
    doc = json.loads(
        run("export", hf_nfx["t5_v11"].path, out, "--preset", "hf-t5", "--json").stdout
    )
    assert doc["kind"] == "export" and doc["ok"] is False and doc["written"] is False
    assert "decoder/logits/kernel" in doc["preset"]["unmapped"]
    assert "decoder.block.{dblock}.layer.2.DenseReluDense.wi.weight" in doc["preset"]["missing"]
    allowed = run(
        "export", hf_nfx["t5_v11"].path, out, "--preset", "hf-t5", "--allow-unmapped",
        "--allow-missing",
    )  # fmt: skip
    assert allowed.exit_code == 0 and out.exists()


def test_tied_checkpoint_through_the_untied_preset_misses_the_lm_head(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    with pytest.raises(MismatchError) as info:
        tfckpt.export(hf_nfx["t5"].path, tmp_path / "t.safetensors", preset="hf-t5-v1.1")
    report = info.value.result.plan.preset
    assert "lm_head.weight" in report.missing and info.value.exit_code == 1
    assert "randomly initialised" in str(info.value) and info.value.fix == "allow_unmapped"
    assert files(tmp_path) == set()


def test_config_mismatch_names_the_tensor_and_the_field(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    config = json.loads(hf_nfx["bert"].config.read_text())
    config.update(vocab_size=31, num_hidden_layers=3)
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = run(
        "export", hf_nfx["bert"].path, f"{tmp_path}/out/", "--preset", "hf-bert",
        "--config", tmp_path / "config.json",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert (
        "bert.embeddings.word_embeddings.weight: shape [30, 8] but the config says "
        "[vocab_size=31, hidden_size=8]" in result.stdout
    )
    assert "bert.encoder.layer.2.attention.self.query.weight" in result.stdout  # layer 2 missing
    assert "num_hidden_layers=3" in result.stdout
    assert "shape(s) disagree" in result.stderr
    assert not (tmp_path / "out").exists()
    other = run(
        "export", hf_nfx["bert"].path, tmp_path / "b.safetensors", "--preset", "hf-bert",
        "--config", hf_nfx["t5"].config,
    )  # fmt: skip
    assert other.exit_code == 1 and "the config of another architecture?" in other.stderr


def test_output_directory_gets_weights_and_config(
    hf_nfx: dict[str, HfFixture], tmp_path: Path
) -> None:
    fx = hf_nfx["albert"]
    out = tmp_path / "hf"
    args = ["export", fx.path, f"{out}/", "--preset", "hf-albert", "--config", fx.config]
    ok(*args)
    assert files(out) == {"model.safetensors", "config.json"}
    again = run(*args)
    assert again.exit_code == 2 and "--force" in again.stderr
    ok(*args, "--force")
    ok("export", fx.path, tmp_path / "w.npz", "--preset", "hf-albert")  # another file format
    bad = run("export", fx.path, f"{tmp_path}/n/", "--preset", "hf-albert", "--to", "npy")
    assert bad.exit_code == 2 and "model.safetensors" in bad.stderr
    no_config = ok("export", fx.path, f"{tmp_path}/c/", "--preset", "hf-albert")
    assert "no config.json written" in no_config.stderr


def test_dry_run_shows_the_whole_mapping(hf_nfx: dict[str, HfFixture], tmp_path: Path) -> None:
    fx = hf_nfx["t5_v11"]
    result = ok("export", fx.path, f"{tmp_path}/o/", "--preset", "hf-t5-v1.1", "--dry-run")
    assert "transposed" in result.stdout and "bfloat16 -> float32" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "decoder/logits/kernel" in x)
    assert "lm_head.weight" in line and "yes" in line
    assert "would export 66 tensors" in result.stdout
    doc = ok_json("export", fx.path, f"{tmp_path}/o/", "--preset", "hf-t5-v1.1", "--dry-run")
    assert doc["dry_run"] and not doc["written"] and doc["ok"]
    by_tf = {m["tf"]: m for m in doc["preset"]["mapping"]}
    assert by_tf["shared/embedding"] == {
        "tf": "shared/embedding",
        "hf": "shared.weight",
        "transposed": False,
        "dtype": "bfloat16",
        "out_dtype": "float32",
        "shape": [30, 8],
        "alias_of": None,
    }
    assert by_tf["decoder/logits/kernel"]["transposed"] is True
    assert files(tmp_path) == set()


# ---- import --------------------------------------------------------------------------------------
def test_import_skips_aliases_and_buffers_and_refuses_unknown_names(tmp_path: Path) -> None:
    """A file as transformers' save_pretrained may write it (some with tied aliases and
    position_ids buffers), made here with safetensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    words = rng.standard_normal((30, 8)).astype(np.float32)
    tensors = {
        "bert.embeddings.word_embeddings.weight": words,
        "cls.predictions.decoder.weight": words,
        "bert.embeddings.position_ids": np.arange(16, dtype=np.int64)[None],
        "bert.pooler.dense.weight": rng.standard_normal((8, 4)).astype(np.float32),
    }
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    result = tfckpt.import_weights(
        tmp_path / "m.safetensors", tmp_path / "ckpt", preset="hf-bert", dry_run=True
    )
    report = result.plan.preset
    assert {d["name"]: d["reason"] for d in report.dropped} == {
        "cls.predictions.decoder.weight": "tied to bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_ids": "not a weight (a buffer)",
    }
    assert "tensor(s) hf-bert maps are not in the input" in " ".join(result.notes)
    tfckpt.import_weights(tmp_path / "m.safetensors", tmp_path / "ckpt", preset="hf-bert")
    with tfckpt.open(tmp_path / "ckpt") as ckpt:
        assert sorted(ckpt) == ["bert/embeddings/word_embeddings", "bert/pooler/dense/kernel"]
        assert same(ckpt["bert/pooler/dense/kernel"], tensors["bert.pooler.dense.weight"].T.copy())
    save_file({**tensors, "classifier.weight": words}, str(tmp_path / "x.safetensors"))
    refused = run("import", tmp_path / "x.safetensors", tmp_path / "c2", "--preset", "hf-bert")
    assert refused.exit_code == 1 and "classifier.weight" in refused.stderr
    assert "--allow-unmapped" in refused.stderr and not (tmp_path / "c2.index").exists()


# ---- presets as data -----------------------------------------------------------------------------
def test_presets_command_lists_and_shows() -> None:
    listed = ok("presets")
    for name in ("hf-bert", "hf-albert", "hf-electra", "hf-electra-generator", "hf-t5"):
        assert name in listed.stdout
    assert "hf-t5-v1.1" in listed.stdout and "untied lm_head" in listed.stdout
    doc = ok_json("presets")
    assert doc["kind"] == "presets" and len(doc["presets"]) == 6
    assert all(p["description"] and p["source"] == "built-in" for p in doc["presets"])
    shown = ok("presets", "hf-albert")
    assert "prefixes removed: module/" in shown.stdout
    assert "albert.encoder.albert_layer_groups.{group}.albert_layers.{inner}.ffn.weight" in (
        shown.stdout
    )
    full = ok_json("presets", "hf-t5")["presets"][0]
    assert full["dtypes"] == {"bfloat16": "float32", "float16": "float32", "float64": "float32"}
    unknown = run("presets", "hf-bret")
    assert unknown.exit_code == 2 and "did you mean hf-bert?" in unknown.stderr


MINE = """
name = "mine"
description = "dense layers of the native tf1 fixture, PyTorch style"
drop = ['^global_step$']
[vars]
n = { values = ["dense", "dense_1"] }
[[rules]]
tf = "{n}/kernel"
hf = "{n}.weight"
transpose = true
shape = ["width", 4]
[[rules]]
tf = "{n}/bias"
hf = "{n}.bias"
"""


def test_a_preset_file_of_ones_own(native: Any, tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(MINE)
    src = native("tf1")
    result = tfckpt.export(src, tmp_path / "m.safetensors", preset=tmp_path / "mine.toml")
    assert result.ok and sorted(i.name for i in result.plan.items) == [
        "dense.bias",
        "dense.weight",
        "dense_1.bias",
        "dense_1.weight",
    ]
    with tfckpt.open(src) as ckpt:
        kernel = ckpt["dense/kernel"]
    from safetensors.numpy import load_file

    assert same(load_file(str(tmp_path / "m.safetensors"))["dense.weight"], kernel.T.copy())
    # the Adam slots of the native tf1 fixture are optimizer state: dropped, not unmapped
    reasons = {d["name"]: d["reason"] for d in result.plan.preset.dropped}
    assert reasons["dense/kernel/Adam"] == "optimizer state"
    tfckpt.import_weights(
        tmp_path / "m.safetensors", tmp_path / "back", preset=str(tmp_path / "mine.toml")
    )
    with tfckpt.open(tmp_path / "back") as back, tfckpt.open(src) as ckpt:
        assert sorted(back) == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
        for name in back:
            assert same(back[name], ckpt[name]), name
    assert ok("presets", tmp_path / "mine.toml").stdout.startswith("mine: dense layers")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("{n}.weight", "{m}.weight"), "rules[0].hf: unknown variable {m}"),
        (("drop = [", "dropp = ["), "unknown key(s) dropp"),
        (("'^global_step$'", "'(['"), "drop[0]: bad regex"),
        (('shape = ["width", 4]', 'shape = ["width+1"]'), "a number, a config field, or a*b"),
        (("transpose = true", 'transpose = "yes"'), "transpose must be true or false"),
        (('name = "mine"', 'name = "mine'), "not valid TOML"),
    ],
)
def test_mistakes_in_a_preset_file_are_exit_2_naming_the_key(
    native: Any, tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINE.replace(*edit, 1))
    with pytest.raises(UsageError, match=re.escape(message)):
        tfckpt.load_preset(path)
    result = run("export", native("tf1"), tmp_path / "o.safetensors", "--preset", path)
    assert result.exit_code == 2 and str(path) in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "o.safetensors").exists()


def test_preset_options_are_validated(native: Any, tmp_path: Path) -> None:
    src = native("tf1")
    for kwargs, message in (
        ({"config": "c.json"}, "config goes with preset"),
        ({"allow_unmapped": True}, "allow_unmapped goes with preset"),
        ({"preset": "hf-bert", "sep": "."}, "sep does not go with preset"),
        ({"preset": "hf-bert", "config": tmp_path / "none.json"}, "no such file"),
        ({"preset": 3}, "expected a name"),
    ):
        with pytest.raises(UsageError, match=message):
            tfckpt.export(src, tmp_path / "o.safetensors", **kwargs)
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(UsageError, match="not a JSON object"):
        tfckpt.export(
            src, tmp_path / "o.safetensors", preset="hf-bert", config=tmp_path / "bad.json"
        )
    assert files(tmp_path) == {"bad.json"}


def test_presets_ship_as_package_data() -> None:
    """Every built-in preset parses, and pyproject ships the directory."""
    from tfckpt.transfer.presets import builtin_dir

    names = sorted(p.name for p in tfckpt.list_presets())
    assert names == [
        "hf-albert",
        "hf-bert",
        "hf-electra",
        "hf-electra-generator",
        "hf-t5",
        "hf-t5-v1.1",
    ]
    assert sorted(f.stem for f in Path(builtin_dir()).glob("*.toml")) == names
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert 'tfckpt = ["presets/*.toml"]' in pyproject


def test_tied_aliases_can_be_emitted_as_copies(native: Any, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    path = tmp_path / "tied.toml"
    path.write_text(
        MINE + '[[tied]]\nhf = "head.weight"\nsame_as = "dense_1.weight"\nemit = true\n'
        '[[tied]]\nhf = "missing.weight"\nsame_as = "nothing.weight"\nemit = false\n'
    )
    result = tfckpt.export(native("tf1"), tmp_path / "t.safetensors", preset=path)
    out = load_file(str(tmp_path / "t.safetensors"))
    assert same(out["head.weight"], out["dense_1.weight"]) and "missing.weight" not in out
    alias = next(m for m in result.plan.preset.mapped if m.hf == "head.weight")
    assert alias.alias_of == "dense_1.weight" and alias.tf == "dense_1/kernel"
    back = tfckpt.import_weights(tmp_path / "t.safetensors", tmp_path / "b", preset=path)
    assert {"name": "head.weight", "reason": "tied to dense_1.weight"} in back.plan.preset.dropped
    with tfckpt.open(tmp_path / "b") as ckpt:
        assert len(ckpt) == 4
