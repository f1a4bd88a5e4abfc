"""The catalogue's modules: params are F.<op>_init's dict, the call is F.<op>, rngs required."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn

from ._helpers import assert_jit_traces_once, assert_params_match

# (module factory, init of the same dict, op over (params, x), input maker); the inputs are
# made in the tests, not at import (each compiled a program in every collection)
CASES = {
    "Embedding": (
        lambda r: nn.Embedding(10, 4, rngs=r),
        lambda k: F.embedding_init(k, 10, 4),
        F.embedding,
        lambda: jnp.array([[1, 2, 9]]),
    ),
    "Conv1D": (
        lambda r: nn.Conv1D(4, 6, 3, stride=2, feature_group_count=2, activation="relu", rngs=r),
        lambda k: F.conv1d_init(k, 4, 6, 3, feature_group_count=2),
        lambda p, x: jax.nn.relu(F.conv1d(p, x, stride=2, feature_group_count=2)),
        lambda: jnp.linspace(-1, 1, 2 * 7 * 4).reshape(2, 7, 4),
    ),
    "Conv3D": (
        lambda r: nn.Conv3D(2, 3, (2, 1, 2), padding="VALID", rngs=r),
        lambda k: F.conv3d_init(k, 2, 3, (2, 1, 2)),
        lambda p, x: F.conv3d(p, x, padding="VALID"),
        lambda: jnp.linspace(-1, 1, 3 * 3 * 3 * 2).reshape(1, 3, 3, 3, 2),
    ),
    "ConvTranspose1D": (
        lambda r: nn.ConvTranspose1D(3, 2, 3, stride=2, padding=1, output_padding=1, rngs=r),
        lambda k: F.conv_transpose1d_init(k, 3, 2, 3),
        lambda p, x: F.conv_transpose1d(p, x, stride=2, padding=1, output_padding=1),
        lambda: jnp.linspace(-1, 1, 15).reshape(1, 5, 3),
    ),
    "ConvTranspose2D": (
        lambda r: nn.ConvTranspose2D(3, 2, 2, stride=2, rngs=r),
        lambda k: F.conv_transpose2d_init(k, 3, 2, 2),
        lambda p, x: F.conv_transpose2d(p, x, stride=2),
        lambda: jnp.linspace(-1, 1, 27).reshape(1, 3, 3, 3),
    ),
    "ConvTranspose3D": (
        lambda r: nn.ConvTranspose3D(2, 1, 2, dilation=2, rngs=r),
        lambda k: F.conv_transpose3d_init(k, 2, 1, 2),
        lambda p, x: F.conv_transpose3d(p, x, dilation=2),
        lambda: jnp.linspace(-1, 1, 16).reshape(1, 2, 2, 2, 2),
    ),
    "GroupNorm": (
        lambda r: nn.GroupNorm(4, num_groups=2, rngs=r),
        lambda k: F.group_norm_init(k, 4),
        lambda p, x: F.group_norm(p, x, num_groups=2),
        lambda: jnp.linspace(-1, 2, 24).reshape(2, 3, 4),
    ),
    "InstanceNorm": (
        lambda r: nn.InstanceNorm(4, rngs=r),
        lambda k: F.instance_norm_init(k, 4),
        F.instance_norm,
        lambda: jnp.linspace(-1, 2, 24).reshape(2, 3, 4) ** 2,
    ),
    "RMSNorm": (
        lambda r: nn.RMSNorm(4, rngs=r),
        lambda k: F.rms_norm_init(k, 4),
        F.rms_norm,
        lambda: jnp.linspace(-1, 2, 8).reshape(2, 4),
    ),
    "PReLU": (
        lambda r: nn.PReLU(4, init=0.1, rngs=r),
        lambda k: F.prelu_init(k, 4, init=0.1),
        F.prelu,
        lambda: jnp.linspace(-1, 2, 8).reshape(2, 4),
    ),
    "MultiHeadAttention": (
        lambda r: nn.MultiHeadAttention(2, 4, rngs=r),
        lambda k: F.multi_head_attention_init(k, 4, num_heads=2),
        F.multi_head_attention,
        lambda: jnp.linspace(-1, 2, 24).reshape(2, 3, 4),
    ),
    "TransformerEncoderBlock": (
        lambda r: nn.TransformerEncoderBlock(4, 2, mlp_features=8, rngs=r),
        lambda k: F.transformer_encoder_block_init(k, 4, num_heads=2, mlp_features=8),
        F.transformer_encoder_block,
        lambda: jnp.linspace(-1, 2, 24).reshape(2, 3, 4),
    ),
    "Bidirectional": (
        lambda r: nn.Bidirectional(4, 3, cell="gru", return_sequences=True, rngs=r),
        lambda k: F.bidirectional_init(k, F.gru_cell_init, 4, 3),
        lambda p, x: F.bidirectional(F.gru_cell, p, x)[1],
        lambda: jnp.linspace(-1, 2, 24).reshape(2, 3, 4),
    ),
}


# The layers whose op compiles longest are compared in the slow step (measured, 2026-12-01);
# test_jit_does_not_retrace still builds and calls Conv1D and MultiHeadAttention by default.
SLOW = {"Conv1D", "Conv3D", "ConvTranspose1D", "ConvTranspose2D", "ConvTranspose3D",
        "MultiHeadAttention", "TransformerEncoderBlock"}  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(CASES)]
)
def test_params_are_the_init_dict_and_call_is_the_op(name):
    make, init, op, inputs = CASES[name]
    x = inputs()
    layer = make(nnx.Rngs(0))
    params = init(nnx.Rngs(0).params())
    assert_params_match(layer, params)
    np.testing.assert_allclose(layer(x), op(params, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rngs_is_required_and_keyword_only(name):
    cls = getattr(nn, name)
    parameter = inspect.signature(cls.__init__).parameters["rngs"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty


@pytest.mark.parametrize("name", ["Conv1D", "GroupNorm", "MultiHeadAttention", "Bidirectional"])
def test_jit_does_not_retrace(name):
    make, _, _, inputs = CASES[name]
    x = inputs()
    assert_jit_traces_once(make(nnx.Rngs(0)), x)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("name", ["Conv3D", "RMSNorm", "TransformerEncoderBlock"])
def test_bfloat16_compute_keeps_float32_params(name):
    make, _, _, inputs = CASES[name]
    x = inputs()
    layer = make(nnx.Rngs(0))
    layer.dtype = jnp.bfloat16
    assert layer(x).dtype == jnp.bfloat16
    leaves = jax.tree.leaves(nnx.state(layer, nnx.Param))
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)


@pytest.mark.parametrize(
    ("cls", "shape", "expected"),
    [
        (lambda: nn.MaxPool1D(2), (1, 6, 2), (1, 3, 2)),
        (lambda: nn.AvgPool1D(3, 1, "SAME"), (1, 6, 2), (1, 6, 2)),
        # the 3-D pools run in the slow step (tests/functional/test_pooling_nd.py checks their
        # ops against PyTorch by default)
        pytest.param(
            lambda: nn.MaxPool3D((2, 1, 2)),
            (1, 4, 3, 4, 2),
            (1, 2, 3, 2, 2),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            lambda: nn.AvgPool3D(2, padding="SAME"),
            (1, 3, 3, 3, 2),
            (1, 2, 2, 2, 2),
            marks=pytest.mark.slow,
        ),
        (lambda: nn.GlobalAvgPool(), (2, 3, 4, 5), (2, 5)),
        (lambda: nn.GlobalMaxPool(keepdims=True), (2, 3, 5), (2, 1, 5)),
    ],
)
def test_pooling_layers_call_the_ops(cls, shape, expected):
    x = jax.random.normal(jax.random.key(0), shape)
    layer = cls()
    y = layer(x)
    assert y.shape == expected
    assert not nnx.state(layer, nnx.Param)


def test_pooling_values_match_the_ops():
    x = jax.random.normal(jax.random.key(0), (1, 6, 2))
    np.testing.assert_array_equal(nn.MaxPool1D(2, 1)(x), F.max_pool1d(x, 2, 1))
    np.testing.assert_array_equal(nn.GlobalMaxPool()(x), F.global_max_pool(x))


def test_embedding_attend_and_dtype():
    layer = nn.Embedding(10, 4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert layer(jnp.array([1])).dtype == jnp.bfloat16
    x = jnp.ones((2, 4))
    np.testing.assert_allclose(
        nn.Embedding(10, 4, rngs=nnx.Rngs(0)).attend(x), F.attend(layer.params(), x), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: nn.GroupNorm(6, num_groups=4, rngs=nnx.Rngs(0)), "GroupNorm: `num_groups`=4"),
        (lambda: nn.Conv1D(0, 2, rngs=nnx.Rngs(0)), "Conv1D: `in_channels`"),
        (lambda: nn.Embedding(10, -1, rngs=nnx.Rngs(0)), "Embedding: `features`"),
        (lambda: nn.MaxPool3D(0), "MaxPool3D: `window_shape"),
        (lambda: nn.Bidirectional(3, 4, cell="lstmx", rngs=nnx.Rngs(0)), "Bidirectional: `cell`"),
        (lambda: nn.MultiHeadAttention(3, 8, rngs=nnx.Rngs(0)),
         "MultiHeadAttention: `num_heads`=3 does not divide `in_features`=8"),
        (lambda: nn.TransformerEncoderBlock(6, 4, rngs=nnx.Rngs(0)),
         "TransformerEncoderBlock: `num_heads`=4 does not divide `in_features`=6"),
        (lambda: nn.TransformerEncoderBlock(8, 2, dropout_rate=1.5, rngs=nnx.Rngs(0)),
         "TransformerEncoderBlock: `dropout_rate`"),
    ],
)  # fmt: skip
def test_bad_arguments_name_module_and_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()
