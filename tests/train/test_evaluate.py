"""Tests for nnjax.train.evaluate: evaluate and predict cover every example exactly once."""

import itertools

import jax
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.train.evaluate import compiled_predict
from tests.train._data import blobs, mlp


@pytest.mark.parametrize("devices", [jax.devices()[:1], jax.devices()])
def test_evaluate_matches_a_direct_computation(devices):
    x, y = blobs(n=22)  # 22 = 2 full batches of 8 and a padded one
    model = mlp()
    logs = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8, devices=devices)
    logits = np.asarray(model(x))
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        logs["accuracy"], np.mean(logits.argmax(-1) == y), rtol=1e-6, atol=1e-6
    )


def test_predict_matches_model_and_does_not_retrace():
    x, _ = blobs(n=11)
    model = mlp(dropout=0.5)  # inference mode: dropout off
    model.eval()
    expected = np.asarray(model(x))
    np.testing.assert_allclose(T.predict(model, x, batch_size=4), expected, rtol=1e-6, atol=1e-6)
    out = T.predict(model, x, batch_size=4)
    assert out.shape == (11, 3)
    fn = compiled_predict(T.graphdef_for(model, training=False))
    assert fn._cache_size() == 1


def test_predict_takes_an_iterable_of_batches_like_fit():
    x, y = blobs(n=11)
    model = mlp()
    model.eval()
    expected = np.asarray(model(x))
    # memoised per graphdef: other tests' MLPs of this structure may have compiled it too
    fn = compiled_predict(T.graphdef_for(model, training=False))
    before = fn._cache_size()
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 11, 4)]  # 4, 4 and 3 (padded)
    np.testing.assert_allclose(T.predict(model, batches), expected, rtol=1e-6, atol=1e-6)
    bare = (x[i : i + 4] for i in range(0, 11, 4))  # a generator of inputs alone
    np.testing.assert_allclose(T.predict(model, bare), expected, rtol=1e-6, atol=1e-6)
    endless = itertools.cycle([x[:4]])
    twice = np.concatenate([expected[:4]] * 2)
    np.testing.assert_allclose(T.predict(model, endless, steps=2), twice, rtol=1e-6, atol=1e-6)
    assert fn._cache_size() - before <= 1  # every batch, padded or not, runs one program


def test_predict_names_bad_iterables():
    x, _ = blobs(n=8)
    model = mlp()
    with pytest.raises(TypeError, match="predict: `x` must be"):
        T.predict(model, 3.0)
    with pytest.raises(ValueError, match="batch 1"):
        T.predict(model, [x[:4], x[:4, :2]])
