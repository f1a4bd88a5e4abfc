"""The compute precision of a step: :func:`compute_dtype`, :func:`rounds_matmul_operands`.

``fit(precision="bfloat16")`` asks for low-precision compute for its speed; these two
say what a step does with it on the backend at hand (cast the model to bfloat16, round
only its matmul operands, or stay float32). :func:`nnjax.train.objective.make_objective`
applies them (re-exported there), :func:`make_forward` too for ``predict``;
:func:`canonical_precision` checks the argument of ``fit``, ``sweep``, ``evaluate`` and
``predict``.

Example:
  >>> compute_dtype("float16", backend="gpu")
  dtype('float16')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _hardware
from nnjax.functional import _bfloat16_dot
from nnjax.nn._model_call import call_model

FLOAT16_ON_CPU = (
    "precision='float16' on the CPU: XLA:CPU emulates float16 arithmetic, so the step "
    "runs several times slower than float32's (an MLP's train step 9x on a 2-core Intel "
    "Xeon), not faster; float16 is for GPUs. On a CPU pass precision='bfloat16' (bfloat16 "
    "matmuls where the CPU has them, float32's step elsewhere) or None"
)
"""The warning of a float16 step on the CPU (:func:`compute_dtype`; once per process)."""


def compute_dtype(precision: Any, backend: str | None = None) -> jnp.dtype | None:
    """The dtype a step runs the model in for ``precision`` (``None``: the parameters').

    ``precision`` asks for low-precision compute for its speed. ``"bfloat16"`` gives
    ``bfloat16`` on GPUs and TPUs: there bfloat16 matmuls run at about twice float32's speed
    or more, and the step casts the parameters and inputs to bfloat16 once, so every matmul
    takes that path. On a CPU ``None`` is returned, the model runs in float32, because
    XLA:CPU computes convolutions and elementwise work in float32 either way and every
    bfloat16 rounding between them is extra work. Where the CPU multiplies bfloat16 natively
    and faster than float32 (AMX; AVX512-BF16 but Intel's without AMX:
    :func:`nnjax._hardware.native_bfloat16`), the dense layers' matmuls round their operands
    to bfloat16 and sum in float32 instead (:func:`rounds_matmul_operands`; as JAX's default
    matmul precision does on TPUs), and with AMX so do the convolutions where im2col on its
    bfloat16 tiles measured faster than Eigen's float32 convolution
    (:mod:`nnjax.functional._conv_bfloat16`) and the LSTM's and GRU's matmuls
    (:func:`nnjax.train.dispatch_choices.eigen_dots_for`; with the stacks between their
    scans in bfloat16, 0.61-0.88x float32's step time at batch 8-128): on a Zen 5 EPYC with
    AVX512-BF16 an MLP step took 0.70x float32's time at batch 256 that way (a bfloat16
    model 0.73x), a CNN step 0.99-1.00x (a bfloat16 model 1.24-1.36x;
    ``benchmarks/README.md``). On a CPU without native bfloat16 XLA emulates it, and an
    Intel CPU's AVX512-BF16 alone is slower than float32: there the step is the model's own
    (float32's; a float64 model's float64) and runs as fast, and a ``UserWarning`` naming
    the CPU says so (Python shows it once per process). As with JAX's default matmul
    precision, the precision is the least the computation keeps, not a promise of bfloat16
    rounding; a model built with ``dtype=jnp.bfloat16`` runs bfloat16 activations anywhere.
    Other precisions (``"float16"``) are returned as given; ``"float16"`` on a CPU with a
    ``UserWarning`` (:data:`FLOAT16_ON_CPU`): XLA:CPU emulates float16 arithmetic, so such a
    step is slower than float32's, not faster.

    Args:
      precision: ``None``, or a dtype name such as ``"bfloat16"``.
      backend: the JAX backend the step runs on (default: JAX's default backend).

    Returns:
      the compute dtype, or ``None`` for the parameters' own (float32; float64 for a
      float64 model under ``jax_enable_x64``).

    Example:
      >>> compute_dtype("bfloat16", backend="gpu")
      dtype(bfloat16)
      >>> compute_dtype(None) is None
      True
    """
    if precision is None:
        return None
    dtype = jnp.dtype(precision)
    backend = backend or jax.default_backend()
    if dtype == jnp.float16 and backend == "cpu":
        warnings.warn(FLOAT16_ON_CPU, UserWarning, stacklevel=1)
    if dtype != jnp.bfloat16:
        return dtype
    if not _hardware.native_bfloat16(backend):
        warnings.warn(_hardware.emulated_bfloat16_note(), UserWarning, stacklevel=1)
        return None
    return None if backend == "cpu" else dtype


def rounds_matmul_operands(precision: Any, backend: str | None = None) -> bool:
    """Whether ``precision`` keeps a float32 model but rounds its matmul operands to bfloat16.

    True for ``"bfloat16"`` on a CPU with native bfloat16 dot products (see
    :func:`compute_dtype`): the step traces the model inside
    ``nnjax.functional._bfloat16_dot.bfloat16_operands``.

    Example:
      >>> rounds_matmul_operands(None)
      False
      >>> rounds_matmul_operands("bfloat16", backend="gpu")
      False
    """
    return precision is not None and _hardware.bfloat16_dots(jnp.dtype(precision), backend)


PRECISIONS = (None, "float32", "bfloat16", "float16")
"""The ``precision`` values ``fit``, ``sweep``, ``evaluate`` and ``predict`` take."""


def canonical_precision(precision: Any) -> str | None:
    """``precision`` checked, as a step is compiled for it: ``None`` for float32's step.

    ``"float32"``, and ``"bfloat16"`` where the hardware emulates it (:func:`compute_dtype`
    warns), give ``None``, so they share float32's compiled programs.

    Raises:
      ValueError: ``precision`` is not one of :data:`PRECISIONS` (named in the message).

    Example:
      >>> canonical_precision("float32") is None
      True
      >>> canonical_precision("half")
      Traceback (most recent call last):
      ...
      ValueError: precision must be None, 'float32', 'bfloat16' or 'float16', got 'half'
    """
    if not (precision is None or isinstance(precision, str)) or precision not in PRECISIONS:
        raise ValueError(
            f"precision must be None, 'float32', 'bfloat16' or 'float16', got {precision!r}"
        )
    precision = None if precision == "float32" else precision
    if compute_dtype(precision) is None and not rounds_matmul_operands(precision):
        return None  # bfloat16 emulated here: float32's step, compiled once (it warned)
    return precision


def cast_floating(tree: Any, dtype: Any) -> Any:
    """The floating arrays of ``tree`` cast to ``dtype`` (``None``: ``tree`` as it is).

    Example:
      >>> cast_floating({"w": jnp.ones(2), "n": jnp.int32(3)}, jnp.bfloat16)["w"].dtype
      dtype(bfloat16)
    """

    def cast(a: Any) -> Any:
        return a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a

    return tree if dtype is None else jax.tree.map(cast, tree)


def upcast_low_precision(tree: Any) -> Any:
    """The bfloat16 and float16 arrays of ``tree`` as float32 (how a loss sees outputs).

    Example:
      >>> upcast_low_precision(jnp.ones(2, jnp.bfloat16)).dtype
      dtype('float32')
    """

    def up(a: Any) -> Any:
        if jnp.issubdtype(a.dtype, jnp.floating) and jnp.finfo(a.dtype).bits < 32:
            return a.astype(jnp.float32)
        return a

    return jax.tree.map(up, tree)


def make_forward(graphdef: nnx.GraphDef, precision: Any = None) -> Callable[..., Any]:
    """``forward(params, rest, x, *states) -> model(x)``, run at ``precision`` as a step runs it.

    The parameters and floating inputs are cast to :func:`compute_dtype`'s dtype and
    the outputs come back float32 (GPUs, TPUs); or, where :func:`rounds_matmul_operands`,
    the float32 model's dense matmuls round their operands to bfloat16; or, for ``None``,
    the model as it is (a model built with ``dtype=jnp.bfloat16`` gives bfloat16
    outputs). ``states`` are more of the model's state, merged as they are (the RNG
    state of ``mc_dropout_predict``'s split). The model's state is not returned. How
    ``predict(precision=...)`` and ``mc_dropout_predict(precision=...)`` run it.

    Args:
      graphdef: the model's graphdef (inference mode, for ``predict``).
      precision: as :func:`canonical_precision` returns it.

    Example:
      >>> from nnjax.nn import MLP
      >>> graphdef, state = nnx.split(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> params, rest = nnx.split_state(state, nnx.Param, ...)
      >>> make_forward(graphdef)(params, rest, jnp.ones((3, 2))).shape
      (3, 1)
    """
    dtype = compute_dtype(precision)
    rounded = rounds_matmul_operands(precision)

    def forward(params: Any, rest: Any, x: Any, *states: Any) -> Any:
        with _bfloat16_dot.bfloat16_operands(rounded):
            model = nnx.merge(graphdef, cast_floating(params, dtype), rest, *states, copy=True)
            out = call_model(model, cast_floating(x, dtype))
        return out if dtype is None else upcast_low_precision(out)

    return forward


__all__ = [
    "FLOAT16_ON_CPU",
    "PRECISIONS",
    "canonical_precision",
    "cast_floating",
    "compute_dtype",
    "make_forward",
    "rounds_matmul_operands",
    "upcast_low_precision",
]
