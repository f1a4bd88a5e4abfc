"""Max and average pooling layers (no parameters) as Flax NNX modules."""

from __future__ import annotations

from typing import ClassVar

import jax
from flax import nnx

import nnjax.functional as F
from nnjax.nn import _validate
from nnjax.nn._base import recorded


class _Pool2D(nnx.Module):
    _renamed_args: ClassVar[dict[str, str]] = {"window": "window_shape"}

    def __init__(
        self,
        window_shape: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: str = "VALID",
    ):
        name = type(self).__name__
        self.window_shape = _validate.positive_ints(
            name, "window_shape", window_shape, allow_empty=False
        )
        self.stride = stride if stride is None else _validate.positive_ints(name, "stride", stride)
        self.padding = _validate.choice(name, "padding", padding, ("SAME", "VALID"))

    def _args(self) -> tuple:
        window = self.window_shape[0] if len(self.window_shape) == 1 else self.window_shape
        stride = self.stride
        if stride is not None and len(stride) == 1:
            stride = stride[0]
        return window, stride, self.padding


@recorded
class MaxPool2D(_Pool2D):
    """Max pooling over NHWC images, calling :func:`nnjax.functional.max_pool2d`.

    Args:
      window_shape: ``(wh, ww)`` or an int for a square window (formerly ``window``).
      stride: step between windows; ``None`` means ``window_shape`` (non-overlapping).
      padding: ``"VALID"`` or ``"SAME"``.

    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
    """

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, H, W, C)`` to ``(B, H', W', C)``."""
        return F.max_pool2d(x, *self._args())


@recorded
class AvgPool2D(_Pool2D):
    """Average pooling over NHWC images, calling :func:`nnjax.functional.avg_pool2d`.

    Args:
      window_shape: ``(wh, ww)`` or an int for a square window (formerly ``window``).
      stride: step between windows; ``None`` means ``window_shape``.
      padding: ``"VALID"`` or ``"SAME"``.
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average.

    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool2D(2)(jnp.ones((1, 28, 28, 3))).shape
      (1, 14, 14, 3)
    """

    def __init__(
        self,
        window_shape: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: str = "VALID",
        *,
        count_include_pad: bool = False,
    ):
        super().__init__(window_shape, stride, padding)
        self.count_include_pad = count_include_pad

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, H, W, C)`` to ``(B, H', W', C)``."""
        return F.avg_pool2d(x, *self._args(), count_include_pad=self.count_include_pad)
