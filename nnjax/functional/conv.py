"""2-D convolution (cross-correlation) over NHWC images."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _checks, initializers
from nnjax.functional import _utils

Params = dict[str, jax.Array]
Padding = str | int | Sequence[tuple[int, int]]


def conv2d_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """Initialises the parameters of :func:`conv2d`.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output (the number of filters).
      kernel_size: ``kh`` and ``kw``, an int for a square kernel.
      dtype: parameter dtype.
      kernel_init: initializer for the kernel (Glorot uniform over the receptive field).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.

    Returns:
      ``{"kernel": (kh, kw, in, out), "bias": (out,)}``.

    Example:
      >>> params = conv2d_init(jax.random.key(0), 1, 8, 3)
      >>> params["kernel"].shape
      (3, 3, 1, 8)
    """
    kh, kw = _utils.pair(kernel_size, "kernel_size", "conv2d_init")
    k_kernel, k_bias = jax.random.split(key)
    shape = (kh, kw, in_channels, out_channels)
    params = {"kernel": initializers.init_param(kernel_init, k_kernel, shape, dtype)}
    if use_bias:
        params["bias"] = initializers.init_param(bias_init, k_bias, (out_channels,), dtype)
    return params


def _padding(padding: Padding) -> str | list[tuple[int, int]]:
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise ValueError(
                f"conv2d: `padding` must be 'SAME', 'VALID', an int or pairs, got {padding!r}"
            )
        return mode
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return [(padding, padding), (padding, padding)]
    try:
        pads = [tuple(p) for p in padding]
    except TypeError:
        pads = []
    if len(pads) != 2 or not all(
        len(p) == 2 and all(isinstance(v, int) and v >= 0 for v in p) for p in pads
    ):
        raise ValueError(
            "conv2d: `padding` must be 'SAME', 'VALID', a non-negative int or "
            f"((top, bottom), (left, right)) of non-negative ints, got {padding!r}"
        )
    return pads


def conv2d(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "SAME",
    dilation: int | tuple[int, int] = 1,
) -> jax.Array:
    """Convolves NHWC images with the kernel: a cross-correlation, as in every DL framework.

    Args:
      params: ``{"kernel": (kh, kw, in, out), "bias": (out,)}``.
      x: ``(B, H, W, in)``, floating.
      stride: step of the window, an int or ``(sh, sw)``.
      padding: ``"SAME"`` (output ``ceil(H / sh)``; an odd total padding puts the extra
        row/column at the bottom/right, as in TensorFlow), ``"VALID"`` (no padding), an int
        (zero padding on every side) or ``((top, bottom), (left, right))``.
      dilation: spacing between kernel taps (atrous convolution), an int or a pair.

    Returns:
      ``(B, H', W', out)``, the dtype of ``x``.

    Raises:
      AssertionError: if ``x`` is not rank 4 or its channels differ from the kernel's
        ``in`` (the message names the shapes).
      ValueError: for a bad ``stride``, ``padding`` or ``dilation``, or when the (padded)
        image is smaller than the dilated kernel.
      TypeError: if ``x`` is not floating.

    Example:
      >>> params = conv2d_init(jax.random.key(0), 1, 8, 3)
      >>> conv2d(params, jnp.ones((2, 28, 28, 1)), padding="VALID").shape
      (2, 26, 26, 8)
      >>> conv2d(params, jnp.ones((2, 28, 28, 1)), stride=2).shape  # SAME: ceil(28 / 2)
      (2, 14, 14, 8)
    """
    x = _utils.as_compute("conv2d", x)
    kernel = params["kernel"]
    _checks.check_rank("conv2d", "params['kernel']", kernel, 4)
    _checks.check_rank("conv2d", "x", x, 4)
    _checks.check_shape("conv2d", "x", x, (None, None, None, kernel.shape[2]))
    pads = _padding(padding)
    dilation = _utils.pair(dilation, "dilation", "conv2d")
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel.shape[:2], dilation))
    _checks.check_window_fits("conv2d", x, span, pads)
    y = lax.conv_general_dilated(
        x,
        kernel.astype(x.dtype),
        window_strides=_utils.pair(stride, "stride", "conv2d"),
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    if "bias" in params:
        _checks.check_shape("conv2d", "params['bias']", params["bias"], (kernel.shape[3],))
        y = y + _utils.expand_to(params["bias"].astype(x.dtype), y.ndim)
    return y
