"""XLA:CPU compiler options for programs with convolutions, and a ``jit`` that applies them.

This jaxlib (0.10.2) sends every 2-D convolution of a CPU program, forward and both
gradients, to YNNPACK: its default ``--xla_cpu_experimental_ynn_fusion_type`` list is
``INDIVIDUAL_DOT, INDIVIDUAL_CONVOLUTION, REDUCE`` (the compiled HLO is identical with
that list spelled out). Without ``INDIVIDUAL_CONVOLUTION`` the same convolutions run on
Eigen's spatial convolution, which measured faster for every dense (ungrouped) 2-D
convolution tried, and slower only for depthwise ones. Forward + backward of one conv,
jitted, one thread, CPU time, medians of interleaved samples, 2-core AMD EPYC (Zen 2,
AVX2), load average 7-10 (ms, YNNPACK / Eigen / im2col patches):

===============================  ======================
input -> out, kernel (batch)     YNNPACK / Eigen / patches
===============================  ======================
28x28x1 -> 32, 3x3 (128)         63 / 40 / 70
14x14x32 -> 64, 3x3 (128)        292 / 116 / 366
56x56x64 -> 64, 3x3 (8)          293 / 100 / 293
7x7x256 -> 256, 3x3 (32)         97 / 70 / 83
28x28x128 -> 256, 1x1 (16)       851 / 47 / 54
32x32x3 -> 32, 5x5 stride 2 (64) 12.5 / 11.8 / 21
14x14x32 depthwise, 3x3 (32)     15 / 27 / 8.6
14x14x32 depthwise, 3x3 (128)    90 / 153 / 108
===============================  ======================

The whole CNN train step of ``benchmarks/bench_cnn.py`` (2 x [conv 3x3 -> ReLU -> max
pool], dense 128, Adam), with its convolutions as XLA's and compiled with
:func:`compiler_options`, took 0.72-0.81x (batch 32) and 0.49-0.67x (batch 128) the
time of the previous default (im2col patches where small, YNNPACK convolutions), in four
interleaved runs (wall clock with two threads, and one-thread CPU time). Programs
without convolutions compile to the same HLO with and without the options (checked for
the MLP train step), so they are harmless there.

The process-wide ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT``
measured before (``benchmarks/README.md``) replaced the same list: it dropped the
convolutions (so batch 128 ran 1.5-1.7x faster) but also ``REDUCE``, and the bias
gradients became XLA loop fusions that each recompute the max-pool backward (four
copies of it at batch 32, where the step then took 2.3x as long; with ``DOT,REDUCE``
0.91x). ``DOT`` also fuses the bias add into the dot, which measured level with
``INDIVIDUAL_DOT`` (0.95x at batch 128, 1.08x at 32), so only the convolutions go.

The option is a per-program :class:`jax.stages` compiler option, not a process-wide
flag: :func:`jit` is :func:`jax.jit` with it added, and it traces the function inside
:func:`library_convolutions`, which tells ``F.conv*(formulation="auto")`` that the
program's convolutions will run on Eigen (dense 2-D convolutions then use XLA's
convolution; grouped ones im2col patches). A jaxlib that does not know the option, a
non-CPU backend, or ``XLA_FLAGS`` that already set it get plain :func:`jax.jit`.

On a CPU with AVX-512 and a bfloat16 extension (:func:`nnjax._hardware.wide_vectors`)
the options also ask XLA:CPU for 512-bit vectors in its own kernels
(``xla_cpu_prefer_vector_width``; LLVM's default is 256): the elementwise fusions,
roundings, copies and the optimizer's update, not the Eigen or YNNPACK matmuls and
convolutions. Train steps as ``fit`` compiles them, 2-core Intel Xeon with AMX,
jax 0.10.2, paired in-process A/B (the same step compiled both ways, interleaved, 25
rounds of 5 steps; two runs; ``benchmarks/README.md``, session 27), time with 512-bit
vectors / without:

=====================================  ===========  ===========
model                                  batch 32     batch 128-256
=====================================  ===========  ===========
MLP 784-500-300-100-10                 0.95, 0.96   0.99, 1.00
the same, ``precision="bfloat16"``     -            0.94, 0.95
CNN conv 32-64, dense 128              0.98, 0.98   0.97, 0.97
the same, ``precision="bfloat16"``     0.92, 0.93   0.97, 0.98
LSTM / GRU 128 units, 64 steps         0.95-0.96    0.96-0.99
=====================================  ===========  ===========

A CIFAR-sized CNN (conv 64-128-256) 0.98 and a transformer encoder block 1.01 at batch
32. ``XLA_FLAGS`` that set the option keep the process's choice.

Example:
  >>> step = jit(lambda x: x * 2.0)
  >>> float(step(jnp.ones(()))), sorted(compiler_options("gpu"))
  (2.0, [])
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, SingleDeviceSharding

from nnjax import _hardware
from nnjax.functional._scoped import scoped

YNN_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
"""The XLA:CPU debug option: the fusion types that YNNPACK keeps."""
YNN_WITHOUT_CONVOLUTIONS = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
"""The fusion types the option keeps: the default list minus
``LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION``.
"""
YNN_WITHOUT_DOTS = "LIBRARY_FUSION_TYPE_REDUCE"
"""The same list without the matmuls either (``eigen_dots``: they run on Eigen)."""
VECTOR_WIDTH_OPTION = "xla_cpu_prefer_vector_width"
"""The XLA:CPU debug option: the vector width, in bits, that LLVM prefers."""
WIDE_VECTORS = "512"
"""Its value where :func:`nnjax._hardware.wide_vectors` (see the module docstring)."""

_LIBRARY_CONVS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "library_convolutions", default=False
)
_EIGEN_DOTS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "library_eigen_dots", default=False
)


@contextlib.contextmanager
def library_convolutions(enabled: bool = True) -> Iterator[None]:
    """Within the block, traced convolutions assume Eigen's (see the module docstring).

    :func:`jit` traces its function inside this block; it is only right for a
    program compiled with :func:`compiler_options`.

    Example:
      >>> with library_convolutions():
      ...     in_library_program()
      True
    """
    with scoped(_LIBRARY_CONVS, bool(enabled)):
        yield


def in_library_program() -> bool:
    """Whether the convolution being traced belongs to a program compiled by :func:`jit`.

    Example:
      >>> in_library_program()
      False
    """
    return _LIBRARY_CONVS.get()


@contextlib.contextmanager
def eigen_matmuls(enabled: bool = True) -> Iterator[None]:
    """Within the block, traced matmuls assume Eigen's (:func:`jit` with ``eigen_dots``).

    Example:
      >>> with library_convolutions(), eigen_matmuls():
      ...     ynn_matmuls()
      False
    """
    with scoped(_EIGEN_DOTS, bool(enabled)):
        yield


def ynn_matmuls() -> bool:
    """Whether the matmuls being traced run on YNNPACK in a program compiled by :func:`jit`.

    That is a program of :func:`jit` without ``eigen_dots``: there XLA:CPU hands a
    matmul of two bfloat16 operands with a float32 result to YNNPACK's native bfloat16
    kernels, where Eigen's (``eigen_dots``) widens the operands to float32 first.
    ``False`` outside :func:`jit`'s programs (nothing then says which library runs them).

    Example:
      >>> ynn_matmuls()
      False
      >>> with library_convolutions():
      ...     ynn_matmuls()
      True
    """
    return _LIBRARY_CONVS.get() and not _EIGEN_DOTS.get()


def eigen_dot_program() -> bool:
    """Whether the matmuls being traced run on Eigen in a program of :func:`jit` (``eigen_dots``).

    Example:
      >>> with library_convolutions(), eigen_matmuls():
      ...     eigen_dot_program()
      True
    """
    return _LIBRARY_CONVS.get() and _EIGEN_DOTS.get()


@functools.cache
def _accepted(option: str, value: str) -> bool:
    """Whether this jaxlib's XLA:CPU compiles a small program with ``option=value``.

    The probe runs in a mesh of its own device, not the caller's: inside ``sweep``'s (several
    devices) its one-device program failed, and the cached ``False`` dropped these
    options from every later program of the process (``fit``'s bfloat16 roundings
    and Eigen convolutions with them).
    """
    device = jax.devices("cpu")[0]
    arg = jax.ShapeDtypeStruct((2,), jnp.float32, sharding=SingleDeviceSharding(device))
    try:
        with jax.set_mesh(Mesh(np.array([device]), ("probe",))):
            jax.jit(lambda x: x + 1.0, compiler_options={option: value}).lower(arg).compile()
    except Exception:  # an unknown option or enum value: XlaRuntimeError (INVALID_ARGUMENT)
        return False
    return True


def compiler_options(backend: str | None = None, *, eigen_dots: bool = False) -> dict[str, str]:
    """The compiler options :func:`jit` adds: ``{}`` but on XLA:CPU.

    Also ``{}`` when this jaxlib rejects the option, or when ``XLA_FLAGS`` sets it
    (the process's choice is left alone). Where :func:`nnjax._hardware.wide_vectors`,
    also :data:`VECTOR_WIDTH_OPTION` (unless ``XLA_FLAGS`` sets it or the jaxlib
    rejects it).

    Args:
      backend: ``"cpu"``, ``"gpu"``, ...; ``None``: JAX's default backend.
      eigen_dots: matmuls on Eigen too (:data:`YNN_WITHOUT_DOTS`). Eigen runs a matmul
        on several threads where YNNPACK here used one; it measured faster for the
        LSTM train step, and for the GRU's where the CPU has AVX-512
        (``nnjax.train.compiled.eigen_dots_for``).

    Returns:
      ``{option name: value}`` for :func:`jax.jit`'s ``compiler_options``.

    Example:
      >>> compiler_options("tpu")
      {}
    """
    if (backend or jax.default_backend()) != "cpu":
        return {}
    process_flags = os.environ.get("XLA_FLAGS", "")
    if YNN_FUSION_OPTION in process_flags:
        return {}
    value = YNN_WITHOUT_DOTS if eigen_dots else YNN_WITHOUT_CONVOLUTIONS
    if not _accepted(YNN_FUSION_OPTION, value):
        return {}
    options = {YNN_FUSION_OPTION: value}
    wide = _hardware.wide_vectors() and VECTOR_WIDTH_OPTION not in process_flags
    if wide and _accepted(VECTOR_WIDTH_OPTION, WIDE_VECTORS):
        options[VECTOR_WIDTH_OPTION] = WIDE_VECTORS
    return options


def ynn_convolutions(backend: str | None = None) -> bool:
    """Whether a program of ``backend`` may run its convolutions on YNNPACK, even ``fit``'s.

    On XLA:CPU: where ``XLA_FLAGS`` sets :data:`YNN_FUSION_OPTION` to a list with a
    convolution type (the process's choice, which :func:`compiler_options` leaves alone),
    or this jaxlib refuses the option (nothing then says where its convolutions run).
    ``False`` on other backends and where :func:`compiler_options` moves them to Eigen.

    It matters for loops: with YNNPACK's convolutions a rolled loop of updates ran the
    Fashion-MNIST CNN's epoch 64x slower than one update per dispatch (37.6 against
    0.59 s; ``nnjax.train.dispatch_choices``), so ``fit`` then takes one.

    Example:
      >>> ynn_convolutions("gpu")
      False
    """
    if (backend or jax.default_backend()) != "cpu":
        return False
    process_flags = os.environ.get("XLA_FLAGS", "")
    if YNN_FUSION_OPTION in process_flags:
        match = re.search(rf"{YNN_FUSION_OPTION}=(\S+)", process_flags)
        return match is None or "CONVOLUTION" in match.group(1).upper()
    return not _accepted(YNN_FUSION_OPTION, YNN_WITHOUT_CONVOLUTIONS)


def jit(fn: Callable, *, eigen_dots: bool = False, **jit_kwargs: Any) -> Any:
    """:func:`jax.jit` of ``fn`` with :func:`compiler_options`, traced for Eigen's convolutions.

    Same arguments and result as :func:`jax.jit` (``compiler_options`` given here are
    added to, and win over, this module's), plus ``eigen_dots`` for
    :func:`compiler_options`. Without options for the default backend it is plain
    :func:`jax.jit`. Like any ``jax.jit`` with compiler options, the result must be
    called at top level, not inside another ``jit``, ``grad`` or ``vmap`` (JAX raises
    ValueError): it is meant for a program's outermost step, as ``fit``'s.

    Example:
      >>> import nnjax.functional as F
      >>> params = F.conv2d_init(jax.random.key(0), 1, 4, 3)
      >>> conv = jit(lambda p, x: F.conv2d(p, x))
      >>> conv(params, jnp.ones((2, 8, 8, 1))).shape
      (2, 8, 8, 4)
    """
    options = compiler_options(eigen_dots=eigen_dots)
    if not options:
        return jax.jit(fn, **jit_kwargs)

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        with library_convolutions(), eigen_matmuls(eigen_dots):
            return fn(*args, **kwargs)

    options |= jit_kwargs.pop("compiler_options", None) or {}
    return jax.jit(traced, compiler_options=options, **jit_kwargs)


__all__ = [
    "VECTOR_WIDTH_OPTION",
    "WIDE_VECTORS",
    "YNN_FUSION_OPTION",
    "YNN_WITHOUT_CONVOLUTIONS",
    "YNN_WITHOUT_DOTS",
    "compiler_options",
    "eigen_dot_program",
    "eigen_matmuls",
    "in_library_program",
    "jit",
    "library_convolutions",
    "ynn_convolutions",
    "ynn_matmuls",
]
