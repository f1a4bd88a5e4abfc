"""Tests for nnjax.functional.dropout: statistics, edge rates, spatial masks, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._transforms import assert_transforms


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_inverted_dropout_statistics(key, rate):
    x = jnp.full((200, 100), 2.0)
    y = np.asarray(F.dropout(key, x, rate))
    zeros = np.mean(y == 0)
    assert abs(zeros - rate) < 0.02  # 20 000 draws: std of the fraction is < 0.004
    np.testing.assert_allclose(
        y[y != 0], 2.0 / (1.0 - rate), rtol=1e-6, atol=1e-6
    )  # kept are scaled
    assert abs(y.mean() - 2.0) < 0.1  # mean preserved


def test_rate_zero_is_identity_and_rate_one_is_zeros(key):
    x = jax.random.normal(key, (3, 4))
    np.testing.assert_array_equal(F.dropout(key, x, 0.0), x)
    np.testing.assert_array_equal(F.dropout(key, x, 1.0), np.zeros((3, 4)))


def test_traced_rate_under_jit(key):
    x = jnp.ones((100, 100))
    traces = []
    f = jax.jit(lambda k, x, r: traces.append(1) or F.dropout(k, x, r))
    for rate, expected_zeros in [(0.3, 0.3), (0.0, 0.0), (1.0, 1.0), (0.7, 0.7)]:
        y = np.asarray(f(key, x, jnp.float32(rate)))
        assert abs(np.mean(y == 0) - expected_zeros) < 0.03
        assert np.all(np.isfinite(y))
    assert len(traces) == 1


def test_spatial_dropout_drops_whole_feature_maps(key):
    x = jnp.ones((4, 5, 6, 16))
    y = np.asarray(F.dropout(key, x, 0.5, broadcast_dims=(1, 2)))
    per_map = y.reshape(4, 30, 16)
    assert np.all(per_map == per_map[:, :1, :])  # one value per (batch, channel)
    dropped = per_map[:, 0, :] == 0
    assert 0 < dropped.sum() < dropped.size
    np.testing.assert_array_equal(per_map[:, 0, :][~dropped], 2.0)


def test_negative_broadcast_dims(key):
    x = jnp.ones((8, 3, 3, 4))
    a = F.dropout(key, x, 0.5, broadcast_dims=(1, 2))
    b = F.dropout(key, x, 0.5, broadcast_dims=(-3, -2))
    np.testing.assert_array_equal(a, b)


def test_different_keys_give_different_masks(key):
    x = jnp.ones((64,))
    a = F.dropout(jax.random.key(1), x, 0.5)
    b = F.dropout(jax.random.key(2), x, 0.5)
    assert not np.array_equal(a, b)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_gradient_is_the_mask_and_check_grads(key):
    with jax.enable_x64(True):
        x = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float64).reshape(3, 4)
        drop = lambda x: F.dropout(key, x, 0.25)
        g = jax.grad(lambda x: jnp.sum(drop(x)))(x)
        np.testing.assert_allclose(g, np.where(drop(x) != 0, 1 / 0.75, 0.0))
        check_grads(jax.jit(drop), (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_jit_vmap_grad_float32_bfloat16(key):
    x = jax.random.normal(key, (2, 4, 4, 3))
    assert_transforms(lambda x: F.dropout(key, x, 0.5, broadcast_dims=(1, 2)), x)


@pytest.mark.parametrize("rate", [-0.1, 1.5, np.float32(2.0), jnp.float32(-1.0)])
def test_rate_out_of_range_raises(key, rate):
    with pytest.raises(ValueError, match=r"dropout: `rate` must be in \[0, 1\]"):
        F.dropout(key, jnp.ones(3), rate)


@pytest.mark.parametrize("rate", ["0.5", True, jnp.ones(2)])
def test_rate_of_wrong_type_raises(key, rate):
    with pytest.raises(TypeError, match="dropout: `rate` must be a real scalar"):
        F.dropout(key, jnp.ones(3), rate)


def test_broadcast_dims_out_of_range_raises(key):
    with pytest.raises(ValueError, match=r"dropout: `broadcast_dims` \(1, 4\) is out of range"):
        F.dropout(key, jnp.ones((2, 3, 3, 4)), 0.5, broadcast_dims=(1, 4))
    with pytest.raises(TypeError, match=r"dropout: `broadcast_dims` must be an int or a sequence"):
        F.dropout(key, jnp.ones((2, 3)), 0.5, broadcast_dims="1")


def test_one_broadcast_dim_as_an_int(key):  # as nn.Dropout takes it
    x = jnp.ones((4, 6))
    np.testing.assert_array_equal(
        F.dropout(key, x, 0.5, broadcast_dims=1), F.dropout(key, x, 0.5, broadcast_dims=(1,))
    )


def test_float64_is_scaled_in_float64(key):
    with jax.enable_x64(True):
        y = np.asarray(F.dropout(key, jnp.ones(1000, jnp.float64), 0.9))
    kept = y[y != 0]
    assert kept.size and y.dtype == np.float64
    np.testing.assert_allclose(kept, 1 / (1 - 0.9), rtol=1e-15, atol=0)  # float32's: 2e-7 off


def test_integer_input_raises_type_error(key):
    with pytest.raises(TypeError, match="dropout: argument `x` has dtype int32"):
        F.dropout(key, jnp.ones(3, jnp.int32), 0.5)


@pytest.mark.parametrize(
    ("rate", "kept"),
    [(1.5, 0.0), (1.0, 0.0), (-0.5, 1.0), (float("nan"), 1.0), (float("inf"), 0.0)],
    ids=["above-one", "one", "negative", "nan", "inf"],
)
def test_a_traced_rate_outside_0_1_is_clamped_and_stays_finite(key, rate, kept):
    # a traced rate cannot be checked without a host round trip: it is clamped to
    # [0, 1] (NaN counts as 0), so the output is finite wherever x is
    x = jax.random.normal(key, (64,))
    y = jax.jit(lambda r: F.dropout(key, x, r))(jnp.float32(rate))
    assert np.isfinite(np.asarray(y)).all()
    expected = np.asarray(x) if kept else np.zeros(64, np.float32)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=0, atol=0)


def test_a_traced_rate_inside_0_1_matches_the_concrete_one(key):
    x = jax.random.normal(key, (64,))
    traced = jax.jit(lambda r: F.dropout(key, x, r))(jnp.float32(0.25))
    np.testing.assert_allclose(traced, F.dropout(key, x, 0.25), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(0, "got 0"), (None, "got None"), (jnp.zeros(2), "got an array of dtype float32")],
)
def test_a_key_that_is_not_a_key_is_named(bad, shown):
    with pytest.raises(TypeError, match=rf"dropout: `key` must be a PRNG key such as .*{shown}"):
        F.dropout(bad, jnp.ones(3), 0.5)


def test_key_checks_hold_under_jit_and_skip_rates_that_read_no_key(key):
    with pytest.raises(TypeError, match=r"dropout: `key` must be a PRNG key.*got None"):
        jax.jit(F.dropout)(None, jnp.ones(3), 0.5)
    np.testing.assert_array_equal(F.dropout(None, jnp.ones(3), 0.0), jnp.ones(3))
    legacy = jax.random.PRNGKey(0)  # raw uint32 keys still work
    assert jax.jit(F.dropout)(legacy, jnp.ones(8), 0.5).shape == (8,)
    assert jax.jit(F.dropout)(key, jnp.ones(8), 0.5).shape == (8,)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_narrow_floats_round_once_so_kept_values_are_unbiased(key, dtype):
    """The scale 1 / 0.9 rounded to bfloat16 first (1.109375) shrank every kept value."""
    x = jax.random.normal(jax.random.key(1), (20000,)).astype(dtype)
    y = F.dropout(key, x, 0.1)
    kept = np.asarray(y) != 0
    x64, y64 = np.asarray(x, np.float64)[kept], np.asarray(y, np.float64)[kept]
    want = (x64.astype(np.float32) * np.float32(1 / 0.9)).astype(dtype)  # one rounding
    assert y.dtype == dtype
    np.testing.assert_array_equal(y64, np.asarray(want, np.float64))
    np.testing.assert_allclose(np.mean(y64 / x64), 1 / 0.9, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "broadcast_dims"),
    [
        ((6, 5), ()),
        pytest.param((2, 3, 4, 5), (), marks=pytest.mark.slow),  # JAX's shaped masks
        pytest.param((2, 3, 4, 5), (1, 2), marks=pytest.mark.slow),  # compile in 1-3 s
        pytest.param((2, 1, 3, 2, 4), (0,), marks=pytest.mark.slow),
    ],
)
def test_the_mask_is_jaxs_bernoulli_drawn_flat(key, shape, broadcast_dims):
    # the mask of shape S is jax.random.bernoulli's of S, bit for bit; drawn flat (XLA:CPU
    # compiled a 5-D draw in 6.8 s, a flat one in 0.5 s)
    mask_shape = tuple(1 if i in broadcast_dims else n for i, n in enumerate(shape))
    kept = F.dropout(key, jnp.ones(shape), 0.3, broadcast_dims=broadcast_dims) != 0
    expected = jnp.broadcast_to(jax.random.bernoulli(key, 0.7, mask_shape), shape)
    np.testing.assert_array_equal(kept, expected)
    jaxpr = str(jax.make_jaxpr(lambda k: F.dropout(k, jnp.ones(shape), 0.3))(key))
    assert f"shape=({math.prod(shape)},)" in jaxpr, jaxpr
