"""Convolution (cross-correlation) over channels-last inputs, through one N-d implementation.

1-D ``(B, T, C)``, 2-D NHWC and 3-D ``(B, D, H, W, C)`` inputs. Kernels are ``(*k, in // groups,
out)``: from PyTorch's ``(out, in // groups, *k)`` weight, ``kernel = weight.permute(2, 3, 1, 0)``
(2-D; ``(2, 1, 0)`` 1-D, ``(2, 3, 4, 1, 0)`` 3-D); see the guide ``docs/guides/porting.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks, _hardware, initializers
from nnjax.functional import _bfloat16, _conv_args, _conv_bfloat16, _eager, _sharding, _utils
from nnjax.functional import _conv_formulations as _forms
from nnjax.functional._conv_args import Padding as Padding
from nnjax.functional._conv_args import Params as Params
from nnjax.functional._conv_args import add_bias as add_bias
from nnjax.functional._conv_args import check_channels as check_channels
from nnjax.functional._conv_args import check_groups as _check_groups
from nnjax.functional._conv_args import conv_padding as conv_padding
from nnjax.functional._conv_args import init_params as init_params
from nnjax.functional._conv_formulations import conv_formulation as conv_formulation

Size = int | tuple[int, ...]
_LAYOUT = _forms._LAYOUT


def conv_init(
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
    """The N-d initialiser behind ``conv{1,2,3}d_init`` (``op`` names errors).

    The kernel is ``(*kernel_size, in_channels // feature_group_count, out_channels)``.
    """
    kernel_size = _utils.ntuple(kernel_size, nd, "kernel_size", op)
    cin, cout, groups = check_channels(op, in_channels, out_channels, feature_group_count)
    return init_params(
        op, key, (*kernel_size, cin // groups, cout), cout, dtype=dtype,
        kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
    )  # fmt: skip


def conv2d_init(
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
      feature_group_count: groups of channels; the kernel's input axis is then
        ``in // feature_group_count``.

    Returns:
      ``{"kernel": (kh, kw, in, out), "bias": (out,)}``. From PyTorch's ``Conv2d``:
      ``kernel = weight.permute(2, 3, 1, 0)``, ``bias = bias`` (``docs/guides/porting.md``).

    Raises:
      ValueError: if ``in_channels``/``out_channels`` are not positive ints (NumPy
        integers count), ``kernel_size`` is bad, ``feature_group_count`` does not
        divide both channel counts, or an initializer name is unknown.
      TypeError: if ``key`` is not a PRNG key (``jax.random.key(seed)``), ``use_bias``
        is not a bool, ``dtype`` is not floating (an integer, bool or complex dtype), or
        an initializer is neither a name nor a callable.
      nnjax.ShapeError: if an initializer cannot draw its parameter's shape (e.g. a
        fan-based ``bias_init`` for the 1-D bias).

    Example:
      >>> params = conv2d_init(jax.random.key(0), 1, 8, 3)
      >>> params["kernel"].shape
      (3, 3, 1, 8)
    """
    return conv_init(
        "conv2d_init", 2, key, in_channels, out_channels, kernel_size, dtype=dtype,
        kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
    )  # fmt: skip


def conv1d_init(
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
    """Initialises :func:`conv1d`: ``{"kernel": (k, in, out), "bias": (out,)}``.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output (the number of filters).
      kernel_size: ``k``, an int or a 1-tuple.
      dtype: parameter dtype (float32 by default).
      kernel_init: initializer for the kernel (Glorot uniform over the receptive field).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.
      feature_group_count: groups of channels; the kernel's input axis is then
        ``in // feature_group_count``.

    Returns:
      ``{"kernel": (k, in // groups, out), "bias": (out,)}`` in ``dtype`` (no ``"bias"`` without
      ``use_bias``). From PyTorch's ``Conv1d``: ``kernel = weight.permute(2, 1, 0)``.

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`conv2d_init` (bad sizes or
        groups, a ``key`` that is not a PRNG key, a non-bool ``use_bias``, a bad
        ``dtype`` or initializer).

    Example:
      >>> conv1d_init(jax.random.key(0), 4, 8, 3, feature_group_count=2)["kernel"].shape
      (3, 2, 8)
    """
    return conv_init(
        "conv1d_init", 1, key, in_channels, out_channels, kernel_size, dtype=dtype,
        kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
    )  # fmt: skip


def conv3d_init(
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
    """Initialises :func:`conv3d`: ``{"kernel": (kd, kh, kw, in, out), "bias": (out,)}``.

    Args:
      key: a PRNG key.
      in_channels: channels ``in`` of the input.
      out_channels: channels ``out`` of the output (the number of filters).
      kernel_size: ``(kd, kh, kw)``, an int for a cubic kernel.
      dtype: parameter dtype (float32 by default).
      kernel_init: initializer for the kernel (Glorot uniform over the receptive field).
      bias_init: initializer for the bias (zeros).
      use_bias: whether to create a bias.
      feature_group_count: groups of channels; the kernel's input axis is then
        ``in // feature_group_count``.

    Returns:
      ``{"kernel": (kd, kh, kw, in // groups, out), "bias": (out,)}``
      in ``dtype`` (no ``"bias"`` without ``use_bias``). From PyTorch's ``Conv3d``:
      ``kernel = weight.permute(2, 3, 4, 1, 0)``.

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`conv2d_init` (bad sizes or
        groups, a ``key`` that is not a PRNG key, a non-bool ``use_bias``, a bad
        ``dtype`` or initializer).

    Example:
      >>> conv3d_init(jax.random.key(0), 1, 4, (3, 3, 1))["kernel"].shape
      (3, 3, 1, 1, 4)
    """
    return conv_init(
        "conv3d_init", 3, key, in_channels, out_channels, kernel_size, dtype=dtype,
        kernel_init=kernel_init, bias_init=bias_init, use_bias=use_bias,
        feature_group_count=feature_group_count,
    )  # fmt: skip


def conv(
    op: str,
    nd: int,
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Padding = "SAME",
    dilation: Size = 1,
    feature_group_count: int = 1,
    formulation: str = "auto",
) -> jax.Array:
    """The N-d convolution behind ``conv{1,2,3}d`` (``op`` names errors)."""
    params = _utils.read_params(op, params, ("kernel",), ("bias",))
    x = _utils.as_compute(op, x)
    kernel = params["kernel"]
    _checks.check_rank(op, "params['kernel']", kernel, nd + 2)
    _checks.check_rank(op, "x", x, nd + 2)
    in_per_group, out_channels = kernel.shape[-2:]
    groups = feature_group_count
    _check_groups(op, groups, in_per_group * groups, out_channels)
    _utils.check_conv_layout(op, kernel, x, nd, groups)
    _conv_args.check_input_channels(op, x, nd, in_per_group * groups)
    _forms.check_formulation(op, formulation)
    pads = conv_padding(op, nd, padding)
    dilation = _utils.ntuple(dilation, nd, "dilation", op)
    strides = _utils.ntuple(stride, nd, "stride", op)
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel.shape[:nd], dilation))
    _utils.check_window_fits(op, x, span, pads)
    _utils.check_conv_bias(op, params, nd, out_channels)  # before the convolution runs
    pads = _conv_args.explicit_pads(x.shape, span, strides, pads)
    out = [_conv_args.out_size(*a) for a in zip(x.shape[1:-1], pads, span, strides)]
    # bfloat16 that XLA:CPU convolves by widening: convolve in float32 and round the
    # output once (the kernel enters as it is; with AMX "auto" may round both operands
    # instead, _conv_bfloat16)
    xc = _bfloat16.to_float32(x) if _hardware.widen_bfloat16(x.dtype) else x
    bf16_operands = _conv_bfloat16.operands_wanted(x.dtype)
    chosen = _forms.resolve(formulation, xc, kernel, out, groups, bfloat16_operands=bf16_operands)
    geometry = (chosen, strides, tuple(map(tuple, pads)), dilation, groups)
    axis = _sharding.batch_axis(xc)
    if axis is None:  # eagerly: one program per geometry and context, not op by op
        y = _eager.one_program(_convolve, geometry, _forms.auto_context(), xc, kernel)
    else:
        convolve = _sharding.batch_sharded(lambda x, k: _convolve(x, k, *geometry), axis, xc.ndim)
        y = convolve(xc, kernel)
    return _bfloat16.round_like(add_bias(params, y), x.dtype)


def _convolve(x, kernel, formulation, strides, pads, dilation, groups) -> jax.Array:
    """``formulation``'s convolution of ``x`` by ``kernel`` cast to ``x``'s dtype."""
    kernel = kernel.astype(x.dtype)
    return _forms.IMPLEMENTATIONS[formulation](x, kernel, strides, pads, dilation, groups)


def conv2d(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Padding = "SAME",
    dilation: Size = 1,
    feature_group_count: int = 1,
    formulation: str = "auto",
) -> jax.Array:
    """Convolves NHWC images with the kernel: a cross-correlation, as in every DL framework.

    Args:
      params: ``{"kernel": (kh, kw, in // groups, out), "bias": (out,)}``.
      x: ``(B, H, W, in)``, floating.
      stride: step of the window, an int or ``(sh, sw)``.
      padding: ``"SAME"`` (output ``ceil(H / sh)``; an odd total padding puts the extra
        row/column at the bottom/right, as in TensorFlow), ``"VALID"`` (no padding, PyTorch's
        default), an int (zero padding on every side, PyTorch's ``padding=p``), one int
        per axis (PyTorch's ``padding=(ph, pw)``) or ``((top, bottom), (left, right))``.
      dilation: spacing between kernel taps (atrous convolution), an int or a pair.
      feature_group_count: ``groups`` in PyTorch: input and output channels are split
        into this many groups, each convolved with its own filters; ``in`` gives a
        depthwise convolution.
      formulation: ``"auto"`` (the default of :func:`conv_formulation`, else the
        formulation measured fastest for this backend and shape, and for how the
        program is compiled: ``fit``'s step runs XLA:CPU's convolutions on Eigen, see
        ``_conv_compiler.py``; on the CPU a depthwise convolution is shifted
        multiply-adds with per-channel weights), ``"xla"`` (``lax.conv_general_dilated``)
        or ``"patches"`` (im2col + one matmul). All compute the same values; see
        ``nnjax/functional/_conv_formulations.py``.

    Returns:
      ``(B, H', W', out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` is not rank 4 or its channels differ from the kernel's
        ``in``, the kernel is in PyTorch's layout (the message gives the permutation),
        or the bias is not ``(out,)`` (the messages name the shapes).
      ValueError: for a bad ``stride``, ``padding``, ``dilation``,
        ``feature_group_count`` or ``formulation`` (each must be static under
        ``jax.jit``; a traced one is named so), when the (padded) image is smaller than
        the dilated kernel, or when ``params`` has a key other than ``"kernel"`` and
        ``"bias"`` (a misspelling such as ``"bais"``) or no ``"kernel"`` (that error is
        a ``KeyError`` too).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).

    Example:
      >>> params = conv2d_init(jax.random.key(0), 1, 8, 3)
      >>> conv2d(params, jnp.ones((2, 28, 28, 1)), padding="VALID").shape
      (2, 26, 26, 8)
      >>> conv2d(params, jnp.ones((2, 28, 28, 1)), stride=2).shape  # SAME: ceil(28 / 2)
      (2, 14, 14, 8)
    """
    return conv(
        "conv2d", 2, params, x, stride=stride, padding=padding, dilation=dilation,
        feature_group_count=feature_group_count, formulation=formulation,
    )  # fmt: skip


def conv1d(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Padding = "SAME",
    dilation: Size = 1,
    feature_group_count: int = 1,
    formulation: str = "auto",
) -> jax.Array:
    """Convolves ``(B, T, in)`` sequences with a ``(k, in // groups, out)`` kernel.

    Padding rules and errors as :func:`conv2d`, with one spatial axis.

    Args:
      params: from the matching ``*_init``; ``"bias"`` optional.
      x: ``(B, T, in)``, floating (the compute dtype; the parameters are cast to it).
      stride: step of the window, an int or ``(s,)``.
      padding: ``"SAME"``, ``"VALID"``, an int (zero padding on every side) or
        one ``(lo, hi)`` pair per spatial axis, ``((lo, hi),)``.
      dilation: spacing between kernel taps, an int or ``(d,)``.
      feature_group_count: groups of channels (PyTorch's ``groups``).
      formulation: ``"auto"``, ``"xla"`` or ``"patches"``, as in :func:`conv2d`.

    Returns:
      ``(B, T', out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, KeyError, TypeError: as :func:`conv2d`.

    Example:
      >>> params = conv1d_init(jax.random.key(0), 3, 8, 5)
      >>> conv1d(params, jnp.ones((2, 20, 3)), padding="VALID").shape
      (2, 16, 8)
    """
    return conv(
        "conv1d", 1, params, x, stride=stride, padding=padding, dilation=dilation,
        feature_group_count=feature_group_count, formulation=formulation,
    )  # fmt: skip


def conv3d(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    stride: Size = 1,
    padding: Padding = "SAME",
    dilation: Size = 1,
    feature_group_count: int = 1,
    formulation: str = "auto",
) -> jax.Array:
    """Convolves ``(B, D, H, W, in)`` volumes with a ``(kd, kh, kw, in // groups, out)`` kernel.

    Padding rules and errors as :func:`conv2d`, with three spatial axes.

    Args:
      params: from the matching ``*_init``; ``"bias"`` optional.
      x: ``(B, D, H, W, in)``, floating (the compute dtype; the parameters are cast to it).
      stride: step of the window, an int or ``(sd, sh, sw)``.
      padding: ``"SAME"``, ``"VALID"``, an int (zero padding on every side), three
        ints (one per axis, PyTorch's ``padding=(pd, ph, pw)``) or three ``(lo, hi)``
        pairs.
      dilation: spacing between kernel taps, an int or a triple.
      feature_group_count: groups of channels (PyTorch's ``groups``).
      formulation: ``"auto"``, ``"xla"`` or ``"patches"``, as in :func:`conv2d`.

    Returns:
      ``(B, D', H', W', out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, KeyError, TypeError: as :func:`conv2d`.

    Example:
      >>> params = conv3d_init(jax.random.key(0), 1, 4, 3)
      >>> conv3d(params, jnp.ones((1, 8, 8, 8, 1)), stride=2).shape
      (1, 4, 4, 4, 4)
    """
    return conv(
        "conv3d", 3, params, x, stride=stride, padding=padding, dilation=dilation,
        feature_group_count=feature_group_count, formulation=formulation,
    )  # fmt: skip
