"""Convolutions with bfloat16 operands on AMX: im2col on the CPU's matmul tiles (private).

XLA:CPU convolves bfloat16 by widening it to float32 (Eigen), also on CPUs with AMX; the
oneDNN flags this jaxlib parses changed nothing. Its bfloat16 matmuls with a float32
result, though, run on YNNPACK's AMX kernels. On a 2-core Intel Xeon with AMX, jax
0.10.2, one matmul, float32 time / bfloat16 time: ``(2048, 2048) @ (2048, 2048)`` 5.0,
``(256, 784) @ (784, 500)`` 2.7, ``(32, 144) @ (144, 512)`` 0.55.

So where a convolution's operands may be bfloat16 (a bfloat16 input, or a float32 one
under ``fit(precision="bfloat16")``: :func:`operands_wanted`), :func:`conv` computes it
as im2col on those kernels, with float32 sums:

* forward: the patch matrix ``(B * prod(out), prod(kernel_size) * in)`` of the input
  rounded to bfloat16, times the kernel rounded to bfloat16. The patch matrix is built
  from the input's bits as ``uint16``: XLA:CPU widens bfloat16 slices and
  concatenations to float32 and back (4.9x the time at ``14x14x32``, batch 128).
* kernel gradient: ``patches.T @ dy`` with the smaller of the two operands written out
  transposed (``_bfloat16_dot.leading_contraction``), as those kernels require.
* input gradient: ``dy @ kernel.T``, then the patch matrix's transpose (pads and
  slices summed back, float32).

Reverse mode only (a custom VJP), in library programs (``fit``'s), ungrouped, and only
where :func:`faster` (measured) says so; everywhere else a convolution keeps the
formulation of ``_conv_formulations.py``.

Forward + backward of one convolution with a ReLU, ms, against XLA's on Eigen in
float32 (``_conv_canonical.conv``, the pick it replaces), 15 interleaved calls, same
machine (``/tmp`` script of session 21; ``benchmarks/README.md``):

============================  =====  =========  ======  ======  =====
input -> out, kernel          batch  patch M    Eigen   here    ratio
============================  =====  =========  ======  ======  =====
14x14x32 -> 64, 3x3           32     1.8        3.33    2.25    0.68
14x14x32 -> 64, 3x3           128    7.2        13.7    13.1    0.96
28x28x64 -> 64, 3x3           8      3.6        5.95    3.68    0.62
28x28x64 -> 64, 3x3           32     14.5       28.6    42.6    1.49
28x28x128 -> 128, 3x3         8      7.2        17.0    11.6    0.68
28x28x128 -> 128, 3x3         32     28.9       84.9    99.5    1.17
14x14x256 -> 256, 3x3         8      3.6        18.0    6.68    0.37
14x14x256 -> 256, 3x3         128    57.8       302     248     0.82
7x7x512 -> 512, 3x3           32     7.2        63.6    37.7    0.59
28x28x128 -> 256, 3x3, /2     8      1.8        11.1    4.04    0.36
56x56x64 -> 256, 1x1          8      1.6        35.1    48.0    1.37
14x14x1024 -> 256, 1x1        32     6.4        45.5    23.7    0.52
============================  =====  =========  ======  ======  =====

(patch M: millions of patch-matrix elements.) It wins where the matmul does much work
per element it reads and writes (:func:`faster`); where XLA:CPU's slow copies of large
patch matrices and outputs dominate, Eigen stays.

Example:
  >>> x, k = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
  >>> conv(x, k, (1, 1), ((1, 1), (1, 1)), (1, 1))[0, 2, 2]
  Array([18., 18., 18., 18.], dtype=float32)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _hardware
from nnjax.functional import _bfloat16, _bfloat16_dot, _conv_taps, _small_loop_dots

_F32 = jnp.float32
Pads = tuple[tuple[int, int], ...]

#: :func:`faster`'s thresholds: matmul work per element moved (``K * N / (K + N)``) and
#: the largest patch matrix (elements) below the highest intensity band.
HIGH_INTENSITY = 200.0
MID_INTENSITY = 100.0
MID_MAX_ELEMENTS = 8 * 2**20
LOW_MAX_ELEMENTS = 4 * 2**20


def operands_wanted(dtype: jnp.dtype) -> bool:
    """Whether a convolution of ``dtype`` inputs, traced now, may round its operands.

    True on a CPU with AMX for bfloat16 inputs, and for float32 ones in a
    :func:`~nnjax.functional._bfloat16_dot.bfloat16_operands` block (``fit``'s
    ``precision="bfloat16"`` on a CPU with native bfloat16); never where
    :func:`nnjax._hardware.native_bfloat16` says bfloat16 is emulated.

    Example:
      >>> operands_wanted(jnp.float16)
      False
    """
    dtype = jnp.dtype(dtype)
    native = _hardware.bfloat16_dots(dtype)  # a bfloat16 input on a native-bfloat16 CPU
    bfloat16 = native or (dtype == _F32 and _bfloat16_dot.rounding_operands())
    return bfloat16 and jax.default_backend() == "cpu" and _hardware.amx_bfloat16()


def faster(x_shape: Sequence[int], kernel_shape: Sequence[int], out_spatial: Sequence[int]) -> bool:
    """Whether :func:`conv` measured faster than Eigen's float32 convolution at this shape.

    With ``K = prod(kernel_size) * in``, ``N = out`` and ``M = batch * prod(out_spatial)``
    (the matmul is ``(M, K) @ (K, N)``), the intensity ``K * N / (K + N)``: at least
    :data:`HIGH_INTENSITY`, always (0.30-0.92 of Eigen's time, patch matrices up to
    58 M elements); at least :data:`MID_INTENSITY`, up to :data:`MID_MAX_ELEMENTS`
    patch elements (0.68 at 7.2 M, 1.17 at 29 M); below, where ``K >= N`` and up to
    :data:`LOW_MAX_ELEMENTS` (0.62-0.69; 0.96 at 7.2 M; a 1x1 convolution widening 64
    channels to 256 lost, 1.37, at 1.6 M).

    Example:
      >>> faster((8, 7, 7, 512), (3, 3, 512, 512), (7, 7))
      True
      >>> faster((8, 56, 56, 64), (1, 1, 64, 256), (56, 56))
      False
    """
    nd = len(kernel_shape) - 2
    depth, width = math.prod(kernel_shape[: nd + 1]), kernel_shape[-1]
    elements = x_shape[0] * math.prod(out_spatial) * depth
    intensity = depth * width / (depth + width)
    if intensity >= HIGH_INTENSITY:
        return True
    if intensity >= MID_INTENSITY:
        return elements <= MID_MAX_ELEMENTS
    return depth >= width and elements <= LOW_MAX_ELEMENTS


def _patch_matrix(x: jax.Array, kernel_size, strides, pads, dilation) -> jax.Array:
    """``(B, *out_spatial, prod(kernel_size) * in)``: the windows of ``x``, tap-major."""
    return jnp.concatenate(_conv_taps.windows(x, kernel_size, strides, pads, dilation), axis=-1)


def _bfloat16_patches(x: jax.Array, kernel_size, strides, pads, dilation) -> jax.Array:
    """:func:`_patch_matrix` of ``x`` rounded to bfloat16, its copies made as ``uint16``."""
    bits = lax.bitcast_convert_type(_bfloat16.to_bfloat16(x), jnp.uint16)
    patches = _patch_matrix(bits, kernel_size, strides, pads, dilation)
    return lax.bitcast_convert_type(patches, jnp.bfloat16)


def _dot(lhs: jax.Array, rhs: jax.Array, lhs_axis: int, rhs_axis: int) -> jax.Array:
    dims = (((lhs_axis,), (rhs_axis,)), ((), ()))
    return _small_loop_dots.dot_general(lhs, rhs, dims)


def _forward(x, kernel, strides, pads, dilation, _meta):
    patches = _bfloat16_patches(x, kernel.shape[:-2], strides, pads, dilation)
    flat_kernel = _bfloat16.to_bfloat16(kernel.reshape(-1, kernel.shape[-1]))
    flat = patches.reshape(-1, patches.shape[-1])
    y = _dot(flat, flat_kernel, 1, 0).reshape(*patches.shape[:-1], kernel.shape[-1])
    return y, (flat, flat_kernel)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, pads, dilation, meta):
    return _forward(x, kernel, strides, pads, dilation, meta)[0]


def _kernel_grad(patches: jax.Array, dy: jax.Array, key: jax.Array) -> jax.Array:
    """``patches.T @ dy`` on the bfloat16 kernels, transposing the smaller operand.

    The transposed operand is copied from its written-out rounding
    (``_bfloat16_dot.written_out``; ``key``: the rounded kernel).
    """
    contract = _bfloat16_dot.leading_contraction
    if patches.shape[1] <= dy.shape[1]:
        return contract(_bfloat16_dot.written_out(patches, key)[None], dy[None])
    # dy.T @ patches, then its small (out, K) result transposed; the barrier keeps XLA
    # from giving the matmul a transposed output layout, which its kernels refuse
    flipped = contract(_bfloat16_dot.written_out(dy, key)[None], patches[None])
    return lax.optimization_barrier(flipped).T


def _backward(strides, pads, dilation, meta, residuals, dy):
    (x_shape, x_dtype), (kernel_shape, kernel_dtype) = meta
    patches, flat_kernel = residuals
    flat_dy = _bfloat16.to_bfloat16(dy.reshape(-1, dy.shape[-1]))
    dkernel = _kernel_grad(patches, flat_dy, flat_kernel).reshape(kernel_shape)
    dpatches = _dot(flat_dy, flat_kernel, 1, 1)
    kernel_size, depth = kernel_shape[:-2], patches.shape[1]
    build = lambda z: _patch_matrix(z, kernel_size, strides, pads, dilation).reshape(-1, depth)
    (dx,) = jax.linear_transpose(build, jax.ShapeDtypeStruct(x_shape, _F32))(dpatches)
    return _bfloat16.round_like(dx, x_dtype), _bfloat16.round_like(dkernel, kernel_dtype)


_conv.defvjp(_forward, _backward)


def conv(
    x: jax.Array, kernel: jax.Array, strides, pads: Sequence[tuple[int, int]], dilation
) -> jax.Array:
    """Channels-last ungrouped convolution with bfloat16 operands and float32 sums.

    Args:
      x: ``(B, *spatial, in)``, any float dtype (rounded to bfloat16).
      kernel: ``(*kernel_size, in, out)``, any float dtype (rounded to bfloat16).
      strides: one int per spatial axis.
      pads: ``(lo, hi)`` per spatial axis (tuples: hashable).
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``(B, *out_spatial, out)`` float32. Gradients have the dtypes of ``x`` and
      ``kernel``; reverse mode only.
    """
    meta = ((tuple(x.shape), jnp.dtype(x.dtype)), (tuple(kernel.shape), jnp.dtype(kernel.dtype)))
    pairs = tuple((int(lo), int(hi)) for lo, hi in pads)
    return _conv(x, kernel, tuple(strides), pairs, tuple(dilation), meta)


__all__ = ["conv", "faster", "operands_wanted"]
