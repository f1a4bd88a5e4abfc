"""Tests for nnjax.train.mc_dropout: Monte Carlo dropout prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP, Dense
from nnjax.train import mc_dropout as M


class LinearWithInputDropout(nnx.Module):
    """``Dense(dropout(x))``: linear, so E[output] is the deterministic output."""

    def __init__(self, rate, *, rngs, on_call=None):
        self.dropout = nnx.Dropout(rate, rngs=rngs)
        self.dense = Dense(8, 3, rngs=rngs)
        self.on_call = on_call

    def __call__(self, x):
        if self.on_call is not None:
            self.on_call()
        return self.dense(self.dropout(x))


def _x(key, batch=5):
    return jax.random.normal(key, (batch, 8))


def _deterministic(model, x):
    return nnx.view(model, deterministic=True)(x)


def test_rate_zero_gives_zero_std_and_deterministic_mean(key):
    model = LinearWithInputDropout(0.0, rngs=nnx.Rngs(0))
    x = _x(key)
    mean, std = M.mc_dropout_predict(model, x, n_samples=4, seed=0)
    np.testing.assert_array_equal(std, 0.0)
    np.testing.assert_allclose(mean, _deterministic(model, x), rtol=1e-6, atol=1e-6)


def test_model_without_dropout_gives_zero_std(key):
    model = MLP(8, (4,), 2, rngs=nnx.Rngs(0))
    mean, std = M.mc_dropout_predict(model, _x(key), n_samples=3)
    np.testing.assert_array_equal(std, 0.0)
    np.testing.assert_allclose(mean, model(_x(key)), rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_linear_model_mean_is_close_to_deterministic_output(key):
    model = LinearWithInputDropout(0.3, rngs=nnx.Rngs(params=0, dropout=1))
    x = _x(key)
    n = 1000
    mean, std = M.mc_dropout_predict(model, x, n_samples=n, seed=3)
    assert jnp.all(std > 0)
    # Inverted dropout is unbiased: the MC mean is within a few standard errors.
    error = jnp.abs(mean - _deterministic(model, x))
    assert jnp.all(error <= 5 * std / np.sqrt(n) + 1e-5)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_mean_and_std_are_those_of_the_samples(key):
    model = MLP(8, (16, 16), 2, dropout=0.5, rngs=nnx.Rngs(0))  # stream tagged "default"
    x = _x(key)
    samples = M.mc_dropout_samples(model, x, n_samples=6, seed=2)
    mean, std = M.mc_dropout_predict(model, x, n_samples=6, seed=2)
    assert samples.shape == (6, 5, 2)
    np.testing.assert_allclose(mean, samples.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, samples.std(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(samples[0], samples[1])  # independent masks per sample


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_reproducible_given_seed_and_model_left_unchanged(key):
    model = LinearWithInputDropout(0.5, rngs=nnx.Rngs(0))
    before = jax.tree.map(jnp.array, nnx.state(model, nnx.RngCount))
    x = _x(key)
    a = M.mc_dropout_predict(model, x, n_samples=8, seed=7)
    model(x)  # advancing the model's own stream does not change the MC result
    b = M.mc_dropout_predict(model, x, n_samples=8, seed=jax.random.key(7))
    c = M.mc_dropout_predict(model, x, n_samples=8, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    count = nnx.state(model, nnx.RngCount)["dropout"]["rngs"]["count"][...]
    assert int(count) == int(before["dropout"]["rngs"]["count"][...]) + 1  # only model(x)


def test_no_recompilation_on_second_call(key):
    traces = []
    model = LinearWithInputDropout(0.5, rngs=nnx.Rngs(0), on_call=lambda: traces.append(1))
    x = _x(key)
    M.mc_dropout_predict(model, x, n_samples=4, seed=0)
    n = len(traces)
    assert n > 0
    M.mc_dropout_predict(model, x + 1, n_samples=4, seed=1)
    assert len(traces) == n


def test_bad_n_samples_is_reported(key):
    model = LinearWithInputDropout(0.5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="n_samples"):
        M.mc_dropout_predict(model, _x(key), n_samples=0)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_nnjax_layers_in_eval_mode_dropout_on_and_running_averages_used(key):
    from nnjax.nn import BatchNorm, Dropout, Sequential

    rngs = nnx.Rngs(0)
    x = _x(key)
    model = Sequential(Dense(8, 4, rngs=rngs), BatchNorm(4, rngs=rngs), Dropout(0.0, rngs=rngs))
    model(x)  # one training-mode pass moves the running statistics off their init
    mean, std = M.mc_dropout_predict(model, x, n_samples=3)  # model still in training mode
    np.testing.assert_array_equal(std, 0.0)
    inference = nnx.view(model, use_running_average=True, deterministic=True)
    np.testing.assert_allclose(mean, inference(x), rtol=1e-5, atol=1e-6)  # running averages
    assert not np.allclose(mean, model(x), atol=1e-3)  # not batch statistics

    noisy = Sequential(Dense(8, 4, rngs=rngs), BatchNorm(4, rngs=rngs), Dropout(0.5, rngs=rngs))
    noisy.eval()
    assert jnp.all(M.mc_dropout_predict(noisy, x, n_samples=3)[1].max(axis=0) > 0)
