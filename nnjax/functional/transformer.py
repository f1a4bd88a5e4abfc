"""The pre-norm Transformer encoder block: attention and MLP, each in a residual branch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nnjax import activations, initializers
from nnjax.functional.attention import (
    dropout_active,
    multi_head_attention,
    multi_head_attention_init,
)
from nnjax.functional.dense import dense, dense_init
from nnjax.functional.dropout import dropout
from nnjax.functional.normalization import layer_norm, layer_norm_init

Params = dict[str, dict]


def transformer_encoder_block_init(
    key: jax.Array,
    features: int,
    *,
    num_heads: int,
    mlp_features: int | None = None,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
) -> Params:
    """Initialises :func:`transformer_encoder_block`.

    Args:
      key: a PRNG key.
      features: model width ``F``.
      num_heads: attention heads; must divide ``F``.
      mlp_features: hidden width of the MLP; ``4 * F`` if ``None``.
      dtype: parameter dtype.
      kernel_init: initializer for every kernel.

    Returns:
      ``{"norm1": layer_norm, "attention": multi_head_attention, "norm2": layer_norm,
      "mlp_in": dense (F, M), "mlp_out": dense (M, F)}`` parameter dicts.

    Example:
      >>> params = transformer_encoder_block_init(jax.random.key(0), 8, num_heads=2)
      >>> sorted(params), params["mlp_in"]["kernel"].shape
      (['attention', 'mlp_in', 'mlp_out', 'norm1', 'norm2'], (8, 32))
    """
    mlp = 4 * features if mlp_features is None else mlp_features
    k_attn, k_in, k_out = jax.random.split(key, 3)
    kw: dict[str, Any] = {"dtype": dtype, "kernel_init": kernel_init}
    return {
        "norm1": layer_norm_init(key, features, dtype=dtype),
        "attention": multi_head_attention_init(k_attn, features, num_heads=num_heads, **kw),
        "norm2": layer_norm_init(key, features, dtype=dtype),
        "mlp_in": dense_init(k_in, features, mlp, **kw),
        "mlp_out": dense_init(k_out, mlp, features, **kw),
    }


def transformer_encoder_block(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    causal: bool = False,
    dropout_rate: float = 0.0,
    key: jax.Array | None = None,
    activation: str | activations.Activation = "gelu",
    epsilon: float = 1e-5,
) -> jax.Array:
    """``x + attention(norm1(x))``, then ``+ mlp(norm2(.))``: a pre-norm encoder block.

    With ``activation="relu"`` it equals PyTorch's
    ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True)`` with the same
    weights. Dropout (training) is applied where PyTorch applies it: on the attention
    weights, on the attention branch, after the MLP activation and on the MLP branch.

    Args:
      params: from :func:`transformer_encoder_block_init`.
      x: ``(B, T, F)``, floating.
      mask: as in :func:`multi_head_attention` (True where a query may attend).
      causal: causal self-attention.
      dropout_rate: drop probability at each of the four places; ``0`` for inference.
      key: PRNG key; required when ``dropout_rate > 0``.
      activation: the MLP's activation, a name or a callable (``"gelu"``: tanh
        approximation, as ``jax.nn.gelu``).
      epsilon: the layer norms' epsilon.

    Returns:
      ``(B, T, F)``, the dtype of ``x``.

    Raises:
      AssertionError, TypeError: as :func:`multi_head_attention` and :func:`dense`.
      ValueError: ``dropout_rate > 0`` without ``key``, or an unknown activation.

    Example:
      >>> params = transformer_encoder_block_init(jax.random.key(0), 8, num_heads=2)
      >>> transformer_encoder_block(params, jnp.ones((2, 5, 8)), causal=True).shape
      (2, 5, 8)
    """
    x = jnp.asarray(x)
    act = activations.get(activation)
    drop = dropout_active(dropout_rate)
    if drop and key is None:
        raise ValueError(
            f"transformer_encoder_block: `dropout_rate`={dropout_rate!r} needs a PRNG `key`"
        )
    keys = jax.random.split(key, 4) if drop and key is not None else [None] * 4

    def branch_dropout(k, y):
        return dropout(k, y, dropout_rate) if drop else y

    h = layer_norm(params["norm1"], x, epsilon=epsilon)
    h = multi_head_attention(
        params["attention"], h, mask=mask, causal=causal, dropout_rate=dropout_rate, key=keys[0]
    )
    x = x + branch_dropout(keys[1], h)
    h = act(dense(params["mlp_in"], layer_norm(params["norm2"], x, epsilon=epsilon)))
    h = dense(params["mlp_out"], branch_dropout(keys[2], h))
    return x + branch_dropout(keys[3], h)
