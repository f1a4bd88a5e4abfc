"""Tests for nnjax._checks: each check passes good input and names op, argument, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import _checks
from nnjax.errors import ShapeError


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
    "value", [jnp.ones(2, jnp.int32), np.ones(2, bool), jnp.ones(2, jnp.complex64)]
)
def test_check_floating_rejects_others(value):
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
