"""One loss per model output, summed per example (Keras' ``loss={"cls": ..., "reg": ...}``).

A model with several outputs (a dict of them, or a tuple) and labels of the same
structure can be trained on a dict (or tuple) of losses: each output's loss, per
example, summed. :func:`nnjax.losses.get` builds an :class:`OutputLosses` from such a
structure; it is itself a loss (``reduction`` included), so ``fit``, ``evaluate`` and
``sweep`` mask, weight and average it exactly as a single named loss.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import losses
  >>> both = losses.get({"cls": "cross_entropy", "reg": "mse"})
  >>> pred = {"cls": jnp.zeros((2, 3)), "reg": jnp.zeros((2, 1))}
  >>> y = {"cls": jnp.array([0, 2]), "reg": jnp.array([1.0, 3.0])}  # (B,) for (B, 1)
  >>> round(float(both(pred, y)), 4)  # log(3) + (1 + 9) / 2
  6.0986
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from nnjax import _checks
from nnjax._loss_checks import _reduce, align_targets, per_example_mean


@dataclasses.dataclass(frozen=True)
class OutputLosses:
    """A loss per model output; ``self(predictions, targets)`` sums them per example.

    Each output's term may be weighted (Keras' ``loss_weights``). Hashable (equal
    specifications are equal), so ``fit`` reuses its compiled step.

    Attributes:
      keys: the outputs' dict keys, or positions for a tuple of outputs, in order.
      fns: each output's loss function ``fn(p, t, *, reduction)``.
      aligned: whether each output's labels get a size-1 last axis matched to its
        predictions (:func:`~nnjax.losses.align_targets`; the losses of
        :data:`~nnjax.losses.TARGETS_LIKE_PREDICTIONS`).
      sequence: the outputs are a tuple (or list) rather than a dict.
      weights: each output's weight in the sum, in ``keys`` order; ``None``: all 1.

    Example:
      Built by :func:`nnjax.losses.per_output` (``fit`` builds one from a dict of losses):

      >>> import jax.numpy as jnp
      >>> from nnjax.losses import per_output
      >>> two = per_output(("mse", "mae"), weights=(1.0, 2.0))
      >>> two.keys, two.weights
      ((0, 1), (1.0, 2.0))
      >>> float(two((jnp.zeros((2, 1)), jnp.zeros((2, 1))), (jnp.ones(2), jnp.ones(2))))
      3.0
    """

    keys: tuple[Any, ...]
    fns: tuple[Callable[..., jax.Array], ...]
    aligned: tuple[bool, ...]
    sequence: bool
    weights: tuple[float, ...] | None = None

    __name__ = "loss"

    def __call__(self, predictions: Any, targets: Any, *, reduction: str = "mean") -> jax.Array:
        """The (weighted) sum over outputs of each output's per-example loss, reduced.

        Args:
          predictions: the model's outputs, a dict (or tuple) holding at least these keys
            (positions), each ``(B, ...)``.
          targets: the labels, the same structure.
          reduction: ``"mean"``, ``"sum"`` or ``"none"`` (the ``(B,)`` sums).

        Raises:
          ValueError: an output or label missing, or not a dict (tuple) of them.
        """
        rows = list(self.rows(predictions, targets).values())
        if self.weights is not None:
            rows = [w * r for w, r in zip(self.weights, rows, strict=True)]
        return _reduce(sum(rows[1:], rows[0]), reduction)

    def rows(self, predictions: Any, targets: Any) -> dict[Any, jax.Array]:
        """Each output's loss per example ``(B,)`` (the mean over its other axes), unweighted."""
        for tree, what in ((predictions, "model outputs"), (targets, "labels y")):
            self.check_structure(tree, what)
        return {key: self.term(key, predictions[key], targets[key]) for key in self.keys}

    def term(self, key: Any, predictions: Any, targets: Any) -> jax.Array:
        """The loss per example ``(B,)`` of the output ``key``, on its own arrays.

        Example:
          >>> import jax.numpy as jnp, nnjax.losses
          >>> both = nnjax.losses.get({"a": "mse", "b": "mae"})
          >>> both.term("b", jnp.zeros((2, 1)), jnp.array([1.0, -3.0])).tolist()
          [1.0, 3.0]
        """
        i = self.keys.index(key)
        p, t = predictions, align_targets(predictions, targets) if self.aligned[i] else targets
        return per_example_mean(self.fns[i](p, t, reduction="none"))

    def check_structure(self, tree: Any, what: str) -> None:
        """Raises ``ValueError`` unless ``tree`` holds every output this loss names.

        Example:
          >>> import nnjax.losses
          >>> nnjax.losses.get(["mse", "mae"]).check_structure((1, 2), "labels y")
        """
        if self.sequence:
            if not isinstance(tree, tuple | list) or len(tree) != len(self.keys):
                raise ValueError(
                    f"loss: one loss per output for {len(self.keys)} outputs in a tuple, but "
                    f"the {what} are {_structure(tree)}"
                )
            return
        if not isinstance(tree, Mapping):
            raise ValueError(
                f"loss: one loss per output for the keys {list(self.keys)}, but the {what} "
                f"are {_structure(tree)}; a dict of losses needs a model returning a dict"
            )
        missing = [k for k in self.keys if k not in tree]
        if missing:
            raise ValueError(
                f"loss: the {what} have no {missing[0]!r} (they have {list(tree)}); the losses "
                f"name {list(self.keys)}"
            )


@dataclasses.dataclass(frozen=True)
class OutputMetric:
    """A metric of one model output: ``metrics={"cls": ["accuracy"]}`` in ``fit``.

    :func:`nnjax.metrics.resolve` makes it a metric of ``predictions[key]`` and
    ``targets[key]``, logged as ``"<key>_<name>"`` (``"cls_accuracy"``; a tuple's
    output ``i``: ``"output_<i>_<name>"``).

    Attributes:
      key: the output's dict key, or its position in a tuple of outputs.
      spec: the metric: a name, a ``Metric`` or a function, as ``fit`` takes them.

    Example:
      >>> OutputMetric("cls", "accuracy").prefix, OutputMetric(1, "mae").prefix
      ('cls_', 'output_1_')
    """

    key: Any
    spec: Any

    @property
    def prefix(self) -> str:
        """What the logged name starts with."""
        return f"output_{self.key}_" if isinstance(self.key, int) else f"{self.key}_"

    def select(self, tree: Any, what: str) -> Any:
        """``tree[key]``, or a ``ValueError`` naming the key and what ``tree`` holds."""
        try:
            return tree[self.key]
        except (KeyError, IndexError, TypeError):
            raise ValueError(
                f"metrics[{self.key!r}]: the {what} have no output {self.key!r}; they are "
                f"{_structure(tree)}"
            ) from None


def _structure(tree: Any) -> str:
    if isinstance(tree, Mapping):
        return f"a dict with keys {list(tree)}"
    if isinstance(tree, tuple | list):
        return f"a {type(tree).__name__} of {len(tree)}"
    return f"one array of shape {getattr(tree, 'shape', '?')}"


def output_losses(
    spec: Mapping[Any, Any] | Sequence[Any],
    resolve: Callable[[Any], Callable[..., jax.Array]],
    aligned: frozenset,
    weights: Mapping[Any, float] | Sequence[float] | None = None,
) -> OutputLosses:
    """The :class:`OutputLosses` of ``{key: loss}`` (or ``(loss, ...)``), each resolved.

    Args:
      spec: a dict of a loss name or function per output key, or a tuple or list of
        them per output position.
      resolve: a name (or function) to a loss function (:func:`nnjax.losses.get`).
      aligned: the loss functions whose labels are matched in shape
        (:data:`~nnjax.losses.TARGETS_LIKE_PREDICTIONS`).
      weights: each output's weight in the sum: one number per loss, in order, or (for
        a dict of losses) a dict by output key, the outputs it leaves out weighing 1;
        ``None``: all 1.

    Raises:
      ValueError: no loss, or an unknown name (naming the output); weights for outputs
        the losses do not name, or of another count, or negative or non-finite.
      TypeError: a function that takes no ``reduction`` keyword (a per-example loss is
        needed to sum per example), or a loss that is neither a name nor a callable;
        weights that are not numbers, or a dict of them for a tuple of losses.
    """
    sequence = not isinstance(spec, Mapping)
    items = list(spec.items()) if isinstance(spec, Mapping) else list(enumerate(spec))
    if not items:
        raise ValueError("loss: a dict (or tuple) of losses needs at least one output")
    fns = []
    for key, loss in items:
        where = f"loss[{key!r}]"
        if not (isinstance(loss, str) or callable(loss)):
            raise TypeError(f"{where} must be a loss name or function, got {loss!r}")
        try:
            fn = resolve(loss)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if not _checks.takes_keyword(fn, "reduction"):
            raise TypeError(
                f"{where}: {getattr(fn, '__name__', fn)!r} takes no `reduction` keyword; a "
                "loss per output must give per-example values (reduction='none'), as the "
                "losses of nnjax.losses do; or pass one function of all outputs as `loss`"
            )
        fns.append(fn)
    keys = tuple(k for k, _ in items)
    weighed = None if weights is None else _weights(keys, sequence, weights)
    return OutputLosses(keys, tuple(fns), tuple(fn in aligned for fn in fns), sequence, weighed)


def _weights(keys: tuple, sequence: bool, weights: Any) -> tuple[float, ...]:
    """Each output's weight, checked, in ``keys`` order (1 for a dict's unnamed keys)."""
    if (sequence and isinstance(weights, Mapping)) or not isinstance(weights, Mapping | Sequence):
        kind = "one number per loss" + ("" if sequence else ", or a dict by output key")
        raise TypeError(f"loss weights: expected {kind}, got {weights!r}")
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in keys]
        if unknown:
            raise ValueError(
                f"loss weights: {unknown[0]!r} is not an output the losses name {list(keys)}"
            )
        values = [weights.get(k, 1.0) for k in keys]
    elif len(weights) != len(keys):
        raise ValueError(f"loss weights: {len(weights)} weights for {len(keys)} losses")
    else:
        values = list(weights)
    for key, w in zip(keys, values, strict=True):
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            raise TypeError(f"loss weights[{key!r}] must be a number, got {w!r}")
        if not (math.isfinite(w) and float(w) >= 0):
            raise ValueError(f"loss weights[{key!r}] must be finite and >= 0, got {w!r}")
    return tuple(float(w) for w in values)


__all__ = ["OutputLosses", "OutputMetric", "output_losses"]
