"""A loss of your own that broadcasts (B,) labels against (B, 1) outputs: a warning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.evaluate import evaluate
from nnjax.train.label_broadcast import broadcasts_labels
from nnjax.train.loop import fit

WORDS = r"broadcasts them into a \(B, B\) array"


def _regression(n=32):
    x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    return x, x.sum(1).astype(np.float32)


def _model():
    return MLP(3, (8,), 1, rngs=nnx.Rngs(0))


def squared(p, t):
    return jnp.mean((p - t) ** 2)


@jax.jit
def squared_jitted(p, t):
    return jnp.mean(jnp.abs(p - t))


@pytest.mark.parametrize("loss", [squared, squared_jitted])
def test_fit_and_evaluate_warn_when_the_loss_compares_every_output_with_every_label(loss):
    data = _regression()
    with jax.numpy_rank_promotion("allow"), pytest.warns(UserWarning, match=WORDS):
        fit(_model(), data, loss=loss, verbose=0)
    with jax.numpy_rank_promotion("allow"), pytest.warns(UserWarning, match=WORDS):
        evaluate(_model(), data, loss=loss)


@pytest.mark.parametrize(
    "loss", ["mse", lambda p, t: jnp.mean((p[:, 0] - t) ** 2), lambda p, t: jnp.mean(p) - t[0]]
)
def test_no_warning_for_named_losses_and_aligned_ones(loss):  # warnings are errors here
    fit(_model(), _regression(), loss=loss, verbose=0)


def test_no_warning_when_the_labels_have_the_outputs_shape():
    x, y = _regression()
    fit(_model(), (x, y[:, None]), loss=squared, verbose=0)


def test_pairwise_values_of_another_shape_are_not_taken_for_it():
    assert broadcasts_labels(squared, np.float32)
    assert not broadcasts_labels(lambda p, t: jnp.mean(p[:, 0] * t), np.float32)
    assert not broadcasts_labels(lambda p, t: jnp.mean(p @ p.T) + jnp.mean(t), np.float32)
    assert not broadcasts_labels(ranknet, np.float32)  # (B, B) of the labels on purpose
    assert not broadcasts_labels(lambda p, t: p.mean() + (t[:, None] - t).mean(), np.float32)


def ranknet(p, t):
    """A pairwise ranking loss: aligned scores, a label-order matrix built on purpose."""
    scores = p[:, 0]
    order = jnp.sign(t[:, None] - t[None, :])
    return jnp.mean(jax.nn.softplus(-order * (scores[:, None] - scores[None, :])))


def broadcast_loss_fn(model, batch):
    """The audit's weighted loss_fn: (B, 1) outputs against (B,) labels."""
    return jnp.sum((model(batch.x) - batch.y) ** 2 * batch.weight[:, None]) / jnp.sum(batch.weight)


@pytest.mark.parametrize("n", [32, 40], ids=["whole-batches", "padded-last-batch"])
def test_a_loss_fn_that_broadcasts_labels_against_outputs_is_named(n):
    with (
        jax.numpy_rank_promotion("allow"),
        pytest.warns(UserWarning, match="loss_fn compares model outputs") as caught,
    ):
        fit(_model(), _regression(n), loss_fn=broadcast_loss_fn, verbose=0)
    assert any("model(batch.x)[:, 0]" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda m, b: jnp.mean((m(b.x)[:, 0] - b.y) ** 2 * b.weight),
        lambda m, b: jnp.mean(jax.nn.softplus(-jnp.sign(b.y[:, None] - b.y[None]) * m(b.x))),
    ],
    ids=["aligned", "pairwise-labels-on-purpose"],
)
def test_no_warning_for_a_loss_fn_that_aligns_its_labels(loss_fn):  # warnings are errors
    fit(_model(), _regression(), loss_fn=loss_fn, verbose=0)


def test_no_warning_for_a_loss_fn_given_labels_of_the_outputs_shape():
    x, y = _regression()
    fit(_model(), (x, y[:, None]), loss_fn=broadcast_loss_fn, verbose=0)
