"""Streaming metrics keep float64 predictions and targets under ``jax_enable_x64``."""

import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import metrics


def _value(name, pred, y):
    metric = metrics.resolve(name)
    return metric.result(metric.stats(jnp.asarray(pred), jnp.asarray(y), jnp.ones(len(y))))


def test_r2_of_large_targets_matches_sklearn(x64):
    rng = np.random.default_rng(0)
    y = 1e6 + rng.normal(size=(64, 1)) * 1e-3
    pred = y + rng.normal(size=(64, 1)) * 1e-4
    ss_res, ss_tot = np.sum((y - pred) ** 2), np.sum((y - y.mean()) ** 2)
    assert abs(_value("r2", pred, y) - (1 - ss_res / ss_tot)) < 1e-6


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_mean_metrics_are_float64(x64, name):
    rng = np.random.default_rng(1)
    y, pred = 1e6 + rng.normal(size=(50, 2)), 1e6 + rng.normal(size=(50, 2))
    want = np.mean((pred - y) ** 2) if name == "mse" else np.mean(np.abs(pred - y))
    assert abs(_value(name, pred, y) - want) <= 1e-13 * want


def test_a_function_metric_is_float64(x64):
    metric = metrics.resolve(lambda p, y: jnp.mean(p - y))
    pred = jnp.asarray([1e8 + 0.25, 1e8 + 0.75])
    stats = metric.stats(pred, jnp.full(2, 1e8), jnp.ones(2))
    assert metric.result(stats) == 0.5 and stats["sum"].dtype == jnp.float64
