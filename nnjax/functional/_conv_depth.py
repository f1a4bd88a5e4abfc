"""A 3-D convolution as one 2-D convolution of depth-stacked planes (private).

XLA:CPU's 3-D convolution (Eigen's, or the naive loops it falls back to) is slow, and
im2col over all three axes builds a patch matrix of ``kd * kh * kw * in`` columns.
:func:`conv` gathers only the depth taps: for each output plane ``z`` the ``kd``
input planes it reads are concatenated along the channels, ``(B * D', H, W, kd * in)``,
and convolved in 2-D with the kernel seen as ``(kh, kw, kd * in, out)``, by whichever
2-D formulation the caller passes (``fit``'s rule: Eigen, or patches when small). Its
gradients are the 2-D convolution's and a pad and strided slices (transposed by JAX).

Measured on a 2-core Intel Xeon (AVX-512, AMX), jax 0.10.2, forward + backward of one
3x3x3 SAME convolution with bias, loss ``sum(y ** 2) / 2``, compiled as ``fit``
compiles, medians of 5 interleaved rounds, ms (XLA's 3-D convolution / 3-D patches /
this / PyTorch's ``conv3d``):

==================================  ==========  =========  ======  =========
input -> out (batch)                XLA (Eigen)  patches    this    PyTorch
==================================  ==========  =========  ======  =========
16x32x32x3 -> 32 (4)                152.9        31.1       13.1    12.5
8x16x16x32 -> 64 (8)                91.1         58.4       23.8    16.1
32x32x32x1 -> 8 (2)                 9.3          9.3        5.8     6.0
4x8x8x64 -> 64 (8)                  9.5          9.4        6.3     4.4
16x56x56x64 -> 64 (2)               1096         884        340     248
==================================  ==========  =========  ======  =========

(A sum of ``kd`` 2-D convolutions, one per depth tap, took 33.7, 26.1, 6.7, 7.6 and
387 ms: the stacked planes make one larger matmul instead.)

Example:
  >>> from nnjax.functional import _conv_formulations as forms
  >>> x, k = jnp.ones((1, 4, 5, 5, 2)), jnp.ones((3, 3, 3, 2, 4))
  >>> pads = [(1, 1)] * 3
  >>> conv(x, k, (1, 1, 1), pads, (1, 1, 1), forms.xla).shape
  (1, 4, 5, 5, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional._conv_args import out_size


def conv(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    plane_conv: Callable[..., jax.Array],
) -> jax.Array:
    """The ungrouped 3-D convolution of ``x`` with ``kernel`` through a 2-D one.

    Args:
      x: ``(B, D, H, W, in)``.
      kernel: ``(kd, kh, kw, in, out)``.
      strides: three ints.
      pads: three ``(lo, hi)`` pairs, explicit.
      dilation: three ints (the kernel's).
      plane_conv: a 2-D formulation, ``plane_conv(x2, k2, strides, pads, dilation,
        groups)`` over ``(N, H, W, kd * in)`` and ``(kh, kw, kd * in, out)``.

    Returns:
      ``(B, D', H', W', out)``, as ``lax.conv_general_dilated`` gives it.
    """
    kd, kh, kw, c_in, c_out = kernel.shape
    (lo, hi), stride, step = pads[0], strides[0], dilation[0]
    xp = jnp.pad(x, ((0, 0), (lo, hi), (0, 0), (0, 0), (0, 0)))
    depth = out_size(x.shape[1], (lo, hi), (kd - 1) * step + 1, stride)
    planes = [
        lax.slice_in_dim(xp, z * step, z * step + (depth - 1) * stride + 1, stride, axis=1)
        for z in range(kd)
    ]
    stacked = jnp.concatenate(planes, axis=-1)  # (B, D', H, W, kd * in), tap-major
    flat = stacked.reshape(-1, *stacked.shape[2:])
    kernel2 = jnp.moveaxis(kernel, 0, 2).reshape(kh, kw, kd * c_in, c_out)
    y = plane_conv(flat, kernel2, tuple(strides[1:]), list(pads[1:]), tuple(dilation[1:]), 1)
    return y.reshape(x.shape[0], depth, *y.shape[1:])


__all__ = ["conv"]
