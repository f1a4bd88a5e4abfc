"""Per-model choices of the compiled train dispatch, measured on XLA:CPU.

:func:`steps_per_dispatch_for` (updates per dispatch), :func:`donate_for` (buffer
donation) and :func:`eigen_dots_for` (the matmul library) pick by the model's layer
kinds and the backend; :mod:`nnjax.train.compiled` uses them and re-exports them.
:func:`inference_eigen_dots_for` is the matmul library of the evaluation and prediction
dispatches (:mod:`nnjax.train.eval_blocks`).

Updates per dispatch (:func:`steps_per_dispatch_for`): a rolled device loop of 8
(``lax.fori_loop``, :func:`~nnjax.train.compiled.loop_steps`) for every model on every
backend. Measured on XLA:CPU (2 cores, batch 32, Adam, ms per update; one step per
dispatch / rolled loop / unrolled ``lax.scan`` of 8): 784-500-300-100-10 MLP 3.06 /
1.89 / 2.09, and compile times (MLP one step 5.5 s, rolled loop of 8 4.8 s, unrolled
scan of 8 17.3 s), so the loop is rolled. Models with convolutional, recurrent or
attention layers took one step per dispatch on the CPU until session 24: with
``lax.conv`` under plain ``jit`` (jax 0.4, a loaded 2-core AMD EPYC) XLA:CPU had
differentiated the Fashion-MNIST CNN an order of magnitude slower inside the loop
(19.1 / 204 ms). With ``fit``'s programs as they are now (Eigen convolutions through
:mod:`nnjax.functional._conv_compiler`, the recurrences' own backward passes; jax
0.10.2, 2-core Intel Xeon with AMX, ``benchmarks/bench_dispatch.py``, whole ``fit``
epochs, interleaved, paired medians, 8 / 1; ``benchmarks/results/dispatch_*_s24.json``):
the Fashion-MNIST CNN 0.94 at batch 32 and 0.90 at 128, a CIFAR-sized CNN 0.94 (batch
8) and 0.93 (32), the LSTM classifier 0.98 / 0.93 (batch 32 / 128), the GRU's 0.94 /
0.92, a transformer encoder block 0.83 (T 128, D 256, batch 32), the first epoch (the
compile) no longer. :func:`~nnjax.train.compiled.scan_steps` keeps unrolling fully by default (a
rolled scan measured as fast for dense and recurrent models and compiles in one step's
time: pass ``unroll=1`` for those).

The exception: convolutional models on a CPU whose convolutions stay on YNNPACK
(``XLA_FLAGS`` keeps ``INDIVIDUAL_CONVOLUTION`` in XLA:CPU's YNNPACK fusion types, which
:func:`~nnjax.functional._conv_compiler.compiler_options` leaves alone). There the rolled
loop is what session 24 had measured before: the Fashion-MNIST CNN's ``fit`` (one device,
batch 128, 8 updates an epoch, jax 0.10.2, 2-core Intel Xeon with AMX) took 37.6 s an
epoch in a loop of 8 against 0.59 s one update per dispatch (0.38 s with nnjax's
options and the loop), so such models take one.

Buffer donation (:func:`donate_for`), same runs, ms per update with / without donation,
one step per dispatch: MLP 16.4 / 19.0, CNN 288 / 192 and 331 / 272, LSTM 108 / 98
and 141 / 99 (in a rolled loop of 8 the two were within noise, and were again in
session 24: donated / not 0.99-1.00 for the CNN and the LSTM at batch 32 and 128). On
the CPU, donation is therefore kept for dense models only; on accelerators it is
always on (it halves the memory of the parameters and optimizer state).

Example:
  On an accelerator every model donates its state:

  >>> from flax import nnx
  >>> from nnjax.nn import LSTM
  >>> donate_for(nnx.graphdef(LSTM(2, 4, rngs=nnx.Rngs(0))), "gpu")
  True
"""

from __future__ import annotations

import jax
from flax import nnx

from nnjax import _hardware
from nnjax.functional import _conv_compiler
from nnjax.train.precision import rounds_matmul_operands

DEFAULT_STEPS_PER_DISPATCH = 8
"""Updates per dispatch, every model and backend (see the module docstring)."""

#: Module class names after which donation measured slower on XLA:CPU.
_NO_DONATE_KINDS = ("Conv", "LSTM", "GRU", "RNN", "Recurrent")

#: Module class names after which matmuls on Eigen measured faster on XLA:CPU.
_EIGEN_DOT_KINDS = ("LSTM",)

#: The same, where the CPU has AVX-512 (measured on an Intel Xeon; slower at batch 32 on AVX2).
_AVX512_EIGEN_DOT_KINDS = ("GRU",)


def steps_per_dispatch_for(model: nnx.Module, backend: str | None = None) -> int:
    """``fit``'s default updates per dispatch: :data:`DEFAULT_STEPS_PER_DISPATCH` (8).

    The same for every model and backend, as measured (the module docstring), but for
    convolutional models on a CPU whose convolutions stay on YNNPACK
    (:func:`nnjax.functional._conv_compiler.ynn_convolutions`: ``XLA_FLAGS`` keeps them
    there): one, since a rolled loop of 8 ran their epoch 64x slower. Elsewhere, on the
    CPU a rolled loop of 8 updates ran 2-17% faster per update than one update per
    dispatch for convolutional, recurrent and attention models too, and on an NVIDIA
    H200 the host's time per dispatch dominated one step per dispatch
    (``benchmarks/bench_fit.py``: the CNN's ``fit`` on arrays at 0.23x the throughput
    of the bare step, where the MLP's, at 8 per dispatch, ran at 2.1x); with 8 the
    CNN's then ran at 1.01x.

    Args:
      model: the Flax NNX model ``fit`` trains.
      backend: the JAX backend (``"cpu"``, ``"gpu"``, ``"tpu"``); default JAX's.

    Returns:
      ``fit``'s default ``steps_per_dispatch`` for it (train steps per compiled call).

    Example:
      >>> from flax import nnx
      >>> conv = nnx.Conv(1, 2, (3, 3), rngs=nnx.Rngs(0))
      >>> steps_per_dispatch_for(conv, "cpu"), steps_per_dispatch_for(conv, "gpu")
      (8, 8)
    """
    if _conv_compiler.ynn_convolutions(backend) and has_layer_kind(nnx.graphdef(model), ("Conv",)):
        return 1
    return DEFAULT_STEPS_PER_DISPATCH


def donate_for(graphdef: nnx.GraphDef, backend: str | None = None) -> bool:
    """Whether the train dispatch donates its state: off on CPU for conv/recurrent models.

    See the module docstring for the measurements. ``backend`` defaults to JAX's.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP, CNN
      >>> donate_for(nnx.graphdef(MLP(2, (4,), 1, rngs=nnx.Rngs(0))), "cpu")
      True
      >>> donate_for(nnx.graphdef(CNN((8, 8, 1), 2, rngs=nnx.Rngs(0))), "cpu")
      False
    """
    if (backend or jax.default_backend()) != "cpu":
        return True
    return not has_layer_kind(graphdef, _NO_DONATE_KINDS)


def eigen_dots_for(
    graphdef: nnx.GraphDef, backend: str | None = None, precision: str | None = None
) -> bool:
    """Whether the train dispatch runs its matmuls on Eigen: on CPU for LSTM and GRU models.

    LSTM models on every CPU; GRU models where the CPU has AVX-512 (:func:`_hardware.avx512`).
    But an LSTM or GRU model's step under ``precision="bfloat16"`` on a CPU with AMX takes
    YNNPACK's: there ``F.lstm`` and ``F.gru`` multiply bfloat16 operands on AMX's tiles
    (their weight gradients and per-step matmuls: ``nnjax.functional._lstm_scan``,
    ``_gru_scan``), which Eigen would widen to float32 (GRU: see ``_gru_scan``'s
    figures). The LSTM: ``bench_lstm.py``'s classifier, 2-core Intel Xeon
    with AMX, jax 0.10.2, step with ``precision="bfloat16"`` / float32's, paired medians
    of 10-15 interleaved rounds, Eigen's float32 matmuls (before) -> now: batch 8 0.99 ->
    0.84-0.91, 16 0.99 -> 0.89, 32 1.00 -> 0.75-0.78, 64 1.00 -> 0.69-0.70, 96 0.99 ->
    0.75, 128 0.99 -> 0.80-0.83, 256 0.99 -> 0.83 (48: 0.70); over two CPU devices 0.99
    -> 0.96 at batch 32, 0.63 at 64, 1.04 -> 0.59 at 128. AVX512-BF16 CPUs without AMX
    (AMD Zen 4, Zen 5) were not measured for it and keep Eigen's.

    XLA:CPU sends matmuls to YNNPACK by default, which ran the LSTM's small per-step
    matmuls on one thread; Eigen's use both cores of a 2-core AMD EPYC (Zen 2, AVX2).
    The LSTM classifier of ``benchmarks/bench_lstm.py`` (``T=64``, ``in=16``,
    ``H=128``, Adam), wall clock, medians of 16-30 interleaved steps in alternating
    order, Eigen / YNNPACK: batch 128 0.95, 0.91, 0.93, 0.93, 0.92, 0.90; batch 32 0.91,
    0.92, 0.91, 0.89, 0.98, 0.84. In six runs of the benchmark script (its
    ``nnjax_ynn_dots`` peer) batch 128 gave 0.87, 0.91, 0.94, 1.05, 0.96, 0.89, but
    batch 32 1.10, 1.08, 0.91, 1.04, 1.07, 0.89: a gain at batch 128; at 32 the two
    measurements disagree (unexplained). Not taken for MLPs (batch 1 / 32 / 256: 1.03 /
    0.92 / 0.99) or CNNs (batch 32 / 128: 1.01 / 1.03). See
    :func:`nnjax.functional._conv_compiler.compiler_options`.

    GRU models: on that AVX2 CPU Eigen / YNNPACK was 1.14-1.19 at batch 32 and 0.86-0.94
    at 128 (its input and recurrent matmuls are separate, and the narrow input one lost),
    so they stay on YNNPACK without AVX-512. On a 2-core Intel Xeon with AVX-512 (and
    AMX), ``bench_lstm.py --cell gru --peers nnjax,nnjax_eigen_dots,flax_nnx,torch
    --repeats 30`` (paired medians (IQR) of the train step): 0.94 (0.90-0.99) at batch
    32 and 0.84 (0.74-0.92) at 128; ``F.gru``'s gradient alone 0.97 and 0.83. AMD's
    AVX-512 CPUs (Zen 4, Zen 5) were not measured for this choice.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import LSTM, MLP
      >>> eigen_dots_for(nnx.graphdef(LSTM(2, 4, rngs=nnx.Rngs(0))), "cpu")
      True
      >>> eigen_dots_for(nnx.graphdef(MLP(2, (4,), 1, rngs=nnx.Rngs(0))), "cpu")
      False
    """
    if (backend or jax.default_backend()) != "cpu":
        return False
    bfloat16_amx = _hardware.amx_bfloat16() and rounds_matmul_operands(precision, "cpu")
    if bfloat16_amx and has_layer_kind(graphdef, _EIGEN_DOT_KINDS + _AVX512_EIGEN_DOT_KINDS):
        return False
    kinds = _EIGEN_DOT_KINDS + (_AVX512_EIGEN_DOT_KINDS if _hardware.avx512() else ())
    return has_layer_kind(graphdef, kinds)


def inference_eigen_dots_for(
    graphdef: nnx.GraphDef, backend: str | None = None, precision: str | None = None
) -> bool:
    """Whether a forward-only dispatch runs its matmuls on Eigen: recurrent models with AVX-512.

    ``evaluate``, ``predict`` and ``fit``'s validation compile their dispatches as ``fit``
    compiles its step (:func:`nnjax.functional._conv_compiler.jit`: Eigen's convolutions,
    ``fit``'s vector width), with this choice of matmul library: as :func:`eigen_dots_for`
    (so under ``precision="bfloat16"`` with AMX the recurrences multiply bfloat16 operands
    on YNNPACK), and only where the CPU has AVX-512 (:func:`_hardware.avx512`), else
    YNNPACK's (XLA:CPU's default). ``predict`` of 4,096 sequences of the classifier of
    ``benchmarks/bench_lstm.py`` (``T=64``, ``in=16``, ``H=128``), 2-core Intel Xeon with
    AVX-512 and AMX, jax 0.10.2, separate processes, two each, ms under plain ``jax.jit`` /
    this compile with YNNPACK's matmuls / with Eigen's: GRU at batch 32 369-375 / 331-333 /
    293-310, at 128 404-415 / 397-402 / 247-263. The LSTM then took longer on Eigen (619-633
    against 447-458 ms at batch 32); since its forward's per-step matmul runs in column
    blocks on Eigen (``nnjax.functional._lstm_scan.EIGEN_ONE_THREAD_MACS``) it no longer
    does. One predict call, in-process A/B, paired medians (IQR) of 12-20 interleaved rounds
    of 5 calls, Eigen / YNNPACK (``benchmarks/README.md``, session 43): the classifier at
    batch 1 1.01, 8 0.91, 32 0.92 (0.91-0.93), 64 0.91, 128 1.00 (0.96-1.03), 256 0.72
    (0.71-0.73); two stacked layers (``hidden=(128, 128)``) 0.74 at 32 and 0.97 at 128;
    every step's logits (``all_steps=True``) 0.98 and 0.99. The Fashion-MNIST CNN of
    ``bench_cnn.py`` and the MLP of ``bench_mlp.py`` took the same time either way (CNN
    446-457 against 453-455 ms at batch 32, 224 against 226-230 at 128). CPUs without
    AVX-512 were not measured for it and keep YNNPACK's. The evaluation step under
    ``precision="bfloat16"``, Eigen's float32 matmuls / YNNPACK's bfloat16 ones: LSTM 0.92
    at batch 32 (its per-step matmuls stay float32 up to 32 rows), 1.35 at 128; GRU 1.26 at
    32, 0.88 at 128; the rule follows the train step's.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import LSTM
      >>> inference_eigen_dots_for(nnx.graphdef(LSTM(2, 4, rngs=nnx.Rngs(0))), "gpu")
      False
    """
    return _hardware.avx512() and eigen_dots_for(graphdef, backend, precision)


def has_layer_kind(graphdef: nnx.GraphDef, kinds: tuple[str, ...]) -> bool:
    """Whether a module class of ``graphdef`` has one of ``kinds`` in its name.

    Example:
      >>> from nnjax.nn import CNN
      >>> graphdef = nnx.graphdef(CNN((8, 8, 1), 2, conv_features=(4,), rngs=nnx.Rngs(0)))
      >>> has_layer_kind(graphdef, ("Conv",)), has_layer_kind(graphdef, ("LSTM",))
      (True, False)
    """
    classes = {getattr(node, "type", None) for node in getattr(graphdef, "nodes", ())}
    names = {c.__name__ for c in classes if isinstance(c, type) and issubclass(c, nnx.Module)}
    return any(k in name for name in names for k in kinds)


__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "donate_for",
    "eigen_dots_for",
    "has_layer_kind",
    "inference_eigen_dots_for",
    "steps_per_dispatch_for",
]
