"""Transposed convolution over channels-last inputs, with PyTorch's size rules.

The gradient of a strided convolution, used as a learnt upsampling; output sizes follow
PyTorch's ``padding`` / ``output_padding`` rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _checks, initializers
from nnjax.functional import _utils
from nnjax.functional.conv import _LAYOUT, Params, Size, add_bias, conv_init


def conv_transpose_init(
    op: str,
    nd: int,
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: Size,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """The N-d initialiser behind ``conv_transpose{1,2,3}d_init``: kernel ``(k..., in, out)``."""
    return conv_init(
        op,
        nd,
        key,
        in_channels,
        out_channels,
        kernel_size,
        dtype=dtype,
        kernel_init=kernel_init,
        bias_init=bias_init,
        use_bias=use_bias,
    )


def conv_transpose1d_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: Size,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """Initialises :func:`conv_transpose1d`: ``{"kernel": (k, in, out), "bias": (out,)}``.

    Keyword arguments as :func:`conv_transpose2d_init`.

    Example:
      >>> conv_transpose1d_init(jax.random.key(0), 4, 2, 3)["kernel"].shape
      (3, 4, 2)
    """
    return conv_transpose_init(
        "conv_transpose1d_init", 1, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
    )  # fmt: skip


def conv_transpose2d_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: Size,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """Initialises :func:`conv_transpose2d`.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output.
      kernel_size: an int or ``(kh, kw)``.
      dtype: parameter dtype.
      kernel_init: initializer for the kernel (Glorot uniform).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.

    Returns:
      ``{"kernel": (kh, kw, in, out), "bias": (out,)}``. PyTorch's ``ConvTranspose2d``
      weight ``(in, out, kh, kw)`` is ``kernel.transpose(2, 3, 0, 1)``.

    Example:
      >>> conv_transpose2d_init(jax.random.key(0), 8, 3, 2)["kernel"].shape
      (2, 2, 8, 3)
    """
    return conv_transpose_init(
        "conv_transpose2d_init", 2, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
    )  # fmt: skip


def conv_transpose3d_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: Size,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """Initialises :func:`conv_transpose3d`: ``{"kernel": (kd, kh, kw, in, out), "bias"}``.

    Keyword arguments as :func:`conv_transpose2d_init`.

    Example:
      >>> conv_transpose3d_init(jax.random.key(0), 2, 1, 2)["kernel"].shape
      (2, 2, 2, 2, 1)
    """
    return conv_transpose_init(
        "conv_transpose3d_init", 3, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
    )  # fmt: skip


def output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """The output size of a transposed convolution along one axis (PyTorch's rule).

    ``(size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``.

    Example:
      >>> output_size(7, 3, 2, 1, 1, 1)  # a stride-2 "same" upsampling: 7 -> 14
      14
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose(
    op: str,
    nd: int,
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
) -> jax.Array:
    """The N-d transposed convolution behind ``conv_transpose{1,2,3}d``.

    Computed as a stride-1 convolution of the input dilated by ``stride`` with the
    spatially flipped kernel, padded by ``dilation * (k - 1) - padding`` on each side
    (plus ``output_padding`` at the end); negative padding crops.
    """
    x = _utils.as_compute(op, x)
    kernel = params["kernel"]
    _checks.check_rank(op, "params['kernel']", kernel, nd + 2)
    _checks.check_rank(op, "x", x, nd + 2)
    _checks.check_shape(op, "x", x, (*(None,) * (nd + 1), kernel.shape[-2]))
    stride = _utils.ntuple(stride, nd, "stride", op)
    dilation = _utils.ntuple(dilation, nd, "dilation", op)
    padding = _utils.ntuple(padding, nd, "padding", op, minimum=0)
    output_padding = _utils.ntuple(output_padding, nd, "output_padding", op, minimum=0)
    for s, d, o in zip(stride, dilation, output_padding):
        if o >= max(s, d):
            raise ValueError(
                f"{op}: `output_padding`={output_padding!r} must be smaller than the stride "
                f"{stride!r} or the dilation {dilation!r} on every axis"
            )
    sizes = [
        output_size(n, k, s, p, o, d)
        for n, k, s, p, o, d in zip(
            x.shape[1:-1], kernel.shape[:nd], stride, padding, output_padding, dilation
        )
    ]
    if min(sizes) < 1:
        raise ValueError(
            f"{op}: argument `x` has shape {tuple(x.shape)}; with padding {padding!r} the "
            f"output's spatial size would be {tuple(sizes)}"
        )
    pads = [
        (d * (k - 1) - p, d * (k - 1) - p + o)
        for k, p, o, d in zip(kernel.shape[:nd], padding, output_padding, dilation)
    ]
    flipped = jnp.flip(kernel.astype(x.dtype), axis=tuple(range(nd)))
    y = lax.conv_general_dilated(
        x,
        flipped,
        window_strides=(1,) * nd,
        padding=pads,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_LAYOUT[nd],
    )
    return add_bias(op, params, y)


_DOC_ARGS = """
    Args:
      params: ``{"kernel": (*k, in, out), "bias": (out,)}``.
      x: channels-last ``(B, *spatial, in)``, floating.
      stride: upsampling factor (the stride of the convolution this transposes).
      padding: PyTorch's ``padding``: ``dilation * (k - 1) - padding`` zeros are added
        on both sides of the stride-dilated input, so each output axis has size
        ``(n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``
        (see :func:`output_size`).
      output_padding: extra size at the end of each axis (to undo the rounding of a
        strided convolution); must be smaller than ``stride`` or ``dilation``.
      dilation: spacing between kernel taps.

    Returns:
      ``(B, *spatial', out)``, the dtype of ``x``.

    Raises:
      AssertionError: wrong ranks or channels (the message names the shapes).
      ValueError: bad ``stride``/``padding``/``output_padding``/``dilation``, or an
        empty output.
      TypeError: if ``x`` is not floating.
"""


def conv_transpose1d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose1d",
        1,
        params,
        x,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )


def conv_transpose2d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose2d",
        2,
        params,
        x,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )


def conv_transpose3d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose3d",
        3,
        params,
        x,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )


conv_transpose1d.__doc__ = (
    "Transposed convolution of ``(B, T, in)`` sequences (PyTorch's ``ConvTranspose1d``).\n"
    + _DOC_ARGS
    + """
    Example:
      >>> params = conv_transpose1d_init(jax.random.key(0), 4, 2, 3)
      >>> conv_transpose1d(params, jnp.ones((1, 5, 4)), stride=2).shape
      (1, 11, 2)
"""
)
conv_transpose2d.__doc__ = (
    "Transposed convolution of NHWC images (PyTorch's ``ConvTranspose2d``).\n"
    + _DOC_ARGS
    + """
    Example:
      >>> params = conv_transpose2d_init(jax.random.key(0), 8, 3, 3)
      >>> x = jnp.ones((1, 7, 7, 8))
      >>> conv_transpose2d(params, x, stride=2, padding=1, output_padding=1).shape
      (1, 14, 14, 3)
"""
)
conv_transpose3d.__doc__ = (
    "Transposed convolution of ``(B, D, H, W, in)`` volumes (``ConvTranspose3d``).\n"
    + _DOC_ARGS
    + """
    Example:
      >>> params = conv_transpose3d_init(jax.random.key(0), 2, 1, 2)
      >>> conv_transpose3d(params, jnp.ones((1, 3, 3, 3, 2)), stride=2).shape
      (1, 6, 6, 6, 1)
"""
)
