"""The normalisation and PReLU inits refuse non-floating dtypes, as the other inits do.

Before this check ``F.layer_norm_init(key, 4, dtype=jnp.int32)`` returned integer
parameters (the trained scale and bias of a network stuck at integers, and
``batch_norm_init``'s running statistics never moving).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn

KEY = jax.random.key(0)

INITS = {
    "layer_norm_init": F.layer_norm_init,
    "batch_norm_init": F.batch_norm_init,
    "group_norm_init": F.group_norm_init,
    "instance_norm_init": F.instance_norm_init,
    "rms_norm_init": F.rms_norm_init,
    "prelu_init": F.prelu_init,
}


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize(
    "dtype, shown",
    [
        (jnp.int32, "int32"),
        (jnp.uint8, "uint8"),
        (bool, "bool"),
        (jnp.complex64, "complex64"),
        ("no dtype", "'no dtype'"),
        (None, "None"),
    ],
)
def test_a_non_floating_dtype_is_named(name, dtype, shown):
    with pytest.raises(
        TypeError,
        match=rf"^{name}: `dtype` must be a floating dtype such as jnp.float32, got {shown}$",
    ):
        INITS[name](KEY, 4, dtype=dtype)


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, "float32"])
def test_floating_dtypes_give_parameters_of_that_dtype(name, dtype):
    params = INITS[name](KEY, 4, dtype=dtype)
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == jnp.dtype(dtype)
        assert leaf.shape == (4,)


def test_the_default_parameters_are_unchanged():
    params, stats = F.batch_norm_init(KEY, 3)
    np.testing.assert_array_equal(params["scale"], np.ones(3, np.float32))
    np.testing.assert_array_equal(stats["mean"], np.zeros(3, np.float32))
    np.testing.assert_allclose(F.prelu_init(KEY, 2, init=0.1)["negative_slope"], [0.1, 0.1])


LAYERS = {
    "LayerNorm": lambda dt: nn.LayerNorm(4, param_dtype=dt, rngs=nnx.Rngs(0)),
    "BatchNorm": lambda dt: nn.BatchNorm(4, param_dtype=dt, rngs=nnx.Rngs(0)),
    "GroupNorm": lambda dt: nn.GroupNorm(4, num_groups=2, param_dtype=dt, rngs=nnx.Rngs(0)),
    "InstanceNorm": lambda dt: nn.InstanceNorm(4, param_dtype=dt, rngs=nnx.Rngs(0)),
    "RMSNorm": lambda dt: nn.RMSNorm(4, param_dtype=dt, rngs=nnx.Rngs(0)),
    "PReLU": lambda dt: nn.PReLU(4, param_dtype=dt, rngs=nnx.Rngs(0)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_the_layers_name_themselves_and_param_dtype(name):
    with pytest.raises(
        TypeError, match=rf"^{name}: `param_dtype` must be a floating dtype .*, got int32$"
    ):
        LAYERS[name](jnp.int32)


@pytest.mark.parametrize("name", list(LAYERS))
def test_the_layers_take_bfloat16_parameters(name):
    layer = LAYERS[name](jnp.bfloat16)
    leaves = jax.tree.leaves(nnx.state(layer, nnx.Param))
    assert leaves and all(leaf.dtype == jnp.bfloat16 for leaf in leaves)
