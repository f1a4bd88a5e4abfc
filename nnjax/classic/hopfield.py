"""Hopfield networks: Hebbian storage of ±1 patterns, recall and the energy function.

``N`` binary units ``s_i ∈ {−1, +1}`` with symmetric weights and no self-connections.
Storing ``P`` patterns ``ξ^μ`` by the Hebb rule gives ``W = (1/N) Σ_μ ξ^μ ξ^μᵀ`` with a
zero diagonal. Recall updates ``s_i ← sign(Σ_j W_ij s_j)``, all units at once
(synchronous) or one at a time (asynchronous). The energy
``E(s) = −½ sᵀ W s`` never increases under asynchronous updates, so recall settles in a
local minimum; for few patterns (about ``P < 0.14 N``) the stored patterns are such minima
and noisy copies fall back to them. Past that capacity recall degrades.

Every function takes states ``(..., N)``: a batch of states is recalled at once.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from nnjax import classic
  >>> patterns = jnp.sign(jax.random.normal(jax.random.key(0), (3, 100)))
  >>> w = classic.hopfield_store(patterns)
  >>> noisy = patterns.at[:, :10].multiply(-1)
  >>> bool(jnp.all(classic.hopfield_recall(w, noisy) == patterns))
  True
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks, activations, losses
from nnjax.classic import _args


def hopfield_store(patterns: jax.typing.ArrayLike) -> jax.Array:
    """Hebbian weights ``W = (1/N) Σ_μ ξ^μ ξ^μᵀ`` with zero diagonal.

    Args:
      patterns: ``(P, N)`` patterns of ±1, floating.

    Returns:
      ``(N, N)`` symmetric weights, the dtype of ``patterns``.

    Raises:
      nnjax.ShapeError: ``patterns`` is not 2-D ``(P, N)`` (a single pattern is
        ``patterns[None]``).
      TypeError: ``patterns`` is not floating (e.g. an integer ±1 array).

    Example:
      >>> hopfield_store(jnp.array([[1.0, -1.0]]))
      Array([[ 0. , -0.5],
             [-0.5,  0. ]], dtype=float32)
    """
    xi = jnp.asarray(patterns)
    _checks.check_floating("hopfield_store", "patterns", xi)
    _checks.check_rank("hopfield_store", "patterns", xi, 2)
    n = xi.shape[1]
    w = xi.T @ xi / n
    return w * (1 - jnp.eye(n, dtype=w.dtype))


def hopfield_energy(weights: jax.typing.ArrayLike, state: jax.typing.ArrayLike) -> jax.Array:
    """The energy ``E(s) = −½ sᵀ W s`` of each state.

    Args:
      weights: ``(N, N)``, real (cast to the dtype of ``state``).
      state: ``(..., N)`` of ±1, floating.

    Returns:
      ``(...)``, the dtype of ``state``.

    Raises:
      nnjax.ShapeError: ``weights`` is not square, or ``state`` is not ``(..., N)``.
      TypeError: ``state`` is not floating.

    Example:
      >>> w = hopfield_store(jnp.array([[1.0, -1.0]]))
      >>> hopfield_energy(w, jnp.array([[1.0, -1.0], [1.0, 1.0]]))
      Array([-0.5,  0.5], dtype=float32)
    """
    s, w = _check("hopfield_energy", weights, state)
    return -0.5 * jnp.sum((s @ w) * s, axis=-1)


def hopfield_step(weights: jax.typing.ArrayLike, state: jax.typing.ArrayLike) -> jax.Array:
    """One synchronous update: every unit ``s_i ← sign(Σ_j W_ij s_j)`` at once.

    Args:
      weights: ``(N, N)``, real (cast to the dtype of ``state``); ``W[i, j]`` is the
        weight from unit ``j`` to unit ``i`` (for non-symmetric weights, ``s ← sign(W s)``).
      state: ``(..., N)`` of ±1, floating.

    Returns:
      The new state ``(..., N)`` of ±1 in the dtype of ``state`` (``sign(0) = +1``).

    Raises:
      nnjax.ShapeError: ``weights`` is not square, or ``state`` is not ``(..., N)``.
      TypeError: ``state`` is not floating.

    Example:
      >>> w = hopfield_store(jnp.array([[1.0, -1.0, 1.0]]))
      >>> hopfield_step(w, jnp.array([1.0, 1.0, 1.0]))
      Array([ 1., -1.,  1.], dtype=float32)
    """
    s, w = _check("hopfield_step", weights, state)
    return activations.sign(s @ w.T)  # row i of w: Σ_j W_ij s_j, for each state


def hopfield_sweep(
    weights: jax.typing.ArrayLike, state: jax.typing.ArrayLike, order: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """Asynchronous updates of the units in ``order``, one at a time (a ``lax.scan``).

    Unit ``i`` is set to ``sign(Σ_j W_ij s_j)`` (row ``i`` of ``W``), as in
    :func:`hopfield_step`.

    Args:
      weights: ``(N, N)``, real (cast to the dtype of ``state``); symmetric with zero
        diagonal for the energy guarantee.
      state: ``(..., N)`` of ±1, floating.
      order: ``(K,)`` integer unit indices in ``[0, N)``, updated in turn (e.g. a
        permutation of ``range(N)`` for one sweep).

    Returns:
      ``(state, energies)``: the state ``(..., N)`` after the ``K`` updates and the
      energy after each update, ``(K, ...)``, both in the dtype of ``state``; for
      symmetric zero-diagonal weights the energy never increases.

    Raises:
      nnjax.ShapeError: ``weights`` is not square, ``state`` is not ``(..., N)``, or
        ``order`` is not rank 1.
      TypeError: ``state`` is not floating, or ``order`` is not an integer array.
      ValueError: a concrete (not traced) ``order`` has an index outside ``[0, N)``
        (JAX would clamp it silently).

    Example:
      >>> w = hopfield_store(jnp.array([[1.0, -1.0, 1.0]]))
      >>> s, e = hopfield_sweep(w, jnp.array([1.0, 1.0, 1.0]), jnp.arange(3))
      >>> s.tolist(), [round(v, 3) for v in e.tolist()]
      ([1.0, -1.0, 1.0], [0.333, -1.0, -1.0])
    """
    s, w = _check("hopfield_sweep", weights, state)
    # The range check sees NumPy int64 indices as they are, not wrapped to int32.
    order = order if isinstance(order, jax.Array) else np.asarray(order)
    _checks.check_rank("hopfield_sweep", "order", order, 1)
    if not jnp.issubdtype(order.dtype, jnp.integer):
        raise TypeError(
            f"hopfield_sweep: argument `order` has dtype {order.dtype}, expected integer "
            "unit indices"
        )
    n = w.shape[0]
    what = f"is not a unit index in [0, {n})"
    losses._check_values("hopfield_sweep", "order", order, lambda v: (v < 0) | (v >= n), what)
    return _sweep(w, s, jnp.asarray(order))


@jax.jit
def _sweep(w: jax.Array, s: jax.Array, order: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The sweep's scan; jitted, so an eager call compiles once per shape, not each time."""

    def update(s, i):
        s = s.at[..., i].set(activations.sign(s @ w[i]))  # Σ_j W_ij s_j
        return s, hopfield_energy(w, s)

    return jax.lax.scan(update, s, order)


@functools.partial(jax.jit, static_argnames=("steps", "synchronous"))
def hopfield_recall(
    weights: jax.typing.ArrayLike,
    state: jax.typing.ArrayLike,
    *,
    steps: int = 10,
    synchronous: bool = False,
    key: jax.Array | None = None,
) -> jax.Array:
    """Recalls from cue ``state`` by ``steps`` rounds of updates (jit-compiled).

    Args:
      weights: ``(N, N)``, as from :func:`hopfield_store` (cast to the dtype of
        ``state``).
      state: ``(..., N)`` floating cues of ±1 (e.g. noisy copies of stored patterns).
      steps: number of rounds, a non-negative int (static): synchronous steps, or
        asynchronous sweeps over all ``N`` units.
      synchronous: update all units at once (may end in a 2-cycle) instead of one at a
        time (always converges).
      key: for asynchronous sweeps, one PRNG key for a random unit order per sweep;
        ``None`` sweeps in index order.

    Returns:
      The state ``(..., N)`` of ±1 after the last round, in the dtype of ``state``.

    Raises:
      nnjax.ShapeError: ``weights`` is not square, or ``state`` is not ``(..., N)``.
      TypeError: ``state`` is not floating, ``key`` is neither ``None`` nor one PRNG
        key, or ``synchronous`` is not a bool.
      ValueError: ``steps`` is not a non-negative int.

    Example:
      >>> w = hopfield_store(jnp.array([[1.0, -1.0, 1.0, -1.0]]))
      >>> hopfield_recall(w, jnp.array([1.0, 1.0, 1.0, -1.0]), synchronous=True)
      Array([ 1., -1.,  1., -1.], dtype=float32)
    """
    _checks.positive_int("hopfield_recall", "steps", steps, minimum=0)
    synchronous = _checks.check_static_bool("hopfield_recall", "synchronous", synchronous)
    _args.check_optional_key("hopfield_recall", "key", key)
    s, w = _check("hopfield_recall", weights, state)
    if synchronous:
        return jax.lax.fori_loop(0, steps, lambda _, s: hopfield_step(w, s), s)
    n = w.shape[0]
    if key is None:
        orders = jnp.tile(jnp.arange(n), (steps, 1))
    else:
        orders = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, steps))
    return jax.lax.scan(lambda s, o: (hopfield_sweep(w, s, o)[0], None), s, orders)[0]


def overlap(state: jax.typing.ArrayLike, pattern: jax.typing.ArrayLike) -> jax.Array:
    """The overlap ``m = (1/N) Σ_i s_i ξ_i`` in [−1, 1]; 1 means perfect recall.

    Args:
      state: ``(..., N)`` of ±1, floating.
      pattern: the same shape, ±1, an array or a list (cast to the dtype of ``state``).

    Returns:
      ``(...)``: one overlap per state, in the dtype of ``state``.

    Raises:
      nnjax.ShapeError: ``pattern`` does not have the shape of ``state``.

    Example:
      >>> overlap(jnp.array([1.0, 1.0, -1.0, 1.0]), jnp.array([1.0, 1.0, 1.0, 1.0]))
      Array(0.5, dtype=float32)
    """
    s, xi = jnp.asarray(state), jnp.asarray(pattern)
    _checks.check_shape("overlap", "pattern", xi, s.shape)
    return jnp.mean(s * xi.astype(s.dtype), axis=-1)


def _check(op: str, weights: jax.typing.ArrayLike, state: jax.typing.ArrayLike):
    s = jnp.asarray(state)
    _checks.check_floating(op, "state", s)
    w = jnp.asarray(weights, s.dtype)
    _checks.check_rank(op, "weights", w, 2)
    n = w.shape[0]
    _checks.check_shape(op, "weights", w, (n, n))
    _checks.check_min_rank(op, "state", s, 1)
    _checks.check_shape(op, "state", s, (..., n))
    return s, w
