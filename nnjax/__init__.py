"""nnjax: neural networks in JAX from pure functions.

The layers of the package, from the bottom up:

* :mod:`nnjax.activations`, :mod:`nnjax.initializers`, :mod:`nnjax.losses`,
  :mod:`nnjax.metrics`: elementwise and reduction building blocks.
* :mod:`nnjax.functional` (``import nnjax.functional as F``): pure layer functions,
  ``F.<op>_init(key, ...) -> params`` and ``F.<op>(params, x) -> y``.
* :mod:`nnjax.classic`: the textbook networks (perceptron, Hopfield, echo state, ...).
* :mod:`nnjax.nn`: Flax NNX modules and ready models that call :mod:`nnjax.functional`.
* :mod:`nnjax.io`: ``save``/``load``, ``save_state``/``load_state``, ``export``/
  ``load_exported`` (also as ``nnjax.save`` etc.), the one checkpoint layout.
* :mod:`nnjax.train`: jit-compiled Optax training, ``fit``, callbacks and sweeps.
* :mod:`nnjax.data`: dataset loaders, scalers and batching (host side, NumPy).
* :mod:`nnjax.distributed`: joining a multi-process run (``initialize``) and starting
  one locally (``launch``), on JAX's multi-controller runtime.
* :mod:`nnjax.errors`: :class:`~nnjax.errors.ShapeError` for wrong shapes.
"""

import importlib
from typing import TYPE_CHECKING

from nnjax import activations, errors, functional, initializers, losses, metrics
from nnjax.errors import ShapeError

if TYPE_CHECKING:  # what the lazy `__getattr__` below returns, for type checkers and IDEs
    from nnjax import classic, data, distributed, io, nn, train
    from nnjax.io.export import export, load_exported
    from nnjax.io.model import load, load_state, save, save_state

__version__ = "0.2.0"
"""The installed version of nnjax (``"major.minor.patch"``)."""

# The upper layers load on first use, so `import nnjax` stays light and
# `nnjax.data` can be used without importing Flax.
_LAZY = ("classic", "data", "distributed", "io", "nn", "train")
# Persistence, re-exported from nnjax.io (loaded, with Flax, on first use).
_IO = ("save", "load", "save_state", "load_state", "export", "load_exported")


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"nnjax.{name}")
    if name in _IO:
        return getattr(importlib.import_module("nnjax.io"), name)
    raise AttributeError(f"module 'nnjax' has no attribute {name!r}")


__all__ = [
    "ShapeError",
    "__version__",
    "activations",
    "classic",
    "data",
    "distributed",
    "errors",
    "export",
    "functional",
    "initializers",
    "io",
    "load",
    "load_exported",
    "load_state",
    "losses",
    "metrics",
    "nn",
    "save",
    "save_state",
    "train",
]
