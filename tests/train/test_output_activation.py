"""A model ending in softmax or sigmoid with a loss that takes logits: refused before compiling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP, Dense
from nnjax.train.evaluate import evaluate
from nnjax.train.loop import fit
from nnjax.train.output_activation import final_activation
from nnjax.train.step import split_model
from tests.train._data import blobs, leaves


class Ends(nnx.Module):
    """A model of your own: a dense layer, then ``last``."""

    def __init__(self, last, out=3):
        self.dense = Dense(4, out, rngs=nnx.Rngs(0))
        self.last = last

    def __call__(self, x):
        return self.last(self.dense(x))


def _final(model):
    return final_activation(*split_model(model, training=False), np.ones((2, 4), np.float32))


@pytest.mark.parametrize(
    ("loss", "act", "out"),
    [
        ("cross_entropy", "softmax", 3),
        ("categorical_crossentropy", "softmax", 3),  # Keras's name: logits too
        ("cross_entropy", "sigmoid", 3),
        ("binary_cross_entropy", "sigmoid", 1),
    ],
)
def test_a_squashed_output_with_a_logits_loss_is_refused(loss, act, out):
    x, y = blobs()
    y = y % out if out > 1 else (y > 0).astype(np.float32)
    model = MLP(4, (8,), out, output_activation=act, rngs=nnx.Rngs(0))
    before = leaves(model)
    words = rf"comes out of a {act}, but the loss '{loss}' takes logits"
    with pytest.raises(ValueError, match=words):
        fit(model, (x, y), loss=loss, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=words):
        evaluate(model, (x, y), loss=loss)
    for a, b in zip(leaves(model), before, strict=True):
        np.testing.assert_array_equal(a, b)  # refused before training


@pytest.mark.parametrize("act", [None, "log_softmax", "relu"])
def test_logits_and_log_probabilities_train(act):  # log_softmax twice is log_softmax
    x, y = blobs()
    history = fit(MLP(4, (8,), 3, output_activation=act, rngs=nnx.Rngs(0)), (x, y),
                  loss="cross_entropy", epochs=1, verbose=0)  # fmt: skip
    assert np.isfinite(history.history["loss"][0])


def test_probabilities_with_a_loss_that_takes_them_train():
    x, y = blobs()
    model = MLP(4, (8,), 1, output_activation="sigmoid", rngs=nnx.Rngs(0))
    fit(model, (x, (y > 0).astype(np.float32)[:, None]), loss="mse", epochs=1, verbose=0)


def test_the_last_operation_of_a_model_of_your_own_is_read():
    assert _final(Ends(jax.nn.softmax)) == "softmax"
    assert _final(Ends(jax.nn.sigmoid)) == "sigmoid"
    assert _final(Ends(lambda z: jnp.exp(z) / jnp.exp(z).sum(-1, keepdims=True))) == "softmax"
    assert _final(Ends(lambda z: z / z.sum(-1, keepdims=True))) is None
    assert _final(Ends(lambda z: jax.nn.softmax(z) * 2.0)) is None
    assert _final(Ends(jax.nn.log_softmax)) is None


def test_a_cast_after_the_activation_is_seen_through():
    """A bfloat16 model's output: the activation, then a cast (or a copy, a reshape)."""
    assert _final(Ends(lambda z: jax.nn.softmax(z).astype(jnp.bfloat16))) == "softmax"
    assert _final(Ends(lambda z: jax.nn.sigmoid(z.astype(jnp.float16)).astype(jnp.float32))) == (
        "sigmoid"
    )
    assert _final(Ends(lambda z: jnp.copy(jax.nn.softmax(z)).reshape(-1, 3, 1))) == "softmax"
    assert _final(Ends(lambda z: jax.nn.softmax(z).astype(jnp.int32))) is None  # not a probability
