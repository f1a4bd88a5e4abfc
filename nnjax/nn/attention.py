"""Multi-head attention and the pre-norm Transformer encoder block as Flax NNX modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import _checks, activations, initializers
from nnjax.errors import ShapeError
from nnjax.nn import _validate
from nnjax.nn._base import check_dtypes, compute_dtype
from nnjax.nn._nested import NestedModule
from nnjax.nn.dropout import _fork_stream


class _Stochastic(NestedModule):
    """Shared dropout plumbing: a forked RNG stream and ``deterministic`` (train/eval)."""

    def _setup_dropout(self, dropout_rate, deterministic, rngs) -> None:
        self.dropout_rate = _validate.rate(type(self).__name__, "dropout_rate", dropout_rate)
        self.deterministic = _checks.check_static_bool(
            type(self).__name__, "deterministic", deterministic
        )
        owner = type(self).__name__
        draws = 0.0 < self.dropout_rate < 1.0  # rate 1 zeroes without a mask, hence no key
        self.rngs = _fork_stream(rngs, "dropout", owner) if draws else nnx.data(None)

    def _dropout(self, deterministic: bool | None, key: jax.Array | None):
        """``(rate, key)`` for this call: no dropout when deterministic or rate 0, no key at 1."""
        deterministic = self.deterministic if deterministic is None else deterministic
        deterministic = _checks.check_static_bool(
            type(self).__name__, "deterministic", deterministic
        )
        if deterministic or not self.dropout_rate:
            return 0.0, None
        if self.dropout_rate == 1.0:  # everything dropped: no mask, no key
            return 1.0, None
        if key is None:
            assert self.rngs is not None  # a stream is forked whenever 0 < dropout_rate < 1
            key = self.rngs()
        return self.dropout_rate, key

    def set_view(self, deterministic: bool | None = None):
        """Sets ``deterministic`` in views made by ``nnx.view`` (``train()``/``eval()``).

        Args:
          deterministic: ``True`` turns attention dropout off; ``None`` leaves it.
        """
        if deterministic is not None:
            self.deterministic = deterministic


class MultiHeadAttention(_Stochastic):
    """Multi-head attention, calling :func:`F.multi_head_attention`.

    ``nnx.state(layer, nnx.Param)`` is the nested dict of
    :func:`F.multi_head_attention_init` (``query``, ``key``, ``value``, ``out``).

    Args:
      num_heads: attention heads; must divide ``in_features``.
      in_features: size of the queries' last axis.
      out_features: size of the output; ``in_features`` if ``None``.
      in_kv_features: size of the context's last axis (cross attention).
      dropout_rate: dropout on the attention weights while training, in ``[0, 1]``
        (``1`` drops every weight, as PyTorch's ``dropout=1``: the output is then the
        ``out`` bias, and no dropout stream is needed).
      deterministic: start in inference mode (no dropout); ``model.eval()`` sets it.
      use_bias: whether the projections have biases.
      kernel_init: initializer for the four kernels.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream (and, for ``0 < dropout_rate < 1``,
        ``dropout``, else ``default``).

    Raises:
      ValueError: a size that is not a positive int, ``num_heads`` not dividing
        ``in_features``, a ``dropout_rate`` outside ``[0, 1]`` (or NaN), an unknown
        ``kernel_init`` name, or ``rngs`` without a ``dropout`` or ``default`` stream
        when dropout draws masks.
      TypeError: ``dropout_rate`` is not a real number, ``deterministic`` or
        ``use_bias`` is not a bool, ``kernel_init`` is neither a name nor a callable,
        a dtype is not floating, or ``rngs`` is not an ``nnx.Rngs``.

    Example:
      >>> from flax import nnx
      >>> mha = MultiHeadAttention(4, 16, rngs=nnx.Rngs(0))
      >>> mha(jnp.ones((2, 10, 16)), causal=True).shape
      (2, 10, 16)
    """

    query: nnx.Dict  # {'kernel', 'bias'} each
    key: nnx.Dict
    value: nnx.Dict
    out: nnx.Dict

    def __init__(
        self,
        num_heads: int,
        in_features: int,
        out_features: int | None = None,
        *,
        in_kv_features: int | None = None,
        dropout_rate: float = 0.0,
        deterministic: bool = False,
        use_bias: bool = True,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_heads = _validate.positive_int("MultiHeadAttention", "num_heads", num_heads)
        self.in_features = _validate.positive_int("MultiHeadAttention", "in_features", in_features)
        _heads_divide("MultiHeadAttention", in_features, num_heads)
        for arg, value in (("out_features", out_features), ("in_kv_features", in_kv_features)):
            if value is not None:
                _validate.positive_int("MultiHeadAttention", arg, value)
        self.out_features = out_features
        self.in_kv_features = in_kv_features
        check_dtypes("MultiHeadAttention", param_dtype, dtype)
        _checks.check_static_bool("MultiHeadAttention", "use_bias", use_bias)
        _validate.initializer("MultiHeadAttention", "kernel_init", kernel_init)
        self.dtype = dtype
        self._set_params(
            F.multi_head_attention_init(
                rngs.params(), in_features, num_heads=num_heads, kv_features=in_kv_features,
                out_features=out_features, dtype=param_dtype, kernel_init=kernel_init,
                use_bias=use_bias,
            )
        )  # fmt: skip
        self._setup_dropout(dropout_rate, deterministic, rngs)

    def __call__(
        self,
        x: jax.typing.ArrayLike,
        context: jax.typing.ArrayLike | None = None,
        *,
        mask: jax.typing.ArrayLike | None = None,
        causal: bool = False,
        deterministic: bool | None = None,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """Attends ``x (B, T, F)`` over ``context (B, S, kv)`` (``x`` if ``None``).

        Args:
          x: queries ``(B, T, in_features)``, floating (any dtype when the layer has a
            compute ``dtype``: it is cast to it).
          context: keys and values ``(B, S, kv)`` with ``kv`` the ``in_kv_features``
            (else ``in_features``), floating, cast to the dtype of ``x``; ``None``
            for self attention over ``x``.
          mask: boolean, **True where a query may attend** (PyTorch's
            ``key_padding_mask`` is the negation): ``(B, S)`` key padding,
            ``(B, T, S)``, or ``(B|1, num_heads|1, T, S)``, as in
            :func:`F.multi_head_attention`; ``None`` for no mask.
          causal: query ``t`` attends to keys ``<= t`` only (combined with ``mask``).
          deterministic: ``True`` turns dropout off for this call, ``False`` applies
            it (with ``dropout_rate``; nothing when the rate is 0); ``None`` (the
            default) uses the layer's ``deterministic`` attribute, the constructor's
            argument as ``model.train()`` / ``model.eval()`` set it.
          key: a PRNG key for this call's dropout, used instead of drawing the next
            key from the layer's dropout stream (which then does not advance); ignored
            (not even checked) when no dropout applies.

        Returns:
          ``(B, T, out_features)`` (``out_features`` defaults to ``in_features``), in
          the compute dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: ``x`` is not ``(B, T, in_features)``, ``context`` not
            ``(B, S, kv)`` with the batch of ``x``, ``context`` is ``None`` for a layer
            built for cross attention (``in_kv_features != in_features``), or ``mask``
            of none of the shapes above.
          TypeError: ``x`` or ``context`` is not floating and the layer has no
            ``dtype``, ``mask`` is not boolean, ``causal`` or ``deterministic`` is not
            a bool, or (when a dropout mask is drawn) ``key`` is not a PRNG key.
        """
        causal = _checks.check_static_bool("MultiHeadAttention", "causal", causal)
        kv = self.in_kv_features
        if context is None and kv is not None and kv != self.in_features:
            raise ShapeError(
                f"MultiHeadAttention: `context` is None (self attention over `x`), but the "
                f"layer was built for cross attention with in_kv_features={kv} (!= "
                f"in_features={self.in_features}); pass `context` of shape (B, S, {kv})"
            )
        rate, key = self._dropout(deterministic, key)
        x = compute_dtype(x, self.dtype)
        if context is not None:
            context = compute_dtype(context, self.dtype)
        return F.multi_head_attention(
            self.params(), x, context, mask=mask, causal=causal, dropout_rate=rate, key=key
        )


def _heads_divide(owner: str, in_features: int, num_heads: int) -> None:
    """Raises unless ``num_heads`` divides ``in_features`` (named as the layer's arguments)."""
    if in_features % num_heads:
        raise ValueError(
            f"{owner}: `num_heads`={num_heads} does not divide `in_features`={in_features} "
            "(each head gets in_features / num_heads of the width)"
        )


class TransformerEncoderBlock(_Stochastic):
    """The pre-norm encoder block, calling :func:`F.transformer_encoder_block`.

    Args:
      in_features: model width ``F``.
      num_heads: attention heads; must divide ``F``.
      mlp_features: hidden width of the MLP (``4 * F``).
      dropout_rate: dropout on attention weights, branches and MLP while training, in
        ``[0, 1]`` (``1`` drops both branches, so the block returns its input, as
        PyTorch's layer with ``dropout=1``; no dropout stream is needed then).
      activation: the MLP's activation, a name or a callable (``"gelu"``: the tanh
        approximation, as ``jax.nn.gelu``; PyTorch's ``"gelu"`` is the exact erf form,
        ``functools.partial(nnjax.activations.gelu, approximate=False)``).
      causal: causal self-attention (a bool).
      epsilon: the layer norms' epsilon.
      deterministic: start in inference mode; ``model.eval()`` sets it.
      kernel_init: initializer for every kernel.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream (and, for ``0 < dropout_rate < 1``,
        ``dropout``, else ``default``).

    Raises:
      ValueError: a size that is not a positive int, ``num_heads`` not dividing
        ``in_features``, a ``dropout_rate`` outside ``[0, 1]`` (or NaN), an unknown
        activation or ``kernel_init`` name, ``epsilon`` not ``> 0``, or ``rngs``
        without a ``dropout`` or ``default`` stream when dropout draws masks.
      TypeError: ``dropout_rate`` is not a real number, ``causal`` or
        ``deterministic`` is not a bool, an activation or ``kernel_init`` that is
        neither a name nor a callable, a dtype is not floating, or ``rngs`` is not an
        ``nnx.Rngs``.

    Example:
      >>> from flax import nnx
      >>> block = TransformerEncoderBlock(16, 4, rngs=nnx.Rngs(0))
      >>> block(jnp.ones((2, 10, 16))).shape
      (2, 10, 16)
    """

    norm1: nnx.Dict
    attention: nnx.Dict
    norm2: nnx.Dict
    mlp_in: nnx.Dict
    mlp_out: nnx.Dict

    def __init__(
        self,
        in_features: int,
        num_heads: int,
        *,
        mlp_features: int | None = None,
        dropout_rate: float = 0.0,
        activation: str | activations.Activation = "gelu",
        causal: bool = False,
        epsilon: float = 1e-5,
        deterministic: bool = False,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        name = "TransformerEncoderBlock"
        self.in_features = _validate.positive_int(name, "in_features", in_features)
        self.num_heads = _validate.positive_int(name, "num_heads", num_heads)
        _heads_divide(name, in_features, num_heads)
        if mlp_features is not None:
            _validate.positive_int(name, "mlp_features", mlp_features)
        self.activation = _validate.activation(name, "activation", activation)
        # a name lets an eager call run as one program (F.transformer_encoder_block)
        self._activation_name = activation if isinstance(activation, str) else None
        self.causal = _checks.check_static_bool(name, "causal", causal)
        self.epsilon = _validate.epsilon(name, epsilon)
        check_dtypes(name, param_dtype, dtype)
        _validate.initializer(name, "kernel_init", kernel_init)
        self.dtype = dtype
        self._set_params(
            F.transformer_encoder_block_init(
                rngs.params(), in_features, num_heads=num_heads, mlp_features=mlp_features,
                dtype=param_dtype, kernel_init=kernel_init,
            )
        )  # fmt: skip
        self._setup_dropout(dropout_rate, deterministic, rngs)

    def __call__(
        self,
        x: jax.typing.ArrayLike,
        *,
        mask: jax.typing.ArrayLike | None = None,
        deterministic: bool | None = None,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """Maps ``(B, T, in_features)`` to the same shape.

        Args:
          x: ``(B, T, in_features)``, floating (any dtype when the block has a compute
            ``dtype``: it is cast to it).
          mask: boolean, **True where a query may attend**: ``(B, T)`` key padding,
            ``(B, T, T)``, or ``(B|1, num_heads|1, T, T)``, as in
            :meth:`MultiHeadAttention.__call__`; combined with ``causal``. ``None``
            for no mask.
          deterministic: ``True`` turns dropout off for this call, ``False`` applies
            it (with ``dropout_rate``; nothing when the rate is 0); ``None`` (the
            default) uses the block's ``deterministic`` attribute, the constructor's
            argument as ``model.train()`` / ``model.eval()`` set it.
          key: a PRNG key for this call's dropout, used instead of drawing the next
            key from the block's dropout stream (which then does not advance); ignored
            (not even checked) when no dropout applies.

        Returns:
          ``(B, T, in_features)`` in the compute dtype (``dtype``, else the dtype of
          ``x``).

        Raises:
          nnjax.ShapeError: ``x`` is not ``(B, T, in_features)``, or ``mask`` has none
            of the shapes above.
          TypeError: ``x`` is not floating and the block has no ``dtype``, ``mask`` is
            not boolean, ``deterministic`` is not a bool, or (when dropout masks are
            drawn) ``key`` is not a PRNG key.
        """
        rate, key = self._dropout(deterministic, key)
        activation: str | activations.Activation = self.activation
        named = self._activation_name
        if named is not None and activations.get(named) is activation:  # not replaced since
            activation = named
        return F.transformer_encoder_block(
            self.params(), compute_dtype(x, self.dtype), mask=mask, causal=self.causal,
            dropout_rate=rate, key=key, activation=activation, epsilon=self.epsilon,
        )  # fmt: skip
