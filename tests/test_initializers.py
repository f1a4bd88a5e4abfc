"""nnjax.initializers: the variance rules and orthogonality, checked statistically."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import initializers

FAN_IN, FAN_OUT = 400, 300


def _draw(name, shape=(FAN_IN, FAN_OUT), seed=0):
    return np.asarray(initializers.get(name)(jax.random.key(seed), shape, jnp.float32))


@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("glorot_uniform", 2.0 / (FAN_IN + FAN_OUT)),
        ("glorot_normal", 2.0 / (FAN_IN + FAN_OUT)),
        ("he_uniform", 2.0 / FAN_IN),
        ("he_normal", 2.0 / FAN_IN),
        ("lecun_uniform", 1.0 / FAN_IN),
        ("lecun_normal", 1.0 / FAN_IN),
    ],
)
def test_variance_scaling_rules(name, variance):
    w = _draw(name)
    assert abs(w.mean()) < 0.02 * np.sqrt(variance)
    np.testing.assert_allclose(w.var(), variance, rtol=0.05, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "limit"),
    [("glorot_uniform", np.sqrt(6.0 / (FAN_IN + FAN_OUT))), ("he_uniform", np.sqrt(6.0 / FAN_IN))],
)
def test_uniform_bounds(name, limit):
    w = _draw(name)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.95 * limit


def test_conv_kernel_fans_include_receptive_field():
    # (kh, kw, in, out): fan_in = kh*kw*in.
    w = _draw("he_normal", (3, 3, 64, 128))
    np.testing.assert_allclose(w.var(), 2.0 / (3 * 3 * 64), rtol=0.05, atol=1e-6)


def test_orthogonal_is_orthogonal():
    w = _draw("orthogonal", (64, 64))
    np.testing.assert_allclose(w.T @ w, np.eye(64), atol=1e-5)


def test_zeros_ones_and_dtype():
    key = jax.random.key(0)
    assert not np.any(initializers.get("zeros")(key, (3,)))
    np.testing.assert_array_equal(initializers.get("ones")(key, (3,)), np.ones(3))
    assert initializers.init_param("he_normal", key, (2, 2), jnp.bfloat16).dtype == jnp.bfloat16


def test_deterministic_given_key():
    np.testing.assert_array_equal(_draw("glorot_uniform", seed=3), _draw("glorot_uniform", seed=3))
    assert not np.array_equal(_draw("glorot_uniform", seed=3), _draw("glorot_uniform", seed=4))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown initializer 'kaiming'.*he_normal"):
        initializers.get("kaiming")
    with pytest.raises(TypeError):
        initializers.get(1.0)


@pytest.mark.parametrize("name", ["orthogonal", "glorot_uniform", "he_normal"])
def test_low_precision_dtypes(name):
    w = initializers.init_param(name, jax.random.key(0), (16, 16), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    full = initializers.init_param(name, jax.random.key(0), (16, 16), jnp.float32)
    np.testing.assert_allclose(np.asarray(w, np.float32), full, rtol=1e-2, atol=1e-2)
