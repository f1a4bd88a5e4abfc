"""A model that ends in a softmax or a sigmoid, trained with a loss that takes logits.

nnjax's ``cross_entropy`` and ``binary_cross_entropy`` (and their Keras names) take
logits and apply the softmax or sigmoid themselves; a model whose output already went
through one (``nn.MLP(..., output_activation="softmax")``, Keras's habit) is squashed
twice, and trains slowly or not at all, silently. ``fit`` and ``evaluate`` read the
model's last operation from its trace (:func:`final_activation`) and refuse that setup
before anything compiles (:func:`check_logits`).

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> from nnjax.train.step import split_model
  >>> model = MLP(2, (4,), 3, output_activation="softmax", rngs=nnx.Rngs(0))
  >>> final_activation(*split_model(model, training=False), np.ones((5, 2), np.float32))
  'softmax'
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import losses
from nnjax.train.abstract_output import abstract
from nnjax.train.compiled import cached

_TAKES_LOGITS = {losses.cross_entropy: "softmax", losses.binary_cross_entropy: "sigmoid"}


def final_activation(graphdef: nnx.GraphDef, params: Any, rest: Any, x: Any) -> str | None:
    """``"softmax"`` or ``"sigmoid"`` when the model's output comes straight out of one.

    Read from the model's trace on one abstract example like the batch ``x`` (kept per
    graph, shapes and dtypes, as :mod:`nnjax.train.abstract_output` keeps its own);
    ``None`` for any other last operation, or an output that is not one array.
    """
    example = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), x)
    return _traced(graphdef, *abstract((params, rest, example)))


def _trace(graphdef: nnx.GraphDef, treedef: Any, avals: tuple) -> str | None:
    from nnjax.train.step import call_model

    params, rest, example = jax.tree.unflatten(treedef, avals)
    closed = jax.make_jaxpr(lambda p, r, e: call_model(nnx.merge(graphdef, p, r, copy=True), e))(
        params, rest, example
    )
    outs = closed.jaxpr.outvars
    return _activation(closed.jaxpr, outs[0]) if len(outs) == 1 else None


_traced = cached(_trace)


def _activation(jaxpr: Any, out: Any) -> str | None:
    """The activation producing ``out``: ``logistic``, or ``exp(z) / sum(exp(z))``.

    Seen through what keeps the values (reshapes, copies, casts to another float dtype:
    a bfloat16 model's float32 output).
    """
    producer = {var: eqn for eqn in jaxpr.eqns for var in eqn.outvars}

    def made_by(var: Any, *names: str) -> Any:
        eqn = producer.get(var) if not hasattr(var, "val") else None
        while eqn is not None and _passes_through(eqn):
            eqn = producer.get(eqn.invars[0]) if not hasattr(eqn.invars[0], "val") else None
        return eqn if eqn is not None and eqn.primitive.name in names else None

    last = made_by(out, "logistic", "div")
    if last is None:
        return None
    if last.primitive.name == "logistic":
        return "sigmoid"
    numerator, denominator = last.invars
    total = made_by(denominator, "reduce_sum")  # of exp(z): the same or a recomputed one
    if made_by(numerator, "exp") is None or total is None:
        return None
    return "softmax" if made_by(total.invars[0], "exp") is not None else None


_SAME_VALUES = ("broadcast_in_dim", "reshape", "squeeze", "expand_dims", "copy")


def _passes_through(eqn: Any) -> bool:
    """Whether ``eqn`` keeps its input's values: a reshape, a copy, a cast to floats."""
    if eqn.primitive.name == "convert_element_type":  # a bfloat16 model's output cast
        return bool(jnp.issubdtype(eqn.params["new_dtype"], jnp.floating))
    return eqn.primitive.name in _SAME_VALUES


def check_logits(
    loss: Any, graphdef: nnx.GraphDef, params: Any, rest: Any, x: Any, name: str = "data"
) -> None:
    """Raises when ``loss`` takes logits and the model's output went through an activation.

    Raises:
      ValueError: names the activation, the loss and the remedy.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> parts = split_model(MLP(2, (4,), 3, rngs=nnx.Rngs(0)), training=False)
      >>> check_logits("cross_entropy", *parts, np.ones((5, 2), np.float32))  # logits: fine
    """
    takes = _TAKES_LOGITS.get(losses.get(loss)) if isinstance(loss, str) else None
    if takes is None:
        return
    act = final_activation(graphdef, params, rest, x)
    if act is None:
        return
    raise ValueError(
        f"`{name}`: the model's output comes out of a {act}, but the loss {loss!r} takes "
        f"logits (it applies the {takes} itself), so the output would be squashed twice "
        "and training stalls: drop the model's last activation (nn.MLP: "
        "output_activation=None; then apply jax.nn."
        f"{act} to what predict returns for probabilities)"
    )


__all__ = ["check_logits", "final_activation"]
