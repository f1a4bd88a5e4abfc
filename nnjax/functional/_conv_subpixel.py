"""A transposed convolution as one stride-1 convolution and a pixel shuffle (private).

A transposed convolution of stride ``s`` adds input ``i`` times tap ``t`` into output
``i * s + t * d + c`` (``d`` the dilation, ``c`` set by the padding). The outputs of
one phase ``o mod s`` therefore take the taps of one residue only, and each phase is a
stride-1 correlation of the *undilated* input with a small sub-kernel. :func:`conv`
gathers every phase's sub-kernel into one kernel ``(*A, in, P * out)`` (zeros where a
phase has no tap at a sub-kernel position), runs ONE stride-1 convolution through the
formulation the caller passes (``fit``'s rule: Eigen, patches, depth-stacked planes),
and interleaves the ``P = prod(s)`` phases into the output (a depth-to-space reshape),
with zeros for phases no tap reaches (a 1x1 stride-2 kernel). The shift ``e`` of the
phase grid is chosen per axis to make ``A`` smallest (a 4-tap stride-2 kernel: 2, not
3). Its gradients are the stride-1 convolution's, a gather of the kernel and reshapes.

XLA:CPU runs the stride-dilated convolution (``lhs_dilation``) that ``lax`` writes for
a transposed convolution on naive loops, and its gradients no better. Measured on a
2-core Intel Xeon (AVX-512, AMX), jax 0.10.2, forward + backward, loss ``sum(y ** 2) /
2``, compiled as ``fit`` compiles, medians of interleaved samples, ms at batch 8 / 32
(``lax`` / this / PyTorch's ``conv_transpose{1,2,3}d``, float32, stride 2;
``benchmarks/bench_ops.py --ops conv_transpose``, session 26):

==================================  ============  ===========  ===========
input -> out, kernel                lax           this         PyTorch
==================================  ============  ===========  ===========
7x7x64 -> 32, 4x4                   5.67 / 22.5   0.94 / 2.15  0.77 / 1.90
16x16x64 -> 32, 3x3                 18.4 / 79.9   2.01 / 7.03  1.89 / 6.60
7x7x256 -> 128, 3x3                 52.7 / 247    3.61 / 13.6  3.26 / 11.5
16x16x64 -> 32, 2x2                 9.06 / 43.9   1.32 / 2.84  1.34 / 5.45
4x8x8x64 -> 32, 3x3x3               215 / 858     6.16 / 26.8  3.87 / 16.5
8x16x16x32 -> 16, 3x3x3             811 / 3922    21.1 / 92.7  13.2 / 104
128x64 -> 32, 4                     4.44 / 18.0   0.58 / 1.77  0.70 / 1.69
==================================  ============  ===========  ===========

The padded input is built explicitly and convolved ``"VALID"``: a stride-1 convolution
padded beyond its kernel (a 2x2 kernel padded by 1 on both sides) took 30 ms forward +
backward on Eigen against 2.4 for the same padded explicitly (7x7x64 -> 128 at batch
32). For a kernel that covers its stride (3 taps at stride 2), the sub-kernel holds
zeros: 2x2 of 2.25 taps per phase on average in 2-D, 2x2x2 of 3.4 in 3-D.

Example:
  >>> from nnjax.functional import _conv_formulations as forms
  >>> x, k = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 5))
  >>> conv(x, k, (2, 2), [(1, 2), (1, 2)], (1, 1), 1, forms.xla).shape  # 4 -> 8
  (1, 8, 8, 5)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """The phase decomposition of one spatial axis.

    Attributes:
      phase: each tap's output phase ``(t * d + c + shift) mod s``.
      index: each tap's position in the sub-kernel.
      taps: the sub-kernel's size ``A``.
      dilation: the sub-kernel's dilation (``d`` when the stride is 1, else 1).
      pads: ``(lo, hi)`` padding of the undilated input (negative crops).
      shift: outputs dropped at the start of the interleaved phases.
      length: the transposed convolution's output size.
      live: the phases some tap reaches, ascending.
    """

    phase: tuple[int, ...]
    index: tuple[int, ...]
    taps: int
    dilation: int
    pads: tuple[int, int]
    shift: int
    length: int
    live: tuple[int, ...]


def plan_axis(
    size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]
) -> AxisPlan:
    """The :class:`AxisPlan` of an axis of ``size`` inputs.

    ``pads`` is the padding of the stride-dilated input that ``lax`` convolves with the
    flipped kernel (``_conv_transpose_pads.transpose_pads``; negative crops).

    Example:
      >>> plan = plan_axis(7, 4, 2, 1, (2, 2))  # PyTorch's padding 1: 7 -> 14
      >>> plan.taps, plan.shift, plan.length, plan.live
      (2, 1, 14, (0, 1))
    """
    lo, hi = pads
    full = dilation * (kernel - 1)
    length = (size - 1) * stride + 1 + lo + hi - full
    sub_dilation = dilation if stride == 1 else 1

    def offsets(shift: int) -> list[int]:
        return [(t * dilation + lo - full + shift) // stride for t in range(kernel)]

    shift = min(range(stride), key=lambda e: max(offsets(e)) - min(offsets(e)))
    starts = offsets(shift)
    taps = (max(starts) - min(starts)) // sub_dilation + 1
    phase = tuple((t * dilation + lo - full + shift) % stride for t in range(kernel))
    index = tuple((max(starts) - a) // sub_dilation for a in starts)
    outputs = -(-(length + shift) // stride)  # per phase
    span = (taps - 1) * sub_dilation + 1
    pad_lo = max(starts)
    pad_hi = outputs + span - 1 - size - pad_lo
    return AxisPlan(
        phase, index, taps, sub_dilation, (pad_lo, pad_hi), shift, length, tuple(sorted(set(phase)))
    )


SEPARATE_MIN_CHANNELS = 64
"""Output channels (per group) from which :func:`conv` convolves each phase on its own
along the axes where the shared sub-kernel would hold zeros (below, one wider matmul won)."""


def separate_axes(kernel_shape: Sequence[int], plans: Sequence[AxisPlan]) -> tuple[bool, ...]:
    """The axes along which :func:`conv` runs one convolution per phase (else shared).

    With :data:`SEPARATE_MIN_CHANNELS` output channels per group or more, the axes where
    the shared sub-kernel would hold zeros (a 3-tap kernel at stride 2: 2 positions x
    2 phases for 3 taps); else none. 3x3 (3x3x3) stride-2 kernels, ``fit``'s compile,
    forward + backward, time against one shared convolution: per phase on every axis,
    64 output channels 0.60-0.94 at batch 8 and 32 (one 3-D tie, 1.04), 128 channels
    0.64-0.88, but 32 channels 1.51-1.59 at batch 32 and 16 channels 1.55-1.63; per
    phase on the first axis only, 16 and 32 channels 0.92-1.08 (paired, 15 rounds).

    Example:
      >>> three = plan_axis(8, 3, 2, 1, (1, 2))
      >>> four = plan_axis(8, 4, 2, 1, (2, 2))  # 2 positions x 2 phases for 4 taps
      >>> separate_axes((3, 3, 8, 64), [three, three]), separate_axes((4, 3, 8, 64), [four, three])
      ((True, True), (False, True))
      >>> separate_axes((3, 3, 8, 16), [three, three])
      (False, False)
    """
    wide = kernel_shape[-1] >= SEPARATE_MIN_CHANNELS
    return tuple(wide and p.taps * len(p.live) > k for p, k in zip(plans, kernel_shape))


def gathered(kernel: jax.Array, index: np.ndarray, groups: int) -> jax.Array:
    """The taps ``index`` ``(*W, L)`` of ``kernel`` ``(*k, in, c)``: ``(*W, in / G, G * L * c)``.

    ``index`` holds flat tap numbers, ``prod(k)`` for a zero tap; output channels come
    group-major, then ``L``, then channel (``lax``'s grouped layout).
    """
    *window, live = index.shape
    c_in, c_out = kernel.shape[-2:]
    zero = jnp.zeros((1, c_in, c_out), kernel.dtype)
    taps = jnp.concatenate([kernel.reshape(-1, c_in, c_out), zero])
    sub = taps[index.reshape(-1)].reshape(*window, live, groups, c_in // groups, c_out)
    nd = len(window)
    sub = jnp.moveaxis(sub, nd, nd + 2)  # (*W, G, in / G, L, c)
    sub = jnp.moveaxis(sub, nd + 1, nd)  # (*W, in / G, G, L, c)
    return sub.reshape(*window, c_in // groups, groups * live * c_out)


def _windows(sizes: Sequence[int], plans: Sequence[AxisPlan], separate: Sequence[bool]):
    """Yields ``(index, start)`` per combination of the separated axes' live phases.

    ``index`` ``(*W, L)``: the tap at each sub-kernel position of the window for each
    live phase of the shared axes (row-major); ``start``: where the window starts in
    the padded input. A separated axis's window spans its phase's taps only.
    """
    split = [a for a, sep in enumerate(separate) if sep]
    shared = [a for a, sep in enumerate(separate) if not sep]
    for combo in itertools.product(*(plans[a].live for a in split)):
        fixed = dict(zip(split, combo))
        spans = []
        for axis, plan in enumerate(plans):
            js = [j for j, r in zip(plan.index, plan.phase) if fixed.get(axis, r) == r]
            spans.append((min(js), max(js) - min(js) + 1))
        index = np.full([w for _, w in spans] + [len(plans[a].live) for a in shared],
                        math.prod(sizes), np.int32)  # fmt: skip
        for t, tap in enumerate(np.ndindex(*sizes)):
            phases = [p.phase[i] for p, i in zip(plans, tap)]
            if all(phases[a] == r for a, r in fixed.items()):
                where = [p.index[i] - j0 for p, i, (j0, _) in zip(plans, tap, spans)]
                index[(*where, *(plans[a].live.index(phases[a]) for a in shared))] = t
        yield (
            index.reshape(*index.shape[: len(plans)], -1),
            [j0 * p.dilation for (j0, _), p in zip(spans, plans)],
        )


def conv(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
    plane_conv: Callable[..., jax.Array],
) -> jax.Array:
    """The transposed convolution of ``x`` with ``kernel`` through stride-1 ones.

    Args:
      x: ``(B, *spatial, in)``.
      kernel: ``(*k, in, out / groups)``, the transposed convolution's.
      strides: one int per spatial axis (the upsampling factors).
      pads: ``(lo, hi)`` per axis, of the stride-dilated input convolved with the
        flipped kernel (``_conv_transpose_pads.transpose_pads``; negative crops).
      dilation: one int per spatial axis (the kernel's).
      groups: feature groups.
      plane_conv: a formulation, ``plane_conv(x, k, strides, pads, dilation, groups)``
        (``_conv_formulations.IMPLEMENTATIONS``' interface).

    Returns:
      ``(B, *spatial', out)``, as ``lax.conv_general_dilated`` with ``lhs_dilation``
      gives it.
    """
    nd = kernel.ndim - 2
    sizes = kernel.shape[:nd]
    plans = [
        plan_axis(n, k, s, d, p)
        for n, k, s, d, p in zip(x.shape[1:-1], sizes, strides, dilation, pads)
    ]
    widths = [(0, 0, 0), *((*p.pads, 0) for p in plans), (0, 0, 0)]
    if any(p.pads != (0, 0) for p in plans):
        x = lax.pad(x, jnp.zeros((), x.dtype), widths)  # explicit: see the module docstring
    sub_dilation = tuple(p.dilation for p in plans)
    outputs = [n - (p.taps - 1) * p.dilation for n, p in zip(x.shape[1:-1], plans)]
    separate = separate_axes(kernel.shape, plans)
    parts = []
    for index, start in _windows(sizes, plans, separate):
        stop = [
            a + q + (w - 1) * d for a, q, w, d in zip(start, outputs, index.shape, sub_dilation)
        ]
        window = lax.slice(x, (0, *start, 0), (x.shape[0], *stop, x.shape[-1]))
        k = gathered(kernel, index, groups)
        part = plane_conv(window, k, (1,) * nd, [(0, 0)] * nd, sub_dilation, groups)
        parts.append(
            part.reshape(*part.shape[:-1], groups, part.shape[-1] // groups)
        )  # (B, *Q, G, L' * c)
    return _interleave(_phase_major(parts, plans, separate), plans, strides, groups)


def _phase_major(parts: list[jax.Array], plans: Sequence[AxisPlan], separate: Sequence[bool]):
    """The windows' outputs ``(B, *Q, G, L' * c)`` as ``(B, *Q, G * L * c)``, phases row-major.

    The windows come in the order of the separated axes' phases, each with the shared
    axes' phases inside; the result has every axis's phase in axis order.
    """
    nd = len(plans)
    y = parts[0][..., None, :] if len(parts) == 1 else jnp.stack(parts, axis=-2)
    order = [a for a, sep in enumerate(separate) if sep] + [
        a for a, sep in enumerate(separate) if not sep
    ]
    lives = [len(plans[a].live) for a in order]
    y = y.reshape(*y.shape[: nd + 2], *lives, math.prod(y.shape[nd + 2 :]) // math.prod(lives))
    if order != sorted(order):
        y = y.transpose(*range(nd + 2), *(nd + 2 + order.index(a) for a in range(nd)), y.ndim - 1)
    return y.reshape(*y.shape[: nd + 1], math.prod(y.shape[nd + 1 :]))


def _interleave(
    y: jax.Array, plans: Sequence[AxisPlan], strides: Sequence[int], groups: int
) -> jax.Array:
    """``(B, *Q, G * L * c)`` phase outputs -> ``(B, *length, G * c)``, dead phases zero."""
    nd = len(plans)
    batch, *outputs = y.shape[:-1]
    live = [len(p.live) for p in plans]
    y = y.reshape(batch, *outputs, groups, *live, y.shape[-1] // (groups * math.prod(live)))
    # (B, Q1, L1, Q2, L2, ..., G, c)
    order = [0, *(a for i in range(nd) for a in (1 + i, 2 + nd + i)), 1 + nd, y.ndim - 1]
    y = y.transpose(order)
    for i, (plan, stride) in enumerate(zip(plans, strides)):
        if len(plan.live) < stride:
            y = _with_dead_phases(y, 2 + 2 * i, plan.live, stride)
    y = y.reshape(batch, *(q * s for q, s in zip(outputs, strides)), groups * y.shape[-1])
    start = (0, *(p.shift for p in plans), 0)
    return lax.slice(y, start, (batch, *(p.shift + p.length for p in plans), y.shape[-1]))


def _with_dead_phases(y: jax.Array, axis: int, live: Sequence[int], stride: int) -> jax.Array:
    """Phase axis ``axis`` of ``len(live)`` entries widened to ``stride``, zeros between."""
    shape = list(y.shape)
    shape[axis] = 1
    zero = jnp.zeros(shape, y.dtype)
    parts = [
        lax.slice_in_dim(y, live.index(r), live.index(r) + 1, axis=axis) if r in live else zero
        for r in range(stride)
    ]
    return jnp.concatenate(parts, axis=axis)


__all__ = ["SEPARATE_MIN_CHANNELS", "AxisPlan", "conv", "gathered", "plan_axis", "separate_axes"]
