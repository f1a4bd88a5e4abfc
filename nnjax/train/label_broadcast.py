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


def _spreads(jaxpr: Any, tainted: list[bool]) -> bool:
    """Whether a value computed from the labels (``tainted`` inputs) goes ``(B,)`` to ``(B, B)``.

    Follows the labels through every equation (into called jaxprs); a hit is an
    equation taking a labels' value of shape ``(B,)`` or ``(1, B)`` and giving ``(B, B)``:
    the implicit broadcast of ``pred - y``, not a ``(B, B)`` value of the outputs alone.
    """
    from_labels = {var for var, t in zip(jaxpr.invars, tainted, strict=True) if t}
    for eqn in jaxpr.eqns:
        ins = [v for v in eqn.invars if _is_var(v) and v in from_labels]
        if not ins:
            continue
        inner = _inner(eqn)
        if inner is not None and _spreads(inner, [v in ins for v in eqn.invars]):
            return True
        rows = any(tuple(getattr(v.aval, "shape", ())) in ((_B,), (1, _B)) for v in ins)
        if rows and any(tuple(getattr(v.aval, "shape", ())) == (_B, _B) for v in eqn.outvars):
            return True
        from_labels.update(eqn.outvars)
    return False


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
    return _spreads(closed.jaxpr, [False, True])  # (outputs, labels)


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
        warnings.warn(
            f"`{name}`: the loss gets model outputs of shape (B, 1) and labels of shape "
            "(B,), and broadcasts them into a (B, B) array (every output against every "
            "label), which trains nothing but the labels' mean. Give the labels the "
            "outputs' shape (y.reshape(-1, 1)), or compare predictions[:, 0] with y "
            "(Keras reshapes the labels for a loss of your own; nnjax's named losses "
            "such as 'mse' align them too)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


__all__ = ["broadcasts_labels", "warn_if_labels_broadcast"]
