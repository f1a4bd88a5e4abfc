"""The per-step LSTM over a sequence with a hand-written backward pass (private).

:func:`lstm_scan` is :func:`nnjax.functional.lstm`'s per-step formulation. Its forward
scan does one ``[x_t, h_{t-1}] @ [w_x; w_h]`` matmul per step (forward only too) and
keeps stacks of the carries ``h_t`` (also the outputs) and ``c_t`` and of the four gate
activations, one stack per gate. Its backward scan carries only ``(dh, dc)`` and does
one matmul per step (``dz_t @ w_h.T``); the weight gradient is then ONE
``(in+H, T*B) @ (T*B, 4H)`` matmul over every step (accumulated in float32), the bias
gradient one sum, and the input gradient one batched matmul. ``h_{t-1}`` and ``c_{t-1}``
are read from the stacks, not stored twice.

Under ``fit(precision="bfloat16")`` (the model traced in
``_bfloat16_dot.bfloat16_operands``) in a program whose matmuls run on YNNPACK
(``_conv_compiler.ynn_matmuls``: ``fit`` compiles an LSTM model's step so on an AMX
CPU, ``nnjax.train.dispatch_choices.eigen_dots_for``) the matmuls take operands rounded
to bfloat16 and sum in float32 (:func:`rounding_for`): the weight gradient always
(:func:`weight_grad`; YNNPACK's AMX kernels ran it in 1.8 ms against 6.5 for float32's
at batch 128), and the per-step matmuls of both scans above :data:`BFLOAT16_SCAN_ROWS`
rows (the batch the trace sees: over several devices, the whole batch), or from
:data:`BFLOAT16_SCAN_MIN_ROWS` rows where their weight matrix is
:data:`BFLOAT16_SCAN_WEIGHTS` wide (``H`` 151 and up at ``in`` 16). Train step of
``bench_lstm.py``'s classifier (T 64, in 16, H 128), 2-core Intel Xeon with AMX, over
float32's, per-step matmuls float32 / bfloat16 (both with the bfloat16 weight
gradient): batch 8 0.91 / 1.00, 16 0.89 / 0.86, 32 0.75 / 0.86, 48 0.95 / 0.70, 64
0.90 / 0.70, 96 0.92 / 0.75, 128 1.08 / 0.80 (``benchmarks/README.md``, session 39).
There too the stacks between the scans are bfloat16 (``Rounding.residuals``): the
forward keeps ``c_t`` and the gates as bfloat16 bits, the backward widens them and
keeps ``dz`` so, which its weight and input gradients multiply as they are and its bias
gradient sums in float32. The gates, the carries and every elementwise step compute in
float32. The train step over float32's, stacks float32 -> bfloat16: batch 8 0.86 ->
0.82, 32 0.72 -> 0.70, 64 0.68 -> 0.60, 128 0.82 -> 0.70; over two CPU devices 0.61 ->
0.54 at 128 (session 40: less memory traffic per step, in a loop that writes 6 ``(B,
H)`` rows and reads them back).

Being a ``jax.custom_vjp``, it supports reverse mode (``grad``, ``vjp``, and reverse
over reverse) but not forward mode (``jvp``, ``jacfwd``); ``rnn(lstm_cell, ...)`` is
the same function differentiated by autodiff.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _bfloat16, _bfloat16_dot, _conv_compiler, _sharding
from nnjax.functional.recurrent import LSTMState, Params


def _hold(valid: jax.Array | None, new: jax.Array, old: jax.Array) -> jax.Array:
    """``new`` where the step is valid (``valid (B,)``), else ``old``."""
    return new if valid is None else jnp.where(valid[:, None], new, old)


BFLOAT16_SCAN_ROWS = 32
"""Rows above which the scans' per-step matmuls take bfloat16 operands (module docstring)."""

BFLOAT16_SCAN_WEIGHTS = 100_000
"""Elements of the per-step weight matrix from which its matmuls take bfloat16 operands
at :data:`BFLOAT16_SCAN_MIN_ROWS` rows and up, whatever the scan's row threshold.

The row thresholds were measured at ``(in+H, 4H) = (144, 512)`` (the LSTM) and ``(128,
384)`` (the GRU), where YNNPACK's bfloat16 kernels lose at some row counts; a wider
matrix wins from 8 rows up. Train step of ``bench_lstm.py``'s classifier under
``precision="bfloat16"`` (T 64), per-step matmuls bfloat16 / float32, medians of 6
interleaved rounds (``benchmarks/README.md``, session 41, 2-core Intel Xeon with AMX):
the LSTM with ``(in, H)`` = (16, 160) at batch 8, 24, 32: 0.98, 0.91, 0.71; (16, 192):
0.88, 0.77, 0.80; (128, 128): 0.99, 0.87, 0.79; (16, 256) at 8, 16, 32: 0.95, 0.69,
0.58; (16, 512): 0.81, 0.71, 0.59, and 1.01 at batch 4. The GRU at batch 8, H 192 /
256 / 512: 0.94, 0.88, 0.78; at batch 4, H 256 / 512: 1.10, 1.05.
"""

BFLOAT16_SCAN_MIN_ROWS = 8
"""Rows from which a :data:`BFLOAT16_SCAN_WEIGHTS`-wide per-step matmul is bfloat16's."""

EIGEN_ONE_THREAD_MACS = 1_200_000
"""Multiply-adds up to which the forward's per-step matmul blocks run best on Eigen.

Eigen runs a contraction this small on the calling thread; a larger one it shards
across its pool and completes asynchronously, and in a scan each step waits for that:
on a 2-core Intel Xeon with AMX the forward's ``(32, 144) @ (144, 512)`` took 43 us in
its trace event and 17 after it, its two column blocks 29 us in all. So in a program
on Eigen's matmuls a per-step ``(B, in+H) @ (in+H, 4H)`` of at most 4x this is split
into 2 or 4 gate-aligned column blocks of at most this size (:func:`column_blocks`,
rows per device). Train step of ``bench_lstm.py``'s classifier (T 64, in 16, H 128,
float32), blocks / whole, session 40: batch 32 (2 blocks of 1.18M) 0.84-0.87; 48 (4 of
0.88M) 0.92-0.93; 64 (4 of 1.18M) 0.90-0.91; not kept: blocks of 1.77M (batch 48 or 96
in 2 or 4) 1.00-1.05, batch 128 in 8 or 16 1.09 / 1.03 (there Eigen's two threads
win), batch 8 or 16 in 2 1.01-1.02 (already within the limit), the backward's ``dz @
w_h.T`` in blocks too (0.98 at 32, 1.00 at 64), the GRU's ``h @ w_h`` in 3 (1.01 at 32
and 64); over two CPU devices batch 64 and 128 (32 and 64 rows a device) 1.01.
"""


class Rounding(NamedTuple):
    """Which of a recurrence's matmuls take bfloat16 operands, summed in float32 (static)."""

    weight_grad: bool = False
    """The weight gradients after the reverse scan."""
    scan: bool = False
    """The per-step recurrent matmuls of both scans (the LSTM's ``[x, h] @ w``, ``dz @ w_h.T``)."""
    residuals: bool = False
    """The stacks between the scans (gates, cell states, pre-activation gradients) in bfloat16.

    Stored as ``uint16`` bits (:func:`_pack`), widened to float32 where the backward
    scan reads them; the pre-activation gradients go to the weight (and input)
    gradients' bfloat16 matmuls as they are, and the bias gradient sums them (in
    float32) after the scan: a sum over the batch inside the scan would all-reduce a
    batch split over devices at every step.
    """


def _matmul(a: jax.Array, w: jax.Array, rounded: bool) -> jax.Array:
    """``a @ w``; ``rounded``: ``a`` rounded to bfloat16 (``w`` already is), float32 sums."""
    return _bfloat16_dot._dot(a, w, a.ndim - 1, 0) if rounded else a @ w


def _operand(w: jax.Array, rounded: bool) -> jax.Array:
    """``w`` as the right operand of :func:`_matmul`: rounded once, outside the loop."""
    return _bfloat16.to_bfloat16(w) if rounded else w


def _pack(a: jax.Array, packed: bool) -> jax.Array:
    """``a`` as a stack between the scans keeps it: bfloat16 bits (``uint16``) if ``packed``."""
    return _bfloat16.bfloat16_bits(a) if packed else a


def _unpack(a: jax.Array) -> jax.Array:
    """A stack's row as the backward scan reads it: float32 from :func:`_pack`'s bits."""
    return _bfloat16.from_bfloat16_bits(a) if a.dtype == jnp.uint16 else a


def _as_bfloat16(stack: jax.Array) -> jax.Array:
    """A stack of :func:`_pack`'s bits as the bfloat16 array they are (no copy)."""
    return lax.bitcast_convert_type(stack, jnp.bfloat16) if stack.dtype == jnp.uint16 else stack


def column_blocks(rows: int, depth: int, width: int, gates: int) -> int:
    """Gate-aligned column blocks for a per-step ``(rows, depth) @ (depth, width)`` matmul.

    More than one only in a program on Eigen's matmuls, for a matmul of at most
    ``gates`` times :data:`EIGEN_ONE_THREAD_MACS` multiply-adds: the fewest blocks (a
    divisor of ``gates``) of at most that many each.

    Example:
      >>> column_blocks(32, 144, 512, 4)  # outside a program on Eigen's matmuls
      1
    """
    if not _conv_compiler.eigen_dot_program():
        return 1
    mesh = jax.sharding.get_abstract_mesh()  # fit's: the batch split over its devices
    macs = rows // (1 if mesh.empty else mesh.size) * depth * width
    fits = [n for n in range(1, gates + 1) if gates % n == 0 and macs <= n * EIGEN_ONE_THREAD_MACS]
    return fits[0] if fits else 1


def _blocked(w: jax.Array, b: jax.Array, rows: int, gates: int, rounded: bool):
    """``a -> a @ w + b`` per step, as :func:`column_blocks`' gate-aligned column blocks."""
    blocks = column_blocks(rows, w.shape[0], w.shape[1], gates)
    ws = lax.optimization_barrier(jnp.split(w, blocks, axis=1)) if blocks > 1 else [w]
    bs = jnp.split(b, blocks)
    return lambda a: [_matmul(a, w_k, rounded) + b_k[None, :] for w_k, b_k in zip(ws, bs)]


def _gates(blocks: list[jax.Array], gates: int) -> tuple[jax.Array, ...]:
    """The ``gates`` pre-activations ``(B, H)`` held in :func:`_blocked`'s blocks."""
    return tuple(g for z in blocks for g in jnp.split(z, gates // len(blocks), axis=-1))


def _forward(
    w_x, w_h, b, xs_t, h0, c0, valid, reverse: bool, unroll: int, keep: bool, pre: bool,
    rounded: bool = False, packed: bool = False,
):  # fmt: skip
    """Scans the LSTM; returns ``((h, c), hs)`` or, with ``keep``, ``((h, c), (hs, cs, acts))``.

    With ``pre`` every step's ``x_t @ w_x + b`` is one matmul before the scan, and each
    step does ``h @ w_h`` only (the GPU/TPU default; the backward pass is the same).

    ``hs``/``cs`` stack the carries (held past a sequence's length). Each step's
    pre-activations are ``[x, h] @ [w_x; w_h]``, one matmul: behind an optimization
    barrier, for XLA's simplifier otherwise splits a matmul of a concatenation into
    ``x @ w_x + h @ w_h``, two matmuls per step (forward only, ``T=64``, ``in=16``,
    ``H=128``, 2-core AMD EPYC, wall clock: one / two matmuls 0.68x at batch 128, 0.98x
    at 32, 0.94x at 1; the training step 0.97x at batch 128, 1.01x at 32).

    ``rounded``: every matmul takes bfloat16 operands (:class:`Rounding`'s ``scan``);
    ``packed``: ``cs`` and ``acts`` in bfloat16 bits (:class:`Rounding`'s ``residuals``).
    """
    if pre:
        xs_t = _matmul(xs_t, _operand(w_x, rounded), rounded) + b[None, None, :]
        w_h_op = _operand(w_h, rounded)
        pre_activations = lambda x, h: [x + _matmul(h, w_h_op, rounded)]
    else:  # in column blocks of whole gates on Eigen (EIGEN_ONE_THREAD_MACS)
        w = _operand(jnp.concatenate([w_x, w_h], axis=0), rounded)
        matmul = _blocked(w, b, xs_t.shape[1], 4, rounded)
        pre_activations = lambda x, h: matmul(
            lax.optimization_barrier(jnp.concatenate([x, h], axis=-1))
        )

    def step(carry, inputs):
        h, c = carry
        x, ok = inputs
        i, f, g, o = _gates(pre_activations(x, h), 4)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c_new = f * c + i * g
        h_new, c_new = _hold(ok, o * jnp.tanh(c_new), h), _hold(ok, c_new, c)
        if not keep:
            return (h_new, c_new), h_new
        # c and each gate stacked as (T, B, 1, H) (free reshapes), apart from the fill of
        # hs's buffer; XLA fills one and copies it for the other four (a distinct shape
        # per stack, five fills: 0.99 / 1.02 at batch 32 / 128, no gain). One
        # stack per gate, not one (T, B, 4, H) stack: the backward's fusions then read
        # a contiguous (B, H) block per gate and step, where slicing one gate out of
        # the interleaved block made them 2-3x slower (train step, T 64, in 16, H 128,
        # 2-core AMD EPYC, interleaved A/B, per-gate / one stack: 0.85, 0.86 at batch 32;
        # 0.92, 0.87 at 128; 0.94 at 8; results bitwise the same).
        kept = tuple(_pack(a, packed)[:, None] for a in (c_new, i, f, g, o))
        return (h_new, c_new), (h_new, kept[0], kept[1:])

    return lax.scan(step, (h0, c0), (xs_t, valid), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9))
def _lstm(w_x, w_h, b, xs_t, h0, c0, reverse, unroll, pre, rounding, valid):
    args = (w_x, w_h, b, xs_t, h0, c0, valid, reverse, unroll)
    (h, c), hs = _forward(*args, False, pre, rounding.scan)
    return hs, h, c


def _lstm_fwd(w_x, w_h, b, xs_t, h0, c0, reverse, unroll, pre, rounding, valid):
    args = (w_x, w_h, b, xs_t, h0, c0, valid, reverse, unroll)
    (h, c), (hs, cs, acts) = _forward(*args, True, pre, rounding.scan, rounding.residuals)
    return (hs, h, c), (w_x, w_h, b, xs_t, h0, c0, valid, hs, cs, acts)


def _previous(stack: jax.Array, t: jax.Array, first: jax.Array, reverse: bool) -> jax.Array:
    """The carry before step ``t``: ``stack[t -/+ 1]``, or ``first`` (its shape) at the first."""
    steps = stack.shape[0]
    prev = t + 1 if reverse else t - 1
    inside = (prev < steps) if reverse else (prev >= 0)
    row = lax.dynamic_index_in_dim(stack, jnp.clip(prev, 0, steps - 1), keepdims=False)
    return jnp.where(inside, _unpack(row), first)


def previous_stack(hs: jax.Array, h0: jax.Array, reverse: bool) -> jax.Array:
    """``(T, B, H)``: the carry each step started from (``h0`` first, in scan order)."""
    return jnp.concatenate([hs[1:], h0[None]]) if reverse else jnp.concatenate([h0[None], hs[:-1]])


def batch_major_outputs(hs: jax.Array, valid: jax.Array | None) -> jax.Array:
    """The stacked carries ``(T, B, H)`` as outputs ``(B, T, H)``, zero past each length."""
    ys = hs if valid is None else jnp.where(valid[..., None], hs, jnp.zeros_like(hs))
    return jnp.swapaxes(ys, 0, 1)


def _lstm_bwd(reverse, unroll, pre, rounding, saved, cotangents):
    w_x, w_h, b, xs_t, h0, c0, valid, hs, cs, acts = saved
    d_hs, d_h, d_c = cotangents
    w_h_t = _operand(w_h.T, rounding.scan)
    packed = rounding.residuals

    def step(carry, inputs):
        dh_out, dc_out = carry
        t, dy, a, c_t, ok = inputs
        i, f, g, o = (_unpack(gate[:, 0]) for gate in a)
        c_prev = _previous(cs, t, c0[:, None], reverse)[:, 0]
        tanh_c = jnp.tanh(_unpack(c_t[:, 0]))
        dh_in = dh_out + dy
        dh = _hold(ok, dh_in, jnp.zeros_like(dy))
        dc = _hold(ok, dc_out, jnp.zeros_like(dc_out)) + dh * o * (1 - tanh_c * tanh_c)
        dz = jnp.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
             dh * tanh_c * o * (1 - o)],
            axis=-1,
        )  # fmt: skip
        dh_prev, dc_prev = _matmul(dz, w_h_t, rounding.scan), dc * f
        if ok is not None:  # a held step passes the carry's cotangent straight through
            dh_prev = dh_prev + _hold(ok, jnp.zeros_like(dh_in), dh_in)
            dc_prev = dc_prev + _hold(ok, jnp.zeros_like(dc_out), dc_out)
        return (dh_prev, dc_prev), _pack(dz, packed)

    inputs = (jnp.arange(xs_t.shape[0]), d_hs, acts, cs, valid)
    (dh0, dc0), dz = lax.scan(step, (d_h, d_c), inputs, reverse=not reverse, unroll=unroll)
    dz = _as_bfloat16(dz)  # packed: multiplied as it is below
    h_prev = previous_stack(hs, h0, reverse)
    inputs_t = jnp.concatenate([xs_t, h_prev], axis=-1)
    dw, db = weight_grad(inputs_t, dz, w_x.dtype, rounding.weight_grad or packed)
    n_in = w_x.shape[0]
    dxs = _matmul(dz, w_x.T, packed)
    return dw[:n_in], dw[n_in:], db.astype(b.dtype), dxs, dh0, dc0, None


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def weight_grad(
    inputs: jax.Array, d_pre: jax.Array, dtype, bfloat16: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``(sum_t inputs_t^T d_pre_t, sum_t d_pre_t)`` over ``(T, B, *)`` as one matmul.

    One ``dot_general`` contracting both ``T`` and ``B``: a batch split over a mesh's
    devices stays split (each device sums its rows, XLA all-reduces the ``(in, G)``
    result), where a flattening to ``(T*B, *)`` would gather every row on every device.

    Accumulates in at least float32 (a bfloat16 sum over ``T*B`` terms would lose
    digits); the weight gradient is returned in ``dtype``, the bias sum in the
    accumulation dtype. With ``bfloat16`` the matmul's operands are rounded to bfloat16
    (the sums stay float32), in the form XLA:CPU hands to YNNPACK's bfloat16 kernels
    (``_bfloat16_dot``): the inputs written out as ``(in, T, B)``, row-major, so that the
    contracted axes come last. The bias sum is the unrounded one either way.

    Example:
      >>> dw, db = weight_grad(jnp.ones((2, 3, 4)), jnp.ones((2, 3, 5)), jnp.float32, True)
      >>> dw.shape, dw.dtype, db.shape
      ((4, 5), dtype('float32'), (5,))
    """
    acc = jnp.promote_types(d_pre.dtype, jnp.float32)
    batch = _sharding.batch_axis(d_pre, axis=1)  # (T, B, G)
    out_sharding = _sharding.replicated(batch)
    if bfloat16:
        dw = _bfloat16_dot.leading_contraction(inputs, d_pre, out_sharding)
    else:
        dims = (((0, 1), (0, 1)), ((), ()))
        dw = lax.dot_general(
            inputs, d_pre, dims, preferred_element_type=acc, out_sharding=out_sharding
        )
    return dw.astype(dtype), jnp.sum(d_pre, axis=(0, 1), dtype=acc)


def rounding_for(rows: int, scan_rows: int = BFLOAT16_SCAN_ROWS, weights: int = 0) -> Rounding:
    """A recurrence's bfloat16 matmuls for a batch of ``rows``, traced now (module docstring).

    None outside ``fit(precision="bfloat16")``'s programs on YNNPACK's matmuls; there
    the weight gradient, and the scans' matmuls above ``scan_rows`` rows (the GRU's:
    8), or from :data:`BFLOAT16_SCAN_MIN_ROWS` rows where their weight matrix has
    ``weights`` >= :data:`BFLOAT16_SCAN_WEIGHTS` elements.

    Example:
      >>> rounding_for(64)
      Rounding(weight_grad=False, scan=False, residuals=False)
    """
    # fit(precision="bfloat16")'s step on YNNPACK's matmuls
    native = _bfloat16_dot.rounding_operands() and _conv_compiler.ynn_matmuls()
    wide = weights >= BFLOAT16_SCAN_WEIGHTS and rows >= BFLOAT16_SCAN_MIN_ROWS
    return Rounding(
        weight_grad=native, scan=native and (rows > scan_rows or wide), residuals=native
    )


def lstm_scan(
    p: Params,
    xs: jax.Array,
    state: LSTMState,
    valid: jax.Array | None,
    reverse: bool,
    unroll: int,
    precompute: bool = False,
) -> tuple[LSTMState, jax.Array]:
    """The LSTM over ``xs (B, T, in)`` from ``state``; arguments already checked and cast.

    Args:
      p: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}`` in the dtype of ``xs``.
      xs: ``(B, T, in)``.
      state: ``LSTMState(h (B, H), c (B, H))`` in the dtype of ``xs``.
      valid: ``(T, B)`` booleans (step ``t`` of sequence ``b`` is within its length),
        or ``None``: past a length the carry is held and the output is zero.
      reverse: scan from the last step to the first.
      unroll: ``lax.scan``'s ``unroll``, for both scans.
      precompute: project every step's input in one matmul before the scan.

    Returns:
      ``(LSTMState(h, c), ys (B, T, H))``, as ``rnn(lstm_cell, ...)``.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell_init
      >>> p = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> zeros = LSTMState(jnp.zeros((2, 5)), jnp.zeros((2, 5)))
      >>> state, ys = lstm_scan(p, jnp.ones((2, 7, 3)), zeros, None, False, 1)
      >>> ys.shape
      (2, 7, 5)
    """
    xs_t = jnp.swapaxes(xs, 0, 1)
    weights = (p["w_x"], p["w_h"], p["b"])
    depth = p["w_h"].shape[0] if precompute else p["w_x"].shape[0] + p["w_h"].shape[0]
    rounding = rounding_for(xs.shape[0], weights=depth * p["w_h"].shape[1])  # per-step matmul
    hs, h, c = _lstm(*weights, xs_t, state.h, state.c, reverse, unroll, precompute, rounding, valid)
    return LSTMState(h, c), batch_major_outputs(hs, valid)
