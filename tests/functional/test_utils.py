"""Tests for nnjax.functional._utils (private helpers shared by the ops)."""

import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.functional import _utils


def test_as_compute_returns_an_array_and_rejects_integers():
    x = _utils.as_compute("op", [1.0, 2.0])
    assert x.dtype == jnp.float32 and x.shape == (2,)
    with pytest.raises(TypeError, match="op: argument `x` has dtype int32"):
        _utils.as_compute("op", np.ones(2, np.int32))


def test_cast_like_casts_floating_leaves_only():
    tree = {"w": jnp.ones(2, jnp.float32), "step": jnp.array(3, jnp.int32)}
    out = _utils.cast_like(tree, jnp.ones(1, jnp.bfloat16))
    assert out["w"].dtype == jnp.bfloat16
    assert out["step"].dtype == jnp.int32 and int(out["step"]) == 3


@pytest.mark.parametrize(
    ("shape", "ndim", "expected"),
    [((3,), 3, (1, 1, 3)), ((3,), 1, (3,)), ((2, 3), 4, (1, 1, 2, 3))],
)
def test_expand_to(shape, ndim, expected):
    v = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)
    out = _utils.expand_to(v, ndim)
    assert out.shape == expected
    np.testing.assert_array_equal(out.reshape(shape), v)


@pytest.mark.parametrize(("value", "expected"), [(3, (3, 3)), ((2, 5), (2, 5)), ([1, 4], (1, 4))])
def test_pair(value, expected):
    assert _utils.pair(value, "window", "op") == expected


@pytest.mark.parametrize("value", [0, -1, (1, 2, 3), (2,), (1.5, 2), "2"])
def test_pair_rejects(value):
    with pytest.raises(ValueError, match="op: `window` must be a positive int or a pair of them"):
        _utils.pair(value, "window", "op")


def test_check_params_accepts_exact_and_optional_keys():
    _utils.check_params("dense", {"kernel": 0}, ("kernel",), ("bias",))
    _utils.check_params("dense", {"kernel": 0, "bias": 0}, ("kernel",), ("bias",))


@pytest.mark.parametrize(
    ("params", "error", "pattern"),
    [
        ({"kernel": 0, "bais": 0}, ValueError, r"unexpected key 'bais' \(did you mean 'bias'\?\)"),
        ({"kernel": 0, "zzz": 0}, ValueError, r"unexpected key 'zzz'; expected keys: 'kernel'"),
        ({"bias": 0}, KeyError, r"no key 'kernel' \(it has \['bias'\]\)"),
        ([1, 2], TypeError, r"`params` must be a dict of arrays, got list"),
    ],
    ids=["misspelt", "unknown", "missing", "not-a-mapping"],
)
def test_check_params_names_the_key_and_the_expected_ones(params, error, pattern):
    with pytest.raises(error, match=pattern):
        _utils.check_params("dense", params, ("kernel",), ("bias",))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_positive_int_names_the_argument_and_value(bad):
    with pytest.raises(ValueError, match=rf"op: `size` must be a positive int, got {bad!r}"):
        _utils.positive_int("op", "size", bad)
    assert _utils.positive_int("op", "size", np.int64(3)) == 3
