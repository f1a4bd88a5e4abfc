"""A model's output for a batch, found by abstract evaluation before anything compiles.

``fit``, ``evaluate`` and ``predict`` first check that the model takes the data's
inputs, and read the shape of its output for the label and loss checks, by tracing the
model on abstract values (:func:`jax.eval_shape`: no compile, no computation). That
trace costs what a ``jax.jit`` trace costs (about 30 ms for a 22-layer MLP, most of a
``predict`` call on a small batch), so, as ``jax.jit`` keeps its traces, the result is
kept per graph and per shapes and dtypes of the parameters, the other state and the
batch (never per values).

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> from nnjax.train.step import split_model
  >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
  >>> graphdef, params, rest = split_model(model, training=False)
  >>> output_shape(model, graphdef, params, rest, np.ones((5, 2), np.float32)).shape
  (1, 3)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import nnx

from nnjax.errors import ShapeError
from nnjax.nn._model_call import binding_error
from nnjax.train.compiled import cached
from nnjax.train.validation import describe


def output_shape(
    model: nnx.Module,
    graphdef: nnx.GraphDef,
    params: Any,
    rest: Any,
    x: Any,
    *,
    name: str | None = None,
    whole: Any = None,
    tuple_batch: str | None = None,
) -> Any:
    """The model's output for one example like the batch ``x`` (``ShapeDtypeStruct`` leaves).

    Args:
      model: the model (its expected input features are named in errors).
      graphdef: its graph (:func:`nnjax.train.step.split_model`).
      params: its parameters.
      rest: its other state.
      x: a batch of inputs, any pytree of ``(B, ...)`` arrays.
      name: what the user called the data (``"validation_data"``), named in errors.
      whole: all the inputs ``x`` came from (the user's arrays), when known: an error
        then says when they are one example without a batch axis (``x[None]``).
      tuple_batch: the function (``"fit"``, ``"predict"``...) that took ``x`` as the first
        item of a tuple batch ``(x, y[, sample_weight])`` of an iterable: a model that
        needs more positional inputs is then told how to pass several as one ``x``.

    Raises:
      TypeError: the model's ``__call__`` cannot take ``x`` as nnjax passes it (a
        required argument missing, one too many).
      ShapeError: the model cannot take ``x`` (a ``ValueError``); names the data, the
        per-example shapes it got, the features the model expects and the model's
        error (its ``__cause__``).
    """
    example = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), x)
    try:
        return _traced(graphdef, *abstract((params, rest, example)))
    except (AssertionError, TypeError, ValueError, KeyError) as err:
        prefix = f"`{name}`: " if name else ""
        unbound = binding_error(model, x)
        if unbound is not None:  # the call itself, not the shapes
            raise TypeError(
                f"{prefix}the model's __call__ cannot take the inputs as nnjax passes them "
                f"({unbound}): one array is passed as model(x), a tuple as model(*x), a dict "
                "as model(**x); give the other arguments defaults (modes come from "
                "model.train() and model.eval())"
                f"{_tuple_hint(model, x, tuple_batch) if tuple_batch else ''}"
            ) from err
        per_example = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), x)
        hint = ""
        if _takes(graphdef, params, rest, x, _channels_last):
            hint = (
                "; the inputs look channels-first (N, C, H, W), and nnjax is channels-last "
                "(NHWC): x.transpose(0, 2, 3, 1)"
            )
        elif whole is not None and _takes(graphdef, params, rest, whole, _one_example):
            # a hint, not a verdict: a sequence model takes (1, T, F) of any (T, F) too
            hint = (
                f"; if x (shape {_shapes(whole)}) is one example without a batch axis, pass "
                "x[None] (the model takes inputs of shape (batch, ...))"
            )
        raise ShapeError(
            f"{prefix}the model cannot take inputs of per-example "
            f"shape {describe(per_example)}"
            f"{_expected_input(model)}{hint}: {err}"
        ) from err


def _tuple_hint(model: nnx.Module, x: Any, caller: str) -> str:
    """How to pass several inputs in one batch, if ``x`` had fewer than the model needs."""
    try:
        params = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return ""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds and p.default is p.empty]
    if isinstance(x, Mapping) or len(names) <= (len(x) if isinstance(x, tuple | list) else 1):
        return ""  # not too few positional inputs: not a batch tuple read as (x, y)
    inputs, keys = ", ".join(names), ", ".join(f"{n!r}: {n}" for n in names)
    wrapped = (
        f"(({inputs}),) or a dict {{{keys}}}"
        if caller == "predict"
        else f"(({inputs}), y) or ({{{keys}}}, y)"
    )
    return (
        f"; {caller} reads a batch tuple as (x, y[, sample_weight]) and passes x alone to "
        f"the model: pass several inputs as one x, {wrapped}"
    )


def _one_example(a: Any) -> tuple[int, ...] | None:
    """``a``'s shape with a batch axis of one in front: ``a`` read as a single example."""
    return (1, *np.shape(a))


def _channels_last(a: Any) -> tuple[int, ...] | None:
    """One example of a channels-first ``(N, C, H, W)`` batch as NHWC, or ``None``."""
    shape = np.shape(a)
    return (1, *shape[2:], shape[1]) if len(shape) == 4 and shape[1] != shape[-1] else None


def _shapes(tree: Any) -> str:
    """``(8, 8, 1)`` for one array (the user's own spelling), :func:`describe` otherwise."""
    return str(tuple(np.shape(tree))) if hasattr(tree, "shape") else describe(tree)


def _takes(graphdef: nnx.GraphDef, params: Any, rest: Any, x: Any, reshape: Any) -> bool:
    """Whether the model takes ``x`` with every leaf's shape made by ``reshape`` (a probe)."""
    leaves, treedef = jax.tree.flatten(x)
    shapes = [reshape(a) for a in leaves]
    if not leaves or any(s is None for s in shapes):
        return False
    probe = [jax.ShapeDtypeStruct(s, a.dtype) for s, a in zip(shapes, leaves, strict=True)]
    try:
        _traced(graphdef, *abstract((params, rest, jax.tree.unflatten(treedef, probe))))
    except Exception:  # not this mistake: the original error stands
        return False
    return True


def abstract(tree: Any) -> tuple[Any, tuple[jax.ShapeDtypeStruct, ...]]:
    """``(treedef, avals)`` of ``tree``: a hashable key of its structure, shapes and dtypes.

    For memoising a trace (:func:`nnjax.train.compiled.cached`) as ``jax.jit`` keys its
    own: ``jax.tree.unflatten(treedef, avals)`` is the abstract tree to trace.

    Example:
      >>> treedef, avals = abstract({"w": np.ones((2, 3), np.float32)})
      >>> avals
      (ShapeDtypeStruct(shape=(2, 3), dtype=float32),)
    """
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(_aval(a) for a in leaves)


def _aval(a: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(a), a.dtype, weak_type=bool(getattr(a, "weak_type", 0)))


def _trace(graphdef: nnx.GraphDef, treedef: Any, avals: tuple) -> Any:
    from nnjax.train.step import call_model

    params, rest, example = jax.tree.unflatten(treedef, avals)
    return jax.eval_shape(
        lambda p, r, e: call_model(nnx.merge(graphdef, p, r, copy=True), e), params, rest, example
    )


_traced = cached(_trace)


def _expected_input(model: nnx.Module) -> str:
    features = getattr(model, "in_features", None)
    return f" (the model expects {features} input features)" if features is not None else ""


__all__ = ["abstract", "output_shape"]
