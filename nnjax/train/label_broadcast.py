"""A loss of your own that compares ``(B, 1)`` outputs with ``(B,)`` labels by broadcasting.

``jnp.mean((pred - y) ** 2)`` with ``pred (B, 1)`` and ``y (B,)`` is the mean of a
``(B, B)`` array: every prediction against every label, a loss whose gradient barely
depends on which label goes with which example, so the model learns the labels' mean
and nothing else. Keras reshapes the labels to the outputs' rank before calling a loss
of your own; nnjax's named losses (``"mse"``) align them too; a callable gets the labels
as they are, so ``fit`` and ``evaluate`` trace it once, abstractly, and warn when it
builds such an array.

Example:
  >>> import warnings
  >>> out = jax.ShapeDtypeStruct((1, 1), np.float32)
  >>> with warnings.catch_warnings(record=True) as caught:
  ...     warnings.simplefilter("always")
  ...     warn_if_labels_broadcast(lambda p, y: ((p - y) ** 2).mean(), out, np.zeros(4))
  >>> "broadcasts" in str(caught[0].message)
  True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from nnjax._deprecation import user_stacklevel

_B = 7  # an odd batch size no model or loss would hold as a constant


def _is_var(atom: Any) -> bool:
    """A jaxpr variable (hashable), not a literal constant."""
    return not hasattr(atom, "val")


def _inner(eqn: Any) -> Any:
    """The jaxpr an equation calls with its own operands (jit, custom rules), or None."""
    for param in eqn.params.values():
        inner = getattr(param, "jaxpr", param)  # a ClosedJaxpr's Jaxpr
        if hasattr(inner, "eqns") and len(inner.invars) == len(eqn.invars):
            return inner
    return None


def _spreads(jaxpr: Any, sources: list[set[str]], b: int = _B) -> bool:
    """Whether an equation meets ``(B,)`` labels with ``(B, 1)`` outputs into ``(B, B)``.

    ``sources`` says, per input of ``jaxpr``, what it is computed from: ``"y"`` (the
    labels), ``"p"`` (the outputs); both are followed through every equation (into
    called jaxprs). A hit takes a value of the labels of shape ``(B,)`` or ``(1, B)`` and
    one of the outputs of shape ``(B, 1)`` and gives ``(B, B)``: the implicit broadcast of
    ``pred - y``, not a pairwise ``(B, B)`` value of the labels or of the outputs alone
    (``y[:, None] - y[None, :]`` in a ranking loss). ``b`` is the traced batch size.
    """
    made = {var: set(src) for var, src in zip(jaxpr.invars, sources, strict=True)}
    for eqn in jaxpr.eqns:
        ins = [(v, made.get(v, set())) for v in eqn.invars if _is_var(v)]
        flows = set().union(*(src for _, src in ins))
        if not flows:
            continue
        inner = _inner(eqn)
        if inner is not None:
            inner_sources = [made.get(v, set()) if _is_var(v) else set() for v in eqn.invars]
            if _spreads(inner, inner_sources, b):
                return True
        labels = any("y" in src and _shape(v) in ((b,), (1, b)) for v, src in ins)
        outputs = any("p" in src and _shape(v) == (b, 1) for v, src in ins)
        if labels and outputs and any(_shape(v) == (b, b) for v in eqn.outvars):
            return True
        made.update((var, flows) for var in eqn.outvars)
    return False


def _shape(var: Any) -> tuple[int, ...]:
    return tuple(getattr(var.aval, "shape", ()))


def broadcasts_labels(loss: str | Callable, y_dtype: Any) -> bool:
    """Whether ``loss`` turns ``(B, 1)`` outputs and ``(B,)`` labels into a ``(B, B)`` value.

    Traced as ``fit`` calls it (:func:`nnjax.train.objective.loss_on_batch`); a loss that
    fails to trace is left to the other checks.

    Example:
      >>> broadcasts_labels(lambda p, y: ((p[:, 0] - y) ** 2).mean(), np.float32)
      False
    """
    from nnjax.train import objective  # objective imports the checks that import this

    pred = jax.ShapeDtypeStruct((_B, 1), np.float32)
    target = jax.ShapeDtypeStruct((_B,), y_dtype)
    try:  # with JAX's default, whatever the process sets (its "raise" fails earlier)
        with jax.numpy_rank_promotion("allow"):
            closed = jax.make_jaxpr(objective.loss_on_batch(loss))(pred, target)
    except Exception:  # the loss's own failure: check_loss_accepts names it
        return False
    return _spreads(closed.jaxpr, [{"p"}, {"y"}])  # (outputs, labels)


def warn_if_labels_broadcast(loss: str | Callable, out: Any, y: Any, name: str = "data") -> None:
    """Warns when a callable ``loss`` broadcasts ``(B,)`` labels against ``(B, 1)`` outputs.

    Only for losses of your own (named ones align the labels) on a model with one output
    of one feature and labels of one number per example.

    Args:
      loss: the loss ``fit`` or ``evaluate`` was given.
      out: the model's abstract output for one example, ``(1, ...)``.
      y: the labels (an array, or the first batch's).
      name: how the data is called in the warning (``"data"``, ``"validation"``).
    """
    if isinstance(loss, str) or not isinstance(out, jax.ShapeDtypeStruct):
        return
    if tuple(out.shape[1:]) != (1,) or getattr(y, "ndim", None) != 1:
        return
    if broadcasts_labels(loss, np.asarray(y[:1]).dtype):
        _warn(f"`{name}`: the loss gets", "predictions[:, 0]")


def warn_if_loss_fn_broadcasts(jaxpr: Any, first: int, n_x: int, n_y: int, batch_size: int) -> None:
    """Warns when a traced ``loss_fn`` broadcasts ``(B,)`` labels against ``(B, 1)`` outputs.

    Args:
      jaxpr: the jaxpr of ``loss_fn(model, batch)`` whose inputs are ``first`` others
        (the model's state), the leaves of ``batch.x`` and then of ``batch.y`` (others
        may follow); :func:`nnjax.train.padded_rows.warn_if_loss_counts` traces it once
        for both checks.
      first: how many inputs come before ``batch.x``'s leaves.
      n_x: how many leaves ``batch.x`` has (values computed from them are the outputs).
      n_y: how many leaves ``batch.y`` has (values computed from them are the labels).
      batch_size: the traced batch's size ``B`` (below 2, nothing is judged).

    Example:
      >>> f = lambda x, y: ((x @ np.ones((2, 1), np.float32) - y[None]) ** 2).mean()
      >>> closed = jax.make_jaxpr(f)(np.ones((3, 2), np.float32), np.ones(3, np.float32))
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     warn_if_loss_fn_broadcasts(closed.jaxpr, 0, 1, 1, 3)
      >>> "loss_fn" in str(caught[0].message)
      True
    """
    if batch_size < 2:
        return
    rest = len(jaxpr.invars) - first - n_x - n_y
    sources: list[set[str]] = [set()] * first + [{"p"}] * n_x + [{"y"}] * n_y + [set()] * rest
    if _spreads(jaxpr, sources, batch_size):
        _warn("`data`: loss_fn compares", "model(batch.x)[:, 0]")


def _warn(who: str, column: str) -> None:
    warnings.warn(
        f"{who} model outputs of shape (B, 1) with labels of shape (B,), and broadcasts "
        "them into a (B, B) array (every output against every label), which trains "
        "nothing but the labels' mean. Give the labels the outputs' shape "
        f"(y.reshape(-1, 1)), or compare {column} with y (Keras reshapes the labels for "
        "a loss of your own; nnjax's named losses such as 'mse' align them too)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


__all__ = ["broadcasts_labels", "warn_if_labels_broadcast", "warn_if_loss_fn_broadcasts"]
