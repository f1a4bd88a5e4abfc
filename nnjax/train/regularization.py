"""Regularisation over parameter pytrees: L1/L2 penalties, max-norm, gradient clipping.

(Freezing, ``freeze`` and ``by_prefix``, is in :mod:`nnjax.train.freezing`.)

Everything here works on any parameter pytree: plain nested dicts (``F.*_init``'s) or
the ``nnx.State`` that ``nnx.split`` gives. Leaves are selected by their *path*, a tuple
of strings such as ``("layers", "0", "kernel")`` (without an ``nnx.Variable``'s
``.value``), so one predicate works for both forms.

Penalties follow Keras: ``l1 * sum(|w|)`` and ``l2 * sum(w**2)`` (no factor 1/2), by
default on kernels only (leaves named ``"kernel"``, ``"w_x"`` or ``"w_h"``). They come
as a scalar to add to a loss (:func:`l1_l2_penalty`) or as an Optax transformation that
adds the penalty's gradient to the gradients (:func:`add_l1_l2`).

Constraints and freezing are Optax ``GradientTransformation`` s, chained with the
optimizer as usual (gradient clipping: Optax's own; ``max_norm`` last, as it projects
the updated parameters):

>>> import optax
>>> tx = optax.chain(optax.clip_by_global_norm(1.0), add_l1_l2(l2=1e-4), optax.adam(1e-3),
...                  max_norm(3.0))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnjax import _checks

PyTree = Any
Path = tuple[str, ...]
Where = Callable[[Path, jax.Array], bool]

KERNEL_NAMES: tuple[str, ...] = ("kernel", "w_x", "w_h")
"""Leaf names that hold weight matrices (the leaves that penalties apply to by default)."""

# the attention projections' kernels (in, heads, head_dim): one output unit per (head, dim)
_HEAD_KERNELS = (("query", "kernel"), ("key", "kernel"), ("value", "kernel"))


def check_factor(op: str, name: str, value: Any, *, positive: bool = False) -> None:
    """TypeError unless ``value`` is real; ValueError unless finite and ``>= 0`` (``> 0``)."""
    _checks.check_real(op, name, value, "a finite number " + ("> 0" if positive else ">= 0"))
    _checks.check_interval(op, name, value, 0, math.inf, open_low=positive, open_high=True)


def path_names(path: Sequence[Any]) -> Path:
    """Turns a JAX key path into a tuple of strings, dropping ``nnx.Variable``'s ``.value``.

    Args:
      path: a key path from ``jax.tree_util.tree_flatten_with_path`` (dict keys,
        sequence indices, attributes).

    Returns:
      The path's names as strings (indices as ``"0"``).

    Example:
      >>> params = {"layers": [{"kernel": jnp.ones((2, 3))}]}
      >>> [path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
      [('layers', '0', 'kernel')]
    """
    names = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            names.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            names.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            if k.name != "value":
                names.append(k.name)
        else:
            names.append(str(k))
    return tuple(names)


def is_kernel(path: Path, leaf: jax.Array) -> bool:
    """The default selector: whether ``path``'s last name is in :data:`KERNEL_NAMES`.

    Example:
      >>> is_kernel(("layers", "0", "kernel"), jnp.ones((2, 3)))
      True
      >>> is_kernel(("layers", "0", "bias"), jnp.ones(3))
      False
    """
    del leaf
    return bool(path) and path[-1] in KERNEL_NAMES


def all_leaves(path: Path, leaf: jax.Array) -> bool:
    """A selector that picks every floating leaf (penalise biases too); ``path`` is unused.

    Example:
      >>> params = {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3), "step": jnp.zeros((), int)}
      >>> select(params, all_leaves)
      {'bias': True, 'kernel': True, 'step': False}
    """
    del path
    return jnp.issubdtype(jnp.result_type(leaf), jnp.floating)


def select(params: PyTree, where: Where | None = is_kernel) -> PyTree:
    """A pytree of bools, like ``params``: which leaves ``where(path, leaf)`` selects.

    ``where=None`` selects every floating leaf. The result is a valid Optax ``mask``.

    Args:
      params: a parameter pytree (dict or ``nnx.State``).
      where: ``(path, leaf) -> bool``, with ``path`` the tuple of key names
        (:func:`path_names`); :func:`is_kernel` by default, ``None`` for
        :func:`all_leaves`.

    Returns:
      A pytree of Python bools with the structure of ``params``.

    Example:
      >>> select({"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)})
      {'bias': False, 'kernel': True}
    """
    where = all_leaves if where is None else where
    return jax.tree_util.tree_map_with_path(lambda p, x: bool(where(path_names(p), x)), params)


def _selected_sum(params: PyTree, fn: Callable[[jax.Array], jax.Array], where: Where | None):
    mask = select(params, where)
    terms = [jnp.sum(fn(x)) for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if m]
    return sum(terms, start=jnp.zeros((), jnp.float32))


def l1_penalty(params: PyTree, coef: float, *, where: Where | None = is_kernel) -> jax.Array:
    """``coef * sum(|w|)`` over the selected leaves (kernels by default).

    Its gradient is ``coef * sign(w)``, 0 at ``w == 0`` (as in PyTorch and TensorFlow).

    Args:
      params: a parameter pytree (dict or ``nnx.State``).
      coef: the L1 coefficient.
      where: ``(path, leaf) -> bool`` selecting the penalised leaves; ``None``: all.

    Returns:
      A scalar (float32, or the parameters' dtype if wider).

    Example:
      >>> l1_penalty({"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.ones(2)}, 0.1)
      Array(0.3, dtype=float32)
    """
    # |w| with gradient sign(w), 0 at 0 (jnp.abs's is 1 there: zero weights would drift)
    return coef * _selected_sum(params, lambda w: w * jax.lax.stop_gradient(jnp.sign(w)), where)


def l2_penalty(params: PyTree, coef: float, *, where: Where | None = is_kernel) -> jax.Array:
    """``coef * sum(w**2)`` (Keras ``L2``: no factor 1/2) over the selected leaves.

    Args:
      params: a parameter pytree (dict or ``nnx.State``).
      coef: the L2 coefficient.
      where: ``(path, leaf) -> bool`` selecting the penalised leaves; ``None``: all.

    Returns:
      A scalar (float32, or the parameters' dtype if wider).

    Example:
      >>> l2_penalty({"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.ones(2)}, 0.1)
      Array(0.5, dtype=float32)
    """
    return coef * _selected_sum(params, jnp.square, where)


def l1_l2_penalty(
    params: PyTree, *, l1: float = 0.0, l2: float = 0.0, where: Where | None = is_kernel
) -> jax.Array:
    """``l1 * sum(|w|) + l2 * sum(w**2)`` over the selected leaves (Keras ``L1L2``).

    Args:
      params: the parameter pytree.
      l1: the L1 factor, ``>= 0``.
      l2: the L2 factor, ``>= 0``.
      where: ``where(path, leaf) -> bool`` selects the leaves (default: the kernels,
        :func:`is_kernel`); ``None`` selects every leaf.

    Returns:
      A floating scalar (float32 for float32 parameters; 0 when nothing is selected).

    Raises:
      TypeError: ``l1`` or ``l2`` is not a real number (a string, a bool).
      ValueError: ``l1`` or ``l2`` is negative, NaN or infinite.

    Example:
      >>> l1_l2_penalty({"kernel": jnp.array([[1.0, -2.0]])}, l1=0.1, l2=0.1)
      Array(0.8, dtype=float32)
    """
    check_factor("l1_l2_penalty", "l1", l1)
    check_factor("l1_l2_penalty", "l2", l2)
    return l1_penalty(params, l1, where=where) + l2_penalty(params, l2, where=where)


def add_l1_l2(
    l1: float = 0.0, l2: float = 0.0, *, where: Where | None = is_kernel
) -> optax.GradientTransformation:
    """Adds the gradient of :func:`l1_l2_penalty` to the gradients.

    Chained *before* the optimizer, this trains exactly as adding the penalty to the
    loss would (the gradient of a sum is the sum of gradients), without touching the
    loss: ``g + l1 * sign(w) + 2 * l2 * w`` on selected leaves, ``g`` elsewhere (and on
    integer leaves, such as a step counter, which are never differentiated).

    Args:
      l1: the L1 coefficient, ``>= 0``.
      l2: the L2 coefficient, ``>= 0``.
      where: ``(path, leaf) -> bool`` selecting the penalised leaves; ``None``: all.

    Returns:
      A stateless ``optax.GradientTransformation`` that needs ``params`` in ``update``.

    Raises:
      TypeError: ``l1`` or ``l2`` is not a real number (a string, a bool).
      ValueError: ``l1`` or ``l2`` negative, NaN or infinite; ``update`` without ``params``.

    Example:
      >>> tx = optax.chain(add_l1_l2(l2=1e-4), optax.sgd(0.1))
      >>> params = {"kernel": jnp.ones((2, 2))}
      >>> updates, _ = tx.update({"kernel": jnp.zeros((2, 2))}, tx.init(params), params)
      >>> round(float(updates["kernel"][0, 0]), 8)  # -0.1 * 2 * 1e-4
      -2e-05
    """
    check_factor("add_l1_l2", "l1", l1)
    check_factor("add_l1_l2", "l2", l2)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("add_l1_l2: `params` must be passed to update() (got None)")
        # leaf by leaf (the penalty is a sum over leaves): jax.grad refuses integer leaves
        grad = jax.grad(lambda w: l1_l2_penalty(w, l1=l1, l2=l2, where=None))
        add = lambda u, w, m: u + grad(w).astype(u.dtype) if m and all_leaves((), w) else u
        return jax.tree.map(add, updates, params, select(params, where)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def project_max_norm(
    params: PyTree, max_value: float, *, where: Where | None = is_kernel
) -> PyTree:
    """Rescales each selected kernel so the norm of every output unit's weights is ``<= c``.

    Keras ``MaxNorm`` semantics: the norm is taken over every axis except the last
    (output) one, i.e. over the input axis of a dense kernel ``(in, out)`` (Keras
    ``axis=0``) and over ``(kh, kw, in)`` of a conv kernel ``(kh, kw, in, out)``. The
    attention projections ``query``/``key``/``value`` (kernels ``(in, heads, head_dim)``,
    told by the path) have one output unit per ``(head, dim)``: their norm is over the
    input axis only. Columns whose norm is already ``<= max_value`` are left exactly
    unchanged (Keras divides by ``norm + epsilon`` and so nudges them slightly).
    Rank-0/1 leaves are never projected.

    Args:
      params: a parameter pytree.
      max_value: the largest allowed norm ``c`` (finite, > 0).
      where: ``(path, leaf) -> bool`` selecting the constrained leaves (kernels).

    Returns:
      A pytree like ``params``.

    Raises:
      TypeError: ``max_value`` is not a real number.
      ValueError: ``max_value`` is not finite and > 0.

    Example:
      >>> out = project_max_norm({"kernel": jnp.array([[3.0, 0.3], [4.0, 0.4]])}, 1.0)
      >>> out["kernel"]  # column norms 5 -> 1 and 0.5 (kept)
      Array([[0.6, 0.3],
             [0.8, 0.4]], dtype=float32)
    """
    check_factor("project_max_norm", "max_value", max_value, positive=True)

    def project(path, w, selected):
        return _clip_columns(path_names(path), w, max_value) if selected and jnp.ndim(w) >= 2 else w

    return jax.tree_util.tree_map_with_path(project, params, select(params, where))


def _clip_columns(path: Path, w: jax.Array, max_value: float) -> jax.Array:
    axes = (0,) if w.ndim == 3 and path[-2:] in _HEAD_KERNELS else tuple(range(w.ndim - 1))
    norms = jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))
    scale = jnp.where(norms > max_value, max_value / jnp.maximum(norms, 1e-30), 1.0)
    return w * scale.astype(w.dtype)


def max_norm(max_value: float, *, where: Where | None = is_kernel) -> optax.GradientTransformation:
    """An Optax transformation that keeps kernels inside the max-norm ball.

    Put it *last* in an ``optax.chain``: it turns the final updates ``u`` into
    ``project_max_norm(w + u) - w``, so that after ``optax.apply_updates`` (or
    ``nnx.Optimizer.update``) the parameters satisfy :func:`project_max_norm`'s
    constraint. See there for the axis convention.

    Args:
      max_value: the largest allowed norm per output unit (finite, > 0).
      where: ``(path, leaf) -> bool`` selecting the constrained leaves (kernels).

    Returns:
      A stateless ``optax.GradientTransformation`` that needs ``params`` in ``update``.

    Raises:
      TypeError: ``max_value`` is not a real number.
      ValueError: ``max_value`` is not finite and > 0; ``update`` without ``params``.

    Example:
      >>> tx = optax.chain(optax.sgd(1.0), max_norm(1.0))
      >>> params = {"kernel": jnp.zeros((2, 1))}
      >>> updates, _ = tx.update({"kernel": -jnp.ones((2, 1))}, tx.init(params), params)
      >>> round(float(jnp.linalg.norm(optax.apply_updates(params, updates)["kernel"])), 5)
      1.0
    """
    check_factor("max_norm", "max_value", max_value, positive=True)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("max_norm: `params` must be passed to update() (got None)")
        new = project_max_norm(optax.apply_updates(params, updates), max_value, where=where)
        return jax.tree.map(lambda n, p: n - p, new, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def clip_gradients(
    tx: optax.GradientTransformation, max_norm: float
) -> optax.GradientTransformation:
    """``tx`` with gradients first clipped to global norm ``max_norm`` (Optax's own clip).

    Just ``optax.chain(optax.clip_by_global_norm(max_norm), tx)``, named for discovery.

    Args:
      tx: the optimizer.
      max_norm: the largest global L2 norm of the gradients, ``> 0``.

    Returns:
      The chained transformation (its state is a tuple of the clip's and ``tx``'s).

    Raises:
      TypeError: ``max_norm`` is not a real number.
      ValueError: ``max_norm`` is not finite and > 0.

    Example:
      >>> tx = clip_gradients(optax.sgd(1.0), 1.0)
      >>> params = {"w": jnp.zeros(2)}
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params))
      >>> updates["w"]
      Array([-0.6, -0.8], dtype=float32)
    """
    check_factor("clip_gradients", "max_norm", max_norm, positive=True)
    return optax.chain(optax.clip_by_global_norm(max_norm), tx)


def __getattr__(name: str) -> Any:
    """``freeze`` and ``by_prefix``, defined here before :mod:`nnjax.train.freezing`."""
    if name in ("by_prefix", "freeze"):
        from nnjax.train import freezing  # imports this module: not at the top

        return getattr(freezing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
