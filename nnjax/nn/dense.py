"""The fully connected layer as a Flax NNX module."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import _checks, activations, initializers
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, check_dtypes, compute_dtype


class Dense(FunctionalModule):
    """``y = activation(x @ kernel + bias)``, calling :func:`nnjax.functional.dense`.

    Args:
      in_features: size of the input's last axis.
      out_features: size of the output's last axis.
      activation: a name from :mod:`nnjax.activations`, a callable, or ``None``.
      use_bias: whether to add a bias.
      kernel_init: initializer (or name) for the kernel; Glorot uniform by default.
      bias_init: initializer (or name) for the bias; zeros by default.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``jnp.bfloat16`` computes in bfloat16 with float32
        parameters (mixed precision). ``None`` computes in the input's dtype.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: for a size that is not a positive int, or an unknown activation or
        initializer name.
      TypeError: for a ``param_dtype`` (or ``dtype``) that is not a floating dtype, a
        ``use_bias`` that is not a bool, an activation or initializer that is neither a
        name nor a callable, or ``rngs`` that is not an ``nnx.Rngs``. Each names
        ``Dense`` and the argument, and is raised before any parameter is drawn.

    Example:
      >>> from flax import nnx
      >>> layer = Dense(784, 10, activation="relu", rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((32, 784))).shape
      (32, 10)
    """

    kernel: nnx.Param
    bias: nnx.Param | None  # None without use_bias

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str | activations.Activation | None = None,
        use_bias: bool = True,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        bias_init: str | initializers.Initializer = "zeros",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.in_features = _validate.positive_int("Dense", "in_features", in_features)
        self.out_features = _validate.positive_int("Dense", "out_features", out_features)
        self.activation = _validate.activation("Dense", "activation", activation)
        check_dtypes("Dense", param_dtype, dtype)
        _checks.check_static_bool("Dense", "use_bias", use_bias)
        _validate.initializer("Dense", "kernel_init", kernel_init)
        _validate.initializer("Dense", "bias_init", bias_init)
        self.dtype = dtype
        self._set_params(
            F.dense_init(
                rngs.params(),
                in_features,
                out_features,
                dtype=param_dtype,
                kernel_init=kernel_init,
                bias_init=bias_init,
                use_bias=use_bias,
            ),
            optional=("bias",),
        )

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(..., in_features)`` to ``(..., out_features)`` in the compute dtype."""
        return self.activation(F.dense(self.params(), compute_dtype(x, self.dtype)))
