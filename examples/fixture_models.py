"""Model classes used by the fixtures, importable by tests so they can rebuild and restore them."""

from __future__ import annotations

from typing import Any

KERAS_LAYERS = (4, 2)
KERAS_INPUT = 3


def build_keras_model(tf: Any) -> Any:
    """The small Sequential model saved in the ``tf2_keras`` fixture."""
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(KERAS_INPUT,)),
            tf.keras.layers.Dense(KERAS_LAYERS[0], activation="relu"),
            tf.keras.layers.Dense(KERAS_LAYERS[1]),
        ]
    )
    return model


def make_net(tf: Any, enc_attr: str = "enc", dec_attr: str = "dec") -> Any:
    """A ``tf.Module`` with two submodules; the attribute names are parameters so a test can
    build the same structure under new names (e.g. ``encoder``) after a rename."""

    class Block(tf.Module):
        def __init__(self, n_in: int, n_out: int, seed: int) -> None:
            super().__init__()
            rng = tf.random.Generator.from_seed(seed)
            self.w = tf.Variable(rng.normal((n_in, n_out)), name="w")
            self.b = tf.Variable(tf.zeros((n_out,)), name="b")

    class Net(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            setattr(self, enc_attr, Block(4, 3, 1))
            setattr(self, dec_attr, Block(3, 2, 2))

    return Net()
