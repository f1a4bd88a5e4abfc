"""Formulations of max and average pooling and the rule that picks one (private).

Two formulations compute the same channels-last pooling, each with the padding that
:mod:`nnjax.functional._pool_padding` gives: ``"SAME"``, ``"VALID"`` or one ``(lo, hi)``
pair per spatial axis (PyTorch's explicit padding, ``ceil_mode``'s extension in ``hi``):

* ``"reduce_window"``: :func:`jax.lax.reduce_window`; any window, stride and padding.
  Max pooling's gradient is XLA's ``select_and_scatter``, average pooling's a padded
  ``reduce_window`` sum.
* ``"reshape"``: non-overlapping windows only (``stride == window``). The input
  is padded (``"SAME"`` or pairs, with ``-inf`` for max and zeros for average), then
  cropped (dropping the incomplete windows), reshaped to
  ``(B, H/kh, kh, W/kw, kw, C)`` and reduced over the window axes: a sum for average
  pooling, a max for max pooling (:func:`window_max`). Max pooling's derivative is a
  custom JVP that selects the first maximal element of each window in row-major window
  order, so its gradient is compares and selects, and ties (the zeros of a ReLU) route
  the whole gradient to one element, as ``reduce_window``'s ``select_and_scatter`` and
  PyTorch do. A window whose maximum is NaN routes it to its last NaN, as PyTorch does.

The rule (:func:`choose`), from ``benchmarks/bench_ops.py --ops pool --threads 1`` on a
2-core AMD EPYC (Zen 2, AVX2, no AVX-512), jax 0.10.2, forward + backward of 2x2
pooling (stride 2) at the CNN benchmark's shapes after a ReLU (so with ties), jitted,
float32, medians of interleaved samples, ms, reduce_window / reshape (PyTorch's NCHW
pooling for scale). The machine was shared and loaded (load average 8-11 on 2 cores),
so absolute times are inflated; the ratios are within one run (max and average pool
from two runs, each of the implementation kept):

=========================  ============================  ============================
input (batch)              max pool (torch)              average pool (torch)
=========================  ============================  ============================
28x28x32 (32)              32.0 / 3.7 (16.0)             3.9 / 1.4 (23.3)
14x14x64 (32)              12.8 / 1.2 (6.7)              5.1 / 0.6 (11.5)
28x28x32 (128)             158 / 15.0 (38.3)             25.3 / 11.5 (77.7)
14x14x64 (128)             101 / 8.7 (43.0)              7.0 / 2.9 (20.6)
=========================  ============================  ============================

``select_and_scatter`` on XLA:CPU is the slow part: ``"reshape"`` is 8.7-11.6x faster
for max pooling (3.2-7.9x in a run where its max was a ``jnp.max`` reduction) and
2.2-8.6x for average pooling. In the CNN step of ``benchmarks/bench_cnn.py`` (train,
``--threads 1 --clock cpu``, load 9) the max pools under ``"reduce_window"`` made the
step 1.42x slower at batch 32 and 1.37x at batch 128. So on the CPU backend a pooling
with ``stride == window`` and at most :data:`MAX_TAPS` elements per window uses
``"reshape"``; overlapping or larger windows, a symbolic spatial size and every other
backend (not measured here) keep ``"reduce_window"``.

Measured and not kept for the max pool's backward (the CNN train step at batch 128 in a
program of :func:`nnjax.functional._conv_compiler.jit`, interleaved A/B, 2026-12-02):
routing the gradient through an int8 index of the first maximum (1.0x: XLA still writes
the pooled layer's activations for the backward), computing that index with a variadic
``reduce`` (1.17x) or an integer min-reduction (1.3-1.5x), and pooling before the bias
and ReLU (1.10x: the backward became one pad fusion per window position).

Example:
  >>> choose((8, 28, 28, 32), (2, 2), (2, 2), "cpu")
  'reshape'
  >>> choose((8, 28, 28, 32), (3, 3), (2, 2), "cpu")
  'reduce_window'
  >>> choose((8, 28, 28, 32), (2, 2), (2, 2), "gpu")
  'reduce_window'
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from nnjax.functional import _sharding
from nnjax.functional._forward_only import is_forward_only
from nnjax.functional._pool_padding import Pads
from nnjax.functional._scoped import check_choice, scoped

#: Accepted values of ``formulation`` (``"auto"``: :func:`choose` decides).
FORMULATIONS = ("auto", "reduce_window", "reshape")

#: Largest window (in elements) that ``"auto"`` computes as ``"reshape"``: it unrolls
#: one elementwise op per window position (2x2 measured; 4x4 still small).
MAX_TAPS = 16

_DEFAULT: contextvars.ContextVar[str] = contextvars.ContextVar("pool_formulation", default="auto")


def check_formulation(op: str, formulation: str) -> str:
    """Returns ``formulation`` if it is one of :data:`FORMULATIONS`, else raises ValueError."""
    return check_choice(op, formulation, FORMULATIONS)


@contextlib.contextmanager
def pool_formulation(formulation: str) -> Iterator[None]:
    """Within the block, poolings called with ``formulation="auto"`` use this one.

    It is read when a pooling is traced: a function jitted inside the block keeps the
    formulation it was traced with, even when later called outside it. Where
    ``"reshape"`` does not apply (overlapping windows), ``"reduce_window"`` is used.

    Args:
      formulation: ``"reduce_window"``, ``"reshape"`` or ``"auto"`` (the measured rule).

    Returns:
      A context manager for a ``with`` statement (it yields ``None``); the previous
      setting is restored on exit.

    Raises:
      ValueError: for another value.

    Example:
      >>> import nnjax.functional as F
      >>> with pool_formulation("reduce_window"):
      ...     y = F.max_pool2d(jnp.ones((1, 4, 4, 2)), 2)
      >>> y.shape
      (1, 2, 2, 2)
    """
    with scoped(_DEFAULT, check_formulation("pool_formulation", formulation)):
        yield


def reshape_applies(x_shape: Sequence[int], window: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether ``"reshape"`` computes this pooling: non-overlapping windows, static sizes."""
    static = all(isinstance(n, int) for n in x_shape[1:-1])
    return static and tuple(window) == tuple(stride)


def choose(
    x_shape: Sequence[int], window: Sequence[int], stride: Sequence[int], backend: str
) -> str:
    """The formulation ``"auto"`` picks (the rule in the module docstring)."""
    fits = reshape_applies(x_shape, window, stride) and math.prod(window) <= MAX_TAPS
    return "reshape" if backend == "cpu" and fits else "reduce_window"


def resolve(op: str, formulation: str, x_shape: Sequence[int], window: tuple, stride: tuple) -> str:
    """``formulation`` checked against the shapes, or what ``"auto"`` resolves to.

    ``"auto"``: the default of :func:`pool_formulation` where it applies, else
    ``"reduce_window"`` under :func:`~nnjax.functional.forward_only`, else
    :func:`choose`'s pick.

    Raises:
      ValueError: for an unknown ``formulation``, or ``"reshape"`` with overlapping
        windows.
    """
    check_formulation(op, formulation)
    if formulation == "auto":
        formulation = _DEFAULT.get()
        if formulation == "auto" and is_forward_only():
            return "reduce_window"
        if formulation == "auto" or not reshape_applies(x_shape, window, stride):
            return choose(x_shape, window, stride, jax.default_backend())
    if formulation == "reshape" and not reshape_applies(x_shape, window, stride):
        raise ValueError(
            f"{op}: `formulation`='reshape' needs `stride` equal to `window` "
            f"(non-overlapping windows), got window={window}, stride={stride}"
        )
    return formulation


# ----------------------------------------------------------------- reduce_window


def _full_padding(mode: Pads) -> str | tuple[tuple[int, int], ...]:
    """``reduce_window``'s padding: the mode, or the pairs with none on batch and channels."""
    return mode if isinstance(mode, str) else ((0, 0), *mode, (0, 0))


def max_reduce_window(x: jax.Array, window: tuple, stride: tuple, mode: Pads) -> jax.Array:
    """Max over windows with :func:`jax.lax.reduce_window` (pads with ``-inf``)."""
    dims, strides = (1, *window, 1), (1, *stride, 1)
    return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, _full_padding(mode))


def sum_reduce_window(x: jax.Array, window: tuple, stride: tuple, mode: Pads) -> jax.Array:
    """Sum over windows with :func:`jax.lax.reduce_window` (pads with zeros)."""
    # A Python scalar as the initial value lets JAX recognise the sum monoid (and so
    # differentiate it); a traced zero would make a generic, non-differentiable reduction.
    dims, strides = (1, *window, 1), (1, *stride, 1)
    return lax.reduce_window(x, 0.0, lax.add, dims, strides, _full_padding(mode))


# ------------------------------------------------------------------------ reshape


def blocks(x: jax.Array, window: tuple, mode: Pads, fill: float) -> jax.Array:
    """``(B, *spatial, C) -> (B, o1, k1, o2, k2, ..., C)``, non-overlapping windows.

    ``"SAME"`` pads with ``fill`` as XLA does (the odd element after), explicit
    ``(lo, hi)`` pairs pad with ``fill`` as given; then the incomplete windows at the end
    are cropped (all of ``"VALID"``'s work).
    """
    spatial = x.shape[1:-1]
    pads = lax.padtype_to_pads(spatial, window, window, mode) if isinstance(mode, str) else mode
    if any(lo or hi for lo, hi in pads):
        config = [(0, 0, 0), *((int(lo), int(hi), 0) for lo, hi in pads), (0, 0, 0)]
        x = lax.pad(x, jnp.array(fill, x.dtype), config)
        spatial = x.shape[1:-1]
    keep = tuple(n // k * k for n, k in zip(spatial, window))
    if keep != tuple(spatial):
        x = lax.slice(x, (0,) * x.ndim, (x.shape[0], *keep, x.shape[-1]))
    out = [n // k for n, k in zip(x.shape[1:-1], window)]
    shape = (x.shape[0], *itertools.chain.from_iterable(zip(out, window)), x.shape[-1])
    # a mesh with explicit axes asks where a reshape's result lives: where x's batch is
    return jnp.reshape(
        x, shape, out_sharding=_sharding.batch_spec(_sharding.batch_axis(x), len(shape))
    )


def window_axes(nd: int) -> tuple[int, ...]:
    """The window axes of :func:`blocks`' output for ``nd`` spatial axes."""
    return tuple(range(2, 2 * nd + 1, 2))


def window_taps(xb: jax.Array, axes: tuple[int, ...]) -> list[jax.Array]:
    """The elements of every window of ``xb`` (from :func:`blocks`), one array per position.

    ``prod(window)`` arrays shaped like the output, in row-major window order.
    """
    taps = []
    for position in itertools.product(*(range(xb.shape[a]) for a in axes)):
        index: list[int | slice] = [slice(None)] * xb.ndim
        for axis, i in zip(axes, position):
            index[axis] = i
        taps.append(xb[tuple(index)])
    return taps


def first_max_masks(taps: list[jax.Array], y: jax.Array) -> list[jax.Array]:
    """Per window position, True where that element receives its window's gradient.

    The first maximal element in row-major window order (as ``select_and_scatter``
    and PyTorch route ties), or the last NaN of a window whose maximum is NaN (as
    PyTorch does).
    """
    found = jnp.zeros(y.shape, bool)
    masks = []
    for tap in taps:  # y is not NaN: the first element equal to it
        hit = (tap == y) & ~found
        found = found | hit
        masks.append(hit)
    later_nan = jnp.zeros(y.shape, bool)
    for i in reversed(range(len(taps))):  # y is NaN: nothing equals it; the last NaN
        nan = jnp.isnan(taps[i])
        masks[i] = masks[i] | (nan & ~later_nan)
        later_nan = later_nan | nan
    return masks


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def window_max(xb: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Max over ``axes``, differentiated into one element per window (first maximum).

    A reduction (``jnp.max``), which XLA computes once and does not repeat in the
    fusions that read the pooled values: as elementwise maxima of the window's
    positions, XLA:CPU recomputed the pool and everything fused before it (the first
    layer's taps, bias and ReLU) in each of the 3-4 fusions that read it. The CNN train
    step of ``benchmarks/bench_cnn.py`` (``fit``'s program, Adam), reduction /
    elementwise maxima, paired medians (IQR) of 40-60 interleaved rounds, 2-core AMD
    EPYC (Zen 2, AVX2), 2026-12-02: 0.96 (0.88-0.99) at batch 128, 0.90 (0.88-0.92) at
    32, and 0.93-0.97 in three more runs; with ``dtype=jnp.bfloat16`` (emulated) level,
    1.05 against 1.04 of the float32 step. A MobileNet-like step (depthwise taps, one
    max pool): 1.01 (noise). Alone (``bench_ops.py --ops pool``, forward + backward,
    ``28x28x32`` at batch 128) the pool took 4.1 ms against PyTorch's 14.6. Session 3
    measured the opposite (1.2-1.8x) for a pool alone, before the first layer's taps
    and YNNPACK's reductions.
    """
    return jnp.max(xb, axis=axes)


@window_max.defjvp
def _window_max_jvp(axes, primals, tangents):
    (xb,), (xb_dot,) = primals, tangents
    y = window_max(xb, axes)  # itself, so that higher derivatives use this rule too
    masks = first_max_masks(window_taps(xb, axes), y)
    zero = jnp.zeros((), xb_dot.dtype)
    picked = [jnp.where(m, t, zero) for m, t in zip(masks, window_taps(xb_dot, axes))]
    return y, functools.reduce(jnp.add, picked)


def max_reshape(x: jax.Array, window: tuple, stride: tuple, mode: Pads) -> jax.Array:
    """Max over non-overlapping windows: :func:`blocks`, then :func:`window_max`."""
    del stride  # equal to window (checked by resolve)
    return window_max(blocks(x, window, mode, -np.inf), window_axes(len(window)))


def sum_reshape(x: jax.Array, window: tuple, stride: tuple, mode: Pads) -> jax.Array:
    """Sum over non-overlapping windows: :func:`blocks`, then a sum over the window axes.

    A reduction here: a sum of the window's positions (as :func:`window_max` does for
    the max) measured 1.1-1.5x slower than ``"reduce_window"`` for 2x2 average pooling.
    """
    del stride  # equal to window (checked by resolve)
    return jnp.sum(blocks(x, window, mode, 0.0), axis=window_axes(len(window)))


MAX = {"reduce_window": max_reduce_window, "reshape": max_reshape}
SUM = {"reduce_window": sum_reduce_window, "reshape": sum_reshape}
