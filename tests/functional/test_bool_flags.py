"""On/off arguments of the functional ops must be bools: a string such as "no" is truthy.

Before these checks, ``use_bias="no"`` built a bias, ``causal="no"`` masked the future,
``count_include_pad="no"`` counted padding and ``keepdims="no"`` kept the axes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn

KEY = jax.random.key(0)
X3 = jnp.ones((2, 5, 4))
X4 = jnp.ones((1, 4, 4, 2))

CASES = {
    "dense_init: `use_bias`": lambda v: F.dense_init(KEY, 3, 2, use_bias=v),
    "conv2d_init: `use_bias`": lambda v: F.conv2d_init(KEY, 2, 3, 3, use_bias=v),
    "multi_head_attention_init: `use_bias`": lambda v: F.multi_head_attention_init(
        KEY, 4, num_heads=2, use_bias=v
    ),
    "multi_head_attention: `causal`": lambda v: F.multi_head_attention(
        F.multi_head_attention_init(KEY, 4, num_heads=2), X3, causal=v
    ),
    "avg_pool2d: `count_include_pad`": lambda v: F.avg_pool2d(
        X4, window=3, stride=1, padding="SAME", count_include_pad=v
    ),
    "global_avg_pool: `keepdims`": lambda v: F.global_avg_pool(X4, keepdims=v),
    "global_max_pool: `keepdims`": lambda v: F.global_max_pool(X4, keepdims=v),
}


@pytest.mark.parametrize("where", list(CASES))
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_flag_that_is_not_a_bool_is_named(where, value):
    with pytest.raises(TypeError, match=rf"{where}.*{value!r}"):
        CASES[where](value)


@pytest.mark.parametrize("where", list(CASES))
def test_python_and_numpy_bools_work_alike(where):
    for value in (False, True):
        a, b = CASES[where](value), CASES[where](np.bool_(value))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)


def test_the_layers_check_use_bias_through_the_functional_init():
    with pytest.raises(TypeError, match=r"dense_init: `use_bias`"):
        nn.Dense(3, 2, use_bias="no", rngs=nnx.Rngs(0))
