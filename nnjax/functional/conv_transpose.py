"""Transposed convolution over channels-last inputs, with PyTorch's size rules.

The gradient of a strided convolution, used as a learnt upsampling; output sizes follow
PyTorch's ``padding`` / ``output_padding`` rules.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _checks, initializers
from nnjax.functional import _conv_formulations as _forms
from nnjax.functional import _conv_subpixel, _eager, _sharding, _utils
from nnjax.functional._conv_transpose_pads import TransposePadding as TransposePadding
from nnjax.functional._conv_transpose_pads import check_output_padding, transpose_pads
from nnjax.functional._conv_transpose_pads import grouped_kernel as grouped_kernel
from nnjax.functional._conv_transpose_pads import output_size as output_size
from nnjax.functional._conv_transpose_pads import same_pads as same_pads
from nnjax.functional.conv import (
    _LAYOUT,
    Params,
    Size,
    _check_groups,
    add_bias,
    check_channels,
    init_params,
)


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
    feature_group_count: int = 1,
) -> Params:
    """The N-d initialiser behind ``conv_transpose{1,2,3}d_init``.

    The kernel is ``(*kernel_size, in_channels, out_channels // feature_group_count)``,
    PyTorch's ``ConvTranspose`` weight ``(in, out / groups, *k)`` in channels-last order.
    """
    kernel_size = _utils.ntuple(kernel_size, nd, "kernel_size", op)
    cin, cout, groups = check_channels(op, in_channels, out_channels, feature_group_count)
    return init_params(
        op, key, (*kernel_size, cin, cout // groups), cout, dtype=dtype,
        kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
    )  # fmt: skip


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
    feature_group_count: int = 1,
) -> Params:
    """Initialises :func:`conv_transpose1d`: ``{"kernel": (k, in, out), "bias": (out,)}``.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output.
      kernel_size: an int or ``(k,)``.
      dtype: parameter dtype (float32 by default).
      kernel_init: initializer for the kernel (Glorot uniform).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.
      feature_group_count: groups of channels (PyTorch's ``groups``); must divide
        ``in_channels`` and ``out_channels``.

    Returns:
      ``{"kernel": (k, in, out // feature_group_count), "bias": (out,)}``
      in ``dtype`` (no ``"bias"`` without ``use_bias``).

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`nnjax.functional.conv2d_init`.

    Example:
      >>> conv_transpose1d_init(jax.random.key(0), 4, 6, 3)["kernel"].shape
      (3, 4, 6)
      >>> conv_transpose1d_init(jax.random.key(0), 4, 6, 3, feature_group_count=2)["kernel"].shape
      (3, 4, 3)
    """
    return conv_transpose_init(
        "conv_transpose1d_init", 1, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
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
    feature_group_count: int = 1,
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
      feature_group_count: groups of channels (PyTorch's ``groups``); must divide
        ``in_channels`` and ``out_channels``.

    Returns:
      ``{"kernel": (kh, kw, in, out // feature_group_count), "bias": (out,)}``.
      PyTorch's ``ConvTranspose2d`` weight ``(in, out / groups, kh, kw)`` is
      ``kernel.transpose(2, 3, 0, 1)``.

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`nnjax.functional.conv2d_init`.

    Example:
      >>> conv_transpose2d_init(jax.random.key(0), 8, 3, 2)["kernel"].shape
      (2, 2, 8, 3)
    """
    return conv_transpose_init(
        "conv_transpose2d_init", 2, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
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
    feature_group_count: int = 1,
) -> Params:
    """Initialises :func:`conv_transpose3d`: ``{"kernel": (kd, kh, kw, in, out), "bias"}``.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output.
      kernel_size: an int or ``(kd, kh, kw)``.
      dtype: parameter dtype (float32 by default).
      kernel_init: initializer for the kernel (Glorot uniform).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.
      feature_group_count: groups of channels (PyTorch's ``groups``); must divide
        ``in_channels`` and ``out_channels``.

    Returns:
      ``{"kernel": (kd, kh, kw, in, out // feature_group_count), "bias": (out,)}``
      in ``dtype`` (no ``"bias"`` without ``use_bias``).

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`nnjax.functional.conv2d_init`.

    Example:
      >>> conv_transpose3d_init(jax.random.key(0), 2, 1, 2)["kernel"].shape
      (2, 2, 2, 2, 1)
    """
    return conv_transpose_init(
        "conv_transpose3d_init", 3, key, in_channels, out_channels, kernel_size,
        dtype=dtype, kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
    )  # fmt: skip


def conv_transpose(
    op: str,
    nd: int,
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: TransposePadding = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
    feature_group_count: int = 1,
) -> jax.Array:
    """The N-d transposed convolution behind ``conv_transpose{1,2,3}d``.

    Defined as a stride-1 convolution of the input dilated by ``stride`` with the
    spatially flipped kernel, padded by ``dilation * (k - 1) - padding`` on each side
    (plus ``output_padding`` at the end); negative padding crops. That is how it runs
    off the CPU (cuDNN's on GPUs) and for symbolic shapes; on the CPU, whose dilated
    convolution runs on naive loops, as stride-1 convolutions of the undilated input
    and a pixel shuffle (``_conv_subpixel.py``; 1.7-42x faster, equal values).
    """
    params = _utils.read_params(op, params, ("kernel",), ("bias",))
    x = _utils.as_compute(op, x)
    kernel = params["kernel"]
    _checks.check_rank(op, "params['kernel']", kernel, nd + 2)
    _checks.check_rank(op, "x", x, nd + 2)
    in_channels, out_per_group = kernel.shape[-2:]
    groups = _check_groups(
        op, feature_group_count, in_channels, out_per_group * feature_group_count
    )
    why = f"params['kernel'] has shape {kernel.shape}"
    _checks.check_shape(op, "x", x, (*(None,) * (nd + 1), in_channels), why=why)
    extra, stride, dilation = check_output_padding(op, nd, output_padding, stride, dilation)
    pads = transpose_pads(op, nd, kernel.shape[:nd], padding, stride, dilation, extra)
    sizes = [
        (n - 1) * s + 1 + lo + hi - d * (k - 1)
        for n, k, s, d, (lo, hi) in zip(x.shape[1:-1], kernel.shape[:nd], stride, dilation, pads)
    ]
    if min(sizes) < 1:
        raise ValueError(
            f"{op}: argument `x` has shape {tuple(x.shape)}; with padding {padding!r} the "
            f"output's spatial size would be {tuple(sizes)}"
        )
    _utils.check_conv_bias(op, params, nd, out_per_group * groups, transpose=True)
    convolve = _subpixel if _subpixel_applies(x) else _dilated
    convolve = functools.partial(
        convolve, strides=stride, pads=pads, dilation=dilation, groups=groups
    )
    convolve = _sharding.batch_sharded(convolve, _sharding.batch_axis(x), x.ndim)
    return add_bias(params, convolve(x, kernel.astype(x.dtype)))


def _subpixel_applies(x: jax.Array) -> bool:
    """On the CPU, with static shapes: ``_conv_subpixel.py`` (XLA:CPU's dilated input is slow)."""
    return jax.default_backend() == "cpu" and all(isinstance(d, int) for d in x.shape)


def _subpixel(x, kernel, *, strides, pads, dilation, groups) -> jax.Array:
    """One stride-1 convolution (``"auto"``'s formulation) and a pixel shuffle.

    Called eagerly, one compiled program per geometry and context (``_eager.py``).
    """
    geometry = (tuple(strides), tuple(map(tuple, pads)), tuple(dilation), groups)
    return _eager.one_program(_subpixel_ops, geometry, _forms.auto_context(), x, kernel)


def _subpixel_ops(x, kernel, strides, pads, dilation, groups) -> jax.Array:
    return _conv_subpixel.conv(x, kernel, strides, pads, dilation, groups, _forms.auto)


def _dilated(x, kernel, *, strides, pads, dilation, groups) -> jax.Array:
    """XLA's convolution of the stride-dilated input with the flipped kernel (cuDNN on GPUs)."""
    nd = kernel.ndim - 2
    flipped = jnp.flip(kernel, axis=tuple(range(nd)))
    return lax.conv_general_dilated(
        x,
        grouped_kernel(flipped, groups),
        window_strides=(1,) * nd,
        padding=pads,
        lhs_dilation=strides,
        rhs_dilation=dilation,
        dimension_numbers=_LAYOUT[nd],
        feature_group_count=groups,
    )


_DOC_ARGS = """
    Args:
      params: ``{"kernel": (*k, in, out // feature_group_count), "bias": (out,)}``.
      x: channels-last ``(B, *spatial, in)``, floating.
      stride: upsampling factor (the stride of the convolution this transposes).
      padding: an int or one per axis, PyTorch's ``padding``: ``dilation * (k - 1) -
        padding`` zeros are added on both sides of the stride-dilated input, so each
        output axis has size ``(n - 1) * stride - 2 * padding + dilation * (k - 1) +
        output_padding + 1`` (see :func:`output_size`); ``"VALID"`` is ``0``;
        ``"SAME"``: size ``n * stride + output_padding``, the exact adjoint of a
        ``"SAME"`` convolution of that stride (TensorFlow's and Keras' rule; see
        :func:`same_pads`).
      output_padding: extra size at the end of each axis (to undo the rounding of a
        strided convolution); must be smaller than ``stride`` or ``dilation``.
      dilation: spacing between kernel taps.
      feature_group_count: groups of channels (PyTorch's ``groups``): group ``g``
        maps the ``g``-th block of ``in / groups`` input channels to the ``g``-th
        block of ``out / groups`` output channels.

    Returns:
      ``(B, *spatial', out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: wrong ranks, channels or bias (the message names the shapes).
      ValueError: bad ``stride``/``padding``/``output_padding``/``dilation``/
        ``feature_group_count`` (static under ``jax.jit``), an empty output, or a key of
        ``params`` other than ``"kernel"``/``"bias"`` (e.g. ``"bais"``) or no
        ``"kernel"`` (that error is a ``KeyError`` too).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
"""


def conv_transpose1d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: TransposePadding = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
    feature_group_count: int = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose1d", 1, params, x, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, feature_group_count=feature_group_count,
    )  # fmt: skip


def conv_transpose2d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: TransposePadding = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
    feature_group_count: int = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose2d", 2, params, x, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, feature_group_count=feature_group_count,
    )  # fmt: skip


def conv_transpose3d(  # noqa: D103 (docstring assembled below)
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: TransposePadding = 0,
    output_padding: Size = 0,
    dilation: Size = 1,
    feature_group_count: int = 1,
) -> jax.Array:
    return conv_transpose(
        "conv_transpose3d", 3, params, x, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, feature_group_count=feature_group_count,
    )  # fmt: skip


conv_transpose1d.__doc__ = (
    "Transposed convolution of ``(B, T, in)`` sequences (PyTorch's ``ConvTranspose1d``).\n"
    + _DOC_ARGS
    + """
    Example:
      >>> params = conv_transpose1d_init(jax.random.key(0), 4, 2, 3)
      >>> conv_transpose1d(params, jnp.ones((1, 5, 4)), stride=2).shape
      (1, 11, 2)
      >>> grouped = conv_transpose1d_init(jax.random.key(0), 4, 6, 3, feature_group_count=2)
      >>> conv_transpose1d(grouped, jnp.ones((1, 5, 4)), feature_group_count=2).shape
      (1, 7, 6)
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
      >>> conv_transpose2d(params, x, stride=2, padding="SAME").shape
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
