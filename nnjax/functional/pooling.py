"""Max and average pooling over channels-last inputs, through one N-d implementation.

1-D ``(B, T, C)``, 2-D NHWC ``(B, H, W, C)`` and 3-D ``(B, D, H, W, C)`` inputs. Every
pool takes ``window`` and ``stride`` (defaulting to ``window``); ``window_shape=``, the
keyword of unreleased development versions, still works in 0.2 with a
``DeprecationWarning`` and goes in 0.3. (The layers of :mod:`nnjax.nn` take Flax's
``window_shape``.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nnjax import _checks, _hardware
from nnjax._deprecation import renamed_args
from nnjax.functional import _bfloat16, _utils
from nnjax.functional import _pool_formulations as _forms
from nnjax.functional._pool_formulations import pool_formulation as pool_formulation

Window = int | tuple[int, ...]


def _window_args(op, nd, x, window, stride, padding, formulation):
    x = _utils.as_compute(op, x)
    _checks.check_rank(op, "x", x, nd + 2)
    window = _utils.ntuple(window, nd, "window", op)
    stride = _utils.ntuple(window if stride is None else stride, nd, "stride", op)
    mode = padding.upper() if isinstance(padding, str) else padding
    if mode not in ("SAME", "VALID"):
        raise ValueError(f"{op}: `padding` must be 'SAME' or 'VALID', got {padding!r}")
    _utils.check_window_fits(op, x, window, mode)
    how = _forms.resolve(op, formulation, x.shape, window, stride)
    return x, window, stride, mode, how


def _max_pool(op: str, nd: int, x, window, stride, padding, formulation) -> jax.Array:
    x, window, stride, mode, how = _window_args(op, nd, x, window, stride, padding, formulation)
    if _hardware.widen_bfloat16(x.dtype):
        # bfloat16 computed by widening on this CPU: the max of the same values in float32 is exact
        # (and so is its gradient's routing), without XLA's per-comparison conversions
        y = _forms.MAX[how](_bfloat16.to_float32(x), window, stride, mode)
        return _bfloat16.round_like(y, x.dtype)
    return _forms.MAX[how](x, window, stride, mode)


def _avg_pool(
    op: str, nd: int, x, window, stride, padding, count_include_pad, formulation
) -> jax.Array:
    x, window, stride, mode, how = _window_args(op, nd, x, window, stride, padding, formulation)
    count_include_pad = _checks.check_static_bool(op, "count_include_pad", count_include_pad)
    dtype = _utils.stat_dtype(x)  # sums of float16/bfloat16 windows in float32, as PyTorch
    xs = _bfloat16.to_float32(x) if x.dtype != dtype else x  # (float16 overflowed at 65504)
    window_sum = _forms.SUM[how]
    total = window_sum(xs, window, stride, mode)
    if mode == "VALID" or count_include_pad:
        y = total / math.prod(window)
    else:
        ones = jnp.ones((1, *x.shape[1:-1], 1), dtype)
        y = total / window_sum(ones, window, stride, mode)
    return _bfloat16.round_like(y, x.dtype)


@renamed_args(window_shape="window")
def max_pool1d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of ``(B, T, C)`` sequences.

    Args:
      x: ``(B, T, C)``, floating.
      window: an int or ``(w,)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(size / stride)`` per axis).
      formulation: ``"auto"``, ``"reduce_window"`` or ``"reshape"`` (non-overlapping windows only),
        as in :func:`max_pool2d`.

    Returns:
      ``(B, T', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`max_pool2d`.

    Example:
      >>> max_pool1d(jnp.array([[[1.0], [3.0], [2.0], [0.0]]]), 2)[..., 0]
      Array([[3., 2.]], dtype=float32)
    """
    return _max_pool("max_pool1d", 1, x, window, stride, padding, formulation)


@renamed_args(window_shape="window")
def max_pool2d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window (``window_shape=`` is a
        deprecated alias).
      stride: step between windows, the same form; defaults to ``window``
        (non-overlapping).
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(H / sh)``; pads with ``-inf``, the odd row/column at the bottom/right as
        in TensorFlow).
      formulation: ``"auto"`` (the formulation measured fastest for this backend and
        shape), ``"reduce_window"`` (:func:`jax.lax.reduce_window`) or ``"reshape"``
        (non-overlapping windows only: a reshape and a max, whose gradient is a
        select). All compute the same values and gradients (ties: the whole gradient
        goes to the first maximal element of the window, as in PyTorch), but for a
        window holding NaN: its output is NaN in all, its gradient goes to the last
        NaN with ``"reshape"`` (as in PyTorch) and to a finite element with
        ``"reduce_window"``; see ``nnjax/functional/_pool_formulations.py``.

    Returns:
      ``(B, H', W', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` is not rank 4 (the message names the shape).
      ValueError: for a bad ``window``, ``stride``, ``padding`` or ``formulation``
        (``"reshape"`` with ``stride != window``), or a ``"VALID"`` window larger
        than the image.
      TypeError: if ``x`` is not floating.

    Example:
      >>> x = jnp.array([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
      >>> max_pool2d(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[6., 8.],
             [3., 4.]], dtype=float32)
      >>> max_pool2d(x[None, :, :, None], window=(2, 2), stride=1, padding="SAME").shape
      (1, 4, 4, 1)
    """
    return _max_pool("max_pool2d", 2, x, window, stride, padding, formulation)


@renamed_args(window_shape="window")
def max_pool3d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of ``(B, D, H, W, C)`` volumes.

    Args:
      x: ``(B, D, H, W, C)``, floating.
      window: an int or ``(wd, wh, ww)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(size / stride)`` per axis).
      formulation: ``"auto"``, ``"reduce_window"`` or ``"reshape"`` (non-overlapping windows only),
        as in :func:`max_pool2d`.

    Returns:
      ``(B, D', H', W', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`max_pool2d`.

    Example:
      >>> max_pool3d(jnp.ones((1, 4, 4, 4, 2)), 2).shape
      (1, 2, 2, 2, 2)
    """
    return _max_pool("max_pool3d", 3, x, window, stride, padding, formulation)


@renamed_args(window_shape="window")
def avg_pool1d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of ``(B, T, C)`` sequences; as :func:`avg_pool2d`.

    Args:
      x: ``(B, T, C)``, floating.
      window: an int or ``(w,)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(size / stride)`` per axis).
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average
        (``False`` by default, as in Keras).
      formulation: ``"auto"``, ``"reduce_window"`` or ``"reshape"`` (non-overlapping windows only),
        as in :func:`max_pool2d`.

    Returns:
      ``(B, T', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`max_pool2d`; also
        ``TypeError`` if ``count_include_pad`` is not a bool.

    Example:
      >>> avg_pool1d(jnp.array([[[1.0], [3.0], [2.0], [0.0]]]), 2)[..., 0]
      Array([[2., 1.]], dtype=float32)
    """
    return _avg_pool("avg_pool1d", 1, x, window, stride, padding, count_include_pad, formulation)


@renamed_args(window_shape="window")
def avg_pool2d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window (``window_shape=`` is a
        deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"`` or ``"SAME"`` (output ``ceil(H / sh)``, padded like
        :func:`max_pool2d`).
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average
        (PyTorch's default is ``True``; Keras and this function's is ``False``).
      formulation: ``"auto"``, ``"reduce_window"`` or ``"reshape"`` (a reshape and a
        sum; non-overlapping windows only), as in :func:`max_pool2d`.

    Returns:
      ``(B, H', W', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`max_pool2d`; also
        ``TypeError`` if ``count_include_pad`` is not a bool.

    Example:
      >>> avg_pool2d(jnp.ones((1, 4, 4, 3)), window=2, stride=2, padding="VALID").shape
      (1, 2, 2, 3)
    """
    return _avg_pool("avg_pool2d", 2, x, window, stride, padding, count_include_pad, formulation)


@renamed_args(window_shape="window")
def avg_pool3d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: str = "VALID",
    *,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of ``(B, D, H, W, C)`` volumes; as :func:`avg_pool2d`.

    Args:
      x: ``(B, D, H, W, C)``, floating.
      window: an int or ``(wd, wh, ww)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"`` (drop incomplete windows) or ``"SAME"`` (output
        ``ceil(size / stride)`` per axis).
      count_include_pad: with ``"SAME"``, whether padded zeros count in the average
        (``False`` by default, as in Keras).
      formulation: ``"auto"``, ``"reduce_window"`` or ``"reshape"`` (non-overlapping windows only),
        as in :func:`max_pool2d`.

    Returns:
      ``(B, D', H', W', C)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`max_pool2d`; also
        ``TypeError`` if ``count_include_pad`` is not a bool.

    Example:
      >>> avg_pool3d(jnp.ones((1, 4, 4, 4, 2)), (2, 2, 1)).shape
      (1, 2, 2, 4, 2)
    """
    return _avg_pool("avg_pool3d", 3, x, window, stride, padding, count_include_pad, formulation)
