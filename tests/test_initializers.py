"""nnjax.initializers: the variance rules and orthogonality, checked statistically."""

import re

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


@pytest.mark.parametrize(
    ("factory", "call"),
    [
        (initializers.he_normal, "he_normal()"),
        (initializers.orthogonal, "orthogonal()"),
        (initializers.constant, "constant(value)"),
        (jax.nn.initializers.variance_scaling, "variance_scaling(scale, mode, distribution)"),
    ],
)
def test_an_uncalled_factory_is_told_to_be_called(factory, call):
    # was accepted, then "'function' object has no attribute 'astype'"
    name = factory.__name__
    pattern = rf"got the factory {name}, .*pass {re.escape(call)}, not {name}$"
    with pytest.raises(TypeError, match=pattern):
        initializers.get(factory)
    with pytest.raises(TypeError, match=pattern):
        initializers.init_param(factory, jax.random.key(0), (3, 2), jnp.float32)


def test_an_uncalled_factory_names_the_layer_or_function_argument():
    from flax import nnx

    from nnjax import functional as F
    from nnjax import nn

    he = "pass he_normal\\(\\), not he_normal"
    with pytest.raises(TypeError, match=he):
        F.dense_init(jax.random.key(0), 3, 2, kernel_init=initializers.he_normal)
    with pytest.raises(TypeError, match=rf"^Dense: `kernel_init`: .*{he}"):
        nn.Dense(3, 2, kernel_init=initializers.he_normal, rngs=nnx.Rngs(0))
    params = F.dense_init(jax.random.key(0), 3, 2, kernel_init=initializers.he_normal())
    assert params["kernel"].shape == (3, 2)


@pytest.mark.parametrize(
    ("init", "got"),
    [
        (lambda key, shape, dtype: jnp.ones(3), r"an array of shape \(3,\)"),
        (lambda key, shape, dtype: 1.0, "float 1.0"),
        (lambda key, shape, dtype: jnp.ones(shape, bool), "an array of dtype bool"),
        (lambda key, shape, dtype: jnp.ones(shape, jnp.complex64), "an array of dtype complex64"),
        (lambda *args: initializers.he_normal, "a function, he_normal"),
    ],
)
def test_an_initializer_that_returns_no_array_of_the_shape_is_named(init, got):
    pattern = rf"^init_param: initializer <lambda> returned {got}.*shape \(3, 2\) and dtype float32"
    with pytest.raises(TypeError, match=pattern):
        initializers.init_param(init, jax.random.key(0), (3, 2), jnp.float32)
    ok = initializers.init_param(lambda k, s, d: np.ones(s), jax.random.key(0), [3, 2], jnp.float32)
    assert ok.shape == (3, 2) and ok.dtype == jnp.float32  # a NumPy float64 is cast, as before


@pytest.mark.parametrize("name", ["uniform", "truncated_normal"])
def test_a_complex_dtype_from_a_real_only_initializer_is_a_type_error(name):
    # was a ShapeError about the shape (8, 4)
    pattern = rf"^init_param: initializer '{name}' draws real values only, not dtype complex64"
    with pytest.raises(TypeError, match=pattern):
        initializers.init_param(name, jax.random.key(0), (8, 4), jnp.complex64)
    with pytest.raises(TypeError, match=r"initializer truncated_normal\.<locals>\.init draws real"):
        init = initializers.truncated_normal()
        initializers.init_param(init, jax.random.key(0), (8, 4), jnp.complex64)


@pytest.mark.parametrize("name", ["he_normal", "orthogonal", "normal"])
def test_complex_initializers_still_draw_complex(name):
    w = initializers.init_param(name, jax.random.key(0), (8, 4), jnp.complex64)
    assert w.dtype == jnp.complex64 and w.shape == (8, 4)
    assert np.abs(np.asarray(w).imag).max() > 0
