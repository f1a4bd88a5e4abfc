"""XLA's convolution whose gradients are convolutions in XLA:CPU's canonical form (private).

XLA:CPU runs a convolution on Eigen (or YNNPACK) only when its operands are laid out
``(batch, *spatial, feature)`` and ``(*spatial, in, out)``. JAX's transpose rules emit
the input and kernel gradients with other dimension numbers, and XLA:CPU fixes them up
with inserted transposes (``ConvCanonicalization``), but only in a program's entry
computation: inside a ``lax.fori_loop`` / ``lax.scan`` body they fall back to a naive
loop nest. The CNN train step of ``benchmarks/bench_cnn.py`` in a ``fori_loop`` of 2
steps took 7.9x the time of its im2col formulation there (batch 32, one thread, load
7.7 on a 2-core AMD EPYC).

:func:`conv` is the same convolution with a custom VJP that writes the transposes
itself, so that every convolution it emits is canonical wherever it sits: the input
gradient convolves ``dy`` with the flipped kernel (in/out swapped; for a strided
convolution a transposed one, computed as stride-1 convolutions and a pixel shuffle by
``_conv_subpixel.py``: fwd+bwd of stride-2 convolutions at batch 32 took 0.67-1.06x
the time of the stride-dilated ``dy``, ``benchmarks/bench_ops.py --ops strided``), the
kernel gradient
convolves the input seen as ``(in, *spatial, batch)`` with ``dy`` seen as
``(*spatial, batch, out)``; paddings and dilations as in JAX's own rules
(``jax/_src/lax/convolution.py``). Reverse mode only (a custom VJP has no JVP).

Example:
  >>> x, k = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
  >>> conv(x, k, (1, 1), ((1, 1), (1, 1)), (1, 1)).shape
  (1, 5, 5, 4)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import numpy as np
from jax import lax

from nnjax.functional import _conv_subpixel

Pads = tuple[tuple[int, int], ...]

_LAYOUT = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _forward(x, kernel, strides, pads, dilation):
    nd = kernel.ndim - 2
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=_LAYOUT[nd],
    )


def _dilated(sizes: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    return np.array([0 if n == 0 else 1 + d * (n - 1) for n, d in zip(sizes, dilation)])


def input_grad_pads(in_size, k_size, strides, out_size, pads, dilation) -> Pads:
    """Padding of the input gradient's convolution (JAX's ``_conv_general_vjp_lhs_padding``)."""
    k_dil = _dilated(k_size, dilation)
    out_dil = _dilated(out_size, strides)
    before = k_dil - np.array([lo for lo, _ in pads]) - 1
    after = np.array(in_size) + k_dil - 1 - out_dil - before
    return tuple((int(lo), int(hi)) for lo, hi in zip(before, after))


def kernel_grad_pads(in_size, k_size, strides, out_size, pads, dilation) -> Pads:
    """Padding of the kernel gradient's convolution (JAX's ``_conv_general_vjp_rhs_padding``)."""
    k_dil = _dilated(k_size, dilation)
    out_dil = _dilated(out_size, strides)
    lows = [lo for lo, _ in pads]
    highs = [o - i + kd - lo - 1 for o, i, kd, lo in zip(out_dil, in_size, k_dil, lows)]
    return tuple((int(lo), int(hi)) for lo, hi in zip(lows, highs))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv(x: jax.Array, kernel: jax.Array, strides, pads, dilation) -> jax.Array:
    """Channels-last ungrouped convolution; its VJP emits canonical convolutions only.

    Args:
      x: ``(B, *spatial, in)``.
      kernel: ``(*kernel_size, in, out)``, the dtype of ``x``.
      strides: one int per spatial axis.
      pads: ``(lo, hi)`` per spatial axis (tuples: hashable).
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``(B, *out_spatial, out)``.
    """
    return _forward(x, kernel, strides, pads, dilation)


def _conv_fwd(x, kernel, strides, pads, dilation):
    return _forward(x, kernel, strides, pads, dilation), (x, kernel)


def backward(strides, pads, dilation, residuals, dy):
    """The VJP of a convolution with residuals ``(x, kernel)``: canonical convolutions only."""
    x, kernel = residuals
    nd = kernel.ndim - 2
    in_size, k_size, out_size = x.shape[1:-1], kernel.shape[:nd], dy.shape[1:-1]
    sizes = (in_size, k_size, strides, out_size, pads, dilation)
    dx = input_grad(dy, kernel, strides, input_grad_pads(*sizes), dilation)
    # dk: x as (in, *spatial, B) against dy as (*spatial, B, out) -> (in, *k_size, out).
    x_t = x.transpose(nd + 1, *range(1, nd + 1), 0)
    dy_t = dy.transpose(*range(1, nd + 1), 0, nd + 1)
    dk = _forward(x_t, dy_t, dilation, kernel_grad_pads(*sizes), strides)
    dk = dk.transpose(*range(1, nd + 1), 0, nd + 1)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


def input_grad(dy, kernel, strides, pads, dilation) -> jax.Array:
    """``dy`` convolved with the flipped kernel (in/out swapped) after dilating it by ``strides``.

    Strided: stride-1 convolutions and a pixel shuffle (``_conv_subpixel.py``) rather
    than XLA:CPU's convolution of the stride-dilated ``dy`` (see the module docstring).
    """
    nd = kernel.ndim - 2
    if any(s != 1 for s in strides):
        plane = lambda x, k, strides, pads, dilation, groups: _forward(
            x, k, strides, pads, dilation
        )
        return _conv_subpixel.conv(dy, kernel.swapaxes(-1, -2), strides, pads, dilation, 1, plane)
    flipped = lax.rev(kernel, tuple(range(nd))).swapaxes(-1, -2)
    return _forward(dy, flipped, strides, pads, dilation)


conv.defvjp(_conv_fwd, backward)

__all__ = ["backward", "conv", "input_grad", "input_grad_pads", "kernel_grad_pads"]
