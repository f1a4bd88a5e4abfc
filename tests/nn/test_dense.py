import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Dense

from ._helpers import assert_jit_traces_once, assert_params_match


def test_params_are_dense_init_and_call_is_dense():
    layer = Dense(3, 4, activation="tanh", rngs=nnx.Rngs(0))
    expected = F.dense_init(nnx.Rngs(0).params(), 3, 4)
    assert_params_match(layer, expected)
    x = jax.random.normal(jax.random.key(1), (5, 3))
    np.testing.assert_allclose(layer(x), jnp.tanh(F.dense(expected, x)), rtol=1e-6, atol=1e-6)


def test_without_bias_matches_init():
    layer = Dense(3, 2, use_bias=False, rngs=nnx.Rngs(0))
    assert_params_match(layer, F.dense_init(nnx.Rngs(0).params(), 3, 2, use_bias=False))


def test_mixed_precision_keeps_float32_params():
    layer = Dense(3, 2, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    y = layer(jnp.ones((2, 3)))
    assert y.dtype == jnp.bfloat16
    assert layer.kernel[...].dtype == jnp.float32


@pytest.mark.xla_cpu
@pytest.mark.parametrize("library", [False, True])
def test_bfloat16_on_an_emulating_cpu_rounds_like_astype(monkeypatch, library):
    from nnjax import _hardware
    from nnjax.functional import _conv_compiler

    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    layer = Dense(6, 5, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (4, 6)) * 3.0
    params = {"kernel": layer.kernel[...], "bias": layer.bias[...]}
    # the input and the float32 result rounded once each, as astype rounds them
    x16 = x.astype(jnp.bfloat16).astype(jnp.float32)
    expected = (x16 @ params["kernel"] + params["bias"][None, :]).astype(jnp.bfloat16)
    with _conv_compiler.library_convolutions(library):  # a fresh function: traced here
        y = jax.jit(lambda v: layer(v))(x)
        jaxpr = str(jax.make_jaxpr(lambda v: layer(v))(x))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(y, np.float32), np.asarray(expected, np.float32), rtol=2**-7, atol=1e-6
    )
    # in fit's programs both roundings are integer arithmetic (fusible), else XLA's convert
    assert jaxpr.count("round_to_bfloat16") == (2 if library else 0)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0, 2), {}, "in_features"),
        ((3, -1), {}, "out_features"),
        ((3, 2), {"activation": "relux"}, "relux.*known: .*relu"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dense(*args, **kwargs, rngs=nnx.Rngs(0))


def test_wrong_input_width_names_op_and_shapes():
    with pytest.raises(AssertionError, match=r"dense.*\(2, 5\).*3"):
        Dense(3, 2, rngs=nnx.Rngs(0))(jnp.ones((2, 5)))


def test_jit_does_not_retrace():
    assert_jit_traces_once(Dense(3, 2, rngs=nnx.Rngs(0)), jnp.ones((2, 3)))
