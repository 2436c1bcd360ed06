"""Write tiny checkpoints in the layouts of the original BERT, ALBERT, ELECTRA and T5 releases:
``python examples/make_hf_checkpoints.py OUTDIR``.

Each is made by TensorFlow in TF1 graph mode the way those releases made theirs: variables from
``tf.compat.v1.get_variable`` under the releases' names, saved by a ``tf.compat.v1.train.Saver``;
with each a Hugging Face ``config.json`` for the same (tiny) architecture. They carry the traps
the old transformers loaders fell into:

- optimizer slots under every name: ``adam_m`` / ``adam_v`` (BERT's AdamWeightDecayOptimizer,
  ALBERT's LAMB, ELECTRA), Adafactor's ``_slot_vc`` / ``_slot_vr`` / ``_slot_v`` (T5), and, in
  ``bert_tf_adam``, ``tf.train.AdamOptimizer``'s ``/Adam`` / ``/Adam_1`` and ``beta1_power``
  (transformers' loader walks ``name/Adam`` to the weight itself, copies it over the weight, and
  fails on the embeddings' slots);
- ``global_step`` (int64);
- bfloat16 storage (``t5_v11``, as mesh-tensorflow's bfloat16 master weights);
- the TF-Hub ``module/`` prefix (``albert_hub``: the same values as ``albert``);
- tied vs untied embeddings: T5 v1.0 ties the LM head to ``shared/embedding`` (no
  ``decoder/logits/kernel``), v1.1 has its own; one ELECTRA checkpoint holds the discriminator and
  the generator, which share ``electra/embeddings``.

``OUTDIR/manifest.json`` maps each name to its prefix, config and preset; ``OUTDIR/.complete`` is
written last. ``write_all(out, save)`` does all but the saving, so tests can write the same
checkpoints with tfckpt's own writer where TensorFlow is not installed (tests/native_fixtures.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

Spec = list[tuple[str, tuple[int, ...]]]
# save(prefix, values, dtype="float32", step=None) -> the prefix written (see ``save``)
Save = Callable[..., str]

BERT = {
    "vocab_size": 30,
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
}
ALBERT = {
    "vocab_size": 30,
    "embedding_size": 4,
    "hidden_size": 8,
    "num_hidden_layers": 3,
    "num_hidden_groups": 1,
    "inner_group_num": 1,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
}
ELECTRA = {
    "vocab_size": 30,
    "embedding_size": 4,
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
}
ELECTRA_GENERATOR = {**ELECTRA, "hidden_size": 6, "intermediate_size": 10}
T5 = {
    "vocab_size": 30,
    "d_model": 8,
    "d_kv": 4,
    "d_ff": 12,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "relative_attention_num_buckets": 4,
}
T5_V11 = {
    **T5,
    "num_decoder_layers": 3,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
}


# ---- the releases' variable names --------------------------------------------------------------
def bert_layers(prefix: str, c: dict[str, int]) -> Spec:
    h, i = c["hidden_size"], c["intermediate_size"]
    spec: Spec = []
    for n in range(c["num_hidden_layers"]):
        layer = f"{prefix}/encoder/layer_{n}"
        for part in ("query", "key", "value"):
            spec += [(f"{layer}/attention/self/{part}/kernel", (h, h))]
            spec += [(f"{layer}/attention/self/{part}/bias", (h,))]
        spec += [
            (f"{layer}/attention/output/dense/kernel", (h, h)),
            (f"{layer}/attention/output/dense/bias", (h,)),
            (f"{layer}/attention/output/LayerNorm/gamma", (h,)),
            (f"{layer}/attention/output/LayerNorm/beta", (h,)),
            (f"{layer}/intermediate/dense/kernel", (h, i)),
            (f"{layer}/intermediate/dense/bias", (i,)),
            (f"{layer}/output/dense/kernel", (i, h)),
            (f"{layer}/output/dense/bias", (h,)),
            (f"{layer}/output/LayerNorm/gamma", (h,)),
            (f"{layer}/output/LayerNorm/beta", (h,)),
        ]
    return spec


def embeddings(prefix: str, c: dict[str, int], width: int) -> Spec:
    return [
        (f"{prefix}/embeddings/word_embeddings", (c["vocab_size"], width)),
        (f"{prefix}/embeddings/token_type_embeddings", (c["type_vocab_size"], width)),
        (f"{prefix}/embeddings/position_embeddings", (c["max_position_embeddings"], width)),
        (f"{prefix}/embeddings/LayerNorm/gamma", (width,)),
        (f"{prefix}/embeddings/LayerNorm/beta", (width,)),
    ]


def bert_spec(c: dict[str, int]) -> Spec:
    h = c["hidden_size"]
    return [
        *embeddings("bert", c, h),
        *bert_layers("bert", c),
        ("bert/pooler/dense/kernel", (h, h)),
        ("bert/pooler/dense/bias", (h,)),
        ("cls/predictions/transform/dense/kernel", (h, h)),
        ("cls/predictions/transform/dense/bias", (h,)),
        ("cls/predictions/transform/LayerNorm/gamma", (h,)),
        ("cls/predictions/transform/LayerNorm/beta", (h,)),
        ("cls/predictions/output_bias", (c["vocab_size"],)),
        ("cls/seq_relationship/output_weights", (2, h)),
        ("cls/seq_relationship/output_bias", (2,)),
    ]


def albert_spec(c: dict[str, int]) -> Spec:
    e, h, i = c["embedding_size"], c["hidden_size"], c["intermediate_size"]
    inner = "bert/encoder/transformer/group_0/inner_group_0"
    spec: Spec = [
        *embeddings("bert", c, e),
        ("bert/encoder/embedding_hidden_mapping_in/kernel", (e, h)),
        ("bert/encoder/embedding_hidden_mapping_in/bias", (h,)),
    ]
    for part in ("query", "key", "value"):
        spec += [(f"{inner}/attention_1/self/{part}/kernel", (h, h))]
        spec += [(f"{inner}/attention_1/self/{part}/bias", (h,))]
    spec += [
        (f"{inner}/attention_1/output/dense/kernel", (h, h)),
        (f"{inner}/attention_1/output/dense/bias", (h,)),
        (f"{inner}/LayerNorm/gamma", (h,)),
        (f"{inner}/LayerNorm/beta", (h,)),
        (f"{inner}/ffn_1/intermediate/dense/kernel", (h, i)),
        (f"{inner}/ffn_1/intermediate/dense/bias", (i,)),
        (f"{inner}/ffn_1/intermediate/output/dense/kernel", (i, h)),
        (f"{inner}/ffn_1/intermediate/output/dense/bias", (h,)),
        (f"{inner}/LayerNorm_1/gamma", (h,)),
        (f"{inner}/LayerNorm_1/beta", (h,)),
        ("bert/pooler/dense/kernel", (h, h)),
        ("bert/pooler/dense/bias", (h,)),
        ("cls/predictions/transform/dense/kernel", (h, e)),
        ("cls/predictions/transform/dense/bias", (e,)),
        ("cls/predictions/transform/LayerNorm/gamma", (e,)),
        ("cls/predictions/transform/LayerNorm/beta", (e,)),
        ("cls/predictions/output_bias", (c["vocab_size"],)),
        ("cls/seq_relationship/output_weights", (2, h)),
        ("cls/seq_relationship/output_bias", (2,)),
    ]
    return spec


def electra_spec(d: dict[str, int], g: dict[str, int]) -> Spec:
    e, h, gh = d["embedding_size"], d["hidden_size"], g["hidden_size"]
    return [
        *embeddings("electra", d, e),  # shared by discriminator and generator
        ("electra/embeddings_project/kernel", (e, h)),
        ("electra/embeddings_project/bias", (h,)),
        *bert_layers("electra", d),
        ("discriminator_predictions/dense/kernel", (h, h)),
        ("discriminator_predictions/dense/bias", (h,)),
        ("discriminator_predictions/dense_1/kernel", (h, 1)),
        ("discriminator_predictions/dense_1/bias", (1,)),
        ("generator/embeddings_project/kernel", (e, gh)),
        ("generator/embeddings_project/bias", (gh,)),
        *bert_layers("generator", g),
        ("generator_predictions/dense/kernel", (gh, e)),
        ("generator_predictions/dense/bias", (e,)),
        ("generator_predictions/LayerNorm/gamma", (e,)),
        ("generator_predictions/LayerNorm/beta", (e,)),
        ("generator_predictions/output_bias", (d["vocab_size"],)),
    ]


def t5_spec(c: dict[str, Any], v11: bool) -> Spec:
    d, inner, ff = c["d_model"], c["num_heads"] * c["d_kv"], c["d_ff"]
    norm, final = ("rms_norm", "rms_norm") if v11 else ("layer_norm", "final_layer_norm")
    spec: Spec = [("shared/embedding", (c["vocab_size"], d))]
    for stack, blocks in (("encoder", c["num_layers"]), ("decoder", c["num_decoder_layers"])):
        for b in range(blocks):
            block = f"{stack}/block_{b:03d}"
            attention = ["SelfAttention"] + (["EncDecAttention"] if stack == "decoder" else [])
            for layer, kind in enumerate(attention):
                base = f"{block}/layer_{layer:03d}"
                spec += [(f"{base}/{kind}/{m}", (d, inner)) for m in "qkv"]
                spec += [(f"{base}/{kind}/o", (inner, d))]
                if b == 0 and kind == "SelfAttention":
                    shape = (c["num_heads"], c["relative_attention_num_buckets"])
                    spec += [(f"{base}/{kind}/relative_attention_bias", shape)]
                spec += [(f"{base}/{norm}/scale", (d,))]
            ffn = f"{block}/layer_{len(attention):03d}"
            wis = ["wi_0", "wi_1"] if v11 else ["wi"]
            spec += [(f"{ffn}/DenseReluDense/{wi}/kernel", (d, ff)) for wi in wis]
            spec += [(f"{ffn}/DenseReluDense/wo/kernel", (ff, d)), (f"{ffn}/{norm}/scale", (d,))]
        spec += [(f"{stack}/{final}/scale", (d,))]
    if v11:
        spec += [("decoder/logits/kernel", (d, c["vocab_size"]))]
    return spec


# ---- optimizer state --------------------------------------------------------------------------
def adam_wd_slots(spec: Spec) -> Spec:
    """AdamWeightDecayOptimizer (BERT, ELECTRA) and LAMB (ALBERT): name/adam_m, name/adam_v."""
    return [(f"{n}/{slot}", s) for n, s in spec for slot in ("adam_m", "adam_v")]


def adafactor_slots(spec: Spec) -> Spec:
    """mesh-tf Adafactor: factored row/column second moments for matrices, full for the rest."""
    out: Spec = []
    for name, shape in spec:
        if len(shape) >= 2:
            out += [(f"{name}_slot_vr", shape[:-1]), (f"{name}_slot_vc", shape[:-2] + shape[-1:])]
        else:
            out += [(f"{name}_slot_v", shape)]
    return out


def tf_adam_slots(spec: Spec) -> Spec:
    """tf.compat.v1.train.AdamOptimizer: name/Adam, name/Adam_1, and the beta powers."""
    out = [(f"{n}/{slot}", s) for n, s in spec for slot in ("Adam", "Adam_1")]
    return [*out, ("beta1_power", ()), ("beta2_power", ())]


# ---- writing ------------------------------------------------------------------------------------
def values_for(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in spec}


def save(
    tf: Any,
    prefix: Path,
    values: dict[str, np.ndarray],
    dtype: str = "float32",
    step: int | None = None,
) -> str:
    """Variables named as given (get_variable, graph mode), saved by a TF1 Saver; global_step
    (int64) added when ``step`` is given."""
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variables = []
        for name, value in values.items():
            initial = tf.constant(value, dtype=getattr(tf, dtype))
            variables.append(tf1.get_variable(name, initializer=initial))
        if step is not None:
            global_step = tf1.train.get_or_create_global_step()
            variables.append(global_step)
        saver = tf1.train.Saver(variables)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            if step is not None:
                sess.run(global_step.assign(step))
            prefix.parent.mkdir(parents=True, exist_ok=True)
            saved: str = saver.save(sess, str(prefix), global_step=step, write_meta_graph=False)
    return saved


def write_config(path: Path, model_type: str, architecture: str, fields: dict[str, Any]) -> None:
    config = {"architectures": [architecture], "model_type": model_type, **fields}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def main(out: Path) -> None:
    import tensorflow as tf

    write_all(out, functools.partial(save, tf))


def write_all(out: Path, save: Save) -> None:
    """Every checkpoint with its config, saved by ``save``, then the manifest."""
    manifest: dict[str, Any] = {}

    def add(name: str, prefix: str, preset: str, model: str, config: str, **extra: Any) -> None:
        manifest[name] = {
            "path": os.path.relpath(prefix, out),
            "config": config,
            "preset": preset,
            "model": model,
            **extra,
        }

    # BERT: AdamWeightDecayOptimizer slots and global_step, as run_pretraining.py saves them.
    weights = values_for(bert_spec(BERT), 1)
    slots = values_for(adam_wd_slots(bert_spec(BERT)), 2)
    write_config(_dir(out, "bert") / "config.json", "bert", "BertForPreTraining", BERT)
    prefix = save(out / "bert" / "model.ckpt", {**weights, **slots}, step=1000)
    add("bert", prefix, "hf-bert", "BertForPreTraining", "bert/config.json", loader="bert")
    # The same weights trained with tf.train.AdamOptimizer instead: /Adam, /Adam_1, beta powers.
    tf_slots = values_for(tf_adam_slots(bert_spec(BERT)), 3)
    prefix = save(out / "bert_tf_adam" / "model.ckpt", {**weights, **tf_slots}, step=1000)
    add(
        "bert_tf_adam",
        prefix,
        "hf-bert",
        "BertForPreTraining",
        "bert/config.json",
        loader="bert",
        same_as="bert",
    )

    # ALBERT, and the same values as a TF-Hub module exports them (module/...).
    weights = values_for(albert_spec(ALBERT), 4)
    slots = values_for(adam_wd_slots(albert_spec(ALBERT)), 5)
    write_config(_dir(out, "albert") / "config.json", "albert", "AlbertForPreTraining", ALBERT)
    prefix = save(out / "albert" / "model.ckpt", {**weights, **slots}, step=500)
    add(
        "albert", prefix, "hf-albert", "AlbertForPreTraining", "albert/config.json", loader="albert"
    )
    hub = {f"module/{name}": value for name, value in weights.items()}
    prefix = save(out / "albert_hub" / "variables" / "variables", hub)
    add(
        "albert_hub",
        prefix,
        "hf-albert",
        "AlbertForPreTraining",
        "albert/config.json",
        loader="albert",
        same_as="albert",
    )

    # ELECTRA: one checkpoint, discriminator and generator sharing electra/embeddings.
    spec = electra_spec(ELECTRA, ELECTRA_GENERATOR)
    values = {**values_for(spec, 6), **values_for(adam_wd_slots(spec), 7)}
    write_config(_dir(out, "electra") / "config.json", "electra", "ElectraForPreTraining", ELECTRA)
    write_config(
        out / "electra" / "generator_config.json",
        "electra",
        "ElectraForMaskedLM",
        ELECTRA_GENERATOR,
    )
    prefix = save(out / "electra" / "model.ckpt", values, step=200)
    add(
        "electra",
        prefix,
        "hf-electra",
        "ElectraForPreTraining",
        "electra/config.json",
        loader="electra",
        loader_args={"discriminator_or_generator": "discriminator"},
    )
    add(
        "electra_generator",
        prefix,
        "hf-electra-generator",
        "ElectraForMaskedLM",
        "electra/generator_config.json",
        loader="electra",
        loader_args={"discriminator_or_generator": "generator"},
    )

    # T5 v1.0 (float32, tied LM head) and v1.1 (bfloat16 storage, gated, own LM head), with
    # Adafactor slots.
    for name, config, v11, dtype, preset in (
        ("t5", T5, False, "float32", "hf-t5"),
        ("t5_v11", T5_V11, True, "bfloat16", "hf-t5-v1.1"),
    ):
        spec = t5_spec(config, v11)
        values = {**values_for(spec, 8), **values_for(adafactor_slots(spec), 9)}
        write_config(_dir(out, name) / "config.json", "t5", "T5ForConditionalGeneration", config)
        prefix = save(out / name / "model.ckpt", values, dtype=dtype, step=1000000)
        add(name, prefix, preset, "T5ForConditionalGeneration", f"{name}/config.json", loader="t5")

    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (out / ".complete").write_text("ok\n")


def _dir(out: Path, name: str) -> Path:
    (out / name).mkdir(parents=True, exist_ok=True)
    return out / name


if __name__ == "__main__":
    main(Path(sys.argv[1]))
