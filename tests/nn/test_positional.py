"""SinusoidalPositionEncoding and RotaryPositionEncoding: the functional ops as layers."""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
import nnjax.functional as F
from nnjax import nn
from nnjax.errors import ShapeError
from nnjax.nn._config import module_call
from nnjax.nn._model_call import integer_input_paths

from ._helpers import assert_jit_traces_once


def _numpy_sinusoidal(length, features, max_timescale=10000.0):
    """The table of Vaswani et al. in float64, written out per entry."""
    table = np.zeros((length, features))
    for t in range(length):
        for i in range(features // 2):
            angle = t / max_timescale ** (2 * i / features)
            table[t, 2 * i], table[t, 2 * i + 1] = np.sin(angle), np.cos(angle)
    return table


def _numpy_rotary(x, positions, base=10000.0):
    """Rotate-half RoPE in float64: pairs (i, i + D/2) rotated by p * base**(-2i/D)."""
    x = np.asarray(x, np.float64)
    half = x.shape[-1] // 2
    inverse = base ** (-np.arange(half) * 2 / x.shape[-1])
    angles = np.asarray(positions, np.float64)[..., None] * inverse  # (B|1, T, D/2)
    angles = angles.reshape(*angles.shape[:2], *(1,) * (x.ndim - 3), half)
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


#: Arguments of the wrong type, for the error tests (typed Any for mypy).
BAD: dict[str, Any] = {"float": 4.0, "str": "1e4", "int": 3}


def _x(*shape, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), dtype)


def _inputs(*shape, positions=None):
    """``(x,)``, or ``(x, jnp.arange(positions))`` when ``positions`` is given."""
    return (_x(*shape),) if positions is None else (_x(*shape), jnp.arange(positions))


@pytest.mark.parametrize("max_timescale", [10000.0, 100.0])
def test_sinusoidal_adds_the_functional_table_and_the_numpy_one(max_timescale):
    x = _x(2, 7, 6)
    layer = nn.SinusoidalPositionEncoding(6, max_timescale=max_timescale)
    y = layer(x)
    table = F.sinusoidal_position_encoding(7, 6, max_timescale=max_timescale)
    np.testing.assert_allclose(y, x + table[None], rtol=1e-6, atol=1e-6)
    expected = np.asarray(x, np.float64) + _numpy_sinusoidal(7, 6, max_timescale)[None]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert not jax.tree.leaves(nnx.state(layer))  # no parameters, no state


def test_sinusoidal_keeps_a_bfloat16_input_dtype():
    x = _x(1, 5, 4, dtype=jnp.bfloat16)
    y = nn.SinusoidalPositionEncoding(4)(x)
    assert y.dtype == jnp.bfloat16
    table = F.sinusoidal_position_encoding(5, 4, dtype=jnp.bfloat16)
    np.testing.assert_array_equal(
        np.asarray(y, np.float32), np.asarray(x + table[None], np.float32)
    )


# Array parameters here are partials that make them in the test: arrays
# made at import cost a compilation each in every test process's collection. Partials,
# not lambdas, keep the test ids (pytest names a parameter with a ``__name__`` by it).
@pytest.mark.parametrize(
    ("shape", "positions"),
    [
        ((2, 5, 3, 4), None),  # (B, T, H, D), positions 0..T-1
        ((2, 5, 6), functools.partial(jnp.arange, 3, 8)),  # (B, T, D), positions (T,)
        ((2, 5, 2, 4), functools.partial(jnp.array, [[0, 1, 2, 3, 4], [9, 8, 7, 6, 5]])),  # (B, T)
    ],
)
def test_rotary_is_the_functional_op_and_the_numpy_rotation(shape, positions):
    positions = None if positions is None else positions()
    x = _x(*shape)
    layer = nn.RotaryPositionEncoding(base=500.0)
    y = layer(x) if positions is None else layer(x, positions)
    expected = F.rotary_position_encoding(x, positions, base=500.0)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    steps = np.arange(shape[1])[None] if positions is None else np.asarray(positions)
    steps = steps if steps.ndim == 2 else steps[None]
    np.testing.assert_allclose(y, _numpy_rotary(x, steps, 500.0), rtol=1e-5, atol=1e-5)
    assert y.shape == x.shape and y.dtype == x.dtype


def test_rotary_takes_integer_positions_in_fit_and_predict():
    assert integer_input_paths(nn.RotaryPositionEncoding()) == {"['positions']", "[1]"}


@pytest.mark.parametrize(
    ("layer", "args"),
    [
        (lambda: nn.SinusoidalPositionEncoding(8), functools.partial(_inputs, 2, 6, 8)),
        (lambda: nn.RotaryPositionEncoding(), functools.partial(_inputs, 2, 6, 2, 8)),
        (lambda: nn.RotaryPositionEncoding(), functools.partial(_inputs, 2, 6, 8, positions=6)),
    ],
)
def test_jit_traces_once_for_the_same_shapes(layer, args):
    assert_jit_traces_once(layer(), *args())


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: nn.SinusoidalPositionEncoding(5), ValueError,
         r"SinusoidalPositionEncoding: `features` must be a positive even int, got 5"),
        (lambda: nn.SinusoidalPositionEncoding(0), ValueError, r"`features` .* got 0"),
        (lambda: nn.SinusoidalPositionEncoding(BAD["float"]), ValueError,
         r"`features` .* got 4\.0"),
        (lambda: nn.SinusoidalPositionEncoding(True), ValueError, r"`features` .* got True"),
        (lambda: nn.SinusoidalPositionEncoding(4, max_timescale=0.0), ValueError,
         r"SinusoidalPositionEncoding: `max_timescale` must be a finite number > 0, got 0\.0"),
        (lambda: nn.SinusoidalPositionEncoding(4, max_timescale=float("nan")), ValueError,
         r"`max_timescale` .* got nan"),
        (lambda: nn.SinusoidalPositionEncoding(4, max_timescale=BAD["str"]), TypeError,
         r"SinusoidalPositionEncoding: `max_timescale` must be a real number, got '1e4'"),
        (lambda: nn.RotaryPositionEncoding(base=-2.0), ValueError,
         r"RotaryPositionEncoding: `base` must be a finite number > 0, got -2\.0"),
        (lambda: nn.RotaryPositionEncoding(base=float("inf")), ValueError, r"`base` .* got inf"),
        (lambda: nn.RotaryPositionEncoding(base=True), TypeError,
         r"RotaryPositionEncoding: `base` must be a real number, got True"),
        (lambda: nn.RotaryPositionEncoding(rngs=BAD["int"]), TypeError,
         r"RotaryPositionEncoding: `rngs` must be an nnx.Rngs, an nnx.RngStream or None"),
        (lambda: nn.SinusoidalPositionEncoding(4, rngs=BAD["int"]), TypeError,
         r"SinusoidalPositionEncoding: `rngs` must be"),
    ],
)  # fmt: skip
def test_bad_constructor_arguments_are_named(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nn.SinusoidalPositionEncoding(4)(jnp.ones((2, 3, 6))), ShapeError,
         r"SinusoidalPositionEncoding: argument `x` has shape \(2, 3, 6\), expected "
         r"\(\*, \*, 4\).*features=4"),
        (lambda: nn.SinusoidalPositionEncoding(4)(jnp.ones((3, 4))), ShapeError,
         r"SinusoidalPositionEncoding: argument `x` has shape \(3, 4\)"),
        (lambda: nn.SinusoidalPositionEncoding(4)(jnp.ones((1, 3, 4), jnp.int32)), TypeError,
         r"SinusoidalPositionEncoding: argument `x` has dtype int32, expected a floating"),
        (lambda: nn.RotaryPositionEncoding()(jnp.ones((2, 4))), ShapeError,
         r"RotaryPositionEncoding: argument `x` has shape \(2, 4\) \(rank 2\), expected rank >= 3"),
        (lambda: nn.RotaryPositionEncoding()(jnp.ones((2, 3, 5))), ShapeError,
         r"RotaryPositionEncoding: argument `x` has shape \(2, 3, 5\), expected an even last"),
        (lambda: nn.RotaryPositionEncoding()(jnp.ones((2, 3, 4), jnp.int32)), TypeError,
         r"RotaryPositionEncoding: argument `x` has dtype int32"),
        (lambda: nn.RotaryPositionEncoding()(jnp.ones((2, 3, 4)), jnp.arange(4)), ShapeError,
         r"rotary_position_encoding: argument `positions` has shape \(4,\), expected \(3,\)"),
    ],
)  # fmt: skip
def test_bad_inputs_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_rngs_is_accepted_and_changes_nothing():
    x = _x(1, 4, 4)
    for cls, args in ((nn.SinusoidalPositionEncoding, (4,)), (nn.RotaryPositionEncoding, ())):
        plain, with_rngs = cls(*args), cls(*args, rngs=nnx.Rngs(0))
        np.testing.assert_array_equal(with_rngs(x), plain(x))
        assert nnx.state(with_rngs) == nnx.state(plain)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_a_sequential_holding_them_saves_and_loads(tmp_path):
    model = nn.Sequential(
        nn.Embedding(20, 8, rngs=nnx.Rngs(0)),
        nn.SinusoidalPositionEncoding(8, max_timescale=100.0),
        nn.Dense(8, 8, rngs=nnx.Rngs(1)),
        nn.RotaryPositionEncoding(base=500.0, rngs=nnx.Rngs(2)),
    )
    ids = jnp.array([[1, 2, 3, 4, 19], [0, 5, 5, 7, 2]])
    nnjax.save(model, tmp_path / "m")
    loaded = nnjax.load(tmp_path / "m")
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Embedding", "SinusoidalPositionEncoding", "Dense", "RotaryPositionEncoding",
    ]  # fmt: skip
    assert loaded.layers[1].features == 8 and loaded.layers[1].max_timescale == 100.0
    assert loaded.layers[3].base == 500.0
    np.testing.assert_allclose(loaded(ids), model(ids), rtol=1e-6, atol=1e-6)
    assert module_call(model.layers[1])["kwargs"] == {"features": 8, "max_timescale": 100.0}


def test_summary_lists_them_without_parameters():
    model = nn.Sequential(
        nn.Embedding(20, 8, rngs=nnx.Rngs(0)),
        nn.SinusoidalPositionEncoding(8),
        nn.RotaryPositionEncoding(),
    )
    text = nn.summary(model, (2, 5), dtype=jnp.int32, print_fn=None)
    rows = [line.split() for line in text.splitlines() if line.startswith("layers/")]
    assert [(r[1], r[-1]) for r in rows] == [
        ("Embedding", "160"), ("SinusoidalPositionEncoding", "0"), ("RotaryPositionEncoding", "0"),
    ]  # fmt: skip
    assert "Output shape: (2, 5, 8)" in text
