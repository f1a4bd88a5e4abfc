"""Inverted dropout, elementwise or over whole feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from nnjax.functional import _utils


def dropout(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    rate: float,
    *,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    """Zeroes each element with probability ``rate`` and scales the rest by ``1/(1-rate)``.

    The expectation of the output equals ``x`` (inverted dropout), so nothing needs
    rescaling at inference: simply do not call ``dropout`` there.

    Args:
      key: a PRNG key.
      x: any shape, floating.
      rate: drop probability in ``[0, 1]``; ``0`` returns ``x``, ``1`` returns zeros.
        May be a traced scalar.
      broadcast_dims: axes along which the mask is shared. For NHWC feature maps,
        ``(1, 2)`` drops whole channels (spatial dropout, Keras' ``SpatialDropout2D``).

    Returns:
      An array of the shape and dtype of ``x``.

    Example:
      >>> y = dropout(jax.random.key(0), jnp.ones((2, 4, 4, 3)), 0.5, broadcast_dims=(1, 2))
      >>> y.shape
      (2, 4, 4, 3)
    """
    x = _utils.as_compute("dropout", x)
    if isinstance(rate, (int, float)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"dropout: `rate` must be in [0, 1], got {rate}")
        if rate == 0.0:
            return x
        if rate == 1.0:
            return jnp.zeros_like(x)
    axes = [d % x.ndim for d in broadcast_dims] if x.ndim else []
    mask_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    keep_prob = 1.0 - jnp.asarray(rate, jnp.float32)
    keep = jax.random.bernoulli(key, keep_prob, mask_shape)
    scale = jnp.where(keep_prob > 0, 1.0 / jnp.maximum(keep_prob, 1e-12), 0.0).astype(x.dtype)
    return jnp.where(jnp.broadcast_to(keep, x.shape), x * scale, jnp.zeros_like(x))
