"""The pre-norm Transformer encoder block: attention and MLP, each in a residual branch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks, activations, initializers
from nnjax.functional import _eager, _utils
from nnjax.functional.attention import (
    multi_head_attention,
    multi_head_attention_init,
    read_attention_params,
)
from nnjax.functional.dense import dense, dense_init, read_dense_params
from nnjax.functional.dropout import dropout, dropout_key
from nnjax.functional.normalization import layer_norm, layer_norm_init

Params = dict[str, dict]
_PARTS = ("norm1", "attention", "norm2", "mlp_in", "mlp_out")


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

    Raises:
      ValueError: ``features``, ``num_heads`` or ``mlp_features`` is not a positive
        int, ``num_heads`` does not divide ``features``, or ``kernel_init`` is an
        unknown name.
      TypeError: ``key`` is not a PRNG key (``jax.random.key(seed)``), ``dtype`` is not
        floating (an integer, bool or complex dtype), or ``kernel_init`` is neither a
        name nor a callable.
      nnjax.ShapeError: ``kernel_init`` cannot draw a kernel's shape.

    Example:
      >>> params = transformer_encoder_block_init(jax.random.key(0), 8, num_heads=2)
      >>> sorted(params), params["mlp_in"]["kernel"].shape
      (['attention', 'mlp_in', 'mlp_out', 'norm1', 'norm2'], (8, 32))
    """
    op = "transformer_encoder_block_init"
    features = _utils.positive_int(op, "features", features)
    num_heads = _utils.positive_int(op, "num_heads", num_heads)
    if features % num_heads:
        raise ValueError(f"{op}: `num_heads`={num_heads} does not divide `features`={features}")
    mlp = _utils.positive_int(
        op, "mlp_features", 4 * features if mlp_features is None else mlp_features
    )
    _checks.check_key(op, "key", key)
    dtype = _checks.float_dtype(op, dtype)  # once, under this init's name
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
      mask: bool, True where a query may attend: ``(B, T)`` key padding, ``(B, T, T)``
        or ``(B|1, H|1, T, T)``, as in :func:`multi_head_attention`.
      causal: causal self-attention (a bool).
      dropout_rate: drop probability at each of the four places, in ``[0, 1]``; ``0``
        for inference; ``1`` zeroes both branches, so the block returns ``x`` (as
        PyTorch's layer with ``dropout=1``).
      key: PRNG key; required when masks are drawn (``0 < dropout_rate < 1``, or a
        traced rate), ignored at ``0`` and ``1``.
      activation: the MLP's activation, a name or a callable (``"gelu"``: tanh
        approximation, as ``jax.nn.gelu``).
      epsilon: the layer norms' epsilon.

    Returns:
      ``(B, T, F)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``x`` is not ``(B, T, F)`` with ``F`` the width of the
        parameters, or as :func:`multi_head_attention` and :func:`dense`.
      TypeError: as :func:`multi_head_attention` and :func:`dense` (``causal``,
        ``dropout_rate`` and ``key`` are named as this op's arguments), or an
        ``activation`` that is neither a name nor a callable.
      ValueError: ``0 < dropout_rate < 1`` (or traced) without ``key``, a concrete
        ``dropout_rate`` outside ``[0, 1]`` or NaN, an unknown activation name, a
        concrete ``epsilon <= 0``, or ``params`` (or a part of it) with a key the block
        does not read or without one of ``"norm1"``, ``"attention"``, ``"norm2"``,
        ``"mlp_in"``, ``"mlp_out"`` (or a key of a part; that error is a ``KeyError``
        too). Errors in a part name its whole path, e.g. ``params['mlp_in']['kernel']``.

    Example:
      >>> params = transformer_encoder_block_init(jax.random.key(0), 8, num_heads=2)
      >>> transformer_encoder_block(params, jnp.ones((2, 5, 8)), causal=True).shape
      (2, 5, 8)
    """
    op = "transformer_encoder_block"
    _utils.check_params(op, params, _PARTS)
    x = _utils.as_compute(op, x)
    _checks.check_rank(op, "x", x, 3)
    _check_width(op, params["norm1"], x)
    params = _read_parts(op, params, x)
    causal = _checks.check_static_bool(op, "causal", causal)
    _checks.check_interval(op, "epsilon", epsilon, 0, open_low=True)  # else layer_norm's error
    act = activations.get(activation)
    drop, key = dropout_key(op, dropout_rate, key)
    if not drop and isinstance(activation, str) and isinstance(epsilon, (int, float)):
        # eagerly one program (a named activation and a number: static, hashable)
        mask = None if mask is None else _utils.as_array(op, mask, "mask", numbers="bool_")
        static = (None, 0.0, False, causal, act, epsilon)
        return _eager.one_program(_block, static, None, params, x, mask)
    return _block(params, x, mask, key, dropout_rate, drop, causal, act, epsilon)


def _block(params, x, mask, key, dropout_rate, drop: bool, causal: bool, act, epsilon):
    """The block of :func:`transformer_encoder_block` on checked arguments."""
    keys = [None] * 4 if key is None else jax.random.split(key, 4)

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


def _check_width(op: str, norm1, x: jax.Array) -> None:
    """Checks ``x (B, T, F)`` against the width ``F`` of ``norm1``'s scale, naming ``op``."""
    scale = norm1.get("scale") if hasattr(norm1, "get") else None
    if scale is not None and jnp.ndim(scale) == 1:  # else layer_norm names the parameter
        why = f"params['norm1']['scale'] has shape {jnp.shape(scale)}"
        _checks.check_shape(op, "x", x, (None, None, jnp.shape(scale)[0]), why=why)


def _read_parts(op: str, params: Params, x: jax.Array) -> Params:
    """The block's ``params`` read part by part, each checked against ``x (B, T, F)``.

    So errors name the block and the whole path (``params['mlp_in']['kernel']``), not
    the part's own op and the path inside the part (``dense: params['kernel']``).
    """
    width = x.shape[-1]
    why = f"x has {width} features"
    read: dict[str, Any] = {
        "norm1": _utils.check_affine(op, params["norm1"], x, name="params['norm1']")
    }
    read["norm2"] = _utils.read_params(
        op, params["norm2"], ("scale", "bias"), name="params['norm2']"
    )
    for key, value in read["norm2"].items():
        _checks.check_shape(op, f"params['norm2'][{key!r}]", value, (width,), why=why)
    attention = read["attention"] = read_attention_params(
        op, params["attention"], "params['attention']"
    )
    for part in ("query", "key", "value", "out"):
        shape = (None, None, width) if part == "out" else (width, None, None)
        name = f"params['attention'][{part!r}]['kernel']"
        _checks.check_shape(op, name, attention[part]["kernel"], shape, why=why)
    rows, rows_why = width, why
    for part in ("mlp_in", "mlp_out"):
        mlp = read[part] = read_dense_params(op, params[part], f"params[{part!r}]")
        expected = (rows, width if part == "mlp_out" else None)
        _checks.check_shape(
            op, f"params[{part!r}]['kernel']", mlp["kernel"], expected, why=rows_why
        )
        rows = mlp["kernel"].shape[1]
        rows_why = f"params['mlp_in']['kernel'] has shape {mlp['kernel'].shape}"
        if "bias" in mlp:
            _checks.check_shape(op, f"params[{part!r}]['bias']", mlp["bias"], (rows,))
    return read
