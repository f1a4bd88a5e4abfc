"""Position encodings: the fixed sinusoidal table and rotary embeddings (RoPE)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax.functional import _utils


def _inverse_frequencies(features: int, base: float, dtype) -> jax.Array:
    """``base ** (-2i / features)`` for ``i < features // 2``."""
    return base ** (-jnp.arange(0, features, 2, dtype=dtype) / features)


def _even(op: str, name: str, value) -> int:
    if not _utils.is_int(value) or value < 2 or value % 2:
        raise ValueError(_checks.static_arg_message(op, name, value, "a positive even int"))
    return int(value)


def sinusoidal_position_encoding(
    length: int,
    features: int,
    *,
    max_timescale: float = 10000.0,
    dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
    """The fixed table of "Attention is all you need": sines on even, cosines on odd features.

    ``pe[t, 2i] = sin(t / max_timescale ** (2i / F))`` and
    ``pe[t, 2i + 1] = cos(t / max_timescale ** (2i / F))``; add it to ``(B, T, F)``
    embeddings (``x + pe[None]``).

    Args:
      length: number of positions ``T``.
      features: ``F``, even.
      max_timescale: the longest wavelength's scale (10000).
      dtype: dtype of the table (computed in float32 at least).

    Returns:
      ``(T, F)`` in ``dtype`` (float32 by default).

    Raises:
      ValueError: if ``length`` is not a non-negative int or ``features`` is not a
        positive even int (both must be static under ``jax.jit``; NumPy ints count).
      TypeError: if ``dtype`` is not a floating dtype.

    Example:
      >>> np.asarray(sinusoidal_position_encoding(3, 4)).round(3)
      array([[ 0.   ,  1.   ,  0.   ,  1.   ],
             [ 0.841,  0.54 ,  0.01 ,  1.   ],
             [ 0.909, -0.416,  0.02 ,  1.   ]], dtype=float32)
    """
    op = "sinusoidal_position_encoding"
    length = _utils.positive_int(op, "length", length, minimum=0)
    features = _even(op, "features", features)
    dtype = _checks.float_dtype(op, dtype)
    compute = jnp.promote_types(dtype, jnp.float32)
    inverse = _inverse_frequencies(features, max_timescale, compute)
    angles = jnp.arange(length, dtype=compute)[:, None] * inverse[None, :]
    table = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # (T, F/2, 2)
    return jnp.reshape(table, (length, features)).astype(dtype)


def rotary_position_encoding(
    x: jax.typing.ArrayLike,
    positions: jax.typing.ArrayLike | None = None,
    *,
    base: float = 10000.0,
) -> jax.Array:
    """Rotates queries or keys by their position (RoPE, Su et al. 2021).

    Feature ``i < D/2`` is paired with feature ``i + D/2`` (the "rotate half" layout of
    GPT-NeoX and Llama) and the pair is rotated by the angle ``p * base ** (-2i / D)``
    for position ``p``. Dot products between a rotated query at ``m`` and a rotated key
    at ``n`` then depend on ``m - n`` only. Apply it to ``q`` and ``k`` (not ``v``) of
    each head. Angles are computed in float32 at least.

    Args:
      x: ``(B, T, ..., D)`` with the time axis at position 1 (e.g. ``(B, T, H, D)``),
        ``D`` even; floating.
      positions: integer or float positions ``(T,)`` or ``(B, T)``; ``None`` uses
        ``0 .. T-1``.
      base: the frequency base (10000).

    Returns:
      The shape and dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``x`` of rank < 3, or ``positions`` not ``(T,)`` / ``(B, T)``.
      ValueError: an odd ``D``.
      TypeError: if ``x`` is not floating.

    Example:
      >>> x = jnp.ones((1, 2, 1, 2))  # B, T, H, D
      >>> np.asarray(rotary_position_encoding(x)[0, :, 0]).round(3)
      array([[ 1.   ,  1.   ],
             [-0.301,  1.382]], dtype=float32)
    """
    op = "rotary_position_encoding"
    x = _utils.as_compute(op, x)
    _checks.check_min_rank(op, "x", x, 3)
    batch, length, dim = x.shape[0], x.shape[1], x.shape[-1]
    _even(op, "x.shape[-1]", dim)
    if positions is None:
        positions = jnp.arange(length)[None, :]
    else:
        positions = _utils.as_array(op, positions, "positions", numbers="int32")
        _checks.check_rank(op, "positions", positions, {1, 2})
        if positions.ndim == 1:
            _checks.check_shape(op, "positions", positions, (length,))
            positions = positions[None, :]
        else:
            _checks.check_shape(op, "positions", positions, (batch, length))
    compute = _utils.stat_dtype(x)
    angles = (
        positions.astype(compute)[..., None] * _inverse_frequencies(dim, base, compute)[None, None]
    )
    angles = jnp.reshape(angles, (*angles.shape[:2], *(1,) * (x.ndim - 3), dim // 2))
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = jnp.split(x.astype(compute), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)
