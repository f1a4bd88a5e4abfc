"""Geometry of the transposed convolution (private): output sizes, padding, grouped kernels.

The rules behind :func:`nnjax.functional.conv_transpose2d` (PyTorch's size rule,
the ``"SAME"`` adjoint padding), re-exported by :mod:`nnjax.functional.conv_transpose`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax.functional import _utils
from nnjax.functional.conv import Size


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


TransposePadding = str | Size


def check_output_padding(
    op: str, nd: int, output_padding, stride, dilation
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(output_padding, stride, dilation)`` as ``nd``-tuples, after checking them.

    ``output_padding`` must be a non-negative int (or one per axis) smaller than the
    stride or the dilation on every axis (PyTorch's rule: a larger one would add output
    rows that no input reaches). The one check behind the functional transposed
    convolutions and the ``nnjax.nn`` layers, which call it when built.

    Raises:
      ValueError: naming ``op``, the argument and the values as passed.

    Example:
      >>> check_output_padding("conv_transpose2d", 2, 1, 2, 1)
      ((1, 1), (2, 2), (1, 1))
      >>> try:
      ...     check_output_padding("conv_transpose1d", 1, 2, 2, 1)
      ... except ValueError as err:
      ...     print(err)
      conv_transpose1d: `output_padding`=2 must be smaller than the stride 2 or the dilation 1 ...
    """
    strides = _utils.ntuple(stride, nd, "stride", op)
    dilations = _utils.ntuple(dilation, nd, "dilation", op)
    extra = _utils.ntuple(output_padding, nd, "output_padding", op, minimum=0)
    if any(o >= max(s, d) for o, s, d in zip(extra, strides, dilations)):
        raise ValueError(
            f"{op}: `output_padding`={output_padding!r} must be smaller than the stride "
            f"{stride!r} or the dilation {dilation!r} on every axis"
        )
    return extra, strides, dilations


def same_pads(kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(lo, hi)`` padding of the stride-dilated input for ``"SAME"`` (output ``n * stride``).

    The transposed convolution is then the exact adjoint of a ``"SAME"`` convolution of
    the same stride (TensorFlow's, Keras' and ``lax.conv_transpose``'s rule): of the
    ``span - stride`` border rows the adjoint drops, the odd one is dropped at the end.

    Example:
      >>> same_pads(3, 2, 1)  # full padding (2, 2) gives 2n + 1: one row less at the end
      (2, 1)
    """
    span = dilation * (kernel - 1) + 1
    total = span + stride - 2
    lo = span - 1 if stride > span - 1 else -(-total // 2)
    return lo, total - lo


def transpose_pads(
    op: str, nd: int, kernel: tuple[int, ...], padding: TransposePadding, stride, dilation,
    output_padding,
) -> list[tuple[int, int]]:  # fmt: skip
    """Padding ``(lo, hi)`` of the stride-dilated input per axis (negative crops)."""
    if isinstance(padding, str) and padding.upper() == "SAME":
        pads = [same_pads(k, s, d) for k, s, d in zip(kernel, stride, dilation)]
        return [(lo, hi + o) for (lo, hi), o in zip(pads, output_padding)]
    if isinstance(padding, str) and padding.upper() == "VALID":
        padding = 0
    try:
        padding = _utils.ntuple(padding, nd, "padding", op, minimum=0)
    except ValueError:
        raise ValueError(
            f"{op}: `padding` must be 'SAME', 'VALID', a non-negative int or "
            f"{_utils.tuple_phrase(nd)} of them, got {padding!r}"
        ) from None
    return [
        (d * (k - 1) - p, d * (k - 1) - p + o)
        for k, p, o, d in zip(kernel, padding, output_padding, dilation)
    ]


def grouped_kernel(kernel: jax.Array, groups: int) -> jax.Array:
    """The forward-convolution kernel ``(*k, in / G, out)`` of a transposed ``(*k, in, out / G)``.

    Group ``g`` maps input channels ``g * in / G ...`` to output channels
    ``g * out / G ...``; ``lax.conv_general_dilated`` wants the groups along the
    output axis.

    Example:
      >>> grouped_kernel(jnp.zeros((3, 4, 5)), 2).shape
      (3, 2, 10)
    """
    *k, cin, cout = kernel.shape
    blocks = kernel.reshape(*k, groups, cin // groups, cout)
    return jnp.moveaxis(blocks, -3, -2).reshape(*k, cin // groups, groups * cout)
