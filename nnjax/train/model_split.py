"""A model split into its static graph and its state, in training or inference mode.

:func:`split_model` is how every compiled step of :mod:`nnjax.train` takes a Flax NNX
model: a static ``graphdef`` (in training mode, dropout on and batch statistics updated,
or in inference mode) and two pytrees, ``params`` (every ``nnx.Param``) and ``rest``
(all other state). Re-exported by :mod:`nnjax.train.step`, where it was defined.

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> graphdef, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
  >>> sorted(params["layers"][0])
  ['bias', 'kernel']
"""

from __future__ import annotations

import collections
from typing import Any

import jax
from flax import nnx

from nnjax.nn._modes import view_in_mode
from nnjax.nn._validate import check_module

PyTree = Any

_TRAIN_MODE = {"deterministic": False, "use_running_average": False}
_EVAL_MODE = {"deterministic": True, "use_running_average": True}


def split_model(model: nnx.Module, *, training: bool = True) -> tuple[nnx.GraphDef, PyTree, PyTree]:
    """Splits ``model`` into ``(graphdef, params, rest)``.

    The graphdef is taken from a view of the model in training mode (dropout on, batch
    statistics updated) or, with ``training=False``, in inference mode; the model itself
    is not modified. ``params`` holds the ``nnx.Param`` leaves, ``rest`` the batch
    statistics, RNG keys and counts.

    Args:
      model: any Flax NNX module.
      training: which mode the returned graphdef runs in.

    Returns:
      ``(graphdef, params, rest)``; ``nnx.merge(graphdef, params, rest)`` rebuilds it.

    Raises:
      TypeError: ``model`` is not an ``nnx.Module`` instance (:func:`check_module`).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> graphdef, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> params["layers"][0]["kernel"].shape
      (2, 4)
    """
    check_module(model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    graphdef = graph_in_mode(graphdef, params, rest, training=training)
    # Fresh Variable containers: later steps never write into ``model`` itself.
    return graphdef, *jax.tree.map(lambda leaf: leaf, (params, rest))


#: The last graphs put in a mode by :func:`graph_in_mode`: ``(graphdef, training) -> graphdef``.
_MODE_GRAPHS: collections.OrderedDict[tuple[nnx.GraphDef, bool], nnx.GraphDef] = (
    collections.OrderedDict()
)


def graph_in_mode(
    graphdef: nnx.GraphDef, params: PyTree, rest: PyTree, *, training: bool
) -> nnx.GraphDef:
    """``graphdef`` with its modules in training or inference mode (as ``nnx.view`` sets it).

    The state (``params``, ``rest``: any arrays of the graph's structure, e.g. a
    sweep's stacked members) is read only the first time. A view clones the whole
    module graph (3.6 of the 4.1 ms that splitting a 22-layer MLP took), and the mode's
    graph depends on the graph alone, so it is derived once per graph (the 64 most
    recent are kept; a graph that cannot be hashed, every time).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 1, dropout=0.5, rngs=nnx.Rngs(0))
      >>> graphdef, params, rest = nnx.split(model, nnx.Param, ...)
      >>> eval_graph = graph_in_mode(graphdef, params, rest, training=False)
      >>> nnx.merge(eval_graph, params, rest).dropouts[0].deterministic
      True
    """
    key = (graphdef, training)
    try:
        found = _MODE_GRAPHS.get(key)
    except TypeError:  # a graph with unhashable static metadata: derive it every time
        return _view_graph(graphdef, params, rest, training)
    if found is None:
        found = _MODE_GRAPHS[key] = _view_graph(graphdef, params, rest, training)
        if len(_MODE_GRAPHS) > 64:
            _MODE_GRAPHS.popitem(last=False)
    return found


def _view_graph(graphdef: nnx.GraphDef, params: Any, rest: Any, training: bool) -> nnx.GraphDef:
    mode = _TRAIN_MODE if training else _EVAL_MODE
    model = nnx.merge(graphdef, params, rest, copy=True)
    return nnx.split(view_in_mode(model, **mode), nnx.Param, ...)[0]


def graphdef_for(model: nnx.Module, *, training: bool) -> nnx.GraphDef:
    """The static graphdef of ``model`` in training or inference mode (see :func:`split_model`).

    Args:
      model: the Flax NNX model.
      training: training mode (dropout on, batch statistics) or inference mode.

    Returns:
      The ``nnx.GraphDef``; ``model`` itself is left in its mode.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd = graphdef_for(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> isinstance(gd, nnx.GraphDef)
      True
    """
    return split_model(model, training=training)[0]


__all__ = ["graph_in_mode", "graphdef_for", "split_model"]
