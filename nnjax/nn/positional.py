"""Position encodings as Flax NNX modules: the sinusoidal table and rotary embeddings.

Both are layers without parameters over the functional ops of
:mod:`nnjax.functional.positional`. :class:`SinusoidalPositionEncoding` *adds* the
fixed table to its input, so it sits between an embedding and the encoder blocks of a
:class:`~nnjax.nn.Sequential`; :class:`RotaryPositionEncoding` rotates queries or keys
(apply it to both, not to the values, inside your own attention).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import numpy as np
from flax import nnx

import nnjax.functional as F
from nnjax import _checks
from nnjax.errors import ShapeError
from nnjax.functional import _utils
from nnjax.nn._base import recorded

Rngs = nnx.Rngs | nnx.RngStream | None


def _positive_real(owner: str, name: str, value: Any) -> float:
    """``value`` as a float after checking it is a finite Python or NumPy number ``> 0``."""
    number = _checks.concrete_number(value)
    if number is None or isinstance(value, bool | np.bool_):
        raise TypeError(f"{owner}: `{name}` must be a real number, got {value!r}")
    if not (0 < number < float("inf")):  # NaN fails too
        raise ValueError(f"{owner}: `{name}` must be a finite number > 0, got {value!r}")
    return number


def _even_features(owner: str, name: str, value: Any) -> int:
    if not _checks.is_int(value) or value < 2 or value % 2:
        raise ValueError(_checks.static_arg_message(owner, name, value, "a positive even int"))
    return int(value)


@recorded
class SinusoidalPositionEncoding(nnx.Module):
    """Adds the fixed sinusoidal table of "Attention is all you need" to ``(B, T, F)``.

    ``y = x + pe[None]`` with ``pe`` the ``(T, features)`` table of
    :func:`nnjax.functional.sinusoidal_position_encoding` for ``T = x.shape[1]``:
    ``pe[t, 2i] = sin(t / max_timescale ** (2i / F))``, ``pe[t, 2i + 1] = cos(...)``.
    The layer adds the table (rather than returning it) so that it composes in a
    :class:`~nnjax.nn.Sequential` between an :class:`~nnjax.nn.Embedding` and the
    encoder blocks; call the functional op for the table alone. Any length ``T`` works
    (no maximum); each new ``T`` is a new shape, hence one compilation under ``jit``.

    Args:
      features: ``F``, the size of the input's last axis; a positive even int.
      max_timescale: the longest wavelength's scale (10000), a finite number ``> 0``.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``features`` is not a positive even int, or ``max_timescale`` is not
        ``> 0`` (or not finite).
      TypeError: ``max_timescale`` is not a real number, or ``rngs`` is none of
        ``nnx.Rngs``, ``nnx.RngStream``, ``None``. Calls raise as :meth:`__call__` says.

    Example:
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> pe = SinusoidalPositionEncoding(4)
      >>> np.asarray(pe(jnp.zeros((1, 3, 4)))[0]).round(3)  # zeros + the table
      array([[ 0.   ,  1.   ,  0.   ,  1.   ],
             [ 0.841,  0.54 ,  0.01 ,  1.   ],
             [ 0.909, -0.416,  0.02 ,  1.   ]], dtype=float32)
      >>> model = nn.Sequential(  # then e.g. nn.TransformerEncoderBlock(16, 4, ...)
      ...     nn.Embedding(100, 16, rngs=nnx.Rngs(0)), SinusoidalPositionEncoding(16)
      ... )
      >>> model(jnp.array([[1, 2, 3, 4, 5]])).shape
      (1, 5, 16)
    """

    def __init__(self, features: int, *, max_timescale: float = 10000.0, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature
        owner = "SinusoidalPositionEncoding"
        self.features = _even_features(owner, "features", features)
        self.max_timescale = _positive_real(owner, "max_timescale", max_timescale)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``x (B, T, features)`` to ``x + pe[None]``, the same shape and dtype.

        Args:
          x: ``(B, T, features)``, floating (the table is computed in float32 at least
            and cast to the dtype of ``x`` before the addition).

        Returns:
          ``(B, T, features)`` in the dtype of ``x``.

        Raises:
          nnjax.ShapeError: ``x`` is not rank 3 or its last axis is not ``features``
            (checked on the static shape, so also under ``jax.jit``).
          TypeError: ``x`` is not floating (e.g. token ids: embed them first).
        """
        owner = "SinusoidalPositionEncoding"
        x = _utils.as_compute(owner, x)
        why = f"features={self.features}"
        _checks.check_shape(owner, "x", x, (None, None, self.features), why=why)
        table = F.sinusoidal_position_encoding(
            x.shape[1], self.features, max_timescale=self.max_timescale, dtype=x.dtype
        )
        return x + table[None]


@recorded
class RotaryPositionEncoding(nnx.Module):
    """Rotates queries or keys by their position (RoPE), calling :func:`F.rotary_position_encoding`.

    Feature ``i < D/2`` is paired with feature ``i + D/2`` (GPT-NeoX / Llama layout) and
    the pair is rotated by ``p * base ** (-2i / D)`` at position ``p``, so the dot
    product of a rotated query at ``m`` and a rotated key at ``n`` depends on ``m - n``
    only. The layer maps its input to the same shape, so it also composes in a
    :class:`~nnjax.nn.Sequential`; in attention, apply it to ``q`` and ``k`` of each
    head (``(B, T, H, D)``), not to ``v``.

    Args:
      base: the frequency base (10000), a finite number ``> 0``.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``base`` is not ``> 0`` (or not finite).
      TypeError: ``base`` is not a real number, or ``rngs`` is none of ``nnx.Rngs``,
        ``nnx.RngStream``, ``None``. Calls raise as :meth:`__call__` says.

    Example:
      >>> rope = RotaryPositionEncoding()
      >>> q = jnp.ones((1, 2, 1, 2))  # B, T, H, D
      >>> np.asarray(rope(q)[0, :, 0]).round(3)
      array([[ 1.   ,  1.   ],
             [-0.301,  1.382]], dtype=float32)
      >>> rope(q, positions=jnp.array([5, 6])).shape  # e.g. an offset while decoding
      (1, 2, 1, 2)
    """

    integer_inputs: ClassVar[tuple[str, ...]] = ("positions",)
    """Arguments that take integers: ``fit`` and ``predict`` accept integer ``positions``."""

    def __init__(self, *, base: float = 10000.0, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature
        self.base = _positive_real("RotaryPositionEncoding", "base", base)

    def __call__(
        self, x: jax.typing.ArrayLike, positions: jax.typing.ArrayLike | None = None
    ) -> jax.Array:
        """Rotates ``x (B, T, ..., D)`` by the positions of its time axis (axis 1).

        Args:
          x: ``(B, T, ..., D)``, e.g. ``(B, T, H, D)`` per head or ``(B, T, D)``, with
            ``D`` even; floating (the angles are computed in float32 at least).
          positions: integer or float positions ``(T,)`` or ``(B, T)``; ``None`` uses
            ``0 .. T-1``.

        Returns:
          The shape and dtype of ``x``.

        Raises:
          nnjax.ShapeError: ``x`` has rank < 3 or an odd last axis, or ``positions`` is
            neither ``(T,)`` nor ``(B, T)`` (named as
            :func:`F.rotary_position_encoding`'s).
          TypeError: ``x`` is not floating.
        """
        owner = "RotaryPositionEncoding"
        x = _utils.as_compute(owner, x)
        _checks.check_min_rank(owner, "x", x, 3)
        if x.shape[-1] % 2:
            raise ShapeError(
                f"{owner}: argument `x` has shape {tuple(x.shape)}, expected an even last "
                "axis D (features i and i + D/2 are rotated as a pair)"
            )
        return F.rotary_position_encoding(x, positions, base=self.base)


__all__ = ["RotaryPositionEncoding", "SinusoidalPositionEncoding"]
