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


def test_the_layers_check_use_bias_under_their_own_name():
    with pytest.raises(TypeError, match=r"Dense: `use_bias`"):
        nn.Dense(3, 2, use_bias="no", rngs=nnx.Rngs(0))


R = lambda: nnx.Rngs(0)
LAYER_CASES = {
    # constructor arguments, checked when the layer is built (naming the layer)
    "TransformerEncoderBlock: `causal`": lambda v: nn.TransformerEncoderBlock(
        4, 2, causal=v, rngs=R()
    ),
    "AvgPool1D: `count_include_pad`": lambda v: nn.AvgPool1D(3, 1, "SAME", count_include_pad=v),
    "AvgPool2D: `count_include_pad`": lambda v: nn.AvgPool2D(3, 1, "SAME", count_include_pad=v),
    "AvgPool3D: `count_include_pad`": lambda v: nn.AvgPool3D(3, 1, "SAME", count_include_pad=v),
    "GlobalAvgPool: `keepdims`": lambda v: nn.GlobalAvgPool(keepdims=v),
    "GlobalMaxPool: `keepdims`": lambda v: nn.GlobalMaxPool(keepdims=v),
    # a call argument
    "MultiHeadAttention: `causal`": lambda v: nn.MultiHeadAttention(2, 4, rngs=R())(X3, causal=v),
    # use_bias, checked by the layer before the functional init draws
    "Conv1D: `use_bias`": lambda v: nn.Conv1D(2, 3, use_bias=v, rngs=R()),
    "Conv2D: `use_bias`": lambda v: nn.Conv2D(2, 3, use_bias=v, rngs=R()),
    "ConvTranspose2D: `use_bias`": lambda v: nn.ConvTranspose2D(2, 3, use_bias=v, rngs=R()),
    "MultiHeadAttention: `use_bias`": lambda v: nn.MultiHeadAttention(2, 4, use_bias=v, rngs=R()),
    # the functional block names its own argument (it was multi_head_attention's)
    "transformer_encoder_block: `causal`": lambda v: F.transformer_encoder_block(
        F.transformer_encoder_block_init(KEY, 4, num_heads=2), X3, causal=v
    ),
}


@pytest.mark.parametrize("where", list(LAYER_CASES))
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_layer_flag_that_is_not_a_bool_is_named(where, value):
    with pytest.raises(TypeError, match=rf"^{where} must be a Python bool .*, got {value!r}$"):
        LAYER_CASES[where](value)


@pytest.mark.parametrize("where", list(LAYER_CASES))
def test_layer_flags_take_python_and_numpy_bools(where):
    for value in (False, True, np.bool_(False), np.bool_(True)):
        LAYER_CASES[where](value)


def test_a_layer_keeps_its_flag_as_a_python_bool():
    for layer, attr in (
        (nn.AvgPool2D(2, count_include_pad=np.bool_(True)), "count_include_pad"),
        (nn.GlobalAvgPool(keepdims=np.bool_(True)), "keepdims"),
        (nn.TransformerEncoderBlock(4, 2, causal=np.bool_(True), rngs=R()), "causal"),
    ):
        assert getattr(layer, attr) is True
