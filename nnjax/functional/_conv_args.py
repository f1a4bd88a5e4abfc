"""The argument checks and parameters shared by the convolutions (private).

Re-exported by :mod:`nnjax.functional.conv`, from which
:mod:`nnjax.functional.conv_transpose` and the ``nnjax.nn`` convolution layers (which
check their padding when built) import them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from jax import lax

from nnjax import _checks, initializers
from nnjax.errors import ShapeError
from nnjax.functional import _padding, _utils

Params = dict[str, jax.Array]
Padding = _padding.Padding


def check_channels(op: str, in_channels, out_channels, groups) -> tuple[int, int, int]:
    """``(in_channels, out_channels, groups)`` as ints: positive, the groups dividing both.

    Raises:
      ValueError: naming ``op``, the argument and the value.
    """
    cin = _utils.positive_int(op, "in_channels", in_channels)
    cout = _utils.positive_int(op, "out_channels", out_channels)
    return cin, cout, check_groups(op, groups, cin, cout)


def init_params(
    op: str, key, kernel_shape: tuple[int, ...], out_channels: int, *, dtype,
    kernel_init, bias_init, use_bias: bool,
) -> Params:  # fmt: skip
    """``{"kernel": kernel_shape, "bias": (out_channels,)}`` drawn from ``key`` (checked).

    ``op`` (the public init) names errors: a bad ``key``, ``use_bias`` or ``dtype`` (not
    floating: integer, bool and complex dtypes are refused before anything is drawn).
    """
    _checks.check_key(op, "key", key)
    dtype = _checks.float_dtype(op, dtype)
    use_bias = _checks.check_static_bool(op, "use_bias", use_bias)
    k_kernel, k_bias = jax.random.split(key)
    params = {"kernel": initializers.init_param(kernel_init, k_kernel, kernel_shape, dtype)}
    if use_bias:
        params["bias"] = initializers.init_param(bias_init, k_bias, (out_channels,), dtype)
    return params


def check_input_channels(op: str, x: jax.Array, nd: int, channels: int) -> None:
    """Checks that ``x``'s last axis holds the kernel's ``channels`` (after the rank check).

    A channels-first input (PyTorch's NCHW) is named so, with the transpose that makes
    it channels-last: where axis 1 holds ``channels``, or the shape looks channels-first
    by the rule of ``nn.CNN``'s warning (:func:`looks_channels_first`).

    Raises:
      ShapeError: naming ``op``, ``x``, the expected and the actual shape.

    Example:
      >>> import jax.numpy as jnp
      >>> try:
      ...     check_input_channels("conv2d", jnp.zeros((2, 1, 28, 28)), 2, 1)
      ... except ShapeError as err:
      ...     print(str(err).partition("; ")[2])
      nnjax is channels-last (NHWC for 2-D; (B, *spatial, C) in general): x.transpose(0, 2, 3, 1)
    """
    shape = tuple(x.shape)
    if shape[-1] != channels and (shape[1] == channels or looks_channels_first(shape[1:])):
        order = ", ".join(map(str, (0, *range(2, nd + 2), 1)))
        raise ShapeError(
            f"{op}: argument `x` has shape {shape}, expected ({'*, ' * (nd + 1)}{channels}); "
            "nnjax is channels-last (NHWC for 2-D; (B, *spatial, C) in general): "
            f"x.transpose({order})"
        )
    _checks.check_shape(op, "x", x, (*(None,) * (nd + 1), channels))


def looks_channels_first(shape: Sequence[int]) -> bool:
    """Whether one example's ``(C, *spatial)`` looks channels-first.

    The rule of ``nn.CNN``'s ``input_shape`` warning: ``C`` of 1, 3 or 4 (grey, RGB,
    RGBA) before equal spatial sizes above 4 (a last axis of over 4 channels then). A
    sequence ``(C, T)`` never looks so: ``(T, C)`` with few steps is as likely.

    Example:
      >>> looks_channels_first((3, 32, 32)), looks_channels_first((32, 32, 3))
      (True, False)
    """
    c, *spatial = shape
    return c in (1, 3, 4) and len(spatial) > 1 and len(set(spatial)) == 1 and spatial[0] > 4


def check_groups(op: str, groups, in_channels: int, out_channels: int) -> int:
    groups = _utils.positive_int(op, "feature_group_count", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{op}: `feature_group_count`={groups} must divide both the input channels "
            f"({in_channels}) and the output channels ({out_channels})"
        )
    return groups


def conv_padding(op: str, nd: int, padding: Padding) -> str | list[tuple[int, int]]:
    """``"SAME"``, ``"VALID"`` or ``nd`` ``(lo, hi)`` pairs of ints, else a ``ValueError``.

    Takes an int, one int per spatial axis (PyTorch's ``padding=(ph, pw)``) or one pair
    per axis (:mod:`nnjax.functional._padding`). One spatial axis takes one pair,
    ``((lo, hi),)``; a flat ``(lo, hi)`` is refused with a message that shows the nested
    form.

    Example:
      >>> conv_padding("conv1d", 1, ((1, 2),)), conv_padding("conv2d", 2, (1, 2))
      ([(1, 2)], [(1, 1), (2, 2)])
      >>> try:
      ...     conv_padding("conv1d", 1, (1, 2))
      ... except ValueError as err:
      ...     print(str(err).split("; ")[1])
      for 1 before and 2 after the sequence, pass ((1, 2),)
    """
    pads = _padding.parse(op, nd, padding)
    return pads if isinstance(pads, str) else list(pads)


def add_bias(params: Params, y: jax.Array) -> jax.Array:
    """``y + bias`` over the last axis when ``params`` has a bias.

    The bias's shape is the caller's to check before it convolves
    (:func:`nnjax.functional._utils.check_conv_bias`, which names a PyTorch-layout kernel).
    """
    if "bias" not in params:
        return y
    return y + _utils.expand_to(params["bias"].astype(y.dtype), y.ndim)


def explicit_pads(
    x_shape: Sequence[int],
    span: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
) -> list[tuple[int, int]]:
    """``(lo, hi)`` per spatial axis; ``"SAME"``/``"VALID"`` resolved as XLA does."""
    if isinstance(padding, str):
        pairs = lax.padtype_to_pads(x_shape[1:-1], span, strides, padding)
        return [(int(lo), int(hi)) for lo, hi in pairs]
    return list(padding)


def out_size(size: int, pad: tuple[int, int], span: int, stride: int) -> int:
    """Output length of one spatial axis."""
    return (size + pad[0] + pad[1] - span) // stride + 1


__all__ = [
    "Padding",
    "Params",
    "add_bias",
    "check_channels",
    "check_groups",
    "check_input_channels",
    "conv_padding",
    "explicit_pads",
    "init_params",
    "looks_channels_first",
    "out_size",
]
