"""Formulations of the N-d convolution and the rule that picks one (private).

Two formulations compute the same channels-last cross-correlation:

* ``"xla"``: :func:`jax.lax.conv_general_dilated`, XLA's convolution (cuDNN on GPUs,
  Eigen's spatial convolution on XLA:CPU).
* ``"patches"``: im2col. The kernel-sized windows are gathered as ``prod(kernel_size)``
  strided slices of the padded input, concatenated along the channels into
  ``(B, *out, k*in)``, and multiplied by the kernel reshaped to ``(k*in, out)`` in one
  :func:`jax.numpy.dot` (grouped: one batched ``einsum`` over the groups). Its
  gradients are matmuls too, plus pads and slices (the transposes of the slices).

The rule (:func:`choose`), from ``benchmarks/bench_ops.py`` and its predecessors on a
2-core AMD EPYC (Zen 2, AVX2, no AVX-512), jax 0.10.2, forward + backward of one conv
3x3 SAME, jitted, float32, medians of interleaved samples (ms, XLA / patches). The
machine was shared and loaded (load average 1-22 on 2 cores), so absolute times are
inflated; the ratios are within one run:

===========================  ==========================  ================================
input -> out (batch)         latest run, XLA / patches   patches / XLA, each run
===========================  ==========================  ================================
28x28x1 -> 32 (32)           30 / 17 ms                  0.38, 0.55, 0.30, 0.86, 0.55
14x14x32 -> 64 (32)          144 / 54 ms                 0.68, 0.52, 0.93, 0.60, 1.09, 0.38
28x28x1 -> 32 (128)          47 / 36 ms                  0.39, 0.64, 0.62, 0.68, 0.76
14x14x32 -> 64 (128)         134 / 185 ms                0.85, 1.28, 0.80, 1.01, 1.02, 1.38
14x14x32 depthwise (32)      95 / 32 ms                  0.41, 0.43, 0.34
14x14x32 depthwise (128)     118 / 151 ms                0.89, 0.89, 1.06, 1.28
===========================  ==========================  ================================

XLA:CPU's convolution gradient (the kernel's above all) is the slow part. Patches win
whenever the patch matrix ``(B, *out, prod(kernel_size) * in)`` is small (3.6-7.2 MB
above: 1.1-3.3x) and tie or lose at 29 MB (the batch-128 ``14x14x32`` rows), where
im2col's memory traffic catches up. Forward only, XLA's convolution is 1.5-3.5x faster
than patches (same machine; 28x28x1 -> 32 at batch 32: 4.3 / 6.4 ms, 14x14x32 -> 64
at batch 128: 22 / 80 ms), and a hybrid (XLA forward and input gradient, the kernel
gradient as ``patches.T @ dy`` through a custom JVP) did not beat either. So on the
CPU backend a convolution uses ``"patches"`` while the patch matrix is at most
:data:`PATCHES_MAX_BYTES` (16 MiB), else ``"xla"``; every other backend keeps
``"xla"`` (cuDNN there; not measured here). Training is what the rule optimises: an
inference-only pass over small batches pays the slower patches forward. XLA:CPU's
oneDNN and XNNPACK flags did not speed its convolution up (``benchmarks/README.md``).

Those measurements ran XLA's convolutions on YNNPACK, this jaxlib's default for 2-D
convolutions. A program compiled by :func:`nnjax.functional._conv_compiler.jit` (the
``fit`` step) runs them on Eigen instead, which measured faster than both YNNPACK and
patches for ungrouped 2-D convolutions (figures in that module). Traced for such a
program (:func:`~nnjax.functional._conv_compiler.in_library_program`), ``"auto"`` on
the CPU picks ``"xla_canonical"`` (XLA's convolution with the custom VJP of
``_conv_canonical.py``, whose gradients stay on Eigen inside loops too) wherever it
would pick ``"xla"``, and for ungrouped 2-D convolutions whose patch matrix exceeds
:data:`LIBRARY_PATCHES_MAX_BYTES` (512 KiB; below it Eigen's fixed cost loses, ms
patches / Eigen, fwd+bwd, wall clock: 28x28x1 -> 32 at batch 1 0.10 / 0.27, batch 8
0.93 / 1.45, batch 32 7.4 / 6.1; 14x14x32 -> 64 at batch 1 0.83 / 1.73, batch 8
3.4 / 3.1). Grouped 2-D convolutions keep patches up to
:data:`LIBRARY_GROUPED_PATCHES_MAX_BYTES` (depthwise at batch 128, a 29 MB patch
matrix: patches 108 ms, Eigen 153, YNNPACK 90). Ungrouped 2-D convolutions of one input
channel with at most 9 kernel elements (a 3x3 first layer on grey images) are
``"taps"``, shifted multiply-adds that XLA fuses with the bias, activation and pooling
after them (``_conv_taps.py``; the CNN train step of ``benchmarks/bench_cnn.py`` with
it, taps / the rule before, wall clock, 30 interleaved steps: batch 1 1.00, 8 0.97,
32 0.88, 128 0.85). On the CPU, in any program and forward-only too, depthwise
convolutions (one group per input channel) are ``"taps"`` with a per-channel weight
(``_conv_taps.depthwise``, plain autodiff; in library programs with the one-pass
kernel gradient of ``_conv_taps.depthwise_reverse``): 2-18x faster than XLA's grouped
convolution, 1.4-4x faster than patches at batch 8 to 128 (figures in that module and
``benchmarks/README.md``), 1.1x slower than patches at batch 1 (0.47 against 0.43 ms).

In library programs 1-D convolutions follow the 2-D rule (patches up to
:data:`LIBRARY_PATCHES_MAX_BYTES`, else Eigen) and ungrouped 3-D ones are
``"depth_stacked"`` (``_conv_depth.py``; forward only too). 2-core Intel Xeon, fwd+bwd
compiled as ``fit`` compiles, ms, patches / Eigen / PyTorch: 1-D 128x64 -> 64 k3 at
batch 128 20.1 / 7.9 / 7.9, 64x300 -> 100 k5 at batch 64 29.6 / 16.2 / 16.3; below 0.2
MiB of patches, patches won (64x16 -> 32 k3 at batch 8: 0.15 / 0.21). ``fit`` of a 3-D
CNN took 11.3-11.6 ms an update against 48.9-50.3, of a 1-D CNN 6.0-6.6 against 7.4
(``benchmarks/README.md``, session 25).

In library programs a 2-D pointwise convolution (1x1, stride 1, no padding: one matmul
as patches) to fewer channels than it reads is ``"patches"`` at every size (a
bottleneck's down-projection): 0.54-0.97 of Eigen's time from 56x56x256 -> 64 to
7x7x2048 -> 512 at batch 8 and 32 (2-core Intel Xeon, float32, after a ReLU or a 3x3
convolution, fwd+bwd as ``fit`` compiles). To as many or more channels it lost
(1.13-1.69), so Eigen keeps those (``benchmarks/README.md``, session 22).

Example:
  >>> choose((8, 28, 28, 1), (3, 3, 1, 32), (28, 28), 1, jnp.float32, "cpu")
  'patches'
  >>> choose((8, 28, 28, 1), (3, 3, 1, 32), (28, 28), 1, jnp.float32, "gpu")
  'xla'
  >>> choose((128, 14, 14, 32), (3, 3, 32, 64), (14, 14), 1, jnp.float32, "cpu")
  'xla'
  >>> choose((32, 28, 28, 1), (3, 3, 1, 32), (28, 28), 1, jnp.float32, "cpu", library=True)
  'taps'
  >>> choose((32, 28, 28, 8), (3, 3, 8, 32), (28, 28), 1, jnp.float32, "cpu", library=True)
  'xla_canonical'
  >>> choose((32, 14, 14, 32), (3, 3, 1, 32), (14, 14), 32, jnp.float32, "cpu")
  'taps'
  >>> choose((2, 4, 8, 8, 3), (3, 3, 3, 3, 8), (4, 8, 8), 1, jnp.float32, "cpu", library=True)
  'depth_stacked'
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _conv_bfloat16, _conv_canonical, _conv_depth, _conv_taps
from nnjax.functional._conv_args import out_size
from nnjax.functional._conv_compiler import in_library_program
from nnjax.functional._forward_only import is_forward_only
from nnjax.functional._scoped import check_choice, scoped

#: Accepted values of ``formulation`` (``"auto"``: :func:`choose` decides).
FORMULATIONS = ("auto", "xla", "patches")

#: Largest patch matrix ``(B, *out, k*in)`` that ``"auto"`` builds on the CPU.
PATCHES_MAX_BYTES = 16 * 2**20

#: The same for 2-D convolutions in a program whose convolutions run on Eigen
#: (:func:`~nnjax.functional._conv_compiler.jit`): ungrouped, and grouped.
LIBRARY_PATCHES_MAX_BYTES = 512 * 2**10
LIBRARY_GROUPED_PATCHES_MAX_BYTES = 64 * 2**20

_LAYOUT = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
_DEFAULT: contextvars.ContextVar[str] = contextvars.ContextVar("conv_formulation", default="auto")


def check_formulation(op: str, formulation: str) -> str:
    """Returns ``formulation`` if it is one of :data:`FORMULATIONS`, else raises ValueError."""
    return check_choice(op, formulation, FORMULATIONS)


@contextlib.contextmanager
def conv_formulation(formulation: str) -> Iterator[None]:
    """Within the block, convolutions called with ``formulation="auto"`` use this one.

    It is read when a convolution is traced: a function jitted inside the block keeps
    the formulation it was traced with, even when later called outside it.

    Args:
      formulation: ``"xla"``, ``"patches"`` or ``"auto"`` (the measured rule).

    Returns:
      A context manager for a ``with`` statement (it yields ``None``); the previous
      setting is restored on exit.

    Raises:
      ValueError: for another value.

    Example:
      >>> import nnjax.functional as F
      >>> params = F.conv2d_init(jax.random.key(0), 1, 4, 3)
      >>> with conv_formulation("xla"):
      ...     y = F.conv2d(params, jnp.ones((1, 8, 8, 1)))
      >>> y.shape
      (1, 8, 8, 4)
    """
    with scoped(_DEFAULT, check_formulation("conv_formulation", formulation)):
        yield


def choose(
    x_shape: Sequence[int],
    kernel_shape: Sequence[int],
    out_spatial: Sequence[int],
    groups: int,
    dtype: jnp.dtype,
    backend: str,
    *,
    library: bool = False,
) -> str:
    """The formulation ``"auto"`` picks (the rule in the module docstring).

    ``library``: the convolution is traced for a program compiled with
    :func:`~nnjax.functional._conv_compiler.compiler_options` (XLA:CPU convolutions on
    Eigen). A symbolic dimension (``jax.export`` with a symbolic batch) picks ``"xla"``:
    the size is unknown, and an exported program may run on any backend.
    """
    if not all(isinstance(d, int) for d in (*x_shape, *out_spatial)):
        return "xla"
    if backend != "cpu":
        return "xla"
    if _conv_taps.is_depthwise(x_shape[-1], kernel_shape, groups):
        return "taps"
    nd = len(kernel_shape) - 2
    depth = math.prod(kernel_shape[: nd + 1])  # taps * in // groups
    patch_bytes = x_shape[0] * math.prod(out_spatial) * depth * groups * jnp.dtype(dtype).itemsize
    if not library:
        return "patches" if patch_bytes <= PATCHES_MAX_BYTES else "xla"
    if groups > 1:
        cap = LIBRARY_GROUPED_PATCHES_MAX_BYTES if nd == 2 else PATCHES_MAX_BYTES
        return "patches" if patch_bytes <= cap else "xla"
    if _conv_taps.applies(kernel_shape, groups):
        return "taps"
    if nd == 3:
        return "depth_stacked"
    if nd == 2 and _pointwise_down(x_shape, kernel_shape, out_spatial):
        return "patches"
    return "patches" if patch_bytes <= LIBRARY_PATCHES_MAX_BYTES else "xla_canonical"


def _pointwise_down(
    x_shape: Sequence[int], kernel_shape: Sequence[int], out_spatial: Sequence[int]
) -> bool:
    """A 1x1, stride-1, unpadded convolution to fewer channels than it reads."""
    nd = len(kernel_shape) - 2
    pointwise = all(k == 1 for k in kernel_shape[:nd])
    same_size = tuple(out_spatial) == tuple(x_shape[1:-1])
    return pointwise and same_size and kernel_shape[-2] > kernel_shape[-1]


def auto_context() -> tuple[str, bool, bool]:
    """What :func:`resolve` reads from the context for ``"auto"`` (a cache key).

    >>> auto_context()  # the conv_formulation default, forward only, library program
    ('auto', False, False)
    """
    return _DEFAULT.get(), is_forward_only(), in_library_program()


def resolve(
    formulation: str,
    x: jax.Array,
    kernel: jax.Array,
    out_spatial,
    groups: int,
    *,
    bfloat16_operands: bool = False,
) -> str:
    """``formulation``, or for ``"auto"`` the context's default, else :func:`choose`.

    Under :func:`~nnjax.functional.forward_only`, ``"auto"`` is XLA's convolution, but
    for a depthwise convolution on the CPU (``"taps"``, faster forward too). With
    ``bfloat16_operands`` (:func:`nnjax.functional._conv_bfloat16.operands_wanted`), an
    ungrouped convolution in a library program is ``"patches_bfloat16"`` where
    :func:`nnjax.functional._conv_bfloat16.faster` says so.
    """
    if formulation == "auto":
        formulation = _DEFAULT.get()
    if formulation == "auto" and is_forward_only():
        if jax.default_backend() != "cpu":
            return "xla"
        if _conv_taps.is_depthwise(x.shape[-1], kernel.shape, groups):
            return "taps"
        static = all(isinstance(d, int) for d in x.shape)
        return "depth_stacked" if kernel.ndim == 5 and groups == 1 and static else "xla"
    if formulation == "auto":
        backend = jax.default_backend()
        library = in_library_program()
        if bfloat16_operands and library:
            if _bfloat16_patches_faster(x, kernel, out_spatial, groups):
                return "patches_bfloat16"
        return choose(x.shape, kernel.shape, out_spatial, groups, x.dtype, backend, library=library)
    return formulation


def _bfloat16_patches_faster(x: jax.Array, kernel: jax.Array, out_spatial, groups: int) -> bool:
    static = all(isinstance(d, int) for d in (*x.shape, *out_spatial))
    return groups == 1 and static and _conv_bfloat16.faster(x.shape, kernel.shape, out_spatial)


def xla(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    pads: list[tuple[int, int]],
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """XLA's convolution, channels-last."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=_LAYOUT[kernel.ndim - 2],
        feature_group_count=groups,
    )


def patches(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    pads: list[tuple[int, int]],
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """im2col: strided slices of the padded input, concatenated, times the kernel."""
    nd = kernel.ndim - 2
    sizes, (in_per_group, out_channels) = kernel.shape[:nd], kernel.shape[nd:]
    cols = _conv_taps.windows(x, sizes, strides, pads, dilation)
    taps = math.prod(sizes)
    if groups == 1:
        return jnp.dot(jnp.concatenate(cols, axis=-1), kernel.reshape(taps * in_per_group, -1))
    stacked = jnp.stack(cols, axis=-2)  # (B, *out, taps, in)
    stacked = stacked.reshape(*stacked.shape[:-1], groups, in_per_group)
    w = kernel.reshape(taps, in_per_group, groups, out_channels // groups)
    y = jnp.einsum("...kgc,kcgo->...go", stacked, w)
    return y.reshape(*y.shape[:-2], out_channels)


def _static(pads, strides, dilation) -> tuple[tuple, tuple, tuple]:
    """``(pads, strides, dilation)`` as tuples of ints: hashable, for static arguments."""
    pairs = tuple((int(lo), int(hi)) for lo, hi in pads)
    return pairs, tuple(strides), tuple(dilation)


def _ungrouped(custom_conv, x, kernel, strides, pads, dilation, groups) -> jax.Array:
    """``custom_conv`` (a custom-VJP convolution) when ungrouped, else :func:`xla`."""
    if groups != 1:
        return xla(x, kernel, strides, pads, dilation, groups)
    pairs, strides, dilation = _static(pads, strides, dilation)
    return custom_conv(x, kernel, strides, pairs, dilation)


def xla_canonical(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    pads: list[tuple[int, int]],
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """XLA's convolution, its gradients in canonical form (``_conv_canonical.py``); reverse mode.

    Grouped convolutions are plain :func:`xla`.
    """
    return _ungrouped(_conv_canonical.conv, x, kernel, strides, pads, dilation, groups)


def taps(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    pads: list[tuple[int, int]],
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """Shifted multiply-adds (``_conv_taps.py``).

    Ungrouped: canonical gradients, reverse mode only. Depthwise: per-channel taps, plain
    autodiff; in a library program (``fit``'s, reverse mode only) with the one-pass
    kernel gradient of ``_conv_taps.depthwise_reverse``. Other grouped convolutions are
    plain :func:`xla`.
    """
    if _conv_taps.is_depthwise(x.shape[-1], kernel.shape, groups):
        pairs, strides, dilation = _static(pads, strides, dilation)
        fn = _conv_taps.depthwise_reverse if in_library_program() else _conv_taps.depthwise
        return fn(x, kernel, strides, pairs, dilation)
    return _ungrouped(_conv_taps.conv, x, kernel, strides, pads, dilation, groups)


def depth_stacked(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    pads: list[tuple[int, int]],
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """3-D, ungrouped: the depth taps stacked along the channels, one 2-D convolution.

    As ``"auto"`` picks it (``_conv_depth.py``, :func:`resolve`); else :func:`patches`.
    """
    if groups != 1 or kernel.ndim != 5:
        return patches(x, kernel, strides, pads, dilation, groups)
    return _conv_depth.conv(x, kernel, strides, pads, dilation, auto)


def auto(x, kernel, strides, pads, dilation, groups) -> jax.Array:
    """The convolution as ``"auto"`` formulates it in this program (:func:`resolve`)."""
    spans = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:-2], dilation)]
    out = [out_size(*a) for a in zip(x.shape[1:-1], pads, spans, strides)]
    name = resolve("auto", x, kernel, out, groups)
    return IMPLEMENTATIONS[name](x, kernel, strides, pads, dilation, groups)


#: im2col with bfloat16 operands on AMX (``_conv_bfloat16.py``), float32 result, reverse
#: mode; reached through ``"auto"`` for ungrouped convolutions only (:func:`resolve`).
patches_bfloat16 = functools.partial(_ungrouped, _conv_bfloat16.conv)


#: Every formulation by name; ``"xla_canonical"``, ``"taps"``, ``"patches_bfloat16"`` and
#: ``"depth_stacked"`` only through ``"auto"``.
IMPLEMENTATIONS: dict[str, Callable[..., jax.Array]] = {
    "xla": xla,
    "patches": patches,
    "xla_canonical": xla_canonical,
    "taps": taps,
    "patches_bfloat16": patches_bfloat16,
    "depth_stacked": depth_stacked,
}
