"""2-D max and average pooling layers: the N-d layers of :mod:`nnjax.nn.pooling_nd`."""

from __future__ import annotations

from typing import ClassVar

import nnjax.functional as F
from nnjax.nn._base import recorded
from nnjax.nn.pooling_nd import _AvgPool, _Pool

#: The layers take Flax's ``window_shape`` (passed on as the functional op's ``window``);
#: 0.1's ``window`` keyword here warns for one release.
_RENAMED = {"window": "window_shape"}


@recorded
class MaxPool2D(_Pool):
    """Max pooling over NHWC images, calling :func:`nnjax.functional.max_pool2d`.

    Maps ``(B, H, W, C)`` to ``(B, H', W', C)`` in the input's dtype: ``H' = ceil((H -
    wh + 1) / stride)`` with ``"VALID"`` padding, ``ceil(H / stride)`` with ``"SAME"``.

    Args:
      window_shape: ``(wh, ww)`` or an int for a square window (formerly ``window``).
      stride: step between windows; ``None`` means ``window_shape`` (non-overlapping).
      padding: ``"VALID"`` or ``"SAME"``.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``window_shape`` or ``stride`` is not a positive int or a pair of
        them, or ``padding`` is neither ``"VALID"`` nor ``"SAME"``.
      TypeError: ``rngs`` is none of ``nnx.Rngs``, ``nnx.RngStream``, ``None``. Calls
        raise as :func:`nnjax.functional.max_pool2d` (``nnjax.ShapeError`` for an input
        that is not rank 4).

    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
    """

    _op = staticmethod(F.max_pool2d)
    _nd = 2
    _renamed_args: ClassVar[dict[str, str]] = _RENAMED


@recorded
class AvgPool2D(_AvgPool):
    """Average pooling over NHWC images, calling :func:`nnjax.functional.avg_pool2d`.

    Maps floating ``(B, H, W, C)`` to ``(B, H', W', C)`` in the input's dtype, with the
    output sizes of :class:`MaxPool2D`.

    Args:
      window_shape: ``(wh, ww)`` or an int for a square window (formerly ``window``).
      stride: step between windows; ``None`` means ``window_shape``.
      padding: ``"VALID"`` or ``"SAME"``.
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: as :class:`MaxPool2D`.
      TypeError: ``count_include_pad`` is not a bool, or as :class:`MaxPool2D`.

    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
    """

    _op = staticmethod(F.avg_pool2d)
    _nd = 2
    _renamed_args: ClassVar[dict[str, str]] = _RENAMED
