"""The built-in presets against their reference: transformers 4.57's ``load_tf_weights_in_*`` on
the same checkpoint (made by TensorFlow in the original releases' layouts, see
examples/make_hf_checkpoints.py).

For every preset: the safetensors tfckpt writes holds the same keys as the model transformers
loaded (less the tied aliases the preset documents, which transformers also leaves out of saved
files), with the same shapes, dtypes and bytes; it loads into the PyTorch model with
``load_state_dict`` missing exactly those aliases; and ``from_pretrained(dir)`` on the output
directory gives the loader's model back, tied weights included.

Needs torch and transformers<5 (``make test-hf`` installs them); skipped without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import tfckpt

from fixtures import HfFixture

os.environ.setdefault("USE_TF", "0")  # transformers must not import its Keras models
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = [pytest.mark.hf, pytest.mark.tf]

if int(transformers.__version__.split(".")[0]) >= 5:  # pragma: no cover
    pytest.skip("transformers 5 has no TF loaders (the reference)", allow_module_level=True)

CASES = ["bert", "albert", "albert_hub", "electra", "electra_generator", "t5", "t5_v11"]
LOADERS = {
    "bert": "transformers.models.bert.modeling_bert.load_tf_weights_in_bert",
    "albert": "transformers.models.albert.modeling_albert.load_tf_weights_in_albert",
    "electra": "transformers.models.electra.modeling_electra.load_tf_weights_in_electra",
    "t5": "transformers.models.t5.modeling_t5.load_tf_weights_in_t5",
}


def reference(fx: HfFixture) -> tuple[Any, Any]:
    """(config, model) as transformers 4.57's TF loader leaves them."""
    import importlib

    cls = getattr(transformers, fx.model)
    config = cls.config_class.from_json_file(str(fx.config))
    torch.manual_seed(0)
    model = cls(config)
    module, _, function = LOADERS[fx.info["loader"]].rpartition(".")
    loader = getattr(importlib.import_module(module), function)
    loader(model, config, str(fx.path), **fx.info.get("loader_args", {}))
    return config, model


def same_tensor(a: Any, b: Any) -> bool:
    return (
        a.dtype == b.dtype
        and tuple(a.shape) == tuple(b.shape)
        and a.contiguous().view(torch.uint8).flatten().tolist()
        == b.contiguous().view(torch.uint8).flatten().tolist()
    )


def omitted(preset: str) -> set[str]:
    return {t.hf for t in tfckpt.load_preset(preset).tied if not t.emit}


@pytest.mark.parametrize("name", CASES)
def test_preset_equals_the_transformers_loader_bit_for_bit(
    hf_fx: dict[str, HfFixture], tmp_path: Path, name: str
) -> None:
    from safetensors.torch import load_file

    fx = hf_fx[name]
    config, model = reference(fx)
    expected = model.state_dict()
    out = tmp_path / "hf"
    result = tfckpt.export(fx.path, f"{out}/", preset=fx.preset, config=fx.config)
    assert result.ok and result.written and result.config == str(out / "config.json")
    ours = load_file(str(out / "model.safetensors"))
    aliases = omitted(fx.preset)
    assert set(ours) == set(expected) - aliases
    for key, value in ours.items():
        assert same_tensor(value, expected[key]), key

    # Into the PyTorch model: every parameter but the documented tied aliases.
    fresh = type(model)(config)
    missing, unexpected = fresh.load_state_dict(ours, strict=False)
    assert unexpected == [] and set(missing) == aliases
    # from_pretrained on the directory: the loader's model, tied weights included.
    loaded = type(model).from_pretrained(str(out))
    for key, value in loaded.state_dict().items():
        assert same_tensor(value, expected[key]), key


def test_tf_adam_slots_break_the_loader_and_are_dropped_by_the_preset(
    hf_fx: dict[str, HfFixture], tmp_path: Path
) -> None:
    """The trap: tf.train.AdamOptimizer's name/Adam slots walk to the weight itself in the old
    loader, which copies them over the weights and then fails on the embeddings' slots. The
    preset drops them: the export equals the loader's model of the clean checkpoint."""
    from safetensors.torch import load_file

    with pytest.raises(AttributeError):
        reference(hf_fx["bert_tf_adam"])
    _, clean = reference(hf_fx["bert"])
    result = tfckpt.export(hf_fx["bert_tf_adam"].path, tmp_path / "m.safetensors", preset="hf-bert")
    reasons = {d["name"]: d["reason"] for d in result.plan.preset.dropped}
    assert reasons["bert/pooler/dense/bias/Adam"] == "optimizer state"
    assert reasons["beta1_power"] == "optimizer state"
    ours = load_file(str(tmp_path / "m.safetensors"))
    assert set(ours) == set(clean.state_dict()) - omitted("hf-bert")
    for key, value in ours.items():
        assert same_tensor(value, clean.state_dict()[key]), key
