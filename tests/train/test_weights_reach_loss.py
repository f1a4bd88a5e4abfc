"""Sample and class weights with a loss of your own: refused unless they can reach it."""

import numpy as np
import optax
import pytest

from nnjax.train.loop import fit
from nnjax.train.sweep import grid, sweep
from tests.train._data import blobs, leaves, mlp

WORDS = r"weighs its examples .* returns one value for the whole batch"


def batch_ce(p, t):
    return optax.softmax_cross_entropy_with_integer_labels(p, t).mean()


def per_example_ce(p, t, *, reduction="mean"):
    values = optax.softmax_cross_entropy_with_integer_labels(p, t)
    return values if reduction == "none" else values.mean()


def _weighted(kind):
    x, y = blobs()
    if kind == "class_weight":
        return (x, y), {"class_weight": {0: 1.0, 1: 3.0, 2: 1.0}}
    return (x, y, np.linspace(0.0, 1.0, len(y)).astype(np.float32)), {}


@pytest.mark.parametrize("kind", ["class_weight", "sample_weight"])
def test_weights_with_a_batch_level_loss_are_refused_before_training(kind):
    data, kw = _weighted(kind)
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=WORDS):
        fit(model, data, loss=batch_ce, verbose=0, **kw)
    with pytest.raises(ValueError, match=WORDS):
        sweep(lambda rngs: mlp(), data, loss=batch_ce, members=grid(seeds=[0]), **kw)
    for a, b in zip(leaves(model), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["class_weight", "sample_weight"])
def test_a_loss_with_reduction_is_weighted_as_the_named_one(kind):
    data, kw = _weighted(kind)
    ours, named = mlp(), mlp()
    fit(ours, data, loss=per_example_ce, epochs=2, verbose=0, **kw)
    fit(named, data, loss="cross_entropy", epochs=2, verbose=0, **kw)
    for a, b in zip(leaves(ours), leaves(named), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unweighted_data_takes_a_batch_level_loss():
    x, y = blobs()
    fit(mlp(), (x, y, np.ones(len(y), np.float32)), loss=batch_ce, verbose=0)
