"""What ``fit`` reads in an Optax optimizer state, and the transformations it refuses.

Injected hyperparameters (``optax.inject_hyperparams``) are found by name anywhere in a
state (chains, ``optax.multi_transform``, ``optax.MultiSteps``): :func:`hyper_nodes`.
A state also says whether its transformation skips non-finite updates
(``optax.apply_if_finite``: :func:`skips_nonfinite`) or needs parameters ``fit`` cannot
give it (``optax.lookahead``: :func:`check_state`). Re-exported names are used by
:mod:`nnjax.train.optimizers`, :mod:`nnjax.train.step` and :mod:`nnjax.train.engine`.

Example:
  >>> import jax.numpy as jnp
  >>> tx = optax.chain(
  ...     optax.inject_hyperparams(optax.add_decayed_weights)(weight_decay=1e-3),
  ...     optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
  >>> [where for where, _ in hyper_nodes(tx.init({"w": jnp.ones(2)}), "learning_rate")]
  ['opt_state[1]']
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import optax

Path = tuple[Any, ...]


def _walk(node: Any, path: Path, where: str) -> Iterator[tuple[Path, str, Any]]:
    """Every ``inject_hyperparams`` state in ``node``: ``(path, where, node)``."""
    if isinstance(getattr(node, "hyperparams", None), dict):
        yield path, where, node
    if isinstance(node, tuple):
        fields = getattr(node, "_fields", None)
        for i, part in enumerate(node):
            step = f".{fields[i]}" if fields else f"[{i}]"
            yield from _walk(part, (*path, i), where + step)
    elif isinstance(node, Mapping) and not isinstance(getattr(node, "hyperparams", None), dict):
        for key, part in node.items():
            yield from _walk(part, (*path, key), f"{where}[{key!r}]")


def hyper_nodes(state: Any, name: str | None = None) -> list[tuple[str, Any]]:
    """The injected-hyperparameter states in ``state`` (holding ``name``, if given).

    Args:
      state: an optimizer state.
      name: keep only the nodes that inject this hyperparameter.

    Returns:
      ``(where, node)`` pairs in order, ``where`` a path such as ``"opt_state[1]"``.

    Example:
      >>> import jax.numpy as jnp
      >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
      >>> [where for where, _ in hyper_nodes(tx.init({"w": jnp.ones(1)}))]
      ['opt_state']
    """
    return [
        (where, node)
        for _, where, node in _walk(state, (), "opt_state")
        if name is None or name in node.hyperparams
    ]


def hyper_path(state: Any, name: str) -> Path | None:
    """The path of the one node injecting ``name``; None if none does.

    Raises:
      ValueError: several nodes inject ``name`` (the message says where).

    Example:
      >>> import jax.numpy as jnp
      >>> tx = optax.chain(optax.clip(1.0),
      ...                  optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
      >>> hyper_path(tx.init({"w": jnp.ones(1)}), "learning_rate")
      (1,)
    """
    found = [(path, where) for path, where, node in _walk(state, (), "opt_state")
             if name in node.hyperparams]  # fmt: skip
    if len(found) > 1:
        places = ", ".join(where for _, where in found)
        raise ValueError(
            f"the injected hyperparameter {name!r} is ambiguous: {len(found)} parts of the "
            f"optimizer inject it ({places}); inject it in one of them only"
        )
    return found[0][0] if found else None


def node_at(node: Any, path: Path) -> Any:
    """The part of ``node`` at ``path`` (from :func:`hyper_path`).

    Example:
      >>> node_at((1, {"a": 2}), (1, "a"))
      2
    """
    for step in path:
        node = node[step]
    return node


def replace_at(node: Any, path: Path, fn: Callable[[Any], Any]) -> Any:
    """``node`` with its part at ``path`` (from :func:`hyper_path`) replaced by ``fn(part)``.

    Example:
      >>> replace_at((1, {"a": 2}), (1, "a"), lambda v: v * 10)
      (1, {'a': 20})
    """
    if not path:
        return fn(node)
    head, rest = path[0], path[1:]
    if isinstance(node, Mapping):
        items = {k: replace_at(v, rest, fn) if k == head else v for k, v in node.items()}
        return type(node)(items)  # type: ignore[call-arg]
    parts = [replace_at(p, rest, fn) if i == head else p for i, p in enumerate(node)]
    if hasattr(node, "_fields"):
        return node._replace(**dict(zip(node._fields, parts)))
    return type(node)(parts)


def is_scheduled(state: Any, name: str) -> bool:
    """Whether the injected hyperparameter ``name`` is a schedule (recomputed each update).

    ``optax.inject_hyperparams(optax.sgd)(learning_rate=schedule)`` keeps the
    schedule's state in ``hyperparams_states``; each update overwrites the value.

    Example:
      >>> import jax.numpy as jnp
      >>> sched = optax.linear_schedule(0.1, 0.0, 10)
      >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=sched)
      >>> is_scheduled(tx.init({"w": jnp.ones(1)}), "learning_rate")
      True
    """
    return any(
        name in (getattr(node, "hyperparams_states", None) or {})
        for _, node in hyper_nodes(state, name)
    )


def first_node(state: Any, kind: type) -> Any:
    """The first ``kind`` node of an optimizer state (in its tuples and mappings), or None.

    Example:
      >>> import jax.numpy as jnp
      >>> tx = optax.chain(optax.clip(1.0), optax.apply_if_finite(optax.sgd(0.1), 3))
      >>> type(first_node(tx.init({"w": jnp.ones(1)}), optax.ApplyIfFiniteState)).__name__
      'ApplyIfFiniteState'
    """
    if isinstance(state, kind):
        return state
    parts = state.values() if isinstance(state, Mapping) else state
    for part in parts if isinstance(state, tuple | Mapping) else ():
        found = first_node(part, kind)
        if found is not None:
            return found
    return None


def _any_node(state: Any, kind: type) -> bool:
    return first_node(state, kind) is not None


def skips_nonfinite(state: Any) -> bool:
    """Whether ``state`` holds an ``optax.apply_if_finite`` state (it skips NaN updates).

    Example:
      >>> import jax.numpy as jnp
      >>> tx = optax.apply_if_finite(optax.sgd(0.1), 3)
      >>> skips_nonfinite(tx.init({"w": jnp.ones(1)}))
      True
    """
    return _any_node(state, optax.ApplyIfFiniteState)


def check_state(state: Any) -> None:
    """Refuses an optimizer whose state shows that ``fit`` cannot train with it.

    Raises:
      ValueError: an ``optax.lookahead`` state: its updates need the parameters as
        ``optax.LookaheadParams`` (fast and slow copies), which ``fit`` does not keep.

    Example:
      >>> import jax.numpy as jnp
      >>> check_state(optax.adam(1e-3).init({"w": jnp.ones(1)}))
    """
    if _any_node(state, optax.LookaheadState):
        raise ValueError(
            "optimizer=optax.lookahead(...) is not supported by fit: its updates need the "
            "parameters as optax.LookaheadParams (fast and slow copies), which fit does not "
            "keep; train it with a loop of your own (nnx.value_and_grad, tx.update and "
            "optax.apply_updates on LookaheadParams)"
        )


def takes_value(tx: optax.GradientTransformation) -> bool:
    """Whether ``tx.update`` takes Optax's extra argument ``value`` (the loss).

    True for a ``value`` parameter or ``**extra_args`` (``optax.chain``,
    ``optax.MultiSteps``, ``optax.inject_hyperparams`` pass them on).

    Example:
      >>> takes_value(optax.chain(optax.sgd(0.1))), takes_value(optax.sgd(0.1))
      (True, True)
    """
    try:
        params = inspect.signature(tx.update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == "value" and p.kind is not p.POSITIONAL_ONLY)
        for p in params
    )


_MISSING = re.compile(r"missing \d+ required (?:keyword-only )?arguments?: (.+)$")


def missing_extra_args(err: TypeError) -> TypeError | None:
    """A ``TypeError`` naming ``optimizer=`` when ``err`` says an update missed arguments.

    Example:
      >>> err = TypeError("update() missing 1 required keyword-only argument: 'step'")
      >>> print(missing_extra_args(err))  # doctest: +ELLIPSIS
      optimizer=: the transformation's update requires the extra argument(s) 'step', ...
    """
    found = _MISSING.search(str(err))
    if found is None:
        return None
    return TypeError(
        f"optimizer=: the transformation's update requires the extra argument(s) "
        f"{found.group(1)}, which fit does not pass (it passes value=, the batch loss, to "
        "transformations that take extra arguments); give them defaults or train it with "
        "a loop of your own"
    )


__all__ = [
    "check_state",
    "first_node",
    "hyper_nodes",
    "hyper_path",
    "is_scheduled",
    "missing_extra_args",
    "node_at",
    "replace_at",
    "skips_nonfinite",
    "takes_value",
]
