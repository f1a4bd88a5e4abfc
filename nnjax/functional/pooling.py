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
from nnjax.functional import _pool_padding as _pads
from nnjax.functional._pool_formulations import pool_formulation as pool_formulation

Window = int | tuple[int, ...]
Padding = _pads.Padding


def _window_args(op, nd, x, window, stride, padding, ceil_mode, formulation):
    x = _utils.as_compute(op, x)
    _checks.check_rank(op, "x", x, nd + 2)
    window = _utils.ntuple(window, nd, "window", op)
    stride = _utils.ntuple(window if stride is None else stride, nd, "stride", op)
    padding = _pads.pool_padding(op, nd, padding, window)
    ceil_mode = _checks.check_static_bool(op, "ceil_mode", ceil_mode)
    pads = _pads.plan(op, x.shape, window, stride, padding, ceil_mode=ceil_mode)
    how = _forms.resolve(op, formulation, x.shape, window, stride)
    return x, window, stride, pads, how


def _max_pool(op, nd, x, window, stride, padding, ceil_mode, formulation) -> jax.Array:
    x, window, stride, pads, how = _window_args(
        op, nd, x, window, stride, padding, ceil_mode, formulation
    )
    mode = pads.padding  # padded with -inf: a padded position never wins, nor gets gradient
    if _hardware.widen_bfloat16(x.dtype):
        # bfloat16 computed by widening on this CPU: the max of the same values in float32 is exact
        # (and so is its gradient's routing), without XLA's per-comparison conversions
        y = _forms.MAX[how](_bfloat16.to_float32(x), window, stride, mode)
        return _bfloat16.round_like(y, x.dtype)
    return _forms.MAX[how](x, window, stride, mode)


def _avg_pool(
    op, nd, x, window, stride, padding, ceil_mode, count_include_pad, formulation
) -> jax.Array:
    x, window, stride, pads, how = _window_args(
        op, nd, x, window, stride, padding, ceil_mode, formulation
    )
    count_include_pad = _checks.check_static_bool(op, "count_include_pad", count_include_pad)
    dtype = _utils.stat_dtype(x)  # sums of float16/bfloat16 windows in float32, as PyTorch
    xs = _bfloat16.to_float32(x) if x.dtype != dtype else x  # (float16 overflowed at 65504)
    window_sum = _forms.SUM[how]
    total = window_sum(xs, window, stride, pads.padding)
    if pads.padding == "VALID" or (count_include_pad and not any(pads.ceil_extra)):
        return _bfloat16.round_like(total / math.prod(window), x.dtype)
    # the divisor per window: its input elements, and its padding if counted (as PyTorch,
    # never the part of a ceil_mode window past the padding)
    spatial, mode = x.shape[1:-1], pads.padding
    if count_include_pad:  # pads.padding is pairs: ceil_mode extended them
        spatial = [n + lo + hi - e for n, (lo, hi), e in zip(spatial, mode, pads.ceil_extra)]
        mode = tuple((0, e) for e in pads.ceil_extra)
    ones = jnp.ones((1, *spatial, 1), dtype)
    return _bfloat16.round_like(total / window_sum(ones, window, stride, mode), x.dtype)


@renamed_args(window_shape="window")
def max_pool1d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of ``(B, T, C)`` sequences.

    Args:
      x: ``(B, T, C)``, floating.
      window: an int or ``(w,)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"``, ``"SAME"``, an int, one int per axis or ``(lo, hi)`` pairs,
        as in :func:`max_pool2d`.
      ceil_mode: PyTorch's, as in :func:`max_pool2d`.
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
    return _max_pool("max_pool1d", 1, x, window, stride, padding, ceil_mode, formulation)


@renamed_args(window_shape="window")
def max_pool2d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window (``window_shape=`` is a
        deprecated alias).
      stride: step between windows, the same form; defaults to ``window``
        (non-overlapping).
      padding: ``"VALID"`` (drop incomplete windows); ``"SAME"`` (output
        ``ceil(H / sh)``; the odd row/column at the bottom/right as in TensorFlow); an
        int ``p`` (``p`` on both sides of each spatial axis, as PyTorch's
        ``padding=p``); one int per spatial axis (PyTorch's tuple); or one ``(lo, hi)``
        pair per spatial axis (Flax's), e.g. ``((1, 1), (0, 1))``. Explicit padding
        is at most ``window // 2`` per side (PyTorch's limit), so every window holds
        an input element. Max pooling pads with ``-inf``: padded positions never win
        and get no gradient.
      ceil_mode: PyTorch's: ``ceil`` instead of ``floor`` in the output size
        ``(H + lo + hi - wh) / sh + 1``, so a last partial window is kept if it starts
        inside the input or the low padding (its part past the end is ignored). No
        effect with ``"SAME"``, whose output is already ``ceil(H / sh)``.
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
      ValueError: for a bad ``window``, ``stride``, ``padding`` (also: more than
        ``window // 2`` on a side) or ``formulation`` (``"reshape"`` with ``stride !=
        window``), or a window larger than the padded image.
      TypeError: if ``x`` is not floating, or ``ceil_mode`` is not a bool.

    Example:
      >>> x = jnp.array([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
      >>> max_pool2d(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[6., 8.],
             [3., 4.]], dtype=float32)
      >>> max_pool2d(x[None, :, :, None], window=(2, 2), stride=1, padding="SAME").shape
      (1, 4, 4, 1)

      PyTorch's ``nn.MaxPool2d(3, stride=2, padding=1)`` (a ResNet stem), and with
      ``ceil_mode=True``:

      >>> max_pool2d(x[None, :, :, None], 3, 2, padding=1)[0, :, :, 0]
      Array([[6., 8.],
             [6., 8.]], dtype=float32)
      >>> max_pool2d(jnp.ones((1, 5, 5, 1)), 2, ceil_mode=True).shape
      (1, 3, 3, 1)
    """
    return _max_pool("max_pool2d", 2, x, window, stride, padding, ceil_mode, formulation)


@renamed_args(window_shape="window")
def max_pool3d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Takes the maximum over each ``window`` of ``(B, D, H, W, C)`` volumes.

    Args:
      x: ``(B, D, H, W, C)``, floating.
      window: an int or ``(wd, wh, ww)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"``, ``"SAME"``, an int, one int per axis or ``(lo, hi)`` pairs,
        as in :func:`max_pool2d`.
      ceil_mode: PyTorch's, as in :func:`max_pool2d`.
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
    return _max_pool("max_pool3d", 3, x, window, stride, padding, ceil_mode, formulation)


@renamed_args(window_shape="window")
def avg_pool1d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of ``(B, T, C)`` sequences; as :func:`avg_pool2d`.

    Args:
      x: ``(B, T, C)``, floating.
      window: an int or ``(w,)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"``, ``"SAME"``, an int, one int per axis or ``(lo, hi)`` pairs,
        as in :func:`max_pool2d`.
      ceil_mode: PyTorch's, as in :func:`max_pool2d`.
      count_include_pad: whether padding counts in the divisor, as in :func:`avg_pool2d`
        (``False`` by default, as in Keras; PyTorch's default is ``True``).
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
    return _avg_pool(
        "avg_pool1d", 1, x, window, stride, padding, ceil_mode, count_include_pad, formulation
    )


@renamed_args(window_shape="window")
def avg_pool2d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of NHWC images.

    Args:
      x: ``(B, H, W, C)``, floating.
      window: ``(wh, ww)`` or an int for a square window (``window_shape=`` is a
        deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: as :func:`max_pool2d` (pads with zeros).
      ceil_mode: as :func:`max_pool2d`.
      count_include_pad: whether the padding (``"SAME"``'s or explicit) counts in each
        window's divisor; ``False`` (Keras's default, and this function's) divides by the
        window's input elements alone. PyTorch's default is ``True``: port
        ``nn.AvgPool2d(3, 2, padding=1)`` as ``avg_pool2d(x, 3, 2, 1,
        count_include_pad=True)``. As in PyTorch, the part of a ``ceil_mode`` window past
        the padding never counts.
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
      >>> x = jnp.ones((1, 2, 2, 1))
      >>> avg_pool2d(x, 3, 1, padding=1)[0, :, :, 0]  # the input elements' mean
      Array([[1., 1.],
             [1., 1.]], dtype=float32)
      >>> avg_pool2d(x, 3, 1, padding=1, count_include_pad=True)[0, :, :, 0]  # PyTorch's
      Array([[0.44444445, 0.44444445],
             [0.44444445, 0.44444445]], dtype=float32)
    """
    return _avg_pool(
        "avg_pool2d", 2, x, window, stride, padding, ceil_mode, count_include_pad, formulation
    )


@renamed_args(window_shape="window")
def avg_pool3d(
    x: jax.typing.ArrayLike,
    window: Window,
    stride: Window | None = None,
    padding: Padding = "VALID",
    *,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    formulation: str = "auto",
) -> jax.Array:
    """Averages over each ``window`` of ``(B, D, H, W, C)`` volumes; as :func:`avg_pool2d`.

    Args:
      x: ``(B, D, H, W, C)``, floating.
      window: an int or ``(wd, wh, ww)`` (``window_shape=`` is a deprecated alias).
      stride: step between windows, the same form; defaults to ``window``.
      padding: ``"VALID"``, ``"SAME"``, an int, one int per axis or ``(lo, hi)`` pairs,
        as in :func:`max_pool2d`.
      ceil_mode: PyTorch's, as in :func:`max_pool2d`.
      count_include_pad: whether padding counts in the divisor, as in :func:`avg_pool2d`
        (``False`` by default, as in Keras; PyTorch's default is ``True``).
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
    return _avg_pool(
        "avg_pool3d", 3, x, window, stride, padding, ceil_mode, count_include_pad, formulation
    )
