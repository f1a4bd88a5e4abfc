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

    Maps ``(B, H, W, C)`` to ``(B, H', W', C)`` in the input's dtype: ``H' = floor((H +
    top + bottom - wh) / stride) + 1`` (``ceil`` with ``ceil_mode``) for explicit
    padding, the same with no padding for ``"VALID"``, ``ceil(H / stride)`` for
    ``"SAME"``.

    Args:
      window_shape: ``(wh, ww)`` or an int for a square window (formerly ``window``).
      stride: step between windows; ``None`` means ``window_shape`` (non-overlapping).
      padding: ``"VALID"``, ``"SAME"``, an int (PyTorch's ``padding``: both sides of
        both axes), ``(ph, pw)``, or ``((top, bottom), (left, right))`` (Flax's); at
        most ``window // 2`` per side, as PyTorch. Pads with ``-inf``.
      ceil_mode: PyTorch's (see :func:`nnjax.functional.max_pool2d`).
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``window_shape`` or ``stride`` is not a positive int or a pair of
        them, or a bad ``padding`` (as :func:`nnjax.functional.max_pool2d`'s).
      TypeError: ``ceil_mode`` is not a bool, or ``rngs`` is none of ``nnx.Rngs``,
        ``nnx.RngStream``, ``None``. Calls raise as :func:`nnjax.functional.max_pool2d`
        (``nnjax.ShapeError`` for an input that is not rank 4).

    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
      >>> MaxPool2D(3, stride=2, padding=1)(jnp.ones((1, 112, 112, 3))).shape  # ResNet's
      (1, 56, 56, 3)
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
      padding: as :class:`MaxPool2D` (pads with zeros).
      ceil_mode: as :class:`MaxPool2D`.
      count_include_pad: whether padding counts in each window's divisor. ``False``
        (Keras's default) averages the input elements alone; PyTorch's default is
        ``True``, so ``nn.AvgPool2d(3, 2, 1)`` is ``AvgPool2D(3, 2, 1,
        count_include_pad=True)``.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: as :class:`MaxPool2D`.
      TypeError: ``count_include_pad`` or ``ceil_mode`` is not a bool, or as
        :class:`MaxPool2D`.

    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
    """

    _op = staticmethod(F.avg_pool2d)
    _nd = 2
    _renamed_args: ClassVar[dict[str, str]] = _RENAMED
