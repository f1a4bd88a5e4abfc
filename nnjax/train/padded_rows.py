"""Who counts the rows ``fit`` adds to a last partial batch.

``fit`` pads the last partial batch of an epoch with copies of real rows (one compiled
shape; the rows are masked out of the built-in losses and the metrics). Two things can
count them anyway, and ``fit`` warns about each before it compiles:

* batch statistics: ``nnjax.nn.BatchNorm`` leaves the copies out (``F.batch_mask``); a
  module of your own that keeps them, Flax's ``nnx.BatchNorm`` among them, counts them,
  and its running statistics drift from a loop over the unpadded batches
  (:func:`warn_if_counted`);
* a loss of your own that returns one value for the batch and takes no ``mask``, or a
  ``loss_fn`` that reads neither ``batch.mask`` nor ``batch.weight``: the copies weigh
  in the last batch's gradient and logged loss (:func:`warn_if_loss_counts`).

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import BatchNorm
  >>> unmasked_statistics(nnx.Sequential(nnx.BatchNorm(3, rngs=nnx.Rngs(0))))
  ['layers/0 (BatchNorm)']
  >>> unmasked_statistics(BatchNorm(3, rngs=nnx.Rngs(0)))
  []
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from nnjax import _checks, losses
from nnjax import metrics as metrics_lib
from nnjax._deprecation import user_stacklevel
from nnjax.nn import BatchNorm
from nnjax.train import compiled, label_broadcast
from nnjax.train.abstract_output import abstract


def unmasked_statistics(model: nnx.Module) -> list[str]:
    """Paths of the modules that keep batch statistics and do not mask padded rows.

    A module keeps batch statistics when it holds an ``nnx.BatchStat`` of its own;
    ``nnjax.nn.BatchNorm`` masks the rows.

    Example:
      >>> unmasked_statistics(nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
      ['the model (BatchNorm)']
    """
    found = []
    for path, module in nnx.iter_modules(model):
        if isinstance(module, BatchNorm):
            continue
        if any(isinstance(value, nnx.BatchStat) for value in vars(module).values()):
            found.append(f"{'/'.join(map(str, path)) or 'the model'} ({type(module).__name__})")
    return found


def warn_if_counted(model: nnx.Module, source: Any) -> None:
    """Warns when ``source`` pads its last batch and ``model`` would count the copies.

    ``source`` is any object with ``n`` examples and a ``batch_size`` (an
    :class:`~nnjax.train.data.ArraySource`); others (iterables) are not judged.

    Example:
      >>> from types import SimpleNamespace
      >>> warn_if_counted(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), SimpleNamespace(n=32, batch_size=16))
    """
    padding = _padding(source)
    found = unmasked_statistics(model) if padding else []
    if not found:
        return
    warnings.warn(
        f"{padding}, masked out of the loss and the metrics; {', '.join(found[:3])} counts "
        "them in its batch statistics, unlike nnjax.nn.BatchNorm: use nnjax.nn.BatchNorm, "
        "or a batch_size that divides the examples",
        stacklevel=user_stacklevel(),
    )


def warn_if_loss_counts(
    loss: Any, loss_fn: Callable | None, model: nnx.Module, source: Any, name: str = "data"
) -> None:
    """Warns when ``source`` pads its last batch and the loss would count the copies.

    A loss ``loss(predictions, y)`` of your own counts them when it has neither a
    ``reduction`` keyword (per-example values, which ``fit`` masks and weighs) nor a
    ``mask`` keyword; a ``loss_fn(model, batch)`` when its result does not depend on
    ``batch.mask`` or ``batch.weight`` (0 on the copies), read off a trace of it with
    the first batch (nothing is compiled). That one trace also shows a ``loss_fn`` that
    broadcasts ``(B,)`` labels against ``(B, 1)`` outputs into a ``(B, B)`` value
    (:func:`~nnjax.train.label_broadcast.warn_if_loss_fn_broadcasts`), which it warns
    about too, padded or not.

    Args:
      loss: the loss (a name or function), or ``None`` with ``loss_fn``.
      loss_fn: ``loss_fn(model, batch)``, or ``None``.
      model: the model ``loss_fn`` is given.
      source: an object with ``n`` examples, a ``batch_size`` and ``example()`` (an
        :class:`~nnjax.train.data.ArraySource`); others (iterables) are not judged.
      name: how the data are called in the warning (``"data"``, ``"validation"``).

    Example:
      >>> from types import SimpleNamespace
      >>> warn_if_loss_counts("mse", None, None, SimpleNamespace(n=10, batch_size=4))
    """
    padding = _padding(source)
    if loss_fn is not None:
        batch = source.example() if hasattr(source, "example") else None
        judged = batch is not None and (padding or _one_label_column(batch))
        traced = _trace_loss_fn(loss_fn, model, batch) if judged else None
        if traced is not None:  # one trace for both checks
            label_broadcast.warn_if_loss_fn_broadcasts(*traced)
        if not padding or traced is None or _reads_mask_or_weight(traced[0]):
            return
        who = "loss_fn reads neither batch.mask nor batch.weight (0 on the copies)"
        remedy = (
            "weigh per-example terms by batch.weight, or average with "
            "nnjax.train.masked_mean(values, batch.mask)"
        )
    else:
        if not padding or loss is None:
            return
        fn = losses.get(loss)
        if metrics_lib.per_example(fn) is not None or _checks.takes_keyword(fn, "mask"):
            return
        who = (
            f"the loss {getattr(fn, '__name__', fn)!r} returns one value for the batch and "
            "takes no `mask` keyword"
        )
        remedy = (
            "give it a `reduction` keyword (fit masks and weighs per-example values) or "
            "a `mask` keyword"
        )
    warnings.warn(
        f"`{name}`: {padding}; {who}, so it counts them (they weigh in the last batch's "
        f"gradient and logged loss): {remedy}, or use a batch_size that divides the examples",
        stacklevel=user_stacklevel(),
    )


def _padding(source: Any) -> str:
    """What the last batch of ``source`` is padded with, or ``""`` when it is not."""
    n, batch_size = getattr(source, "n", None), getattr(source, "batch_size", None)
    if not n or not batch_size or n % batch_size == 0:
        return ""
    return (
        f"the last batch of each epoch ({n} examples, batch_size={batch_size}) is padded "
        f"with {batch_size - n % batch_size} copies of its rows"
    )


def _one_label_column(batch: Any) -> bool:
    """Whether ``batch.y`` is one ``(B,)`` array (labels a ``loss_fn`` could broadcast)."""
    return getattr(batch.y, "ndim", None) == 1 and len(batch.y) > 1


def _trace_loss_fn(loss_fn: Callable, model: nnx.Module, batch: Any) -> tuple | None:
    """``(jaxpr, inputs before x, leaves of x, leaves of y, B)`` of ``loss_fn(model, batch)``.

    The jaxpr's inputs are the model's state, the leaves of ``batch.x``, of
    ``batch.y``, then ``batch.weight`` and ``batch.mask``: what the padded-rows check
    and the broadcast check
    (:func:`~nnjax.train.label_broadcast.warn_if_loss_fn_broadcasts`) read. Kept per
    ``loss_fn``, graph and shapes, as the compiled step is. A ``loss_fn`` that cannot
    be traced here (it fails for another reason, reported by ``fit``'s own checks)
    gives ``None``: neither check judges it.
    """
    graphdef, state = nnx.split(model)
    try:  # with JAX's default, whatever the process sets (its "raise" fails earlier)
        with jax.numpy_rank_promotion("allow"):
            return _traced(loss_fn, graphdef, *abstract((state, batch)))
    except Exception:  # fit's checks trace it again and report what fails
        return None


def _trace(loss_fn: Callable, graphdef: nnx.GraphDef, treedef: Any, avals: tuple) -> tuple:
    state, batch = jax.tree.unflatten(treedef, avals)

    def call(state: Any, x: Any, y: Any, weight: jax.Array, mask: jax.Array) -> Any:
        model = nnx.merge(graphdef, state, copy=True)
        return loss_fn(model, batch._replace(x=x, y=y, weight=weight, mask=mask))

    jaxpr = jax.make_jaxpr(call)(state, batch.x, batch.y, batch.weight, batch.mask).jaxpr
    sizes = [len(jax.tree.leaves(part)) for part in (state, batch.x, batch.y)]
    return jaxpr, *sizes, batch.mask.shape[0]


_traced = compiled.cached(_trace)


def _reads_mask_or_weight(jaxpr: Any) -> bool:
    """Whether the traced ``loss_fn`` uses ``batch.weight`` or ``batch.mask`` (its last inputs).

    Conservative: a use inside a nested call counts.
    """
    read = [*(v for eqn in jaxpr.eqns for v in eqn.invars), *jaxpr.outvars]
    return bool({id(v) for v in jaxpr.invars[-2:]} & {id(v) for v in read})


__all__ = ["unmasked_statistics", "warn_if_counted", "warn_if_loss_counts"]
