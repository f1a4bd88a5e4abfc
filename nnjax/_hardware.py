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

SLOW_AVX512_BF16_VENDORS = ("GenuineIntel",)
"""CPU vendors (``vendor_id``) whose AVX512-BF16 dot products, without AMX, are slower
than float32 FMAs, so that bfloat16 is computed in float32 there as where it is emulated.

Measured on a 2-core Intel Xeon (family 6, model 207: Emerald Rapids) under KVM, which
lists ``avx512_bf16`` and ``avx512_fp16`` but no ``amx_bf16`` (AMX not passed through):
one thread, PyTorch 2.13's oneDNN (``brg_matmul:avx512_core_bf16``), ``(1024, 1024) @
(1024, 1024)``: float32 189 GFLOP/s, bfloat16 102; two threads 271 / 214; XLA:CPU in jax
0.10.2, bfloat16 operands with a float32 result: 341 / 211 GFLOP/s (YNNPACK), 282 / 272
(Eigen), and the MLP train step of ``benchmarks/bench_mlp.py`` under
``precision="bfloat16"`` 1.09x float32's time at batch 32 and 1.59x at 256 (session 46
of ``benchmarks/README.md``). One ``vdpbf16ps`` does twice the multiplies of an FMA but
issues at half its rate there. AMD's Zen 4 and Zen 5 run it at FMA's rate: bfloat16
measured 0.65x float32's time there (sessions 10 and 18)."""


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


def cpu_vendor(cpuinfo: str | None = None) -> str:
    """The CPU's vendor: ``vendor_id`` in ``/proc/cpuinfo`` (``""`` where none is listed).

    Args:
      cpuinfo: the text of ``/proc/cpuinfo``; ``None`` reads this machine's.

    Returns:
      e.g. ``"GenuineIntel"`` or ``"AuthenticAMD"``.

    Example:
      >>> cpu_vendor("vendor_id : AuthenticAMD")
      'AuthenticAMD'
    """
    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return ""


def fast_bfloat16(flags: Mapping[str, bool], vendor: str = "") -> bool:
    """Whether a CPU with ``flags`` and ``vendor`` multiplies bfloat16 faster than float32.

    True with AMX (``amx_bf16``), and with AVX512-BF16 (``avx512_bf16``) unless the
    vendor is one of :data:`SLOW_AVX512_BF16_VENDORS` (Intel: its AVX512-BF16 dot
    products, without AMX, measured at half float32's rate).

    Args:
      flags: :func:`cpu_flags` of the CPU.
      vendor: :func:`cpu_vendor` of the CPU (``""``: unknown).

    Example:
      >>> fast_bfloat16({"avx512_bf16": True}, "AuthenticAMD")
      True
      >>> fast_bfloat16({"avx512_bf16": True}, "GenuineIntel")
      False
    """
    if flags.get("amx_bf16"):
        return True
    return bool(flags.get("avx512_bf16")) and vendor not in SLOW_AVX512_BF16_VENDORS


def bfloat16_hardware(flags: Mapping[str, bool], vendor: str = "") -> str:
    """Which bfloat16 case a CPU with ``flags`` is: native matmuls (AMX, AVX512-BF16) or not.

    The text names the goal of the case (issue 15): bfloat16 at least 2x faster than
    float32 where its matmuls are faster (:func:`fast_bfloat16`), never slower where
    they are not (``fit``'s ``precision="bfloat16"`` computes in float32 there,
    :func:`emulated_bfloat16_note`).

    Args:
      flags: :func:`cpu_flags` of the CPU.
      vendor: :func:`cpu_vendor` of the CPU (``""``: unknown).

    Example:
      >>> bfloat16_hardware({"amx_bf16": False, "avx512_bf16": False})
      "none (bfloat16 emulated: precision='bfloat16' computes in float32; goal: never slower)"
    """
    goal = "goal: at least 2x faster than float32"
    in_float32 = "precision='bfloat16' computes in float32; goal: never slower"
    if flags.get("amx_bf16"):
        return f"AMX (native bfloat16 matmuls; {goal})"
    if not flags.get("avx512_bf16"):
        return f"none (bfloat16 emulated: {in_float32})"
    if fast_bfloat16(flags, vendor):
        return f"AVX512-BF16 (native bfloat16 dot products; {goal})"
    return (
        f"AVX512-BF16 without AMX on {vendor} (bfloat16 dot products slower than "
        f"float32's FMAs: {in_float32})"
    )


@functools.cache
def _cpu_native_bfloat16() -> bool:
    return fast_bfloat16(cpu_flags(), cpu_vendor())


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

    GPUs and TPUs: always. CPUs: when ``/proc/cpuinfo`` lists ``amx_bf16``, or
    ``avx512_bf16`` on a CPU that runs it faster than float32 (:func:`fast_bfloat16`:
    not Intel's without AMX); without them XLA:CPU emulates bfloat16 arithmetic, measured
    slower than float32 (``benchmarks/README.md``), and bfloat16 is treated as emulated.

    Example:
      >>> native_bfloat16("tpu")
      True
    """
    backend = backend or jax.default_backend()
    return backend != "cpu" or _cpu_native_bfloat16()


def emulated_bfloat16_note() -> str:
    """What ``precision="bfloat16"`` does on this machine's CPU without fast bfloat16.

    The text of the warning ``fit`` gives there (see
    :func:`nnjax.train.objective.compute_dtype`); it names the CPU and why: no
    bfloat16 instructions, or Intel's AVX512-BF16 without AMX (:func:`fast_bfloat16`).
    The step then runs in the parameters' dtype: float32, or float64 for a float64
    model (x64).

    Example:
      >>> "float32" in emulated_bfloat16_note()
      True
    """
    if cpu_flags()["avx512_bf16"]:
        why = (
            f"avx512_bf16 without {BFLOAT16_FLAGS[0]}), whose bfloat16 dot products "
            "measured slower than its float32 FMAs"
        )
    else:
        why = (
            f"no {' or '.join(BFLOAT16_FLAGS)}), where XLA emulates bfloat16 and it "
            "measured slower than float32"
        )
    return (
        f"precision='bfloat16' computes in float32 on this CPU ({cpu_model()}: {why}: "
        "the model runs in its parameters' own dtype, "
        "and the results are that dtype's (float32's; a float64 model's, float64's). Build "
        "the model with dtype=jnp.bfloat16 to run bfloat16 activations here anyway."
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
    "SLOW_AVX512_BF16_VENDORS",
    "amx_bfloat16",
    "bfloat16_dots",
    "bfloat16_hardware",
    "cpu_flags",
    "cpu_model",
    "cpu_vendor",
    "emulated_bfloat16_note",
    "fast_bfloat16",
    "native_bfloat16",
    "upcast_matmuls",
    "wide_vectors",
    "widen_bfloat16",
]
