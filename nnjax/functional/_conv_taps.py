"""A convolution as a sum of shifted, scaled copies of its input (private).

``y = sum over kernel taps t and input channels c of shift_t(x[..., c]) * kernel[t, c]``:
one elementwise expression, which XLA fuses with what follows it (bias, activation,
pooling) so that the convolution's output is never written to memory. It does
``prod(kernel_size) * in`` multiply-adds per output element, so it only pays for a few:
the first layer of a network on one-channel images. Its gradients are those of
:mod:`nnjax.functional._conv_canonical` (XLA convolutions in Eigen's layout): the
elementwise form would differentiate into one reduction over the batch per tap.

Measured on a 2-core AMD EPYC (Zen 2, AVX2, no AVX-512), jax 0.10.2, the CNN train step
of ``benchmarks/bench_cnn.py`` (conv 3x3 -> ReLU -> max pool 2x2, twice, dense 128,
Adam) compiled by :func:`nnjax.functional._conv_compiler.jit`, with only the first
layer's formulation changed from Eigen's convolution to this one, wall clock, default
threads, medians of 25-80 interleaved steps (ratio taps / Eigen):

==============================  ===========================
first layer (batch)             taps / Eigen
==============================  ===========================
28x28x1 -> 32, 3x3 (128)        0.86, 0.87, 0.89, 0.85
28x28x1 -> 32, 3x3 (32)         0.88, 0.88
28x28x1 -> 32, 3x3 (8 / 1)      0.97 / 1.00 (against patches, the rule there)
32x32x1 -> 32, 3x3 (128)        0.86
32x32x2 -> 32, 3x3 (128)        1.07
32x32x3 -> 32, 3x3 (128)        1.11
32x32x4 -> 32, 3x3 (128)        1.31
28x28x1 -> 32, 5x5 (128 / 32)   1.12 / 1.14
==============================  ===========================

So :func:`applies` to ungrouped 2-D convolutions of one input channel with at most
:data:`MAX_TAPS` kernel elements. Alone (not fused with a consumer) it measured 2.0 ms
against Eigen's 8.6 ms for 28x28x1 -> 32 at batch 128 (forward, with a ReLU).

A depthwise convolution (as many groups as input channels) does ``prod(kernel_size)``
multiply-adds per output element whatever its channel count, and XLA:CPU runs it as a
grouped convolution slowly. :func:`depthwise` computes it as the same shifted
multiply-adds, one per tap with a per-channel weight, differentiated by plain autodiff
(its kernel gradient one reduction per tap): forward and reverse mode, in any program.
Same machine, forward + backward, jitted, wall clock, medians of 11-15 interleaved
samples (ms; XLA's convolution on YNNPACK / im2col patches / these taps / PyTorch):

=================================  ===================================
depthwise input, kernel (batch)    XLA / patches / taps / PyTorch
=================================  ===================================
14x14x32, 3x3 (1)                  0.94 / 0.43 / 0.47 / 0.89
14x14x32, 3x3 (8)                  4.4 / 1.2 / 0.86 / 0.95
14x14x32, 3x3 (32)                 21 / 6.0 / 2.1 / 2.6
14x14x32, 3x3 (128)                86 / 66 / 10 / 6.7
14x14x32, 5x5 (32)                 31 / 45 / 7.2 / 8.0
14x14x16, 3x3, multiplier 2 (32)   225 / 6.5 / 2.8 / 6.3
28x28x64, 3x3 (32)                 690 / 116 / 39 / 10
=================================  ===================================

Forward only, the taps took 0.27-4.8 ms where XLA's convolution took 0.64-96.

The kernel gradient was most of that time at large sizes: autodiff's nine reductions
(one per tap of a 3x3 kernel) each read ``x`` and the cotangent again, and XLA:CPU does
not fuse sibling reductions. :func:`depthwise_kernel_grad` computes every tap's sum in
one variadic reduction, and :func:`depthwise_reverse` is :func:`depthwise` with that
kernel gradient (a custom VJP: reverse mode only), which ``"auto"`` uses in library
programs (``fit``'s). Zen 4 (AVX-512), jax 0.10.2, ms: the kernel gradient at
56x56x64, batch 8, 17.7 -> 3.4, at 28x28x128, batch 32, 33.6 -> 6.9; a
depthwise-separable block (depthwise 3x3, ReLU, 1x1 conv; ``bench_ops.py --ops
dwblock``) in a library program 36.9 -> 24.5 at 56x56x64, batch 8, and 0.62-0.99x the
autodiff version's time at every MobileNet stage tried.

Example:
  >>> x, k = jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 4))
  >>> conv(x, k, (1, 1), ((1, 1), (1, 1)), (1, 1))[0, 2, 2]
  Array([9., 9., 9., 9.], dtype=float32)
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _conv_canonical

Pads = tuple[tuple[int, int], ...]

MAX_TAPS = 9
"""Most kernel elements (``prod(kernel_size) * in``) :func:`applies` to (3x3, one channel)."""


def applies(kernel_shape: Sequence[int], groups: int) -> bool:
    """Whether ``"auto"`` computes this convolution as taps (the rule above)."""
    nd = len(kernel_shape) - 2
    return nd == 2 and groups == 1 and math.prod(kernel_shape[: nd + 1]) <= MAX_TAPS


def is_depthwise(in_channels: int, kernel_shape: Sequence[int], groups: int) -> bool:
    """Whether the convolution is depthwise: one group per input channel, 2 or more."""
    return groups > 1 and groups == in_channels and kernel_shape[-2] == 1


def windows(x: jax.Array, kernel_size: Sequence[int], strides, pads, dilation) -> list[jax.Array]:
    """The input under each kernel tap, after zero padding: ``(B, *out_spatial, in)`` each.

    Args:
      x: ``(B, *spatial, in)``.
      kernel_size: one int per spatial axis.
      strides: one int per spatial axis.
      pads: ``(lo, hi)`` per spatial axis.
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``prod(kernel_size)`` strided slices, in row-major tap order.
    """
    config = [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)]
    padded = lax.pad(x, jnp.zeros((), x.dtype), config)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    out = [(n - s) // st + 1 for n, s, st in zip(padded.shape[1:-1], spans, strides)]
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        start = [o * d for o, d in zip(offset, dilation)]
        limit = [b + (n - 1) * st + 1 for b, n, st in zip(start, out, strides)]
        stop = (padded.shape[0], *limit, padded.shape[-1])
        slices.append(lax.slice(padded, (0, *start, 0), stop, (1, *strides, 1)))
    return slices


def _sum_over_taps(
    x, kernel, strides, pads, dilation, tap_terms: Callable, repeat: int = 1
) -> jax.Array:
    """``sum(tap_terms(window, weights))`` over the kernel taps, rounded once to ``x``'s dtype.

    ``window`` is the input under one tap, ``(B, *out_spatial, in * repeat)`` (each
    channel repeated ``repeat`` times, adjacent); ``weights`` that tap's
    ``(in_k, *ones, out)`` kernel rows (``in_k`` the kernel's input axis). Both are in
    the accumulation dtype: at least float32, as a convolution accumulates.
    """
    nd = kernel.ndim - 2
    acc = jnp.promote_types(x.dtype, jnp.float32)
    lead = (1,) * (nd + 1)  # a row (out,) broadcast over (B, *out_spatial)
    rows = kernel.astype(acc).reshape(-1, kernel.shape[nd], *lead, kernel.shape[-1])
    xs = x.astype(acc) if repeat == 1 else jnp.repeat(x.astype(acc), repeat, axis=-1)
    shifted = windows(xs, kernel.shape[:nd], strides, pads, dilation)
    terms = [term for s, w in zip(shifted, rows) for term in tap_terms(s, w)]
    return functools.reduce(jnp.add, terms).astype(x.dtype)


def forward(x: jax.Array, kernel: jax.Array, strides, pads: Pads, dilation) -> jax.Array:
    """The convolution as ``prod(kernel_size) * in`` shifted multiply-adds.

    Args:
      x: ``(B, *spatial, in)``.
      kernel: ``(*kernel_size, in, out)``.
      strides: one int per spatial axis.
      pads: ``(lo, hi)`` per spatial axis.
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``(B, *out_spatial, out)``, the dtype of ``x``; accumulated in at least float32
      (as a convolution accumulates), rounded once.
    """
    channels = range(x.shape[-1])
    each_channel = lambda s, w: [s[..., c : c + 1] * w[c] for c in channels]
    return _sum_over_taps(x, kernel, strides, pads, dilation, each_channel)


def depthwise(x: jax.Array, kernel: jax.Array, strides, pads: Pads, dilation) -> jax.Array:
    """A depthwise convolution as ``prod(kernel_size)`` shifted, per-channel multiply-adds.

    Output channel ``o`` reads input channel ``o // multiplier`` (PyTorch's and XLA's
    order), ``multiplier = out // in``. Differentiable in forward and reverse mode.

    Args:
      x: ``(B, *spatial, in)``.
      kernel: ``(*kernel_size, 1, out)``, ``out`` a multiple of ``in``.
      strides: one int per spatial axis.
      pads: ``(lo, hi)`` per spatial axis.
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``(B, *out_spatial, out)``, the dtype of ``x``; accumulated in at least float32,
      rounded once.

    Example:
      >>> x, k = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 1, 4))
      >>> depthwise(x, k, (1, 1), ((1, 1), (1, 1)), (1, 1))[0, 2, 2]
      Array([9., 9., 9., 9.], dtype=float32)
    """
    multiplier = kernel.shape[-1] // x.shape[-1]
    per_channel = lambda s, w: [s * w[0]]
    return _sum_over_taps(x, kernel, strides, pads, dilation, per_channel, multiplier)


def depthwise_kernel_grad(
    x: jax.Array, g: jax.Array, kernel: jax.Array, strides, pads: Pads, dilation
) -> jax.Array:
    """The kernel gradient of :func:`depthwise` for the output cotangent ``g``, in one pass.

    Each tap's gradient is the sum of ``window * g`` over the batch and the positions;
    autodiff emits one reduction per tap, each reading ``x`` and ``g`` again, where this
    is one variadic reduction of every tap's product over the positions of each
    example at once (XLA:CPU runs the examples in parallel), then a sum over the batch.

    Args:
      x: ``(B, *spatial, in)``, :func:`depthwise`'s input.
      g: ``(B, *out_spatial, out)``, the cotangent of its output.
      kernel: ``(*kernel_size, 1, out)`` (only its shape and dtype are read).
      strides: one int per spatial axis, as :func:`depthwise`'s.
      pads: ``(lo, hi)`` per spatial axis.
      dilation: kernel dilation, one int per spatial axis.

    Returns:
      ``kernel``'s shape and dtype; summed in at least float32.

    Example:
      >>> x, k = jnp.ones((2, 4, 4, 1)), jnp.ones((3, 3, 1, 1))
      >>> g = jnp.ones((2, 4, 4, 1))
      >>> depthwise_kernel_grad(x, g, k, (1, 1), ((1, 1), (1, 1)), (1, 1))[..., 0, 0]
      Array([[18., 24., 18.],
             [24., 32., 24.],
             [18., 24., 18.]], dtype=float32)
    """
    nd = kernel.ndim - 2
    acc = jnp.promote_types(x.dtype, jnp.float32)
    multiplier = kernel.shape[-1] // x.shape[-1]
    xs = x.astype(acc) if multiplier == 1 else jnp.repeat(x.astype(acc), multiplier, axis=-1)
    gs = g.astype(acc)
    shifted = windows(xs, kernel.shape[:nd], strides, pads, dilation)
    per_example = [(s * gs).reshape(g.shape[0], -1, g.shape[-1]) for s in shifted]
    add = lambda a, b: tuple(p + q for p, q in zip(a, b))
    sums = lax.reduce(per_example, [jnp.zeros((), acc)] * len(shifted), add, (1,))  # (B, out)
    return jnp.stack([s.sum(0) for s in sums]).reshape(kernel.shape).astype(kernel.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def depthwise_reverse(x: jax.Array, kernel: jax.Array, strides, pads: Pads, dilation):
    """:func:`depthwise` with its kernel gradient from :func:`depthwise_kernel_grad`.

    Reverse mode only (a custom VJP has no JVP); its backward pass is differentiable
    again in reverse mode. Arguments and result as :func:`depthwise`'s (``pads`` as
    tuples: hashable). The output passes an optimization barrier: XLA:CPU's YNNPACK
    reduce fusion would otherwise pull the taps into a reduction of the output (a batch
    norm's mean) and materialise every shifted input (a depthwise, batch norm, ReLU,
    1x1 conv block: 0.85-0.99x the time with the barrier, 0.97-1.00x without the norm).
    """
    return _depthwise_behind_barrier(x, kernel, strides, pads, dilation)


def _depthwise_behind_barrier(x, kernel, strides, pads, dilation):
    return lax.optimization_barrier(depthwise(x, kernel, strides, pads, dilation))


def _depthwise_fwd(x, kernel, strides, pads, dilation):
    return _depthwise_behind_barrier(x, kernel, strides, pads, dilation), (x, kernel)


def _depthwise_bwd(strides, pads, dilation, residuals, g):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: depthwise(x, kernel, strides, pads, dilation), x)
    (dx,) = input_vjp(g)
    return dx, depthwise_kernel_grad(x, g, kernel, strides, pads, dilation)


depthwise_reverse.defvjp(_depthwise_fwd, _depthwise_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv(x: jax.Array, kernel: jax.Array, strides, pads: Pads, dilation) -> jax.Array:
    """:func:`forward` with the VJP of :func:`nnjax.functional._conv_canonical.conv`.

    Arguments and result as that function's (``pads`` as tuples: hashable).
    """
    return forward(x, kernel, strides, pads, dilation)


def _conv_fwd(x, kernel, strides, pads, dilation):
    return forward(x, kernel, strides, pads, dilation), (x, kernel)


conv.defvjp(_conv_fwd, _conv_canonical.backward)

__all__ = [
    "MAX_TAPS",
    "applies",
    "conv",
    "depthwise",
    "depthwise_kernel_grad",
    "depthwise_reverse",
    "forward",
    "is_depthwise",
    "windows",
]
