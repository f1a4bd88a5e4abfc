"""Markov chains: transition matrices, sampled paths and the stationary distribution.

A chain on states ``0, ..., S−1`` is given by its row-stochastic transition matrix
``P`` (``P[i, j]`` is the probability of moving from ``i`` to ``j``; every row sums to 1).
A distribution over states evolves as ``p ← p P``; a stationary distribution ``π``
satisfies ``π P = π`` and, for an irreducible aperiodic chain, is also the long-run
fraction of time a sampled path spends in each state.

The functions that take ``P`` check a concrete (not traced) one: every entry finite and
``>= 0``, every row sum within ``max(1e-3, (2 + log2 S) eps)`` of 1, with ``eps`` the
machine epsilon of its dtype (``1e-6`` in place of ``1e-3`` for float64), so the
rounding of :func:`transition_matrix` in float16 or bfloat16 passes.
:func:`stationary_distribution` and :func:`distribution_after` compute in at least
float32 and return the dtype of ``P``.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from nnjax import classic
  >>> p = classic.transition_matrix(jnp.array([[9.0, 1.0], [5.0, 5.0]]))
  >>> [round(v, 4) for v in classic.stationary_distribution(p).tolist()]
  [0.8333, 0.1667]
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks, losses
from nnjax.classic import _args


def transition_matrix(weights: jax.typing.ArrayLike) -> jax.Array:
    """Normalises nonnegative weights (e.g. transition counts) row by row.

    Args:
      weights: ``(S, S)``, nonnegative, floating; every row with a positive sum.

    Returns:
      ``(S, S)`` row-stochastic matrix, the dtype of ``weights``.

    Raises:
      nnjax.ShapeError: ``weights`` is not square.
      TypeError: ``weights`` is not floating.
      ValueError: ``weights`` is ``(0, 0)`` (no states), or (for concrete input) naming
        the first negative or non-finite (NaN, inf) entry, or a row that sums to 0 or
        overflows to inf.

    Example:
      >>> transition_matrix(jnp.array([[1.0, 3.0], [2.0, 0.0]]))
      Array([[0.25, 0.75],
             [1.  , 0.  ]], dtype=float32)
    """
    w = _check_square("transition_matrix", "weights", weights)
    if not isinstance(w, jax.core.Tracer):
        bad = ~((w >= 0) & jnp.isfinite(w))  # NaN fails `w < 0` as well as `w >= 0`
        if bool(jnp.any(bad)):
            i, j = (int(k[0]) for k in jnp.nonzero(bad))
            value = float(w[i, j])
            why = "< 0" if value < 0 else "is not finite"
            raise ValueError(f"transition_matrix: `weights[{i}, {j}]` = {value} {why}")
        sums = jnp.sum(w, axis=1)
        if bool(jnp.any(sums <= 0)):
            i = int(jnp.argmax(sums <= 0))
            raise ValueError(f"transition_matrix: row {i} of `weights` sums to 0")
        if not bool(jnp.all(jnp.isfinite(sums))):
            i = int(jnp.argmin(jnp.isfinite(sums)))
            raise ValueError(
                f"transition_matrix: row {i} of `weights` sums to inf in {w.dtype} "
                "(overflow); scale the weights down"
            )
    return w / jnp.sum(w, axis=1, keepdims=True)


def stationary_distribution(transitions: jax.typing.ArrayLike) -> jax.Array:
    """The distribution ``π`` with ``π P = π`` and ``Σ π = 1`` (least squares; jit-able).

    Solves the stacked linear system ``[Pᵀ − I; 1ᵀ] π = [0; 1]``; for an irreducible chain
    the solution is unique.

    Args:
      transitions: ``(S, S)`` row-stochastic ``P``, floating.

    Returns:
      ``(S,)``, the dtype of ``transitions`` (computed in at least float32, so float16
      and bfloat16 work too).

    Raises:
      nnjax.ShapeError: ``transitions`` is not square.
      TypeError: ``transitions`` is not floating.
      ValueError: ``transitions`` is ``(0, 0)`` (no states), or (for concrete input)
        has a negative or non-finite entry or a row that does not sum to 1.

    Example:
      >>> stationary_distribution(jnp.array([[0.0, 1.0], [1.0, 0.0]])).round(4)
      Array([0.5, 0.5], dtype=float32)
    """
    p = _check_stochastic("stationary_distribution", "transitions", transitions)
    s, dtype = p.shape[0], _work_dtype(p)  # lstsq has no float16/bfloat16 kernel
    a = jnp.concatenate([p.T.astype(dtype) - jnp.eye(s, dtype=dtype), jnp.ones((1, s), dtype)])
    b = jnp.zeros((s + 1,), dtype).at[-1].set(1)
    return jnp.linalg.lstsq(a, b)[0].astype(p.dtype)


def distribution_after(
    transitions: jax.typing.ArrayLike, initial: jax.typing.ArrayLike, steps: int
) -> jax.Array:
    """The state distribution ``p_0 P^steps`` after ``steps`` transitions from ``p_0``.

    ``P^steps`` is built by repeated squaring (``log2(steps)`` products, computed in at
    least float32), each square's rows clipped at 0 and renormalised to sum to 1, so
    rounding does not accumulate: ``p_0 P^steps`` keeps the sum of ``p_0`` (a
    distribution stays one) even for ``steps = 10**8``.

    Args:
      transitions: ``(S, S)`` row-stochastic ``P``, floating.
      initial: ``(S,)`` distribution ``p_0``, an array or a list (cast to the dtype of
        ``transitions``).
      steps: the number of transitions, a non-negative int.

    Returns:
      ``(S,)``, the dtype of ``transitions``.

    Raises:
      nnjax.ShapeError: ``transitions`` is not square, or ``initial`` is not ``(S,)``.
      TypeError: ``transitions`` is not floating.
      ValueError: ``transitions`` is ``(0, 0)`` (no states), or (for concrete input)
        has a negative or non-finite entry or a row that does not sum to 1.
      ValueError: ``steps`` is not a non-negative int.

    Example:
      >>> p = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> distribution_after(p, jnp.array([1.0, 0.0]), 3)
      Array([0., 1.], dtype=float32)
    """
    steps = _checks.positive_int("distribution_after", "steps", steps, minimum=0)
    p = _check_stochastic("distribution_after", "transitions", transitions)
    p0 = jnp.asarray(initial)
    _checks.check_shape("distribution_after", "initial", p0, (p.shape[0],))
    dtype = _work_dtype(p)
    dist, power = p0.astype(p.dtype).astype(dtype), p.astype(dtype)  # power = P^(2^k)
    while steps:
        if steps & 1:
            dist = dist @ power
        steps >>= 1
        if steps:
            power = jnp.maximum(power @ power, 0)
            power = power / jnp.sum(power, axis=1, keepdims=True)
    return dist.astype(p.dtype)


def sample_path(
    key: jax.Array, transitions: jax.typing.ArrayLike, start: int | jax.Array, steps: int
) -> jax.Array:
    """Samples a path of the chain (a ``lax.scan``; jit-compiled).

    Args:
      key: one PRNG key, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``.
      transitions: ``(S, S)`` row-stochastic ``P``, floating.
      start: the initial state, an int (or an integer scalar array) in ``[0, S)``.
      steps: number of transitions, a non-negative int (static).

    Returns:
      ``(steps + 1,)`` int32 states, ``start`` first.

    Raises:
      nnjax.ShapeError: ``transitions`` is not square, or ``start`` is not a scalar.
      TypeError: ``transitions`` is not floating, ``start`` is not an integer, or
        ``key`` is not one PRNG key (an int, ``None``, a batch of keys).
      ValueError: ``steps`` is not a non-negative int, or a concrete (not traced)
        ``start`` lies outside ``[0, S)`` (checked before any cast to int32, so
        ``np.int64(2**32)`` is refused, not wrapped) or ``transitions`` has a negative
        or non-finite entry or a row that does not sum to 1, or ``transitions`` is
        ``(0, 0)``.

    Example:
      >>> sample_path(jax.random.key(0), jnp.array([[0.0, 1.0], [1.0, 0.0]]), 0, 4).tolist()
      [0, 1, 0, 1, 0]
    """
    steps = _checks.positive_int("sample_path", "steps", steps, minimum=0)
    _args.check_key("sample_path", "key", key)
    p = _check_stochastic("sample_path", "transitions", transitions)
    host = _unconverted(start)  # the range check sees np.int64(2**32), not its int32 wrap
    _checks.check_rank("sample_path", "start", host, 0)
    _check_states("sample_path", "start", host, p.shape[0])
    start32 = jnp.asarray(host).astype(jnp.int32)  # one trace for all ints
    return _sample_path(key, p.astype(_work_dtype(p)), start32, steps)


@functools.partial(jax.jit, static_argnames=("steps",))
def _sample_path(key: jax.Array, p: jax.Array, start: jax.Array, steps: int) -> jax.Array:
    """The jitted body of :func:`sample_path` (arguments already checked)."""
    log_p = jnp.log(p)

    def step(state, k):
        nxt = jax.random.categorical(k, log_p[state]).astype(jnp.int32)
        return nxt, nxt

    _, path = jax.lax.scan(step, start, jax.random.split(key, steps))
    return jnp.concatenate([start[None], path])


def visit_frequencies(path: jax.typing.ArrayLike, num_states: int) -> jax.Array:
    """The fraction of the path's entries in each state, ``(num_states,)`` float32.

    Args:
      path: ``(T,)`` integer states in ``[0, num_states)``, e.g. from :func:`sample_path`.
      num_states: ``S``, the length of the result (static under ``jax.jit``).

    Returns:
      ``(S,)`` float32 frequencies that sum to 1.

    Raises:
      nnjax.ShapeError: ``path`` is not rank 1.
      TypeError: ``path`` is not an integer array.
      ValueError: ``num_states`` is not a positive int, ``path`` is empty, or a
        concrete (not traced) ``path`` has a state outside ``[0, num_states)``
        (checked before any cast to int32).

    Example:
      >>> visit_frequencies(jnp.array([0, 1, 1, 1]), 3)
      Array([0.25, 0.75, 0.  ], dtype=float32)
    """
    num_states = _checks.positive_int("visit_frequencies", "num_states", num_states)
    host = _unconverted(path)  # the range check sees int64 values, not their int32 wrap
    _checks.check_rank("visit_frequencies", "path", host, 1)
    if host.shape[0] == 0:
        raise ValueError("visit_frequencies: `path` is empty; it needs at least one state")
    _check_states("visit_frequencies", "path", host, num_states)
    counts = jnp.bincount(jnp.asarray(host), length=num_states)
    return counts.astype(jnp.float32) / host.shape[0]


def _check_square(op: str, name: str, matrix: jax.typing.ArrayLike) -> jax.Array:
    m = jnp.asarray(matrix)
    _checks.check_floating(op, name, m)
    _checks.check_rank(op, name, m, 2)
    _checks.check_shape(op, name, m, (m.shape[0], m.shape[0]))
    if m.shape[0] == 0:
        raise ValueError(f"{op}: `{name}` has shape (0, 0): a chain needs at least one state")
    return m


def _check_stochastic(op: str, name: str, matrix: jax.typing.ArrayLike) -> jax.Array:
    """A square floating ``matrix``; when concrete, nonnegative with rows summing to 1."""
    p = _check_square(op, name, matrix)
    not_finite = "is not finite (not a probability)"  # NaN passes `v < 0` unnoticed
    losses._check_values(op, name, p, lambda v: ~np.isfinite(v.astype(np.float64)), not_finite)
    losses._check_values(op, name, p, lambda v: v < 0, "< 0 (not a probability)")
    tol = _row_sum_tolerance(p.dtype, p.shape[0])
    sums = jnp.sum(p.astype(_work_dtype(p)), axis=1)
    what = f"is the sum of a row of `{name}`: not 1, so `{name}` is not row-stochastic"
    losses._check_values(op, f"{name}.sum(axis=1)", sums, lambda v: ~(abs(v - 1) <= tol), what)
    return p


def _row_sum_tolerance(dtype: jnp.dtype, num_states: int) -> float:
    """How far from 1 a row sum of a row-stochastic ``(S, S)`` matrix of ``dtype`` may be.

    ``max(1e-3, (2 + log2 S) eps)`` (``1e-6`` in place of ``1e-3`` for float64):
    rounding each entry of a normalised row moves its sum by at most about ``eps``
    (measured: under ``2 eps`` for the rows of :func:`transition_matrix`, up to 1000
    states).

    Example:
      >>> _row_sum_tolerance(jnp.float32, 2), _row_sum_tolerance(jnp.bfloat16, 2)
      (0.001, 0.0234375)
    """
    base = 1e-6 if jnp.dtype(dtype) == jnp.float64 else 1e-3
    eps = float(jnp.finfo(dtype).eps)
    return max(base, (2 + math.log2(max(num_states, 1))) * eps)


def _work_dtype(p: jax.Array) -> jnp.dtype:
    """The dtype to compute in: that of ``p``, at least float32 (for float16/bfloat16)."""
    return jnp.promote_types(p.dtype, jnp.float32)


def _unconverted(x: jax.typing.ArrayLike) -> jax.Array | np.ndarray:
    """A JAX array as is, anything else as a NumPy array (int64 stays int64, unwrapped)."""
    return x if isinstance(x, jax.Array) else np.asarray(x)


def _check_states(op: str, name: str, states: jax.Array | np.ndarray, num_states: int) -> None:
    """Raises unless ``states`` has an integer dtype and, when concrete, lies in ``[0, S)``."""
    if not jnp.issubdtype(states.dtype, jnp.integer):
        raise TypeError(
            f"{op}: argument `{name}` has dtype {states.dtype}, expected integer states"
        )
    what = f"is not a state in [0, {num_states})"
    losses._check_values(op, name, states, lambda v: (v < 0) | (v >= num_states), what)
