"""What the hardware under JAX offers (private): CPU SIMD flags and native bfloat16.

Ops use :func:`native_bfloat16` to pick a formulation per backend, and ``fit``'s
``precision="bfloat16"`` computes in float32 where it is False
(:func:`nnjax.train.objective.compute_dtype`, which warns with :func:`emulated_bfloat16_note`);
the benchmark scripts (``benchmarks/_harness.py``) print :func:`cpu_flags` and
:func:`bfloat16_hardware` beside their timings. Linux's ``/proc/cpuinfo`` is the
source; elsewhere no flag is reported.

Example:
  >>> cpu_flags("flags : fpu avx2 fma")["avx2"]
  True
  >>> native_bfloat16("gpu")
  True
"""

from __future__ import annotations

import functools
import pathlib
import platform
from collections.abc import Mapping

import jax
import jax.numpy as jnp

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""CPU flags recorded and printed: SIMD width and native bfloat16 matmul support."""

BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
"""The x86 flags whose presence means bfloat16 matmuls run natively (not emulated)."""


def _read_cpuinfo() -> str:
    try:
        return pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of :data:`SIMD_FLAGS` the CPU has (``/proc/cpuinfo``; all False elsewhere).

    Args:
      cpuinfo: the text of ``/proc/cpuinfo``; ``None`` reads this machine's.

    Returns:
      ``{flag: present}`` for every name in :data:`SIMD_FLAGS`.

    Example:
      >>> cpu_flags("flags : fpu avx2 fma amx_bf16")["amx_bf16"]
      True
    """
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return {name: name in flags for name in SIMD_FLAGS}


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name: ``model name`` in ``/proc/cpuinfo``, else :func:`platform.processor`.

    Args:
      cpuinfo: the text of ``/proc/cpuinfo``; ``None`` reads this machine's.

    Returns:
      e.g. ``"AMD EPYC 7B12"``; ``"unknown CPU"`` when neither source names one.

    Example:
      >>> cpu_model("model name : AMD EPYC 7B12")
      'AMD EPYC 7B12'
    """
    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return (platform.processor() if cpuinfo is None else "") or "unknown CPU"


def bfloat16_hardware(flags: Mapping[str, bool]) -> str:
    """Which bfloat16 case a CPU with ``flags`` is: native matmuls (AMX, AVX512-BF16) or emulated.

    The text names the goal of the case (issue 15): bfloat16 at least 2x faster than
    float32 with native matmuls, never slower without (``fit``'s ``precision="bfloat16"``
    computes in float32 there, :func:`emulated_bfloat16_note`).

    Example:
      >>> bfloat16_hardware({"amx_bf16": False, "avx512_bf16": False})
      "none (bfloat16 emulated: precision='bfloat16' computes in float32; goal: never slower)"
    """
    goal = "goal: at least 2x faster than float32"
    if flags.get("amx_bf16"):
        return f"AMX (native bfloat16 matmuls; {goal})"
    if flags.get("avx512_bf16"):
        return f"AVX512-BF16 (native bfloat16 dot products; {goal})"
    return "none (bfloat16 emulated: precision='bfloat16' computes in float32; goal: never slower)"


@functools.cache
def _cpu_native_bfloat16() -> bool:
    flags = cpu_flags()
    return any(flags[name] for name in BFLOAT16_FLAGS)


@functools.cache
def amx_bfloat16() -> bool:
    """Whether this machine's CPU has AMX bfloat16 tiles (``amx_bf16`` in ``/proc/cpuinfo``).

    XLA:CPU runs bfloat16 matmuls with a float32 result on them (YNNPACK), 2.7-5x
    faster than float32 at the sizes measured (:mod:`nnjax.functional._conv_bfloat16`).

    Example:
      >>> isinstance(amx_bfloat16(), bool)
      True
    """
    return cpu_flags()["amx_bf16"]


@functools.cache
def avx512() -> bool:
    """Whether this machine's CPU has AVX-512 (``avx512f`` in ``/proc/cpuinfo``).

    ``fit`` runs a GRU model's matmuls on Eigen there
    (:func:`nnjax.train.compiled.eigen_dots_for`).

    Example:
      >>> isinstance(avx512(), bool)
      True
    """
    return cpu_flags()["avx512f"]


@functools.cache
def wide_vectors() -> bool:
    """Whether XLA:CPU's own kernels should use 512-bit vectors on this machine's CPU.

    True where ``/proc/cpuinfo`` lists ``avx512f`` and a bfloat16 extension
    (``avx512_bf16`` or ``amx_bf16``): the CPUs since 2020 (Cooper Lake, Sapphire
    Rapids, Zen 4) on which 512-bit arithmetic does not lower the clock as on the
    first AVX-512 ones, for which LLVM's default of 256-bit vectors was chosen.
    ``fit``'s programs then ask for 512-bit ones
    (:func:`nnjax.functional._conv_compiler.compiler_options`).

    Example:
      >>> isinstance(wide_vectors(), bool)
      True
    """
    flags = cpu_flags()
    return flags["avx512f"] and (flags["avx512_bf16"] or flags["amx_bf16"])


def native_bfloat16(backend: str | None = None) -> bool:
    """Whether ``backend`` runs bfloat16 matmuls natively (default: JAX's default backend).

    GPUs and TPUs: always. CPUs: when ``/proc/cpuinfo`` lists ``amx_bf16`` or
    ``avx512_bf16``; without them XLA:CPU emulates bfloat16 arithmetic, measured slower
    than float32 (``benchmarks/README.md``).

    Example:
      >>> native_bfloat16("tpu")
      True
    """
    backend = backend or jax.default_backend()
    return backend != "cpu" or _cpu_native_bfloat16()


def emulated_bfloat16_note() -> str:
    """What ``precision="bfloat16"`` does on this machine's CPU without native bfloat16.

    The text of the warning ``fit`` gives there (see
    :func:`nnjax.train.objective.compute_dtype`); it names the CPU. The step then runs
    in the parameters' dtype: float32, or float64 for a float64 model (x64).

    Example:
      >>> "float32" in emulated_bfloat16_note()
      True
    """
    return (
        f"precision='bfloat16' computes in float32 on this CPU ({cpu_model()}: no "
        f"{' or '.join(BFLOAT16_FLAGS)}), where XLA emulates bfloat16 and it measured "
        "slower than float32: the model runs in its parameters' own dtype, and the results "
        "are that dtype's (float32's; a float64 model's, float64's). Build the model with "
        "dtype=jnp.bfloat16 to run bfloat16 activations here anyway."
    )


def upcast_matmuls(dtype: jnp.dtype) -> bool:
    """Whether matmuls of ``dtype`` operands should run in float32 on the default backend.

    True for bfloat16 where the hardware has no native bfloat16 (:func:`native_bfloat16`):
    there a float32 matmul of the bfloat16 inputs, its result rounded to bfloat16, runs
    as fast as float32, where XLA's emulated bfloat16 matmul is slower.

    Example:
      >>> upcast_matmuls(jnp.float32)
      False
    """
    return jnp.dtype(dtype) == jnp.bfloat16 and not native_bfloat16()


def widen_bfloat16(dtype: jnp.dtype) -> bool:
    """Whether convolutions, pooling and recurrences of ``dtype`` should compute in float32.

    True for bfloat16 on the CPU backend, native bfloat16 or not. Where the CPU has it
    (AVX512-BF16, AMX), XLA:CPU still runs bfloat16 only in matmuls (YNNPACK's kernels,
    :mod:`nnjax.functional._bfloat16_dot`): its convolutions (Eigen) and elementwise
    work widen each value to float32 and round it back. On a 2-core AMD EPYC (Zen 5,
    AVX512-BF16), jax 0.10.2, the CNN train step of ``benchmarks/bench_cnn.py`` with a
    bfloat16 model took 3.2-3.4x the float32 step's time that way; and the LSTM's
    per-step matmul ``(32, 144) @ (144, 512)`` in bfloat16 took 1.6-5x float32's time.
    The formulation that widens the bfloat16 inputs, computes in float32 and rounds the
    result once runs at float32's speed on AVX2, and with integer roundings
    (:mod:`nnjax.functional._bfloat16`) at 1.04-1.10x float32's time for that CNN on
    the Zen 5.

    Example:
      >>> widen_bfloat16(jnp.float32)
      False
    """
    if jnp.dtype(dtype) != jnp.bfloat16:
        return False
    return jax.default_backend() == "cpu" or not native_bfloat16()


def bfloat16_dots(dtype: jnp.dtype, backend: str | None = None) -> bool:
    """Whether matmuls of ``dtype`` operands take the CPU's native bfloat16 kernels.

    True for bfloat16 on a CPU (``backend``, default JAX's) with native bfloat16 dot
    products (:func:`native_bfloat16`): ``F.dense`` then multiplies through
    :func:`nnjax.functional._bfloat16_dot.matmul`, which XLA runs on them, where a
    matmul with a bfloat16 result is widened to float32 and ran at 0.95x float32's
    speed (figures in that module).

    Example:
      >>> bfloat16_dots(jnp.float32)
      False
    """
    backend = backend or jax.default_backend()
    return jnp.dtype(dtype) == jnp.bfloat16 and backend == "cpu" and native_bfloat16(backend)


__all__ = [
    "BFLOAT16_FLAGS",
    "SIMD_FLAGS",
    "amx_bfloat16",
    "bfloat16_dots",
    "bfloat16_hardware",
    "cpu_flags",
    "cpu_model",
    "emulated_bfloat16_note",
    "native_bfloat16",
    "upcast_matmuls",
    "wide_vectors",
    "widen_bfloat16",
]
