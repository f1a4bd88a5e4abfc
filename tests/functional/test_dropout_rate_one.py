"""A dropout rate of exactly 1 (PyTorch's ``p=1``, Flax's ``rate=1.0``) gives zeros.

``F.dropout`` took it already; ``F.multi_head_attention`` and
``F.transformer_encoder_block`` asked for a key they never read at rate 1, and a rate that
is a dtype name (``"half"``) or ``None`` got Python's own error instead of one naming the
op and the argument.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F

from ._torch_ref import rand as rand64
from ._torch_ref import torch
from .test_attention import torch_mha_params
from .test_transformer import _torch_block

B, T, E, HEADS, MLP = 2, 4, 6, 2, 8


def rand(shape, seed):
    return rand64(shape, seed, dtype=np.float32)


def to_torch(tree):
    return jax.tree.map(lambda v: torch.from_numpy(np.array(v)), tree)


def _attention_params():
    p = F.multi_head_attention_init(jax.random.key(1), E, num_heads=HEADS)
    return jax.tree.map(lambda v: v + 0.1, p)  # non-zero biases


def _block_params():
    p = F.transformer_encoder_block_init(jax.random.key(2), E, num_heads=HEADS, mlp_features=MLP)
    return jax.tree.map(lambda v: v + 0.1, p)


def test_dropout_rate_one_matches_torch_with_zero_finite_gradients(key):
    x = rand((3, 5), 0)
    expected = torch.nn.functional.dropout(torch.from_numpy(x), p=1.0, training=True)
    np.testing.assert_allclose(F.dropout(key, x, 1.0), expected.numpy(), rtol=0, atol=0)
    grad = jax.grad(lambda v: jnp.sum(F.dropout(key, v, 1.0) * 3.0))(jnp.asarray(x))
    np.testing.assert_allclose(grad, np.zeros_like(x), rtol=0, atol=0)


def test_traced_rate_one_gives_zeros_and_zero_finite_gradients(key):
    x = jnp.asarray(rand((4, 5), 1))
    loss = lambda v, r: jnp.sum(F.dropout(key, v, r) ** 2)
    y = jax.jit(F.dropout)(key, x, jnp.float32(1.0))
    np.testing.assert_allclose(y, np.zeros_like(x), rtol=0, atol=0)
    g_x, g_rate = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, jnp.float32(1.0))
    np.testing.assert_allclose(g_x, np.zeros_like(x), rtol=0, atol=0)
    assert np.isfinite(g_rate)


@pytest.mark.parametrize("rate", ["half", "0.5", None, np.bool_(True), jnp.asarray(True), 0.5j])
def test_a_rate_that_is_no_real_number_is_named(key, rate):
    with pytest.raises(TypeError, match=r"dropout: `rate` must be a real scalar, got"):
        F.dropout(key, jnp.ones(3), rate)


@pytest.mark.parametrize("rate", [float("nan"), np.float32("nan"), 1.0 + 1e-7])
def test_a_concrete_nan_or_just_above_one_rate_is_a_value_error(key, rate):
    with pytest.raises(ValueError, match=r"dropout: `rate` must be in \[0, 1\], got"):
        F.dropout(key, jnp.ones(3), rate)


def test_attention_rate_one_needs_no_key_and_matches_torch():
    p, x = _attention_params(), rand((B, T, E), 3)
    y = F.multi_head_attention(p, x, dropout_rate=1.0)  # before: "needs a PRNG `key`"
    module = torch.nn.MultiheadAttention(E, HEADS, dropout=1.0, batch_first=True).train()
    tx = torch.from_numpy(x)
    expected, _ = torch.func.functional_call(
        module, torch_mha_params(to_torch(p)),
        (tx, tx, tx), {"need_weights": False},
    )  # fmt: skip
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y, np.broadcast_to(p["out"]["bias"], y.shape), rtol=0, atol=0)
    not_a_key = "ignored at rate 1, as by F.dropout"
    np.testing.assert_array_equal(F.multi_head_attention(p, x, dropout_rate=1.0, key=not_a_key), y)


@pytest.mark.slow
def test_attention_rate_one_gradients_are_zero_and_finite():
    p, x = _attention_params(), jnp.asarray(rand((B, T, E), 4))
    loss = lambda p, x: jnp.sum(F.multi_head_attention(p, x, dropout_rate=1.0) ** 2)
    g_p, g_x = jax.grad(loss, argnums=(0, 1))(p, x)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves((g_p, g_x)))
    np.testing.assert_allclose(g_x, np.zeros_like(x), rtol=0, atol=0)
    for name in ("query", "key", "value"):
        np.testing.assert_allclose(g_p[name]["kernel"], 0.0, rtol=0, atol=0)
    assert np.abs(g_p["out"]["bias"]).sum() > 0


def test_attention_traced_rate_one_under_jit(key):
    p, x = _attention_params(), rand((B, T, E), 5)
    fn = jax.jit(lambda r: F.multi_head_attention(p, x, dropout_rate=r, key=key))
    np.testing.assert_allclose(
        fn(jnp.float32(1.0)), np.broadcast_to(p["out"]["bias"], (B, T, E)), rtol=0, atol=1e-7
    )
    with pytest.raises(ValueError, match=r"multi_head_attention: `dropout_rate`=.* needs a PRNG"):
        jax.jit(lambda r: F.multi_head_attention(p, x, dropout_rate=r))(jnp.float32(1.0))


def test_attention_still_checks_the_key_where_a_mask_is_drawn():
    p, x = _attention_params(), rand((B, T, E), 6)
    with pytest.raises(TypeError, match=r"multi_head_attention: `key` must be a PRNG key"):
        F.multi_head_attention(p, x, dropout_rate=0.5, key="not a key")
    with pytest.raises(ValueError, match=r"multi_head_attention: `dropout_rate` must be in"):
        F.multi_head_attention(p, x, dropout_rate=float("nan"))
    with pytest.raises(TypeError, match=r"multi_head_attention: `dropout_rate` must be a real"):
        F.multi_head_attention(p, x, dropout_rate="half")


def test_block_rate_one_returns_its_input_as_torch():
    p, x = _block_params(), rand((B, T, E), 7)
    y = F.transformer_encoder_block(p, x, dropout_rate=1.0)  # before: "needs a PRNG `key`"
    np.testing.assert_allclose(y, x, rtol=0, atol=0)
    layer = torch.nn.TransformerEncoderLayer(
        E, HEADS, MLP, dropout=1.0, activation="relu", batch_first=True, norm_first=True
    ).train()
    expected = layer(torch.from_numpy(x))
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    # the reference without dropout is not the identity, so the rate did something
    assert not np.allclose(
        _torch_block(to_torch(p), torch.from_numpy(x)).detach().numpy(), x, atol=1e-3
    )


@pytest.mark.slow
def test_block_rate_one_gradients_are_finite_and_the_identity():
    p, x = _block_params(), jnp.asarray(rand((B, T, E), 8))
    loss = lambda p, x: jnp.sum(F.transformer_encoder_block(p, x, dropout_rate=1.0) * 2.0)
    g_p, g_x = jax.grad(loss, argnums=(0, 1))(p, x)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g_p))
    np.testing.assert_allclose(g_x, np.full(x.shape, 2.0), rtol=0, atol=0)
    np.testing.assert_allclose(
        sum(np.abs(g).sum() for g in jax.tree.leaves(g_p)), 0.0, rtol=0, atol=0
    )
