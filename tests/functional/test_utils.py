"""Tests for nnjax.functional._utils (private helpers shared by the ops)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.functional import _utils


def test_as_compute_returns_an_array_and_rejects_integers():
    x = _utils.as_compute("op", [1.0, 2.0])
    assert x.dtype == jnp.float32 and x.shape == (2,)
    with pytest.raises(TypeError, match="op: argument `x` has dtype int32"):
        _utils.as_compute("op", np.ones(2, np.int32))


def test_as_array_returns_jax_arrays_as_they_are():
    x = jnp.ones(3)
    assert _utils.as_array("op", x) is x  # no conversion on the eager and jitted path
    assert jax.jit(lambda v: _utils.as_array("op", v) * 2)(x).shape == (3,)
    assert _utils.as_array("op", np.ones(2, np.int8)).dtype == jnp.int8  # any numbers
    assert _utils.as_array("op", 1.0).weak_type  # Python scalars as jnp.asarray reads them


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            np.array([1.0, None]),
            TypeError,
            "op: `v` must be a numeric array, got a NumPy array of dtype object "
            "(convert it, e.g. v.astype(np.int32))",
        ),
        (
            [b"1", b"2"],
            TypeError,
            "op: `v` must be a numeric array, got a list of strings, dtype |S1 "
            "(convert it, e.g. np.asarray(v, np.int32))",
        ),
        ("abc", TypeError, "op: `v` must be a numeric array, got the str 'abc'"),
        ("5 2 4", TypeError, "op: `v` must be a numeric array, got the str '5 2 4'"),
        (
            np.array(["2024-01-01"], "datetime64[D]"),
            TypeError,
            "op: `v` must be a numeric array, got a NumPy array of dtype datetime64[D], "
            "which JAX cannot hold",
        ),
        (
            [[1.0], [2.0, 3.0]],
            ValueError,
            "op: `v` must be a numeric array, got a ragged list (nested sequences of different "
            "lengths, [[1.0], [2.0, 3.0]]); pad them to one length",
        ),
        ({"w": 1}, TypeError, "op: `v` must be an array, got a dict with keys ['w']; param"),
        (None, TypeError, "op: `v` must be an array, got None"),
    ],
    ids=["object", "bytes", "str", "str-like-a-dtype", "datetime", "ragged", "dict", "none"],
)
def test_as_array_names_the_op_the_argument_and_what_was_passed(value, error, message):
    with pytest.raises(error) as info:
        _utils.as_array("op", value, "v", numbers="int32")
    assert str(info.value).startswith(message)
    assert info.value.__context__ is None or info.value.__suppress_context__  # no raw error


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


def test_ntuple_takes_numpy_ints_and_returns_python_ints():
    out = _utils.ntuple((np.int64(2), np.int32(3)), 2, "stride", "op")
    assert out == (2, 3) and all(type(v) is int for v in out)
    assert _utils.ntuple(np.int64(0), 3, "padding", "op", minimum=0) == (0, 0, 0)
    with pytest.raises(ValueError, match=r"op: `stride` must be a positive int or a pair"):
        _utils.ntuple((True, 2), 2, "stride", "op")
    with pytest.raises(ValueError, match=r"op: `p` must be a non-negative int or a triple"):
        _utils.ntuple(-1, 3, "p", "op", minimum=0)


def test_positive_int_minimum_and_traced_message():
    assert _utils.positive_int("op", "n", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"op: `n` must be a non-negative int, got -1"):
        _utils.positive_int("op", "n", -1, minimum=0)
    with pytest.raises(ValueError, match=r"op: `n` must be a positive int, got a traced value"):
        jax.jit(lambda n: _utils.positive_int("op", "n", n))(3)


def test_check_affine_blames_x_unless_one_parameter_is_the_odd_one_out():
    params = {"scale": jnp.ones(3), "bias": jnp.zeros(3)}
    _utils.check_affine("op", params, jnp.ones((2, 3)))
    with pytest.raises(AssertionError, match=r"op: argument `x` has shape \(2, 4\), expected"):
        _utils.check_affine("op", params, jnp.ones((2, 4)))
    with pytest.raises(AssertionError, match=r"op: argument `params\['scale'\]` has shape \(2,\)"):
        _utils.check_affine("op", {**params, "scale": jnp.ones(2)}, jnp.ones((2, 3)))
    with pytest.raises(AssertionError, match=r"op: argument `params\['bias'\]` has shape \(2,\)"):
        _utils.check_affine("op", {**params, "bias": jnp.ones(2)}, jnp.ones((2, 3)))
    with pytest.raises(AssertionError, match=r"op: argument `s` has shape \(4,\)"):
        _utils.check_affine("op", params, jnp.ones((2, 3)), others={"s": jnp.ones(4)})
    with pytest.raises(AssertionError, match=r"op: argument `x` has shape \(2, 4\)"):
        _utils.check_affine("op", {"scale": jnp.ones(3)}, jnp.ones((2, 4)), ("scale",))


def test_check_lengths_checks_dtype_shape_and_concrete_values():
    assert _utils.check_lengths("op", [1, 3], 2, 3).shape == (2,)
    assert _utils.check_lengths("op", [], 0, 3).dtype == jnp.int32  # not jnp.asarray's float32
    with pytest.raises(TypeError, match=r"op: argument `lengths` has dtype float32"):
        _utils.check_lengths("op", jnp.ones(2), 2, 3)
    with pytest.raises(ValueError, match=r"op: argument `lengths` must lie in \[0, 3\]"):
        _utils.check_lengths("op", [1, 4], 2, 3)
    with pytest.raises(TypeError, match=r"^op: `lengths` must be a numeric array, got the str"):
        _utils.check_lengths("op", "13", 2, 3)
    jax.jit(lambda n: _utils.check_lengths("op", n, 2, 3))(jnp.array([7, -1]))  # unchecked
