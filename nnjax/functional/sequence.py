"""Running recurrent cells over batch-major sequences with ``lax.scan``.

Two formulations give the same result (tested):

* per step: scan the cell itself, projecting ``x_t @ w_x`` inside every step;
* precomputed inputs: project all steps in one ``(B*T, F) @ (F, G*H)`` matmul before
  the scan, which then carries only the recurrent ``h @ w_h``. Available for cells with
  a ``split`` attribute (:class:`~nnjax.functional.recurrent.CellSplit`: the built-in
  ``rnn_cell``, ``lstm_cell`` and ``gru_cell``).

``precompute_inputs=None`` picks per backend, by measurement
(``benchmarks/bench_lstm_formulation.py``, results in ``benchmarks/results/``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks, _hardware
from nnjax.functional import _bfloat16, _eager, _sharding, _utils
from nnjax.functional._conv_compiler import in_library_program
from nnjax.functional._gru_scan import gru_scan
from nnjax.functional._lstm_scan import lstm_scan
from nnjax.functional._masked_scan import cast_carry, scan_masked, scan_precomputed, valid_mask
from nnjax.functional._sequence_checks import PLAIN, read_split_args
from nnjax.functional.recurrent import (
    LSTMState,
    Params,
    gru_cell,
    lstm_cell,
)

Cell = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]


def zero_carry(
    cell: Cell, params: Any, batch_shape: tuple[int, ...], dtype: jax.typing.DTypeLike = jnp.float32
) -> Any:
    """The all-zeros initial carry of ``cell`` for inputs with leading axes ``batch_shape``.

    Args:
      cell: a cell with a ``zero_carry`` attribute, e.g. ``F.lstm_cell``.
      params: the cell's parameters (``w_h`` gives the hidden size ``H``).
      batch_shape: leading axes of the carry, e.g. ``(B,)``.
      dtype: the carry's dtype (float32 by default).

    Returns:
      The carry ``cell`` expects: ``(*batch_shape, H)`` zeros of ``dtype``, or for the
      LSTM an ``LSTMState`` of two such arrays.

    Raises:
      TypeError: ``cell`` has no ``zero_carry`` (a user-defined cell): pass ``state``.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell, lstm_cell_init
      >>> state = zero_carry(lstm_cell, lstm_cell_init(jax.random.key(0), 3, 5), (2,))
      >>> state.h.shape, state.c.shape
      ((2, 5), (2, 5))
    """
    make = getattr(cell, "zero_carry", None)
    if make is None:
        raise TypeError(
            f"rnn: cell {getattr(cell, '__name__', cell)!r} has no `zero_carry` attribute, "
            "so the initial state cannot be built; pass `state` explicitly"
        )
    return make(params, batch_shape, dtype)


def _default_precompute(backend: str | None = None) -> bool:
    """Whether to project all inputs before the scan on ``backend`` (default: current).

    Measured with ``benchmarks/bench_lstm_formulation.py`` (float32, jitted, median):
    see :func:`lstm`'s docstring for the numbers. On XLA:CPU the per-step cell ran
    1.6-3x faster than projecting first, for the LSTM and the GRU alike; on GPU/TPU one
    large matmul replaces T small ones (the known cuDNN-style win).
    """
    return (backend or jax.default_backend()) != "cpu"


def _default_unroll(backend: str | None = None) -> int:
    """Steps unrolled per scan iteration on ``backend`` (default: current), for ``unroll=None``.

    4 on GPU: on an NVIDIA H200 (``benchmarks/bench_lstm_formulation.py``, T 64, F 16,
    H 128, fwd+bwd) it ran :func:`lstm` 1.6x and :func:`gru` 1.7x faster than 1, level
    with 8 at half its compile time. 1 elsewhere: on XLA:CPU unrolling slowed the
    backward pass and multiplied compile time by 2-10x (TPU is not measured).
    """
    return 4 if (backend or jax.default_backend()) == "gpu" else 1


def rnn(
    cell: Cell,
    params: Any,
    xs: jax.typing.ArrayLike,
    state: Any = None,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    unroll: int | None = None,
    precompute_inputs: bool | None = None,
) -> tuple[Any, jax.Array]:
    """Scans ``cell`` over the time axis of batch-major sequences.

    Computes in the dtype of ``xs``: the parameters and the initial state are cast to it.
    Differentiated by autodiff (forward mode too): over several CPU devices its weight
    gradients are summed at every step, unlike :func:`lstm`'s (see the distributed guide).

    Args:
      cell: any ``cell(params, carry, x) -> (new_carry, y)``, e.g. ``F.rnn_cell``,
        ``F.lstm_cell`` or ``F.gru_cell``.
      params: the cell's parameters.
      xs: ``(B, T, F)`` inputs, floating: the compute dtype.
      state: the initial carry (its floating leaves cast to the dtype of ``xs``); ``None``
        starts from zeros (needs ``cell.zero_carry``).
      lengths: ``(B,)`` integer valid lengths (padded batches): outputs past each
        length are zero and the final state is the state after step ``length - 1``
        (with ``reverse``, the scan starts at that step), as PyTorch's packed
        sequences. Concrete values outside ``[0, T]`` raise ``ValueError``.
      reverse: run from the last step to the first (``ys`` stays in input order, so
        ``ys[:, t]`` is the output after reading ``xs[:, t:]``).
      unroll: steps unrolled per scan iteration (``lax.scan``'s ``unroll``); ``None``
        picks per backend, as measured (4 on GPU, 1 elsewhere).
      precompute_inputs: project every step's input before the scan (cells with a
        ``split`` attribute only). ``None`` picks per backend: see :func:`lstm`.

    Returns:
      ``(final_state, ys)``: the carry after the last step (for a built-in cell ``(B, H)``,
      or an ``LSTMState`` of two) and ``ys (B, T, H)``, in the dtype of ``xs``.

    Raises:
      nnjax.ShapeError: wrong shapes, naming the op, argument, expected and actual shape.
      TypeError: ``params`` no dict; ``state=None`` with a cell that has no ``zero_carry``;
        ``precompute_inputs=True`` with a cell that has no ``split``; a ``state`` of
        the wrong structure for a built-in cell (an array for the LSTM, whose state is
        ``LSTMState(h, c)``; an ``LSTMState`` for the GRU or Elman cell); a
        non-floating ``xs``; non-integer ``lengths``; or ``reverse`` that is not a
        Python bool, or ``precompute_inputs`` neither one nor ``None`` (e.g. ``"no"``,
        or a value traced under ``jax.jit``: mark it static).
      ValueError: concrete ``lengths`` outside ``[0, T]``, or ``unroll`` that is not a
        positive Python int (a bool, a float, 0, or a value traced under ``jax.jit``).
      MissingKeyError: a built-in cell's array missing in ``params`` (unknown keys warn).

    Example:
      >>> from nnjax.functional.recurrent import gru_cell, gru_cell_init
      >>> params = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, ys = rnn(gru_cell, params, jnp.ones((2, 7, 3)))
      >>> ys.shape
      (2, 7, 5)
    """
    return _run("rnn", cell, params, xs, state, lengths, reverse, unroll, precompute_inputs)


def _run(
    op, cell, params, xs, state, lengths, reverse, unroll, precompute_inputs, fused=None,
    names=PLAIN,
):  # fmt: skip
    """Shared body of :func:`rnn`, :func:`lstm` and :func:`gru`; ``op`` and ``names`` name errors.

    ``fused(params, xs, state, valid, reverse, unroll, precompute)``, when given, runs
    the cell with its own backward pass in place of autodiff of the scan of ``cell``
    (``lstm``: :func:`_lstm_scan.lstm_scan`, ``gru``: :func:`_gru_scan.gru_scan`).
    """
    reverse = _checks.check_static_bool(op, "reverse", reverse)
    # checked: lax.scan reads True as "all"
    unroll = _checks.positive_int(op, "unroll", _default_unroll() if unroll is None else unroll)
    precompute_inputs = _checks.check_static_bool(
        op, "precompute_inputs", precompute_inputs, allow_none=True
    )
    xs = _utils.as_compute(op, xs, "xs")
    _checks.check_rank(op, "xs", xs, 3)
    split = getattr(cell, "split", None)
    if precompute_inputs and split is None:
        raise TypeError(
            f"{op}: precompute_inputs=True needs a cell with a `split` attribute; "
            f"{getattr(cell, '__name__', cell)!r} has none"
        )
    if split is not None:  # the parameters read before the zero state is built from them
        params, state = read_split_args(cell, op, params, xs, state, names)
    elif state is None:
        state = zero_carry(cell, params, xs.shape[:1], xs.dtype)
    state = cast_carry(jax.tree.map(lambda s: _utils.as_array(op, s, names.state), state), xs.dtype)
    if precompute_inputs is None:
        precompute_inputs = split is not None and _default_precompute()
    lengths = None if lengths is None else _utils.check_lengths(op, lengths, *xs.shape[:2])
    # under a mesh with explicit axes: the carry and lengths sharded as the batch of xs
    state, lengths = _sharding.like_batch((state, lengths), _sharding.batch_axis(xs))
    static = (op, cell, reverse, unroll, bool(precompute_inputs), fused)
    if split is None:  # a user's cell may read Python state: traced at every call
        return _scan(params, xs, state, lengths, *static)
    context = in_library_program()  # how _in_float32's roundings are traced
    return _eager.one_program(_scan, static, context, params, xs, state, lengths)


def _scan(params, xs, state, lengths, op, cell, reverse, unroll, precompute, fused):
    """The scan of checked arguments; eagerly, one program per shape (``_eager.py``)."""
    split = getattr(cell, "split", None)
    if split is not None and _hardware.widen_bfloat16(xs.dtype):
        return _in_float32(op, cell, params, xs, state, lengths, reverse, unroll, precompute, fused)
    if fused is not None and xs.shape[1] == 0:  # no step: the state passes through
        fused, precompute = None, False  # (the custom VJPs index a first step)
    if fused is not None:
        valid = None if lengths is None else valid_mask(lengths, xs.shape[1])
        return fused(_utils.cast_like(params, xs), xs, state, valid, reverse, unroll, precompute)
    if precompute:
        return scan_precomputed(split, params, xs, state, lengths, reverse, unroll)
    step = lambda carry, x: cell(params, carry, x)
    return scan_masked(step, state, jnp.swapaxes(xs, 0, 1), lengths, reverse, unroll)


def _in_float32(op, cell, params, xs, state, lengths, reverse, unroll, precompute, fused):
    """A built-in cell in bfloat16 on a CPU without native bfloat16 (``_hardware``).

    The scan runs in float32 on the bfloat16 values (parameters, inputs, initial state);
    the final state and the outputs are rounded to bfloat16, and the gradients, through
    the casts, are bfloat16 too. XLA:CPU's emulated bfloat16 made ``F.lstm``'s
    forward+backward 3.2x slower than float32 (T 64, F 16, H 128, batch 32); this
    formulation measured 1.0x. Parameters are rounded by :func:`_bfloat16.round_floating`.
    """
    up = lambda tree: jax.tree.map(lambda a: _bfloat16.to_float32(jnp.asarray(a)), tree)
    p32 = up(jax.tree.map(lambda a: _bfloat16.round_floating(a, xs.dtype), params))
    out = _run(op, cell, p32, up(xs), up(state), lengths, reverse, unroll, precompute, fused)
    return jax.tree.map(lambda a: _bfloat16.round_like(a, xs.dtype), out)


def lstm(
    params: Params,
    xs: jax.typing.ArrayLike,
    state: LSTMState | None = None,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    precompute_inputs: bool | None = None,
    unroll: int | None = None,
) -> tuple[LSTMState, jax.Array]:
    """Runs the LSTM over a sequence: equal to ``rnn(lstm_cell, ...)``, the fast path.

    The formulation is chosen per backend by measurement
    (``benchmarks/bench_lstm_formulation.py``; JSON in ``benchmarks/results/``). On
    GPU/TPU the inputs are projected before the scan (one large matmul instead of T
    small ones) and, on GPU, the scan unrolled by 4: on an NVIDIA H200 (T 64, F 16,
    H 128, fwd+bwd, batch 32 / 128) projecting first ran 1.06 / 1.20 ms against 1.06 /
    1.24 per step, and unrolling 1.6x faster than ``unroll=1``, 0.51-0.64x the time of
    PyTorch's cuDNN ``nn.LSTM`` (``benchmarks/README.md``). On XLA:CPU the per-step
    cell measured faster, so it is the CPU default. Median ms, float32, jax 0.10.2,
    2 shared x86 cores (heavily loaded while measuring, so absolute times are inflated;
    variants were timed interleaved, so the ratios hold):

    ==========================  ===========  ===========  ============  ============
    B, T, F, H                  pre fwd      step fwd     pre fwd+bwd   step fwd+bwd
    ==========================  ===========  ===========  ============  ============
    32, 100, 32, 128            248          112          665           368
    256, 50, 64, 256            1456         460          2908          1840
    ==========================  ===========  ===========  ============  ============

    Unrolling the scan by 4 or 8 did not pay on CPU (slower backward, 2-10x compile
    time), so the CPU default stays 1 (re-measured at T 64, F 16, H 128 with
    ``bench_ops.py``: per step 87 / 338 ms at batch 32 / 128, precomputed 241 / 519).

    The per-step formulation has its own backward pass (a ``jax.custom_vjp`` over the
    whole sequence, ``nnjax/functional/_lstm_scan.py``): one ``[x_t, h] @ [w_x; w_h]``
    matmul per forward step, one ``dz_t @ w_h.T`` per reverse step, and the weight
    gradient as ONE ``(in+H, T*B) @ (T*B, 4H)`` matmul after the reverse scan. Against
    autodiff of the scanned cell (``rnn(lstm_cell, ...)``) and PyTorch's ``nn.LSTM``,
    fwd+bwd, jitted, medians of interleaved runs (``benchmarks/bench_lstm_formulation.py
    --sizes bench --autodiff --torch --threads 1 --clock cpu``; T 64, F 16, H 128, CPU
    time, load average 8-12 on 2 cores), ms at batch 32 / 128 in the last run, and the
    ratio to autodiff's time in three runs:

    =============================  ===========  ================  ================
    formulation                    ms 32 / 128  / autodiff, B 32  / autodiff, B 128
    =============================  ===========  ================  ================
    autodiff of the cell (before)  33.5 / 151   1                 1
    custom VJP (the default)       26.7 / 154   0.80, 0.72, 0.81  1.02, 0.93, 0.97
    PyTorch ``nn.LSTM``            25.2 / 134   0.75, 0.87, 0.74  0.89, 0.83, 0.84
    =============================  ===========  ================  ================

    So the default gained 19-28% at batch 32, level at 128. PyTorch's CPU ``nn.LSTM`` is
    oneDNN's fused RNN (0.66-0.77x nnjax's train step on a Zen 5), its ATen loop (oneDNN
    off) 1.7-2.5x (``benchmarks/README.md``). Not kept: ``unroll=2`` of the custom VJP
    0.94 / 1.03x its ``unroll=1`` time; with autodiff, a concatenated ``[x, h]`` matmul
    0.98 / 1.05x, all four gates as one sigmoid (``tanh(g) = 2σ(2g)-1``) 0.96 / 1.04x,
    ``unroll=2`` 1.24 / 1.17x; a custom VJP with two weight-gradient einsums 0.83 /
    1.19x (the ``(16, T*B) @ (T*B, 4H)`` one ran at 8 GFLOP/s). With ``precompute_inputs``
    (the GPU/TPU default) the same backward pass runs after a forward scan of ``h @ w_h``
    only. Being a custom VJP, it supports reverse mode only (``grad``, ``vjp``, reverse
    over reverse); for forward mode (``jvp``, ``jacfwd``) use ``rnn(lstm_cell, ...)``.

    Args:
      params: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}`` from ``F.lstm_cell_init``
        (cast to the dtype of ``xs``).
      xs: ``(B, T, in)``, floating: the compute dtype.
      state: initial ``LSTMState(h (B, H), c (B, H))`` (cast to the dtype of ``xs``);
        ``None`` starts from zeros.
      lengths: ``(B,)`` integer valid lengths, as in :func:`rnn`.
      reverse: run from the last step to the first (``ys`` stays in input order).
      precompute_inputs: compute ``xs @ w_x + b`` for all steps in one matmul before the
        scan. ``None`` picks per backend, as measured.
      unroll: steps unrolled per scan iteration; ``None`` picks per backend.

    Returns:
      ``(final_state, ys)``: ``LSTMState(h (B, H), c (B, H))`` and ``ys (B, T, H)``, all
      in the dtype of ``xs``.

    Raises:
      TypeError: ``state`` is not an ``LSTMState(h, c)`` (or an ``(h, c)`` pair), or
        as :func:`rnn` (a non-floating ``xs``, non-integer ``lengths``, a ``reverse``
        or ``precompute_inputs`` that is not a Python bool).
      nnjax.ShapeError, ValueError, KeyError: as :func:`rnn`.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell_init
      >>> params = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> state, ys = lstm(params, jnp.ones((2, 7, 3)))
      >>> ys.shape, state.c.shape
      ((2, 7, 5), (2, 5))
    """
    return _run(
        "lstm", lstm_cell, params, xs, state, lengths, reverse, unroll, precompute_inputs,
        fused=lstm_scan,
    )  # fmt: skip


def gru(
    params: Params,
    xs: jax.typing.ArrayLike,
    state: jax.Array | None = None,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    precompute_inputs: bool | None = None,
    unroll: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Runs the GRU over a sequence: equal to ``rnn(gru_cell, ...)``.

    With ``precompute_inputs`` the input projection ``xs @ w_x + b_x`` of every step is
    one matmul before the scan; the recurrent half ``h @ w_h + b_h`` stays inside it
    (the cuDNN/PyTorch form keeps ``r * (h U_n + b_hn)``, so only ``b_x`` is hoisted).
    Measured like :func:`lstm` (median ms, same machine and load): per step vs
    precomputed, forward 66 vs 168 and forward+backward 184 vs 292 at
    ``B, T, F, H = 32, 100, 32, 128``; 152 vs 737 and 1018 vs 1532 at
    ``256, 50, 64, 256``. So the CPU default is per step here too.

    Every batch runs with a hand-written backward pass (``nnjax/functional/_gru_scan.py``,
    built like :func:`lstm`'s: one ``dgh_t @ w_h.T`` per reverse step, the weight
    gradients as two matmuls over all steps), per step or with the inputs projected
    first. Against autodiff of the scanned cell, fwd+bwd (T 64, F 16, H 128): 0.80 / 0.77
    at batch 32 in an earlier session; the train step 0.96 (0.92-1.00) at 128 and 1.00
    at 256 (2-core AMD EPYC Zen 5, 20 interleaved rounds). Split over devices (``fit``'s
    data parallelism) it sums the weight gradients once, where autodiff's accumulation
    in the loop made XLA all-reduce them at every step. The custom VJP is reverse mode
    only; forward mode goes through ``rnn(gru_cell, ...)``.

    Args:
      params: ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}`` (cast to
        the dtype of ``xs``).
      xs: ``(B, T, in)``, floating: the compute dtype.
      state: initial ``h (B, H)`` (cast to the dtype of ``xs``); ``None``
        starts from zeros.
      lengths: ``(B,)`` integer valid lengths, as in :func:`rnn`.
      reverse: run from the last step to the first (``ys`` stays in input order).
      precompute_inputs: as in :func:`lstm`; ``None`` picks per backend.
      unroll: steps unrolled per scan iteration; ``None`` picks per backend.

    Returns:
      ``(h_final (B, H), ys (B, T, H))``, in the dtype of ``xs``.

    Raises:
      nnjax.ShapeError, TypeError, ValueError, KeyError: as :func:`rnn`.

    Example:
      >>> from nnjax.functional.recurrent import gru_cell_init
      >>> params = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, ys = gru(params, jnp.ones((2, 7, 3)))
      >>> h.shape, ys.shape
      ((2, 5), (2, 7, 5))
    """
    return _run(
        "gru", gru_cell, params, xs, state, lengths, reverse, unroll, precompute_inputs,
        fused=gru_scan,
    )  # fmt: skip
