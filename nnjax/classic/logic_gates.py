"""Logic gates from single neurons with hand-set weights, and a trained XOR network.

A neuron with weights ``w = (w_0, w_1, ..., w_n)`` (``w_0`` the bias, the weight of a
constant input 1) computes ``f(w_0 + Σ_i w_i x_i)``.

* Sigmoid units on inputs in ``{0, 1}`` (outputs close to 0 or 1): OR ``(−10, 20, 20)``,
  AND ``(−30, 20, 20)``, NOT ``(10, −20)``, NAND ``(30, −20, −20)``.
* Sign units on inputs in ``{−1, +1}``: OR ``= sign(x1 + x2 + 1.5)``,
  AND ``= sign(x1 + x2 − 1.5)``, NAND ``= sign(−x1 − x2 + 1.5)``, NOT ``= sign(−x)``.

XOR is not linearly separable, so no single unit computes it; two layers do:
``XOR(x) = AND(OR(x), NAND(x))``. :func:`train_xor` shows that a 2-2-1 sigmoid network
also *learns* XOR by gradient descent (Optax Adam on the quadratic cost, in a
``lax.scan``).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import classic
  >>> x = classic.truth_table_inputs(2)
  >>> jnp.round(classic.xor_gate(x)).tolist()
  [0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from nnjax import _checks, activations
from nnjax.classic import _args
from nnjax.classic.backprop import MLPParams, quadratic_cost, sigmoid_mlp_init
from nnjax.errors import ShapeError

SIGMOID_GATES: dict[str, tuple[float, ...]] = {
    "or": (-10.0, 20.0, 20.0),
    "and": (-30.0, 20.0, 20.0),
    "not": (10.0, -20.0),
    "nand": (30.0, -20.0, -20.0),
}
"""Hand-set weights ``(bias, w_1, ..., w_n)`` of sigmoid gates on {0, 1} inputs."""

SIGN_GATES: dict[str, tuple[float, ...]] = {
    "or": (1.5, 1.0, 1.0),
    "and": (-1.5, 1.0, 1.0),
    "not": (0.0, -1.0),
    "nand": (1.5, -1.0, -1.0),
}
"""Hand-set weights ``(bias, w_1, ..., w_n)`` of sign gates on {−1, +1} inputs."""

MAX_TRUTH_TABLE_INPUTS = 20
"""The most inputs :func:`truth_table_inputs` enumerates: ``2**20`` rows (80 MiB as
float32 for 20 columns). The table doubles with every input, so a larger ``n`` would
exhaust memory long before it is useful for a logic gate."""

_KINDS: dict[str, tuple[dict[str, tuple[float, ...]], Callable[[jax.Array], jax.Array]]] = {
    "sigmoid": (SIGMOID_GATES, activations.sigmoid),
    "sign": (SIGN_GATES, activations.sign),
}


def neuron(
    weights: jax.typing.ArrayLike,
    x: jax.typing.ArrayLike,
    activation: Callable[[jax.Array], jax.Array] = activations.sigmoid,
) -> jax.Array:
    """One neuron: ``activation(w_0 + Σ_i w_i x_i)`` over the last axis of ``x``.

    Args:
      weights: ``(n + 1,)``, the bias first, real (cast to the dtype of ``x``).
      x: ``(..., n)``, floating.
      activation: the unit's nonlinearity.

    Returns:
      ``(...)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``weights`` is not rank 1 with at least the bias, or ``x`` is
        not ``(..., n)``.
      TypeError: ``x`` is not floating.

    Example:
      >>> neuron(jnp.array([-1.5, 1.0, 1.0]), jnp.array([1.0, 1.0]), activations.sign)
      Array(1., dtype=float32)
    """
    x = jnp.asarray(x)
    _checks.check_floating("neuron", "x", x)
    w = jnp.asarray(weights, x.dtype)
    _checks.check_rank("neuron", "weights", w, 1)
    if w.shape[0] == 0:
        raise ShapeError(
            "neuron: argument `weights` has shape (0,), expected (n + 1,): the bias w_0 "
            "first, then one weight per input"
        )
    _checks.check_min_rank("neuron", "x", x, 1)
    _checks.check_shape("neuron", "x", x, (..., w.shape[0] - 1))
    return activation(w[0] + x @ w[1:])


def gate(name: str, x: jax.typing.ArrayLike, *, kind: str = "sigmoid") -> jax.Array:
    """The logic gate ``name`` (``"or"``, ``"and"``, ``"not"``, ``"nand"``) as one neuron.

    Args:
      name: the gate.
      x: ``(..., 2)`` (``(..., 1)`` for ``"not"``), floating: values in {0, 1} for
        ``kind="sigmoid"``, in {−1, +1} for ``kind="sign"``.
      kind: ``"sigmoid"`` (outputs near 0 or 1) or ``"sign"`` (outputs −1 or +1).

    Returns:
      ``(...)``, the gate's output per row, in the dtype of ``x``.

    Raises:
      ValueError: for an unknown gate or kind.
      nnjax.ShapeError, TypeError: as :func:`neuron`.

    Example:
      >>> gate("and", jnp.array([[1.0, 1.0], [1.0, 0.0]])).round()
      Array([1., 0.], dtype=float32)
    """
    table, activation = _kind("gate", kind)
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"gate: unknown gate {name!r}; known: {', '.join(sorted(table))}")
    return neuron(jnp.array(table[name]), x, activation)


def xor_gate(x: jax.typing.ArrayLike, *, kind: str = "sigmoid") -> jax.Array:
    """Two-layer XOR: ``AND(OR(x), NAND(x))`` from hand-weighted neurons.

    Args:
      x: ``(..., 2)``, floating, values in {0, 1} (``kind="sigmoid"``) or {−1, +1}
        (``"sign"``).
      kind: ``"sigmoid"`` or ``"sign"``.

    Returns:
      ``(...)`` in the dtype of ``x``: near 1 (sigmoid) or +1 (sign) where exactly one
      input is on.

    Raises:
      ValueError, nnjax.ShapeError, TypeError: as :func:`gate`.

    Example:
      >>> xor_gate(truth_table_inputs(2, kind="sign"), kind="sign").tolist()
      [-1.0, 1.0, 1.0, -1.0]
    """
    hidden = jnp.stack([gate("or", x, kind=kind), gate("nand", x, kind=kind)], axis=-1)
    return gate("and", hidden, kind=kind)


def truth_table_inputs(n_inputs: int, *, kind: str = "sigmoid") -> jax.Array:
    """All ``2**n`` input rows in binary counting order, as ``(2**n, n)`` float32.

    Off is 0 for ``kind="sigmoid"`` and −1 for ``kind="sign"``; on is 1.

    Args:
      n_inputs: ``n``, the number of inputs (columns), an int in
        ``[1, MAX_TRUTH_TABLE_INPUTS]`` (20: the table has ``2**n`` rows).
      kind: ``"sigmoid"`` (0/1) or ``"sign"`` (−1/+1).

    Returns:
      ``(2**n, n)`` float32.

    Raises:
      ValueError: ``n_inputs`` is not a positive int, is above
        ``MAX_TRUTH_TABLE_INPUTS``, or an unknown ``kind``.

    Example:
      >>> truth_table_inputs(2).tolist()
      [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """
    n_inputs = _checks.positive_int("truth_table_inputs", "n_inputs", n_inputs)
    if n_inputs > MAX_TRUTH_TABLE_INPUTS:
        raise ValueError(
            f"truth_table_inputs: `n_inputs` must be at most {MAX_TRUTH_TABLE_INPUTS} "
            f"(MAX_TRUTH_TABLE_INPUTS), got {n_inputs}: the table would have 2**{n_inputs} "
            "rows"
        )
    _kind("truth_table_inputs", kind)
    rows = jnp.arange(2**n_inputs)[:, None] >> jnp.arange(n_inputs - 1, -1, -1)[None, :]
    bits = (rows & 1).astype(jnp.float32)
    return bits if kind == "sigmoid" else 2 * bits - 1


def train_xor(
    key: jax.Array,
    *,
    hidden: int = 2,
    steps: int = 1000,
    learning_rate: float | jax.Array = 0.05,
    restarts: int = 8,
) -> tuple[MLPParams, jax.Array]:
    """Trains a 2-``hidden``-1 sigmoid network on XOR (full batch, Adam, ``lax.scan``).

    The 2-2-1 network has local minima: measured over 20 seeds, about half of the random
    starts end in one (two outputs stuck near 0.5). So ``restarts`` networks are trained
    side by side (``jax.vmap``) and the one with the lowest final cost is returned.
    The training is jit-compiled once per ``(hidden, steps, restarts)``; the key and
    the learning rate are traced, so new values of them do not recompile.

    Args:
      key: one PRNG key for the initial weights (standard normal, as in
        :func:`~nnjax.classic.sigmoid_mlp_init`).
      hidden: number of hidden sigmoid units, a positive int (static).
      steps: number of full-batch Adam steps, a non-negative int (static).
      learning_rate: Adam's step size, a real scalar ``>= 0``.
      restarts: number of random starts trained in parallel, a positive int (static).

    Returns:
      ``(params, costs)``: the best network's parameters (float32, as from
      :func:`~nnjax.classic.sigmoid_mlp_init` with sizes ``(2, hidden, 1)``) and its
      quadratic cost before each step, ``(steps,)`` float32.

    Raises:
      ValueError: ``hidden`` or ``restarts`` is not a positive int, ``steps`` is not a
        non-negative int, or ``learning_rate`` is negative, NaN or infinite (checked
        when it is a Python or NumPy number).
      TypeError: ``key`` is not one PRNG key, or ``learning_rate`` is not a real scalar.

    Example:
      >>> from nnjax.classic import sigmoid_mlp
      >>> params, costs = train_xor(jax.random.key(0))
      >>> jnp.round(sigmoid_mlp(params, truth_table_inputs(2))[:, 0]).tolist()
      [0.0, 1.0, 1.0, 0.0]
    """
    hidden = _checks.positive_int("train_xor", "hidden", hidden)
    steps = _checks.positive_int("train_xor", "steps", steps, minimum=0)
    restarts = _checks.positive_int("train_xor", "restarts", restarts)
    _args.check_key("train_xor", "key", key)
    _args.check_learning_rate("train_xor", learning_rate)
    return _train_xor(key, hidden, steps, learning_rate, restarts)


@functools.partial(jax.jit, static_argnames=("hidden", "steps", "restarts"))
def _train_xor(
    key: jax.Array, hidden: int, steps: int, learning_rate, restarts: int
) -> tuple[MLPParams, jax.Array]:
    """:func:`train_xor` on checked arguments, as one compiled program."""
    x = truth_table_inputs(2)
    y = jnp.array([[0.0], [1.0], [1.0], [0.0]])
    tx = optax.adam(learning_rate)

    def step(carry, _):
        p, opt_state = carry
        cost, grads = jax.value_and_grad(quadratic_cost)(p, x, y)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), cost

    def train_one(k):
        params = sigmoid_mlp_init(k, (2, hidden, 1))
        (params, _), costs = jax.lax.scan(step, (params, tx.init(params)), length=steps)
        return params, costs, quadratic_cost(params, x, y)

    params, costs, final = jax.vmap(train_one)(jax.random.split(key, restarts))
    best = jnp.argmin(final)
    return jax.tree.map(lambda leaf: leaf[best], params), costs[best]


def _kind(
    op: str, kind: str
) -> tuple[dict[str, tuple[float, ...]], Callable[[jax.Array], jax.Array]]:
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(
            f"{op}: unknown kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}"
        )
    return _KINDS[kind]
