"""MultiHeadAttention and TransformerEncoderBlock: dropout streams, train/eval, masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn

X = jnp.linspace(-1, 2, 2 * 3 * 8).reshape(2, 3, 8)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_dropout_follows_train_eval_and_draws_fresh_masks():
    layer = nn.MultiHeadAttention(2, 8, dropout_rate=0.5, rngs=nnx.Rngs(params=0, dropout=1))
    a, b = layer(X), layer(X)
    assert not np.allclose(a, b)  # a new mask each call
    reference = F.multi_head_attention(layer.params(), X)
    layer.eval()
    np.testing.assert_allclose(layer(X), reference, rtol=1e-6, atol=1e-6)
    layer.train()
    key = jax.random.key(5)
    expected = F.multi_head_attention(layer.params(), X, dropout_rate=0.5, key=key)
    np.testing.assert_allclose(layer(X, key=key), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer(X, deterministic=True), reference, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_cross_attention_and_mask():
    layer = nn.MultiHeadAttention(2, 8, 5, in_kv_features=3, rngs=nnx.Rngs(0))
    context = jnp.ones((2, 4, 3))
    mask = jnp.array([[True, True, False, False], [True] * 4])
    y = layer(X, context, mask=mask)
    assert y.shape == (2, 3, 5)
    expected = F.multi_head_attention(layer.params(), X, context, mask=mask)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_block_dropout_and_causal_setting():
    block = nn.TransformerEncoderBlock(8, 2, causal=True, dropout_rate=0.2, rngs=nnx.Rngs(0))
    block.eval()
    expected = F.transformer_encoder_block(block.params(), X, causal=True)
    np.testing.assert_allclose(block(X), expected, rtol=1e-6, atol=1e-6)
    block.train()
    assert not np.allclose(block(X), expected)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_stateful_dropout_under_nnx_jit_does_not_retrace():
    block = nn.TransformerEncoderBlock(8, 2, dropout_rate=0.2, rngs=nnx.Rngs(0))
    traces = []

    @nnx.jit
    def step(m, x):
        traces.append(1)
        return m(x)

    a, b = step(block, X), step(block, X)
    assert len(traces) == 1 and not np.allclose(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mlp_features": 0}, r"TransformerEncoderBlock: `mlp_features` must be a positive int"),
        ({"epsilon": 0.0}, r"TransformerEncoderBlock: `epsilon` must be > 0, got 0.0"),
        ({"dropout_rate": 1.5}, r"TransformerEncoderBlock: `dropout_rate` must be in \[0, 1\]"),
    ],
)
def test_block_names_its_own_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.TransformerEncoderBlock(8, 2, **kwargs, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("arg", ["out_features", "in_kv_features"])
def test_attention_names_its_own_sizes(arg):
    with pytest.raises(ValueError, match=rf"MultiHeadAttention: `{arg}` must be a positive int"):
        nn.MultiHeadAttention(2, 8, **{arg: 0}, rngs=nnx.Rngs(0))
    layer = nn.MultiHeadAttention(np.int64(2), np.int64(8), rngs=nnx.Rngs(0))
    assert nnx.jit(lambda m, x: m(x))(layer, X).shape == X.shape
