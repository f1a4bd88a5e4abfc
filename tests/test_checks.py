"""Tests for nnjax._checks: each check passes good input and names op, argument, shapes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import _checks
from nnjax.errors import ShapeError

# Array parameters are partials that make the array in the test: made at import, each
# cost a compilation in every test process's collection. Partials, not lambdas, keep the
# test ids (pytest names a parameter that has a ``__name__`` by it).
later = functools.partial


def _made(value):
    """The parameter ``value``, or the array that it makes when it is a :data:`later`."""
    return value() if isinstance(value, functools.partial) else value


def _split_key():
    return jax.random.split(jax.random.key(0))


def test_check_shape_accepts_wildcards_and_ellipsis():
    x = jnp.ones((2, 3, 4))
    _checks.check_shape("op", "x", x, (2, 3, 4))
    _checks.check_shape("op", "x", x, (None, 3, None))
    _checks.check_shape("op", "x", x, (..., 4))


@pytest.mark.parametrize(
    ("expected", "shown"),
    [((2, 5), r"\(2, 5\)"), ((None, 5), r"\(\*, 5\)"), ((..., 5), r"\(\.\.\., 5\)")],
)
def test_check_shape_message(expected, shown):
    with pytest.raises(
        ShapeError,
        match=rf"my_op: argument `params\['w'\]` has shape \(2, 3\), expected {shown}",
    ):
        _checks.check_shape("my_op", "params['w']", np.ones((2, 3)), expected)


def test_check_shape_runs_at_trace_time():
    f = jax.jit(lambda x: _checks.check_shape("op", "x", x, (3,)) or x)
    with pytest.raises(ShapeError, match=r"op: argument `x` has shape \(4,\), expected \(3,\)"):
        f(jnp.ones(4))


def test_check_rank():
    _checks.check_rank("op", "x", jnp.ones((2, 3)), 2)
    _checks.check_rank("op", "x", jnp.ones((2, 3)), {1, 2})
    with pytest.raises(
        ShapeError, match=r"op: argument `x` has shape \(2, 3\) \(rank 2\), expected rank 4"
    ):
        _checks.check_rank("op", "x", jnp.ones((2, 3)), 4)


def test_check_min_rank():
    _checks.check_min_rank("op", "x", jnp.ones((2, 3)), 2)
    with pytest.raises(
        ShapeError, match=r"op: argument `x` has shape \(2,\) \(rank 1\), expected rank >= 2"
    ):
        _checks.check_min_rank("op", "x", jnp.ones(2), 2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_check_floating_accepts_floats(dtype):
    _checks.check_floating("op", "x", jnp.ones(2, dtype))


@pytest.mark.parametrize(
    "value",
    [later(jnp.ones, 2, jnp.int32), np.ones(2, bool), later(jnp.ones, 2, jnp.complex64)],
)
def test_check_floating_rejects_others(value):
    value = _made(value)
    with pytest.raises(
        TypeError, match=r"op: argument `x` has dtype \w+, expected a floating dtype"
    ):
        _checks.check_floating("op", "x", value)


@pytest.mark.parametrize(
    ("shape", "window", "padding"),
    [
        ((1, 3, 3, 1), (3, 3), "VALID"),
        ((1, 1, 1, 1), (5, 5), "SAME"),
        ((1, 2, 2, 1), (3, 4), ((1, 0), (1, 1))),
    ],
)
def test_check_window_fits_accepts(shape, window, padding):
    _checks.check_window_fits("op", jnp.ones(shape), window, padding)


@pytest.mark.parametrize(
    ("shape", "window", "padding"),
    [
        ((1, 2, 3, 1), (3, 3), "VALID"),
        ((1, 3, 2, 1), (3, 3), "valid"),
        ((1, 2, 2, 1), (4, 4), ((1, 0), (1, 1))),
    ],
)
def test_check_window_fits_rejects(shape, window, padding):
    with pytest.raises(
        ValueError, match=r"op: argument `x` has shape \(1, \d, \d, 1\).*smaller than the window"
    ):
        _checks.check_window_fits("op", jnp.ones(shape), window, padding)


def test_shape_error_is_a_value_error_and_an_assertion_error():
    with pytest.raises(ValueError, match="argument `x`"):
        _checks.check_shape("op", "x", jnp.ones(2), (3,))
    with pytest.raises(AssertionError, match="argument `x`"):
        _checks.check_rank("op", "x", jnp.ones(2), 2)
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, AssertionError)


def test_static_arg_message_names_the_value_or_says_to_mark_it_static():
    assert _checks.static_arg_message("op", "n", 0, "a positive int") == (
        "op: `n` must be a positive int, got 0"
    )
    seen = []
    jax.jit(lambda n: seen.append(_checks.static_arg_message("op", "n[0]", n, "an int")))(2)
    assert "got a traced value" in seen[0]
    assert "mark it static, e.g. jax.jit(fn, static_argnames='n')" in seen[0]


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_check_static_bool_accepts_bools(value):
    assert _checks.check_static_bool("op", "training", value) is bool(value)


@pytest.mark.parametrize("value", ["False", 1, None, jnp.array(True)])
def test_check_static_bool_rejects_other_values(value):
    with pytest.raises(TypeError, match=r"op: `training` must be a Python bool \(True or False\)"):
        _checks.check_static_bool("op", "training", value)


def test_check_static_bool_traced_says_to_mark_it_static():
    fn = jax.jit(lambda t: _checks.check_static_bool("op", "training", t))
    with pytest.raises(TypeError, match=r"traced value.*static_argnames='training'"):
        fn(True)


@pytest.mark.parametrize(
    ("value", "low", "high", "open_low"),
    [(0.5, 0, 1, False), (0, 0, 1, False), (1, 0, 1, False), (1e-9, 0, None, True),
     (np.float32(0.3), 0, 1, False), (np.array(2.0), 0, None, True)],
)  # fmt: skip
def test_check_interval_accepts(value, low, high, open_low):
    _checks.check_interval("op", "v", value, low, high, open_low=open_low)


@pytest.mark.parametrize(
    ("value", "high", "open_low", "shown"),
    [(1.5, 1, False, r"in \[0, 1\], got 1.5"), (-0.1, 1, False, r"in \[0, 1\], got -0.1"),
     (0.0, None, True, r"> 0, got 0.0"), (float("nan"), None, True, "> 0, got nan"),
     (np.float64(-1), None, False, r">= 0, got np.float64\(-1.0\)")],
)  # fmt: skip
def test_check_interval_rejects(value, high, open_low, shown):
    with pytest.raises(ValueError, match=rf"op: `v` must be {shown}"):
        _checks.check_interval("op", "v", value, 0, high, open_low=open_low)


def test_check_interval_leaves_traced_values_and_jax_arrays_alone():
    _checks.check_interval("op", "v", jnp.asarray(5.0), 0, 1)  # no device round trip
    out = jax.jit(lambda v: _checks.check_interval("op", "v", v, 0, 1) or v)(5.0)
    assert float(out) == 5.0


@pytest.mark.parametrize(
    "key", [later(jax.random.key, 0), later(jax.random.PRNGKey, 0), later(_split_key)]
)
def test_check_key_accepts_keys(key):
    key = _made(key)
    _checks.check_key("op", "key", key)
    jax.jit(lambda k: _checks.check_key("op", "key", k))(key)


@pytest.mark.parametrize("impls", [("threefry2x32", "rbg"), ("rbg", "threefry2x32")])
def test_check_key_follows_a_changed_default_prng(impls):
    """The raw key size of the first default PRNG was cached: after switching to ``rbg``
    its (4,) raw keys were refused (and threefry's (2,) ones after the reverse)."""
    try:
        for impl in impls:
            jax.config.update("jax_default_prng_impl", impl)
            _checks.check_key("op", "key", jax.random.PRNGKey(0))
    finally:
        jax.config.update("jax_default_prng_impl", "threefry2x32")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "got 0"), (None, "got None"), ("seed", "got 'seed'"),
     (later(jnp.zeros, 2, jnp.int32), r"got an array of dtype int32 and shape \(2,\)"),
     (later(jnp.zeros, 3, jnp.uint32), r"got an array of dtype uint32 and shape \(3,\)"),
     (later(jnp.zeros, (), jnp.uint32), r"got an array of dtype uint32 and shape \(\)")],
)  # fmt: skip
def test_check_key_rejects_non_keys(value, shown):
    value = _made(value)
    with pytest.raises(TypeError, match=rf"op: `key` must be a PRNG key such as .*{shown}"):
        _checks.check_key("op", "key", value)


def test_check_shape_says_where_the_expected_size_comes_from():
    with pytest.raises(
        ShapeError,
        match=r"op: argument `x` has shape \(2, 5\), expected \(\.\.\., 4\) \(the size of p\)$",
    ):
        _checks.check_shape("op", "x", jnp.ones((2, 5)), (..., 4), why="the size of p")
