import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Conv2D

from ._helpers import assert_jit_traces_once, assert_params_match


@pytest.mark.parametrize(
    "options",
    [{}, {"stride": 2, "padding": "VALID"}, {"dilation": 2, "padding": 1}],
)
def test_params_are_conv2d_init_and_call_is_conv2d(options):
    layer = Conv2D(2, 3, (3, 2), activation="relu", rngs=nnx.Rngs(0), **options)
    expected = F.conv2d_init(nnx.Rngs(0).params(), 2, 3, (3, 2))
    assert_params_match(layer, expected)
    x = jax.random.normal(jax.random.key(1), (2, 7, 6, 2))
    np.testing.assert_allclose(
        layer(x), jax.nn.relu(F.conv2d(expected, x, **options)), rtol=1e-6, atol=1e-6
    )


def test_mixed_precision():
    layer = Conv2D(1, 2, 3, dtype=jnp.bfloat16)
    assert layer(jnp.ones((1, 5, 5, 1))).dtype == jnp.bfloat16
    assert layer.kernel[...].dtype == jnp.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"in_features": 0}, "in_features"), ({"kernel_size": -3}, "kernel_size")],
)
def test_bad_arguments(kwargs, match):
    args = {"in_features": 1, "out_features": 2, "kernel_size": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        Conv2D(**args)


def test_wrong_channels_names_op():
    with pytest.raises(AssertionError, match="conv2d"):
        Conv2D(3, 2, 3)(jnp.ones((1, 5, 5, 2)))


def test_jit_does_not_retrace():
    assert_jit_traces_once(Conv2D(1, 2, 3), jnp.ones((1, 5, 5, 1)))
