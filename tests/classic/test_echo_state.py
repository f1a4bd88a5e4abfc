"""Tests for nnjax.classic.echo_state: reservoir, ridge readout, Mackey–Glass prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic
from tests._lazy import made_once


def test_reservoir_density_and_spectral_radius(key):
    params = classic.esn_init(key, 2, 400, density=0.01, spectral_radius=0.85)
    w = np.asarray(params["w"], np.float64)
    assert params["w_in"].shape == (2, 400)
    assert np.count_nonzero(w) / w.size == pytest.approx(0.01, rel=0.15)
    radius = np.max(np.abs(np.linalg.eigvals(w)))
    assert radius == pytest.approx(0.85, rel=1e-4)


def test_states_against_python_loop(key):
    params = classic.esn_init(key, 2, 30, density=0.2)
    u = jax.random.normal(jax.random.key(1), (6, 2))
    ours = classic.esn_states(params, u, leak_rate=0.7)
    w_in, w = np.asarray(params["w_in"]), np.asarray(params["w"])
    x, ref = np.zeros(30), []
    for t in range(6):
        x = 0.3 * x + 0.7 * np.tanh(np.asarray(u[t]) @ w_in + x @ w)
        ref.append(x)
    np.testing.assert_allclose(ours, np.stack(ref), rtol=1e-5, atol=1e-6)


def test_ridge_readout_against_numpy(key):
    x = np.asarray(jax.random.normal(key, (40, 5)), np.float64)
    y = x @ np.arange(10.0).reshape(5, 2) + 0.1 * np.sin(np.arange(80.0)).reshape(40, 2)
    r = classic.esn_fit_readout(x.astype(np.float32), y.astype(np.float32), ridge=0.5)
    # Reference: the normal equations with an unpenalised bias (centred data).
    xc, yc = x - x.mean(0), y - y.mean(0)
    kernel = np.linalg.solve(xc.T @ xc + 0.5 * np.eye(5), xc.T @ yc)
    np.testing.assert_allclose(r["kernel"], kernel, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["bias"], y.mean(0) - x.mean(0) @ kernel, atol=1e-4)


def test_mackey_glass_against_numpy_euler():
    ours = np.asarray(classic.mackey_glass(50, washout=20))
    dt, delay = 0.1, 170
    hist = [1.2] * (delay + 1)  # x(t - τ) ... x(t), constant history
    xs = []
    for _ in range((20 + 50) * 10):
        x, lagged = hist[-1], hist[-1 - delay]
        hist.append(x + dt * (0.2 * lagged / (1 + lagged**10) - 0.1 * x))
        xs.append(hist[-1])
    np.testing.assert_allclose(ours, np.array(xs[9::10])[20:], rtol=1e-4, atol=0.0001)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_predicts_mackey_glass_ahead(key):
    # Measured NRMSE ≈ 0.015-0.03 (5 steps ahead, 300 units, 1% ... 2% density); bound 0.08.
    horizon = 5
    series = classic.mackey_glass(1600)
    u, target = series[:-horizon, None] - 0.9, series[horizon:, None]
    params = classic.esn_init(key, 1, 300, density=0.02, spectral_radius=0.9)
    states = classic.esn_states(params, u)
    readout = classic.esn_fit_readout(states[100:1200], target[100:1200])
    error = classic.nrmse(classic.esn_readout(readout, states[1200:]), target[1200:])
    assert float(error) < 0.08


def test_mackey_glass_does_not_retrace(key):
    classic.mackey_glass(20, key=key)
    before = classic.mackey_glass._cache_size()
    classic.mackey_glass(20, key=jax.random.key(5))
    assert classic.mackey_glass._cache_size() == before


def test_errors(key):
    with pytest.raises(ValueError, match="esn_init: `density`"):
        classic.esn_init(key, 1, 10, density=0.0)
    with pytest.raises(ValueError, match="esn_init: `spectral_radius`"):
        classic.esn_init(key, 1, 10, spectral_radius=-1.0)
    params = classic.esn_init(key, 2, 20, density=0.3)
    with pytest.raises(AssertionError, match=r"esn_states: argument `inputs` has shape \(5, 3\)"):
        classic.esn_states(params, jnp.ones((5, 3)))


@made_once
def _esn() -> dict[str, jax.Array]:
    """A 3-unit reservoir, made when first used (at import it compiled programs)."""
    return {"w_in": jnp.ones((1, 3)) * 0.1, "w": jnp.eye(3) * 0.5}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda k: classic.esn_init(k, 1, 0), "esn_init: `reservoir_size` must be a positive int"),
        (lambda k: classic.esn_init(k, 1, -3), "esn_init: `reservoir_size`"),
        (lambda k: classic.esn_init(k, 0, 10), "esn_init: `in_features` must be a positive int"),
        (lambda k: classic.esn_init(k, 1.5, 10), "esn_init: `in_features`"),
        (
            lambda k: classic.esn_states(_esn(), jnp.ones((4, 1)), leak_rate=0.0),
            r"esn_states: `leak_rate` must be in \(0, 1\], got 0.0",
        ),
        (
            lambda k: classic.esn_states(_esn(), jnp.ones((4, 1)), leak_rate=1.5),
            "esn_states: `leak_rate`",
        ),
        (
            lambda k: classic.esn_fit_readout(jnp.eye(3), jnp.ones((3, 1)), ridge=-1.0),
            "esn_fit_readout: `ridge` must be >= 0, got -1.0",
        ),
        (lambda k: classic.mackey_glass(10, dt=0.0), "mackey_glass: `dt` must be > 0"),
        (lambda k: classic.mackey_glass(10, dt=-0.1), "mackey_glass: `dt`"),
        (lambda k: classic.mackey_glass(10, subsample=0), "mackey_glass: `subsample` must be a"),
        (lambda k: classic.mackey_glass(5, tau=0), "mackey_glass: `tau` / `dt` = 0 / 0.1 rounds"),
        (lambda k: classic.mackey_glass(5, tau=1, dt=4.0), "mackey_glass: `tau` / `dt`"),
        (lambda k: classic.mackey_glass(-1), "mackey_glass: `length` must be a non-negative"),
        (lambda k: classic.mackey_glass(5, washout=-2), "mackey_glass: `washout` must be a non-n"),
    ],
)
def test_bad_arguments_are_named(key, call, match):
    with pytest.raises(ValueError, match=match):
        call(key)


def test_boundary_arguments_are_accepted(key):
    states = classic.esn_states(_esn(), jnp.ones((4, 1)), leak_rate=1.0)
    assert states.shape == (4, 3)
    # A traced leak rate is not checked by value.
    traced = jax.jit(lambda a: classic.esn_states(_esn(), jnp.ones((4, 1)), leak_rate=a))(1.0)
    np.testing.assert_allclose(traced, states, rtol=1e-6, atol=1e-7)
    readout = classic.esn_fit_readout(jnp.eye(3), jnp.ones((3, 1)), ridge=0.0)
    assert readout["kernel"].shape == (3, 1)
    assert classic.mackey_glass(3, washout=0).shape == (3,)
    assert classic.mackey_glass(0, washout=2).shape == (0,)


def test_esn_states_compiles_once_per_shape():
    """Eager calls reuse one program (the scan was compiled anew at every call)."""
    from nnjax.classic import echo_state

    p = classic.esn_init(jax.random.key(0), 2, 20, density=0.2)
    classic.esn_states(p, jnp.ones((9, 2)))
    before = echo_state._drive._cache_size()
    x = classic.esn_states(p, jnp.full((9, 2), 0.5, jnp.float32), leak_rate=0.3)
    assert echo_state._drive._cache_size() == before
    np.testing.assert_allclose(
        x,
        jax.jit(classic.esn_states)(p, jnp.full((9, 2), 0.5, jnp.float32), leak_rate=0.3),
        rtol=1e-6,
        atol=1e-6,
    )


def _centered_lstsq(x, y):
    """NumPy reference: minimum-norm least squares on centred float64 data, and the bias."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    kernel = np.linalg.lstsq(x - x_mean, y - y_mean, rcond=None)[0]
    return kernel, y_mean - x_mean @ kernel


def test_ridge_zero_is_the_minimum_norm_least_squares_fit():
    # ridge=0 gave NaN (0 / 0 for the zero singular values of a constant column).
    # Shapes as in test_ridge_readout_against_numpy: the eager ops are compiled already.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    x[:, 3] = 0.5  # constant: centred to zero
    x[:, 4] = x[:, 0]  # duplicated: the minimum-norm fit splits the weight
    y = x[:, :3] @ rng.normal(size=(3, 2)) + 1.0 + rng.normal(scale=0.1, size=(40, 2))
    y = y.astype(np.float32)
    readout = classic.esn_fit_readout(x, y, ridge=0.0)
    kernel, bias = _centered_lstsq(x, y)
    np.testing.assert_allclose(readout["kernel"], kernel, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(readout["bias"], bias, rtol=1e-4, atol=1e-4)
    one_row = classic.esn_fit_readout(x[:1], y[:1], ridge=0.0)  # all centred to zero
    np.testing.assert_array_equal(one_row["kernel"], np.zeros((5, 2)))
    np.testing.assert_allclose(one_row["bias"], y[0], rtol=1e-6, atol=0)


def test_ridge_readout_leaves_the_bias_unpenalised_as_documented():
    rng = np.random.default_rng(1)
    x, y, ridge = rng.normal(size=(40, 5)), rng.normal(size=(40, 2)), 10.0
    readout = classic.esn_fit_readout(
        jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), ridge=ridge
    )
    # NumPy reference: min ||X W + 1 bᵀ − Y||² + ridge ||W||², normal equations in float64.
    a = np.hstack([x, np.ones((40, 1))])
    theta = np.linalg.solve(a.T @ a + ridge * np.diag([1.0] * 5 + [0.0]), a.T @ y)
    np.testing.assert_allclose(readout["kernel"], theta[:5], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(readout["bias"], theta[5], rtol=1e-4, atol=1e-5)
    # The docstring said ``θ = (Aᵀ A + ridge I)⁻¹ Aᵀ Y``, which penalises the bias.
    assert "||X W + 1 bᵀ − Y||² + ridge ||W||²" in classic.esn_fit_readout.__doc__


@pytest.mark.parametrize("name", ["spectral_radius", "input_scale"])
@pytest.mark.parametrize("value", [float("inf"), np.float32("inf")])
def test_esn_init_refuses_infinite_scales(key, name, value):
    # spectral_radius=inf gave a recurrent matrix of inf and NaN.
    with pytest.raises(ValueError, match=rf"^esn_init: `{name}` must be finite and > 0, got"):
        classic.esn_init(key, 1, 10, density=0.5, **{name: value})


def test_nrmse_of_constant_targets_is_inf_as_documented():
    assert float(classic.nrmse(jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0]))) == np.inf
    assert np.isnan(float(classic.nrmse(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]))))
    assert "Constant" in classic.nrmse.__doc__ and "``inf``" in classic.nrmse.__doc__
