"""bfloat16 on the CPU: widen to float32, compute, round once, with integer roundings (private).

On the CPU (:func:`nnjax._hardware.widen_bfloat16`) ``F.conv*``, max pooling and the
built-in recurrences widen bfloat16 inputs to float32, compute there and round their
result to bfloat16 once; so does ``F.dense`` where the CPU emulates bfloat16
(:func:`nnjax._hardware.upcast_matmuls`). The widening's gradient rounds the float32
cotangent back to bfloat16, and XLA:CPU's ``convert`` does that rounding slowly inside
the backward's fusions (the max-pool and ReLU backward of a CNN took 2.5x their float32
time). :func:`to_float32` gives the widening a gradient that rounds with integer
operations instead (:func:`round_to_bfloat16`: round to nearest even, bitwise
XLA's result on such a CPU); its forward stays XLA's ``convert``, which XLA may still
fold into a round trip.

Measured on a 2-core AMD EPYC (Zen 2, AVX2, no AVX-512), jax 0.10.2: the train step of
``fit`` (Adam) of a model with ``dtype=jnp.bfloat16``, time / the float32 model's time,
medians of interleaved steps, two runs each (XLA's rounding -> this one):

==========================================  =========================  ================
model (batch)                               XLA's rounding             this module
==========================================  =========================  ================
CNN of ``benchmarks/bench_cnn.py`` (32)     1.18, 1.20                 1.03, 1.04
CNN (128)                                   1.14, 1.16                 1.00, 1.02
LSTM of ``benchmarks/bench_lstm.py`` (32)   0.99, 1.02                 0.95, 1.03
MLP 784-500-300-100-10 (32)                 1.02, 1.09                 1.04, 1.06
==========================================  =========================  ================

The MLP's fusions are the same either way (only the rounding's code differs); its
spread is noise at 4 ms a step.

**CPUs with native bfloat16 too.** A CPU with AVX512-BF16 converts in one instruction,
yet XLA:CPU still makes each ``convert`` to bfloat16 a fusion of its own, so the output
of every layer was written and read back once more than in float32. So every rounding
in a library program on the CPU is integer arithmetic (:func:`round_like`
for the outputs of ``F.conv*``, max pooling, the recurrences and ``F.dense``'s native
path, and the operands and gradients of :mod:`nnjax.functional._bfloat16_dot`). On a
2-core AMD EPYC (Zen 5, AVX512-BF16), jax 0.10.2, train step as ``fit`` compiles it,
time / the float32 model's, paired medians (IQR) of 30-60 interleaved rounds, XLA's
rounding -> integer rounding: CNN of ``bench_cnn.py`` with ``dtype=jnp.bfloat16`` 1.32
(1.28-1.40) -> 1.08 (1.02-1.14) at batch 32, 1.27 (1.25-1.38) -> 1.08 (1.02-1.13) at 128
(a second run: 1.33 -> 1.06, 1.28 -> 1.06; 80 -> 71-75 fusions); MLP 784-500-300-100-10
0.97 -> 0.93 at batch 32, 0.75 (0.72-0.78) -> 0.71 (0.66-0.74) at 256; ``fit``'s
``precision="bfloat16"`` CNN 0.99 -> 0.96, 0.96 -> 0.96, MLP 0.72 -> 0.68 at 256; the
LSTM 1.02 -> 1.01 (batch 32). The same A/B with XLA:CPU held to AVX2
(``--xla_cpu_max_isa=AVX2``, bfloat16 emulated): CNN 1.12 -> 1.09, 1.10 -> 1.11, MLP
1.09 -> 1.06 (no change).

**One row: XLA's rounding.** An array of one row (a ``(1, features)`` activation of a
batch of one) is rounded by XLA's ``convert`` even in a library program. The kernel
gradient of a dense layer over one row is an outer product, which XLA fuses with the
optimizer's update of that kernel, and it copied the integer rounding of both vectors
(some 20 integer operations) into every element of that fusion: the MLP
784-500-300-100-10 train step of ``fit`` with ``dtype=jnp.bfloat16`` at batch 1 took
1.34-1.38x the float32 model's time. XLA's ``convert`` is a fusion of its own, computed
once per vector (the same values where the CPU emulates bfloat16; one converting
natively may flush subnormals to zero, as outside library programs): 1.04-1.10x
(2-core AMD EPYC Zen 3, AVX2, jax 0.10.2, medians of 30 interleaved rounds of 50 steps,
two runs each).

**Forward-only programs: XLA's rounding of outputs.** ``predict``, ``evaluate`` and
``fit``'s validation trace the model under :func:`~nnjax.functional.forward_only`, and
there the ops round their results (:func:`round_like`) with XLA's ``convert``. The
integer rounding is for the backward pass's fusions; forward-only, it kept YNNPACK from
taking a CNN's convolutions, pooling and roundings as one fusion, and the convolutions
ran on Eigen: one jitted forward of the ``dtype=jnp.bfloat16`` CNN of ``bench_cnn.py``
in a library program took 1.63-1.80x the float32 model's time at batch 128 and
1.16-1.20x at 32 (``predict`` of 4,096 images at batch 128: 1.70x), and 0.99-1.01x /
1.07-1.13x with XLA's rounding of outputs; the MLP 1.09-1.24x -> 1.06-1.19x, the LSTM
and GRU classifiers 0.95-1.14x -> 0.91-1.08x (2-core Intel Xeon, Emerald Rapids without
AMX, jax 0.10.2, medians of 25 interleaved rounds, two runs). Held to AVX2
(``--xla_cpu_max_isa=AVX2``, bfloat16 emulated): CNN 1.19x / 1.77x at batch 32 / 128 ->
1.08x / 1.01x. XLA may skip a rounding whose result is widened again
(``xla_allow_excess_precision``, as in any ``jax.jit``), so such outputs can differ from
a training step's forward pass by a bfloat16 ulp. The operands that
:mod:`nnjax.functional._bfloat16_dot` rounds for bfloat16 matmuls keep the integer
rounding: XLA's made ``predict(precision="bfloat16")`` slower (an MLP's 1.30x -> 1.38x
float32's time, a CNN's 1.01x -> 1.21x at batch 256, native bfloat16 faked on this CPU).

A custom VJP has no forward mode (``jax.jvp`` raises), so :func:`to_float32` uses it only
while a program of :func:`nnjax.functional._conv_compiler.jit` is traced (``fit``'s
steps, which differentiate in reverse mode), as the ``"taps"`` convolution does.

Example:
  >>> round_to_bfloat16(jnp.float32(1.00390625))  # a tie: to the even neighbour
  Array(1, dtype=bfloat16)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional._conv_compiler import in_library_program
from nnjax.functional._forward_only import is_forward_only

_HALF_ULP = 0x7FFF  # half a bfloat16 ulp in the low 16 bits, less one (ties go to even)
_QUIET_NAN = 0x00400000  # the float32 quiet bit: a NaN stays a NaN when truncated


@jax.custom_jvp
def round_to_bfloat16(x: jax.Array) -> jax.Array:
    """Float32 ``x`` rounded to the nearest bfloat16 (ties to even), with integer operations.

    Bitwise the same as NumPy's ``x.astype(jnp.bfloat16)`` (ml_dtypes), infinities,
    subnormals and overflow to infinity included; a NaN stays a NaN. XLA:CPU's
    ``convert`` agrees except that a CPU converting natively (AVX512-BF16) may flush
    subnormals to zero. Differentiable: the tangent is cast like a ``convert``'s.

    Args:
      x: float32 array, any shape.

    Returns:
      bfloat16 array of ``x``'s shape.
    """
    return lax.bitcast_convert_type(bfloat16_bits(x), jnp.bfloat16)


def bfloat16_bits(x: jax.Array) -> jax.Array:
    """The bits of :func:`round_to_bfloat16`'s ``x`` as ``uint16`` (not differentiable).

    How a scan stacks values in bfloat16 (``_lstm_scan``'s ``Rounding.residuals``):
    XLA:CPU writes a ``uint16`` row into its stack in place, where its
    dynamic-update-slice of a bfloat16 row became a fusion that rewrote the whole stack
    (the LSTM's train step 2-3x slower).

    Args:
      x: float32 array, any shape.

    Returns:
      ``uint16`` array of ``x``'s shape; :func:`from_bfloat16_bits` widens it back.

    Example:
      >>> bfloat16_bits(jnp.float32(1.0))
      Array(16256, dtype=uint16)
    """
    bits = lax.bitcast_convert_type(x, jnp.uint32)
    odd = (bits >> 16) & jnp.uint32(1)
    rounded = jnp.where(jnp.isnan(x), bits | jnp.uint32(_QUIET_NAN), bits + _HALF_ULP + odd)
    return (rounded >> 16).astype(jnp.uint16)


def from_bfloat16_bits(bits: jax.Array) -> jax.Array:
    """The float32 value of bfloat16 ``bits`` (``uint16``, as :func:`bfloat16_bits` gives).

    Example:
      >>> from_bfloat16_bits(bfloat16_bits(jnp.float32(1.00390625)))
      Array(1., dtype=float32)
    """
    return lax.bitcast_convert_type(bits.astype(jnp.uint32) << 16, jnp.float32)


@round_to_bfloat16.defjvp
def _round_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple:
    return round_to_bfloat16(*primals), tangents[0].astype(jnp.bfloat16)


@jax.custom_vjp
def _widen(x: jax.Array) -> jax.Array:
    return x.astype(jnp.float32)


def _widen_fwd(x: jax.Array) -> tuple[jax.Array, None]:
    return x.astype(jnp.float32), None


def _widen_bwd(_: None, cotangent: jax.Array) -> tuple[jax.Array]:
    return (round_to_bfloat16(cotangent),)


_widen.defvjp(_widen_fwd, _widen_bwd)


def to_float32(x: jax.Array) -> jax.Array:
    """``x.astype(jnp.float32)``; for bfloat16 in a library program, its gradient rounds fast.

    Args:
      x: array of any float dtype and shape.

    Returns:
      float32 array of ``x``'s shape and values. In a program traced by
      :func:`nnjax.functional._conv_compiler.jit` on the CPU backend, a bfloat16
      ``x``'s cotangent is rounded by :func:`round_to_bfloat16` (same values as XLA's
      rounding; the module docstring says why, natively or emulated), except an
      ``x`` of one row.

    Example:
      >>> to_float32(jnp.ones(2, jnp.bfloat16))
      Array([1., 1.], dtype=float32)
    """
    if x.dtype == jnp.bfloat16 and _integer_rounding(x):
        return _widen(x)
    return x.astype(jnp.float32)


def to_bfloat16(x: jax.Array) -> jax.Array:
    """``x.astype(jnp.bfloat16)``; in a library program on the CPU, integer rounding.

    XLA:CPU's ``convert`` of float32 to bfloat16 is slow where it emulates bfloat16, and
    natively or not, XLA neither repeats it in the fusions that read its result nor fuses
    it with the elementwise work after it: each rounding was a fusion of its own.
    :func:`round_to_bfloat16` (same values) fuses like any integer arithmetic (an array
    of one row keeps XLA's ``convert``: the module docstring says why). The
    modules round their float32 inputs with it (``dtype=jnp.bfloat16``), and the ops
    that widen bfloat16 their results (:func:`round_like`). MLP 784-500-300-100-10 train step,
    Adam, ``dtype=jnp.bfloat16``, time / the float32 model's, paired medians (IQR) of 80
    interleaved rounds, 2-core AMD EPYC (Zen 2, AVX2): XLA's rounding 1.11 (0.99-1.27) at
    batch 32, 1.06 (0.98-1.18) at 256; this one 1.04 (0.85-1.21), 1.04 (0.96-1.14), and
    in ``benchmarks/bench_mlp.py`` (60 rounds, balanced order) 1.03 (0.94-1.13), 1.03
    (0.96-1.10). The step has 60 fusions, the float32 step 58, before 64 (the two left:
    the input's rounding and the logits' cotangent). The bfloat16 CNN of
    ``benchmarks/bench_cnn.py`` and LSTM of ``bench_lstm.py`` took the same time with
    either rounding (A/B: 0.97 / 0.97, 0.98 / 0.98 of float32).

    Args:
      x: array of any dtype and shape.

    Returns:
      bfloat16 array of ``x``'s shape, the values of ``x.astype(jnp.bfloat16)``.

    Example:
      >>> to_bfloat16(jnp.float32(1.00390625))
      Array(1, dtype=bfloat16)
    """
    if x.dtype == jnp.float32 and _integer_rounding(x):
        return round_to_bfloat16(x)
    return x.astype(jnp.bfloat16)


def round_like(y: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """``y.astype(dtype)``, rounding float32 to bfloat16 by :func:`to_bfloat16`.

    How the ops that widen bfloat16 round their float32 result back; in forward-only
    code (:func:`~nnjax.functional.forward_only`) with XLA's ``convert`` (module
    docstring).

    Example:
      >>> round_like(jnp.float32(1.00390625), jnp.bfloat16)
      Array(1, dtype=bfloat16)
    """
    if jnp.dtype(dtype) == jnp.bfloat16 and not is_forward_only():
        return to_bfloat16(y)
    return y.astype(dtype)


def round_floating(a: jax.typing.ArrayLike, dtype: jnp.dtype) -> jax.Array:
    """A floating ``a`` rounded to ``dtype`` by :func:`round_like`; any other ``a`` as it is.

    How the recurrences that widen bfloat16 round their float32 parameters to the compute
    dtype (``F.lstm`` and ``F.gru`` on a CPU emulating bfloat16). XLA's ``convert`` there
    was a pass of its own over the weights at every step; XLA fuses the integer rounding
    into the weights' concatenation and transposition that follow (one fusion fewer;
    the same time within noise: ``benchmarks/README.md``, session 36).

    Example:
      >>> round_floating(jnp.float32(1.00390625), jnp.bfloat16)
      Array(1, dtype=bfloat16)
      >>> round_floating(jnp.int32(3), jnp.bfloat16)
      Array(3, dtype=int32)
    """
    a = jnp.asarray(a)
    return round_like(a, dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a


def _integer_rounding(x: jax.Array) -> bool:
    """Whether ``x`` (or its cotangent) is rounded by :func:`round_to_bfloat16` here.

    In a library program on the CPU, for any array but one of a single row (``ndim >=
    2`` and one row across its leading axes; module docstring).
    """
    one_row = x.ndim >= 2 and math.prod(x.shape[:-1]) == 1
    return in_library_program() and jax.default_backend() == "cpu" and not one_row


__all__ = ["round_floating", "round_like", "round_to_bfloat16", "to_bfloat16", "to_float32"]
