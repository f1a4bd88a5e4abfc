"""Max and average pooling over NHWC images."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _checks
from nnjax.functional import _utils


def _window_args(op, x, window, stride, padding):
    x = _utils.as_compute(op, x)
    _checks.check_rank(op, "x", x, 4)
    wh, ww = _utils.pair(window, "window", op)
    sh, sw = _utils.pair(window if stride is None else stride, "stride", op)
    mode = padding.upper() if isinstance(padding, str) else padding
    if mode not in ("SAME", "VALID"):
        raise ValueError(f"{op}: `padding` must be 'SAME' or 'VALID', got {padding!r}")
    _checks.check_window_fits(op, x, (wh, ww), mode)
    return x, (1, wh, ww, 1), (1, sh, sw, 1), mode


def max_pool2d(
    x: jax.typing.ArrayLike,
    window: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: str = "VALID",
) -> jax.Array:
    """Takes the maximum over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window.
      stride: step between windows; defaults to ``window`` (non-overlapping).
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(H / sh)``; pads with ``-inf``, the odd row/column at the bottom/right as
        in TensorFlow).

    Returns:
      ``(B, H', W', C)``, the dtype of ``x``.

    Raises:
      AssertionError: if ``x`` is not rank 4 (the message names the shape).
      ValueError: for a bad ``window``, ``stride`` or ``padding``, or a ``"VALID"``
        window larger than the image.
      TypeError: if ``x`` is not floating.

    Example:
      >>> x = jnp.array([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
      >>> max_pool2d(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[6., 8.],
             [3., 4.]], dtype=float32)
    """
    x, dims, strides, mode = _window_args("max_pool2d", x, window, stride, padding)
    return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, mode)


def avg_pool2d(
    x: jax.typing.ArrayLike,
    window: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: str = "VALID",
    *,
    count_include_pad: bool = False,
) -> jax.Array:
    """Averages over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window.
      stride: step between windows; defaults to ``window``.
      padding: ``"VALID"`` or ``"SAME"`` (output ``ceil(H / sh)``, padded like
        :func:`max_pool2d`).
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average
        (PyTorch's default is ``True``; Keras and this function's is ``False``).

    Returns:
      ``(B, H', W', C)``, the dtype of ``x``.

    Raises:
      AssertionError, ValueError, TypeError: as :func:`max_pool2d`.

    Example:
      >>> avg_pool2d(jnp.ones((1, 4, 4, 3)), 2).shape
      (1, 2, 2, 3)
    """
    x, dims, strides, mode = _window_args("avg_pool2d", x, window, stride, padding)
    # A Python scalar as the initial value lets JAX recognise the sum monoid (and so
    # differentiate it); a traced zero would make a generic, non-differentiable reduction.
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, mode)
    if mode == "VALID" or count_include_pad:
        return total / (dims[1] * dims[2])
    ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
    count = lax.reduce_window(ones, 0.0, lax.add, dims, strides, mode)
    return total / count
