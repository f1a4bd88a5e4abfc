"""Multi-head scaled dot-product attention with its four projections."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks, initializers
from nnjax.errors import ShapeError
from nnjax.functional import _attention_bfloat16, _eager, _utils
from nnjax.functional.dense import affine
from nnjax.functional.dropout import dropout, dropout_key

Params = dict[str, dict[str, jax.Array]]
_PROJECTIONS = ("query", "key", "value", "out")


def multi_head_attention_init(
    key: jax.Array,
    features: int,
    *,
    num_heads: int,
    kv_features: int | None = None,
    out_features: int | None = None,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    use_bias: bool = True,
) -> Params:
    """Initialises :func:`multi_head_attention`.

    Each projection kernel is drawn as a ``(in, H*D)`` (or ``(H*D, out)``) matrix and
    stored with the heads as their own axes, as in Flax, so that ``num_heads`` is read
    from the parameters.

    Args:
      key: a PRNG key.
      features: ``F``, the size of the queries' last axis; split into ``num_heads``
        heads of ``D = F // num_heads``.
      num_heads: ``H``; must divide ``features``.
      kv_features: size of the context's last axis (cross attention); ``F`` if ``None``.
      out_features: size of the output's last axis; ``F`` if ``None``.
      dtype: parameter dtype.
      kernel_init: initializer for the four kernels (Glorot uniform).
      use_bias: whether the projections have biases (zeros).

    Returns:
      ``{"query": {"kernel": (F, H, D), "bias": (H, D)}, "key": {"kernel": (kv, H, D),
      ...}, "value": {...}, "out": {"kernel": (H, D, out), "bias": (out,)}}``. From
      PyTorch's ``nn.MultiheadAttention``: split ``in_proj_weight``/``in_proj_bias`` in
      three ``W``, ``b``; ``kernel = W.T.reshape(F, H, D)``, ``bias = b.reshape(H, D)``;
      ``out``: ``out_proj.weight.T.reshape(H, D, F)``, ``out_proj.bias``
      (``docs/guides/porting.md``).

    Raises:
      ValueError: for sizes that are not positive ints, ``num_heads`` not dividing
        ``features``, or an unknown ``kernel_init`` name.
      TypeError: if ``key`` is not a PRNG key (``jax.random.key(seed)``), ``use_bias``
        is not a bool, ``dtype`` is not floating (an integer, bool or complex dtype), or
        ``kernel_init`` is neither a name nor a callable.
      nnjax.ShapeError: if ``kernel_init`` cannot draw a ``(rows, F)`` kernel.

    Example:
      >>> params = multi_head_attention_init(jax.random.key(0), 8, num_heads=2)
      >>> params["query"]["kernel"].shape, params["out"]["kernel"].shape
      ((8, 2, 4), (2, 4, 8))
    """
    op = "multi_head_attention_init"
    features = _utils.positive_int(op, "features", features)
    num_heads = _utils.positive_int(op, "num_heads", num_heads)
    if features % num_heads:
        raise ValueError(f"{op}: `num_heads`={num_heads} does not divide `features`={features}")
    kv = _utils.positive_int(op, "kv_features", features if kv_features is None else kv_features)
    out = _utils.positive_int(
        op, "out_features", features if out_features is None else out_features
    )
    _checks.check_key(op, "key", key)
    dtype = _checks.float_dtype(op, dtype)
    use_bias = _checks.check_static_bool(op, "use_bias", use_bias)
    head_dim = features // num_heads
    keys = jax.random.split(key, 4)
    params = {}
    for k, name, rows in zip(keys, ("query", "key", "value"), (features, kv, kv)):
        kernel = initializers.init_param(kernel_init, k, (rows, features), dtype)
        params[name] = {"kernel": jnp.reshape(kernel, (rows, num_heads, head_dim))}
        if use_bias:
            params[name]["bias"] = jnp.zeros((num_heads, head_dim), dtype)
    kernel = initializers.init_param(kernel_init, keys[3], (features, out), dtype)
    params["out"] = {"kernel": jnp.reshape(kernel, (num_heads, head_dim, out))}
    if use_bias:
        params["out"]["bias"] = jnp.zeros((out,), dtype)
    return params


def _project(op: str, name: str, p: dict, x: jax.Array) -> jax.Array:
    """``(B, T, F) -> (B, T, H, D)`` with the ``(F, H, D)`` kernel of ``p``."""
    kernel = p["kernel"]
    _checks.check_rank(op, f"params[{name!r}]['kernel']", kernel, 3)
    arg = "x" if name == "query" else "context"
    _checks.check_shape(op, arg, x, (None, None, kernel.shape[0]))
    features, heads, head_dim = kernel.shape
    y = affine(x, kernel.reshape(features, heads * head_dim)).reshape(
        *x.shape[:-1], heads, head_dim
    )
    if "bias" in p:
        _checks.check_shape(op, f"params[{name!r}]['bias']", p["bias"], kernel.shape[1:])
        y = y + p["bias"].astype(x.dtype)[None, None]
    return y


#: Why a 2-D mask of another shape than ``(B, S)`` fails (PyTorch's ``(T, S)`` attn_mask).
_MASK_HINT = (
    "a 2-D mask is read as key padding (batch, keys); a per-query mask must be "
    "(batch or 1, heads or 1, queries, keys), e.g. mask[None, None], and causal=True "
    "gives a causal mask; True means 'may attend', the opposite of PyTorch's bool masks"
)
_MASK3_HINT = (
    "a 3-D mask is (batch, queries, keys); pass PyTorch's (batch * heads, queries, keys) "
    "bool attn_mask m as ~m.reshape(batch, heads, queries, keys): True means 'may attend'"
)


def _mask4(op: str, mask, batch: int, heads: int, t: int, s: int) -> jax.Array | None:
    """A boolean ``(B|1, H|1, T, S)`` mask (True = may attend) from the accepted shapes."""
    if mask is None:
        return None
    mask = _utils.as_array(op, mask, "mask", numbers="bool_")
    if mask.dtype != jnp.bool_:
        raise TypeError(f"{op}: argument `mask` has dtype {mask.dtype}, expected bool")
    _checks.check_rank(op, "mask", mask, {2, 3, 4})
    if mask.ndim == 2:  # key padding (B, S)
        _checks.check_shape(op, "mask", mask, (batch, s), why=_MASK_HINT)
        return mask[:, None, None, :]
    if mask.ndim == 3:
        _checks.check_shape(op, "mask", mask, (batch, t, s), why=_MASK3_HINT)
        return mask[:, None]
    b, h = mask.shape[:2]
    _checks.check_shape(op, "mask", mask, (batch if b != 1 else 1, heads if h != 1 else 1, t, s))
    return mask


def _fused_op_computes(dtype: jnp.dtype) -> bool:
    """Whether ``jax.nn.dot_product_attention`` computes attention of ``dtype`` here.

    Its softmax is float32 (float64 would lose precision), and its float16 logits ask
    for a float16 x float16 -> float32 matmul, which XLA:CPU does not have.
    """
    if dtype == jnp.float64:
        return False
    return not (dtype == jnp.float16 and jax.default_backend() == "cpu")


def attention_weights(q, k, mask, causal: bool) -> jax.Array:
    """Softmax attention weights ``(B, H, T, S)`` in float32 at least (the explicit path).

    Masked logits are set to the lowest finite value, as ``jax.nn.dot_product_attention``
    does, so both paths agree everywhere (a query that sees no key averages them all).
    """
    dtype = _utils.stat_dtype(q)
    scale = 1.0 / jnp.sqrt(jnp.asarray(q.shape[-1], dtype))
    logits = jnp.einsum("bthd,bshd->bhts", q, k).astype(dtype) * scale
    t, s = logits.shape[-2:]
    allowed = jnp.ones((1, 1, t, s), jnp.bool_)
    if causal:
        allowed = jnp.tril(allowed)
    if mask is not None:
        allowed = allowed & mask
    logits = jnp.where(allowed, logits, jnp.finfo(dtype).min)
    return jax.nn.softmax(logits, axis=-1)


def multi_head_attention(
    params: Params,
    x: jax.typing.ArrayLike,
    context: jax.typing.ArrayLike | None = None,
    *,
    mask: jax.typing.ArrayLike | None = None,
    causal: bool = False,
    dropout_rate: float = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """Multi-head scaled dot-product attention of ``x`` over ``context`` (itself if ``None``).

    ``softmax(q k^T / sqrt(D)) v`` per head, with ``q = x W_q + b_q``, ``k = context W_k
    + b_k``, ``v = context W_v + b_v``, the heads concatenated and projected by ``W_o``.
    Equal to PyTorch's ``nn.MultiheadAttention`` with the same weights. Without dropout
    it runs ``jax.nn.dot_product_attention``; with dropout the weights are computed
    explicitly (softmax in float32, or float64 for float64 inputs, which the fused op
    would round to float32) and dropped with :func:`nnjax.functional.dropout`. float64
    inputs, and float16 ones on the CPU (whose matmuls have no float16 -> float32 kernel,
    which the fused op asks for), take the explicit path without dropout too. Under
    ``fit(precision="bfloat16")`` on a CPU with native bfloat16 matmuls the projections
    multiply as :func:`nnjax.functional.dense` does there, and without dropout so do
    ``q k^T`` and ``weights v`` (bfloat16 operands, float32 sums and softmax).

    Args:
      params: from :func:`multi_head_attention_init`.
      x: queries ``(B, T, F)``, floating.
      context: keys and values ``(B, S, kv)``; ``None`` for self attention.
      mask: boolean, **True where a query may attend** (Flax/JAX convention; PyTorch's
        ``key_padding_mask`` is the negation): ``(B, S)`` key padding, ``(B, T, S)``, or
        ``(B|1, H|1, T, S)``. A 2-D mask is always key padding, even where ``B == T``:
        pass one ``(T, S)`` mask for every sequence as ``mask[None, None]`` (or use
        ``causal``). A query that sees no key at all averages every value (finite,
        with finite gradients; PyTorch 2.13 gives NaN in ``nn.MultiheadAttention``
        with ``need_weights=True``, zeros in ``scaled_dot_product_attention``).
      causal: query ``t`` attends to keys ``<= t`` only (combined with ``mask``).
      dropout_rate: probability of dropping each attention weight (training), in
        ``[0, 1]``; ``1`` drops every weight (the output is then the ``out`` bias, as
        in PyTorch with ``dropout=1``).
      key: PRNG key for the dropout; required when a mask is drawn (``0 <
        dropout_rate < 1``, or a traced rate), ignored at ``0`` and ``1``.

    Returns:
      ``(B, T, out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: wrong shapes of ``x``, ``context``, ``mask`` or the parameters;
        ``context`` is ``None`` but the parameters were built for cross attention (a
        ``kv_features`` other than the features of ``x``).
      TypeError: non-floating ``x``/``context``, a non-boolean ``mask``, a ``causal``
        that is not a bool, a ``dropout_rate`` that is not a real scalar, (when a mask
        is drawn) a ``key`` that is not a PRNG key, ``params`` (or a projection) that is
        not a dict, or a value that holds no numbers (the message names its path, e.g.
        ``params['query']['kernel']``; lists and NumPy arrays are read as arrays).
      ValueError: ``0 < dropout_rate < 1`` (or traced) without ``key``, a concrete
        ``dropout_rate`` outside ``[0, 1]`` or NaN, or ``params`` (or one of its
        projections) with a key the op does not read, or without one of ``"query"``,
        ``"key"``, ``"value"``, ``"out"`` (or a projection's ``"kernel"``; that error is
        a ``KeyError`` too).

    Example:
      >>> params = multi_head_attention_init(jax.random.key(0), 8, num_heads=2)
      >>> x = jnp.ones((3, 5, 8))
      >>> multi_head_attention(params, x, mask=jnp.ones((3, 5), bool), causal=True).shape
      (3, 5, 8)
    """
    op = "multi_head_attention"
    params = read_attention_params(op, params)
    drop, key = dropout_key(op, dropout_rate, key)
    x = _utils.as_compute(op, x)
    _checks.check_rank(op, "x", x, 3)
    causal = _checks.check_static_bool(op, "causal", causal)
    if context is None:
        _check_self_attention(op, params, x)
        context = x
    else:
        context = _utils.as_array(op, context, "context")
        _checks.check_floating(op, "context", context)
        _checks.check_rank(op, "context", context, 3)
        _checks.check_shape(op, "context", context, (x.shape[0], None, None))
        context = context.astype(x.dtype)
    mask = None if mask is None else _utils.as_array(op, mask, "mask", numbers="bool_")
    if drop:  # the dropout's random bits (and maybe a traced rate): op by op
        return _attend(params, x, context, mask, key, dropout_rate, causal, drop)
    # eagerly one program, not its ops one by one
    return _eager.one_program(_attend, (None, 0.0, causal, False), None, params, x, context, mask)


def read_attention_params(op: str, params: Params, name: str = "params") -> Params:
    """``params`` of :func:`multi_head_attention` read level by level (``_utils.read_params``).

    ``op`` and ``name`` name the errors (``transformer_encoder_block`` reads its
    ``params['attention']`` so); each projection's kernel is checked to be 3-D.

    Example:
      >>> params = multi_head_attention_init(jax.random.key(0), 4, num_heads=2)
      >>> try:
      ...     read_attention_params("op", {**params, "query": {"kernel": None}})
      ... except TypeError as err:
      ...     print(err)
      op: `params['query']['kernel']` must be an array, got None
    """
    _utils.check_params(op, params, _PROJECTIONS, name=name)
    read = {}
    for part in _PROJECTIONS:
        sub = f"{name}[{part!r}]"
        read[part] = _utils.read_params(op, params[part], ("kernel",), ("bias",), name=sub)
        _checks.check_rank(op, f"{sub}['kernel']", read[part]["kernel"], 3)
    return read


def _check_self_attention(op: str, params: Params, x: jax.Array) -> None:
    """Raises if the key projection does not take the features ``x`` has (self attention).

    Only where the query projection takes them: a bad ``x`` is named by its own check.
    """
    query_rows = jnp.shape(params["query"]["kernel"])[:1]
    kernel = params["key"]["kernel"]
    if query_rows == x.shape[-1:] and jnp.ndim(kernel) == 3 and kernel.shape[0] != query_rows[0]:
        kv = jnp.shape(kernel)[0]
        raise ShapeError(
            f"{op}: `context` is None (self attention over `x`), but params['key']['kernel'] "
            f"has shape {jnp.shape(kernel)}: the parameters were built for cross attention "
            f"with kv_features={kv} (!= {x.shape[-1]}, the features of `x`); pass `context` "
            f"of shape (B, S, {kv})"
        )


def _attend(params, x, context, mask, key, dropout_rate, causal: bool, drop: bool) -> jax.Array:
    """The attention of checked ``x`` over ``context`` (:func:`multi_head_attention`)."""
    op = "multi_head_attention"
    q = _project(op, "query", params["query"], x)
    k = _project(op, "key", params["key"], context)
    v = _project(op, "value", params["value"], context)
    _checks.check_shape(
        op, "params['key']['kernel']", params["key"]["kernel"], (None, *q.shape[2:])
    )
    _checks.check_shape(op, "params['value']['kernel']", params["value"]["kernel"],
                        (None, *q.shape[2:]))  # fmt: skip
    batch, t, heads = q.shape[:3]
    mask = _mask4(op, mask, batch, heads, t, k.shape[1])
    if not drop and _attention_bfloat16.applies(x.dtype):  # fit(precision="bfloat16")
        o = _attention_bfloat16.attention(q, k, v, mask, causal, params["query"]["kernel"])
    elif drop or not _fused_op_computes(x.dtype):
        weights = attention_weights(q, k, mask, causal)
        if drop:  # key is None at rate 1: dropout reads none
            weights = dropout(key, weights, dropout_rate)
        o = jnp.einsum("bhts,bshd->bthd", weights.astype(x.dtype), v)
    else:
        o = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    out = params["out"]
    _checks.check_shape(op, "params['out']['kernel']", out["kernel"], (*q.shape[2:], None))
    kernel = out["kernel"].reshape(-1, out["kernel"].shape[-1])  # (H * D, out)
    y = affine(o.reshape(*o.shape[:2], kernel.shape[0]), kernel)
    if "bias" in out:
        _checks.check_shape(op, "params['out']['bias']", out["bias"], (out["kernel"].shape[-1],))
        y = y + _utils.expand_to(out["bias"].astype(x.dtype), 3)
    return y
