"""The streaming ``r2`` metric against scikit-learn's ``r2_score`` over any batching."""

import doctest
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import _metrics_r2, metrics, nn, train
from nnjax.errors import ShapeError

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _sklearn(y, p) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its warning for fewer than two samples
        return float(sklearn_metrics.r2_score(np.asarray(y, np.float64), np.asarray(p, np.float64)))


def _batches(rng, n: int, size: int) -> list[tuple[int, int]]:
    """Random cut points: ``(start, stop)`` of batches of 1 to ``size`` rows."""
    cuts, start = [], 0
    while start < n:
        stop = min(n, start + int(rng.integers(1, size + 1)))
        cuts.append((start, stop))
        start = stop
    return cuts


def _junk(a: np.ndarray, rows: int) -> np.ndarray:
    return np.full((rows, *a.shape[1:]), 1e30, a.dtype)


def _streamed(p, y, rng, size: int = 8, *, stacked: bool = False) -> float:
    """R² over random batches, each padded to ``size`` rows with junk (mask 0)."""
    metric = metrics.resolve("r2")
    stats = jax.jit(metric.stats)
    parts = []
    for start, stop in _batches(rng, len(y), size):
        pad = size - (stop - start)
        pb, yb = (np.concatenate([a[start:stop], _junk(a, pad)]) for a in (p, y))
        mask = np.r_[np.ones(stop - start), np.zeros(pad)].astype(np.float32)
        parts.append(jax.device_get(stats(pb, yb, mask)))
    if stacked:  # dispatches of up to 3 steps, as fit's engine stacks them
        groups = [parts[i : i + 3] for i in range(0, len(parts), 3)]
        parts = [{k: np.stack([g[k] for g in group]) for k in group[0]} for group in groups]
    return metric.result(metrics.accumulate(metric, parts, stacked=stacked))


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_over_random_batchings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    shape = [(n,), (n, 1), (n, 3), (n, 2, 2)][seed % 4]
    y = (rng.normal(size=shape) * rng.uniform(0.1, 10) + rng.normal() * 5).astype(np.float32)
    p = (y + rng.normal(size=shape) * rng.uniform(0.1, 3)).astype(np.float32)
    expected = _sklearn(y.reshape(n, -1), p.reshape(n, -1))
    for size, stacked in [(1, False), (4, True), (8, False), (64, True)]:
        value = _streamed(p, y, rng, size, stacked=stacked)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_large_mean_small_variance_float32():
    """y = 1e4 + 0.01 noise in float32: sum(y**2) - sum(y)**2 / n has no digit left."""
    rng = np.random.default_rng(0)
    y = (1e4 + 0.01 * rng.normal(size=(500, 2))).astype(np.float32)
    p = (y + 0.005 * rng.normal(size=y.shape)).astype(np.float32)
    expected = _sklearn(y, p)  # float64 on the float32 values
    assert 0.5 < expected < 0.9
    for seed in range(4):
        value = _streamed(p, y, np.random.default_rng(seed), 32, stacked=seed % 2 == 1)
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-4)
    # the naive formula: float32 batch sums of y and y**2, added up in float64
    total = [0.0, 0.0]
    for start, stop in _batches(rng, len(y), 32):
        batch = jnp.asarray(y[start:stop])
        total[0] += np.asarray(jnp.sum(batch, 0), np.float64)
        total[1] += np.asarray(jnp.sum(batch * batch, 0), np.float64)
    naive_tss = total[1] - total[0] ** 2 / len(y)
    naive = np.mean(1 - np.sum((y.astype(np.float64) - p) ** 2, 0) / naive_tss)
    assert abs(naive - expected) > 0.1


def test_constant_targets_follow_sklearn():
    y = np.full((6, 1), 2.0, np.float32)
    assert _streamed(y.copy(), y, np.random.default_rng(0), 4) == _sklearn(y, y) == 1.0
    p = y + np.arange(6, dtype=np.float32)[:, None]
    assert _streamed(p, y, np.random.default_rng(0), 4) == _sklearn(y, p) == 0.0
    # one constant output fit imperfectly (0) and one ordinary output: their mean
    y2 = np.c_[y, np.arange(6.0)].astype(np.float32)
    p2 = np.c_[p, np.arange(6.0) + 0.5].astype(np.float32)
    expected = _sklearn(y2, p2)
    np.testing.assert_allclose(_streamed(p2, y2, np.random.default_rng(1), 4), expected, atol=1e-6)
    # a constant 0.1 (not a float32 binary fraction) is constant too: 0, where
    # scikit-learn's float64 mean leaves rounding noise as the total sum of squares
    y3 = np.full((3, 1), 0.1, np.float32)
    assert (
        _streamed(y3 + np.array([[0.0], [0.0], [0.1]], np.float32), y3, np.random.default_rng(0), 2)
        == 0.0
    )


def test_fewer_than_two_rows_is_nan_as_sklearn():
    assert np.isnan(_streamed(np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32),
                              np.random.default_rng(0), 4))  # fmt: skip
    assert np.isnan(_sklearn([0.0], [1.0]))
    metric = metrics.resolve("r2")
    empty = metric.stats(jnp.ones((3, 1)), jnp.zeros((3, 1)), jnp.zeros(3))
    assert np.isnan(metric.result(metrics.accumulate(metric, [empty, empty])))


def test_merge_is_order_independent():
    rng = np.random.default_rng(3)
    metric = metrics.resolve("r2")
    y = rng.normal(size=(40, 2)).astype(np.float32) + 100
    p = y + rng.normal(size=y.shape).astype(np.float32)
    parts = [metric.stats(p[i : i + 5], y[i : i + 5], jnp.ones(5)) for i in range(0, 40, 5)]
    forward = metric.result(metrics.accumulate(metric, parts))
    backward = metric.result(metrics.accumulate(metric, parts[::-1]))
    halves = [metrics.accumulate(metric, parts[:3]), metrics.accumulate(metric, parts[3:])]
    tree = metric.result(metrics.accumulate(metric, halves))
    np.testing.assert_allclose([backward, tree], [forward, forward], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward, _sklearn(y, p), rtol=1e-6, atol=1e-6)


def test_shape_errors_name_r2():
    metric = metrics.resolve("R2")
    with pytest.raises(ShapeError, match=r"r2: `predictions` has shape \(4, 2\) but `targets`"):
        metric.stats(jnp.zeros((4, 2)), jnp.zeros(4), jnp.ones(4))
    flat = metric.stats(jnp.arange(4.0)[:, None], jnp.arange(4.0) ** 2, jnp.ones(4))
    column = metric.stats(jnp.arange(4.0)[:, None], jnp.arange(4.0)[:, None] ** 2, jnp.ones(4))
    assert metric.result(flat) == metric.result(column)  # targets (B,) for outputs (B, 1)
    with pytest.raises(ShapeError, match=r"r2: `mask` has shape \(3,\), expected \(4,\)"):
        metric.stats(jnp.zeros((4, 1)), jnp.zeros((4, 1)), jnp.ones(3))


def test_fit_and_evaluate_log_r2_of_the_model():
    """20 examples in batches of 8 over the 4 test devices (the last batch padded),
    weights held (set_to_zero): the logged R² is scikit-learn's on the initial model."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = (x @ rng.normal(size=(3, 2)) + 50).astype(np.float32)
    model = nn.MLP(3, (8,), 2, rngs=nnx.Rngs(0))
    expected = _sklearn(y, np.asarray(model(jnp.asarray(x))))
    history = train.fit(
        model, (x, y), loss="mse", optimizer=optax.set_to_zero(), metrics=["r2"],
        epochs=1, batch_size=8, verbose=0,
    )  # fmt: skip
    np.testing.assert_allclose(history.history["r2"][0], expected, rtol=1e-5, atol=1e-5)
    logs = train.evaluate(model, (x, y), loss="mse", metrics=["r2"], batch_size=6)
    np.testing.assert_allclose(logs["r2"], expected, rtol=1e-5, atol=1e-5)


def test_module_examples():
    result = doctest.testmod(
        _metrics_r2, globs={"jax": jax, "jnp": jnp, "np": np, **vars(_metrics_r2)},
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, report=True,
    )  # fmt: skip
    assert result.attempted > 0 and result.failed == 0
