"""Optimizers for ``fit``: Optax transformations whose hyperparameters live in the state.

Named optimizers and optimizer factories run under ``optax.inject_hyperparams``, so a
new learning rate (between ``fit`` calls, from a schedule callback) is a new value in
the optimizer state, never a new compiled program. An optimizer object passed in is
matched by its structure (:func:`canonical`): a fresh ``optax.adam(1e-3)`` reuses the
compiled step of an earlier, equal one.

Example:
  >>> import jax.numpy as jnp
  >>> tx = get_optimizer("sgd")
  >>> state = init_state(tx, {"w": jnp.ones(2)}, learning_rate=0.5)
  >>> float(get_hyperparameter(state, "learning_rate"))
  0.5
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.train import compiled, loss_scale, optax_checks
from nnjax.train._canonical import canonical

_OPTIMIZERS = {
    "adabelief": optax.adabelief,
    "adagrad": optax.adagrad,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "lamb": optax.lamb,
    "lion": optax.lion,
    "nadam": optax.nadam,
    "rmsprop": optax.rmsprop,
    "sgd": optax.sgd,
}

#: The placeholder learning rate of a memoised injected optimizer (the real one is set
#: in its state by :func:`init_state`).
_PLACEHOLDER_LR = 1e-3


@functools.lru_cache(maxsize=64)
def _injected(factory: Callable) -> optax.GradientTransformation:
    return optax.inject_hyperparams(factory)(learning_rate=_PLACEHOLDER_LR)


def get_optimizer(
    optimizer: str | Callable | optax.GradientTransformation, learning_rate: float | None = None
) -> optax.GradientTransformation:
    """The transformation ``fit`` trains with.

    A name (``"adam"``, ``"sgd"``, ...) or an Optax factory (``optax.adam``) becomes
    ``optax.inject_hyperparams(factory)``: its learning rate lives in the state (set by
    :func:`init_state`), and one object serves every learning rate. A transformation
    passed in is returned as its :func:`canonical` twin; an ``optax.MultiSteps`` as its
    ``gradient_transformation()``.

    Args:
      optimizer: a name (``"adam"``, ``"sgd"``, ...), an Optax factory
        (``optax.adam``), an ``optax.GradientTransformation`` or an ``optax.MultiSteps``.
      learning_rate: ignored (the rate is set in the state by :func:`init_state`);
        kept for callers that pass it.

    Returns:
      An ``optax.GradientTransformation``, the same object for the same optimizer.

    Raises:
      ValueError: an unknown name (the message lists the known ones).
      TypeError: a class such as ``optax.GradientTransformation`` (:func:`check_not_class`).

    Example:
      >>> get_optimizer("sgd", 0.1) is get_optimizer("sgd", 0.2)
      True
      >>> type(get_optimizer(optax.MultiSteps(optax.sgd(0.1), 2))).__name__
      'GradientTransformation'
    """
    del learning_rate  # set in the state, see init_state
    if isinstance(optimizer, optax.MultiSteps):  # not a GradientTransformation itself
        optimizer = optimizer.gradient_transformation()
    if isinstance(optimizer, optax.GradientTransformation):
        return canonical(optimizer)
    check_not_class(optimizer)
    if callable(optimizer):
        return _injected(optimizer)
    name = str(optimizer).lower()
    if name not in _OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; known: {', '.join(sorted(_OPTIMIZERS))}, "
            "or pass an optax.GradientTransformation or factory (optax.adam)"
        )
    return _injected(_OPTIMIZERS[name])


def check_not_class(optimizer: Any) -> None:
    """A class of Optax transformations is neither a transformation nor a factory.

    ``optax.GradientTransformation`` itself is callable, so it would be taken for a
    factory and fail deep inside ``optax.inject_hyperparams``.

    Raises:
      TypeError: ``optimizer`` is a subclass of ``optax.GradientTransformation``.

    Example:
      >>> check_not_class(optax.adam)
    """
    if isinstance(optimizer, type) and issubclass(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"`optimizer` got the class {optimizer.__module__}.{optimizer.__qualname__}, "
            "not an optimizer: pass a name ('adam'), a factory (optax.adam) or a "
            "transformation (optax.adam(1e-3))"
        )


@functools.lru_cache(maxsize=64)
def accumulate(tx: optax.GradientTransformation, steps: int) -> optax.GradientTransformation:
    """``tx`` applied to the mean gradient of every ``steps`` batches (``optax.MultiSteps``).

    Example:
      >>> tx = get_optimizer("sgd")
      >>> accumulate(tx, 4) is accumulate(tx, 4)
      True
    """
    if steps == 1:
        return tx
    return optax.MultiSteps(tx, every_k_schedule=steps).gradient_transformation()


def for_fit(optimizer: Any, accumulate_steps: int, precision: str | None) -> Any:
    """``fit``'s optimizer: :func:`get_optimizer`'s, over :func:`accumulate`'s batches.

    Where ``precision`` computes in float16, with dynamic loss scaling
    (:func:`nnjax.train.loss_scale.for_precision`).

    Example:
      >>> type(for_fit("sgd", 1, "float16").init({"w": jnp.ones(1)})).__name__
      'LossScaleState'
    """
    tx = accumulate(get_optimizer(optimizer), accumulate_steps)
    return loss_scale.for_precision(tx, precision)


def hyperparameters(state: Any) -> dict[str, Any]:
    """The injected hyperparameters in an optimizer state (``{}`` when there are none).

    Gathered from every ``optax.inject_hyperparams`` part of the state (a chain may
    inject ``weight_decay`` in one and ``learning_rate`` in another); a name that
    several parts inject is left out (ambiguous: :func:`get_hyperparameter` says where).

    Example:
      >>> state = init_state(get_optimizer("adam"), {"w": jnp.ones(1)}, learning_rate=0.1)
      >>> sorted(hyperparameters(state))[:2]
      ['b1', 'b2']
    """
    found: dict[str, Any] = {}
    held: dict[str, int] = {}
    for _, node in optax_checks.hyper_nodes(state):
        for name, value in node.hyperparams.items():
            found.setdefault(name, value)
            held[name] = held.get(name, 0) + 1
    return {name: value for name, value in found.items() if held[name] == 1}


def get_hyperparameter(state: Any, name: str) -> Any:
    """The value of hyperparameter ``name`` in ``state``.

    Args:
      state: an optimizer state holding an ``optax.inject_hyperparams`` state (as
        :func:`init_state` makes it), anywhere in a tuple of states.
      name: the hyperparameter, e.g. ``"learning_rate"``.

    Returns:
      Its current value, a scalar array in the state's dtype and placement.

    Raises:
      ValueError: ``name`` is not injected (the message lists the ones that are), or
        several parts of the optimizer inject it (the message says where).

    Example:
      >>> state = init_state(get_optimizer("sgd"), {"w": jnp.ones(1)}, learning_rate=0.5)
      >>> float(get_hyperparameter(state, "learning_rate"))
      0.5
    """
    path = optax_checks.hyper_path(state, name)  # several: a ValueError saying where
    if path is None:
        found = hyperparameters(state)
        raise ValueError(
            f"the optimizer state has no injected hyperparameter {name!r} (has: "
            f"{sorted(found) or 'none'}); pass a name such as 'adam', an optax factory, or "
            "inject it yourself, inside a chain too: optax.chain(optax.clip_by_global_norm(1.0), "
            "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3))"
        )
    return optax_checks.node_at(state, path).hyperparams[name]


def set_hyperparameter(state: Any, name: str, value: Any) -> Any:
    """``state`` with hyperparameter ``name`` replaced by ``value``.

    Same dtype, shape and placement, so the compiled step is reused. A
    ``learning_rate`` must be finite and ``>= 0`` (:func:`check_learning_rate`).

    Args:
      state: an optimizer state from ``optax.inject_hyperparams`` (:func:`init_state`).
      name: the hyperparameter, e.g. ``"learning_rate"``.
      value: the new value, a number or array (cast to the old value's dtype, broadcast
        to its shape, as a sweep's ``(M,)`` per-member values, and placed like it).

    Returns:
      A new state; ``state`` is not modified.

    Raises:
      ValueError: ``value`` does not broadcast to the old value's shape, a learning
        rate is negative or not finite (the message names the member), or ``name`` is
        injected as a schedule (Optax recomputes it at each update, overwriting ``value``).
      TypeError: ``value`` is not a number or array of numbers.

    Example:
      >>> state = init_state(get_optimizer("sgd"), {"w": jnp.ones(1)}, learning_rate=0.1)
      >>> new = set_hyperparameter(state, "learning_rate", 0.2)
      >>> round(float(get_hyperparameter(new, "learning_rate")), 6)
      0.2
    """
    old = get_hyperparameter(state, name)
    if optax_checks.is_scheduled(state, name):
        raise ValueError(
            f"the injected hyperparameter {name!r} is a schedule "
            f"(optax.inject_hyperparams(...)({name}=<schedule>)): optax recomputes it at "
            f"every update, so setting it to {value!r} would do nothing; inject a number "
            "instead, or keep the schedule and set nothing"
        )
    if jnp.ndim(value) == 0 and name == "learning_rate":
        value = check_learning_rate(value, zero_ok=True)
    elif name == "learning_rate":
        for i, rate in enumerate(np.ravel(np.asarray(value))):
            check_learning_rate(rate, name=f"learning_rate[{i}]", zero_ok=True)
    try:
        new = np.broadcast_to(np.asarray(value, old.dtype), old.shape)
    except ValueError:
        raise ValueError(
            f"`{name}` has shape {old.shape} in this optimizer state (one value per member "
            f"of a sweep group); got shape {np.shape(value)}"
        ) from None
    return _replaced(state, name, jax.device_put(jnp.asarray(new), old.sharding))


def _replaced(state: Any, name: str, new: Any) -> Any:
    """``state`` with the injected hyperparameter ``name`` replaced by ``new``."""
    path = optax_checks.hyper_path(state, name)
    if path is None:
        return state
    return optax_checks.replace_at(
        state, path, lambda node: node._replace(hyperparams={**node.hyperparams, name: new})
    )


def uninjected(state: Any) -> tuple[Any, Callable[[Any], Any]] | None:
    """``(inner, rebuild)`` for a top-level ``inject_hyperparams`` state, else None.

    ``inner`` is the wrapped optimizer's own state, ``rebuild`` a function putting a
    state like it back (for checkpoints written by an optimizer without injected
    hyperparameters).

    Example:
      >>> state = init_state(get_optimizer("sgd"), {"w": jnp.ones(1)}, learning_rate=0.1)
      >>> inner, rebuild = uninjected(state)
      >>> rebuild(inner) is not None
      True
    """
    if not isinstance(getattr(state, "hyperparams", None), dict) or not hasattr(
        state, "inner_state"
    ):
        return None
    return state.inner_state, lambda inner: state._replace(inner_state=inner)


def check_learning_rate(value: Any, *, name: str = "learning_rate", zero_ok: bool = False) -> float:
    """``value`` as a float after checking it is a finite, positive learning rate.

    A negative rate climbs the loss, a zero one trains nothing and a NaN one turns the
    weights into NaN without a non-finite loss in the first step: each is an error
    before anything runs.

    Args:
      value: the rate the user passed.
      name: the argument, for the message.
      zero_ok: accept ``0`` (a schedule that ends at zero sets it through
        :func:`set_hyperparameter`).

    Raises:
      TypeError: ``value`` is not a real number (a string, a bool, a schedule function).
      ValueError: ``value`` is NaN, infinite, negative, or zero (unless ``zero_ok``).

    Example:
      >>> check_learning_rate(0.01)
      0.01
      >>> try:
      ...     check_learning_rate(-0.1)
      ... except ValueError as err:
      ...     print(err)
      `learning_rate` must be a finite number > 0, got -0.1
    """
    numeric = int | float | np.number | np.ndarray | jax.Array
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise TypeError(
            f"`{name}` must be a number, got {value!r} ({type(value).__name__}); a schedule "
            "goes in an optax optimizer (optax.adam(optax.cosine_decay_schedule(...))) or "
            "a LearningRateScheduler callback"
        )
    if jnp.ndim(value) != 0:
        raise TypeError(f"`{name}` must be a scalar, got an array of shape {jnp.shape(value)}")
    rate = float(value)
    if not np.isfinite(rate) or rate < 0 or (rate == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}")
    return rate


def init_state(
    tx: optax.GradientTransformation, params: Any, *, learning_rate: float | None = None
) -> Any:
    """``tx.init(params)`` with the injected learning rate set to ``learning_rate``.

    Built in one compiled call, memoised per ``tx`` (a new learning rate or another
    ``fit`` call reuses it): run eagerly, Optax dispatches every leaf's state on its own
    (4 ms against 0.3 for the 42 parameters of a 22-layer MLP). An ``init`` that reads
    its inputs' values (a Python branch on them) runs eagerly.

    Raises:
      TypeError, ValueError: ``learning_rate`` is not a finite number > 0
        (:func:`check_learning_rate`).
      ValueError: a transformation ``fit`` cannot train with (``optax.lookahead``,
        :func:`nnjax.train.optax_checks.check_state`).

    Example:
      >>> state = init_state(get_optimizer("adam"), {"w": jnp.ones(1)}, learning_rate=0.01)
      >>> round(float(get_hyperparameter(state, "learning_rate")), 6)
      0.01
    """
    if learning_rate is not None:
        learning_rate = check_learning_rate(learning_rate)
    try:  # one compiled call: eagerly, Optax builds every leaf's state in its own dispatch
        state = _compiled_init(tx)(params, learning_rate)
    except NEEDS_VALUES:  # an ``init`` that reads its inputs' values runs eagerly
        state = _initialized(tx, params, learning_rate)
    optax_checks.check_state(state)  # before the train step compiles
    return state


NEEDS_VALUES = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
)
"""What tracing raises for a function that needs its inputs' concrete values (an
``init`` or a loss that branches on them in Python, or converts them to NumPy).
"""


def _initialized(tx: optax.GradientTransformation, params: Any, learning_rate: Any) -> Any:
    state = tx.init(params)
    if learning_rate is not None and "learning_rate" in hyperparameters(state):
        old = get_hyperparameter(state, "learning_rate")
        state = _replaced(state, "learning_rate", jnp.asarray(learning_rate, old.dtype))
    return state


@compiled.cached
def _compiled_init(tx: optax.GradientTransformation) -> Callable:
    """``jax.jit`` of :func:`_initialized` for ``tx`` (a new learning rate never recompiles)."""
    return jax.jit(functools.partial(_initialized, tx))


__all__ = [
    "NEEDS_VALUES",
    "accumulate",
    "canonical",
    "check_learning_rate",
    "check_not_class",
    "get_hyperparameter",
    "get_optimizer",
    "hyperparameters",
    "init_state",
    "set_hyperparameter",
    "uninjected",
]
