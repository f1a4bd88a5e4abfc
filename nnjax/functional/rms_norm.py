"""Root-mean-square layer normalisation (Zhang and Sennrich, 2019)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax._deprecation import renamed_args
from nnjax.functional import _eager, _utils

Params = dict[str, jax.Array]


@renamed_args(features="num_features")
def rms_norm_init(key: jax.Array, num_features: int, *, dtype: jnp.dtype = jnp.float32) -> Params:
    """Initialises :func:`rms_norm`: ``{"scale": ones (F,)}``.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic).
      num_features: size ``F`` of the normalised last axis.
      dtype: parameter dtype.

    Returns:
      ``{"scale": (F,)}``, ones in ``dtype``.

    Raises:
      ValueError: if ``num_features`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``).

    Example:
      >>> rms_norm_init(jax.random.key(0), 3)
      {'scale': Array([1., 1., 1.], dtype=float32)}
    """
    del key
    n = _utils.positive_int("rms_norm_init", "num_features", num_features)
    dtype = _checks.float_dtype("rms_norm_init", dtype)
    return {"scale": jnp.ones((n,), dtype)}


def rms_norm(params: Params, x: jax.typing.ArrayLike, *, epsilon: float = 1e-6) -> jax.Array:
    """``x / sqrt(mean(x**2) + epsilon) * scale`` over the last axis (no centring, no bias).

    Equal to PyTorch's ``RMSNorm``; the statistic is computed in float32 at least.

    Args:
      params: ``{"scale": (F,)}``.
      x: ``(..., F)``, floating.
      epsilon: added to the mean square, ``> 0``.

    Returns:
      The shape and dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` is a scalar or its last axis is not the size ``F`` of
        ``params['scale']`` (the message shows ``x``'s shape).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: ``params`` lacks ``"scale"`` (that error is a ``KeyError`` too) or has
        another key.
      ValueError: if a concrete ``epsilon`` is not ``> 0``.

    Example:
      >>> params = rms_norm_init(jax.random.key(0), 4)
      >>> rms_norm(params, jnp.array([[2.0, -2.0, 2.0, -2.0]]), epsilon=1e-12)
      Array([[ 1., -1.,  1., -1.]], dtype=float32)
    """
    x = _utils.as_compute("rms_norm", x)
    _checks.check_min_rank("rms_norm", "x", x, 1)
    params = _utils.check_affine("rms_norm", params, x, ("scale",))
    _utils.check_epsilon("rms_norm", epsilon)
    return _eager.one_program(_rms_norm, (), None, params, x, epsilon)


def _rms_norm(params: Params, x: jax.Array, epsilon: Any) -> jax.Array:
    """``x / rms(x) * scale`` over the last axis (eagerly one program, :func:`rms_norm`)."""
    xf = x.astype(_utils.stat_dtype(x))
    ms = jnp.mean(jnp.square(xf), axis=-1, keepdims=True)
    y = (xf * jax.lax.rsqrt(ms + epsilon)).astype(x.dtype)
    return _utils.affine(params, y, ("scale",))
