"""Flax NNX modules and ready models, composed from :mod:`nnjax.functional`.

Each layer holds its functional parameter dict as ``nnx.Param`` attributes and calls
the functional op, so ``nnx.state(layer, nnx.Param)`` is the dict that ``F.<op>_init``
returns.
"""

from nnjax.nn.dense import Dense
from nnjax.nn.mlp import MLP
from nnjax.nn.sequential import Sequential

__all__ = ["MLP", "Dense", "Sequential"]
