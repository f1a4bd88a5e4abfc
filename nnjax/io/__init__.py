"""Persistence: save, load, export, and the one checkpoint layout (Orbax, as Flax writes it).

* :func:`save` / :func:`load`: an ``nnjax.nn`` model with its constructor arguments
  (JSON), rebuilt with no user code.
* :func:`save_state` / :func:`load_state`: the state of any NNX module, into a model
  you build.
* :func:`export` / :func:`load_exported`: the inference function as StableHLO
  (``jax.export``) with a symbolic batch axis.

Every checkpoint folder has the same layout (:mod:`nnjax.io.layout`): ``state/`` is
``nnx.to_pure_dict(nnx.state(model))`` written by Orbax as in Flax's checkpointing
guide (PRNG keys as key data), beside ``nnjax.json`` (format version, recorded model).
Nothing is ever unpickled or evaluated. Orbax (``orbax-checkpoint``) is a core dependency.

Example:
  >>> import tempfile
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
  >>> folder = save(model, tempfile.mkdtemp() + "/mlp")
  >>> bool((load(folder)(jnp.ones((1, 4))) == model(jnp.ones((1, 4)))).all())
  True
"""

from nnjax.io.errors import CheckpointError, CheckpointFallbackWarning
from nnjax.io.export import export, load_exported
from nnjax.io.model import load, load_state, save, save_state
from nnjax.io.run import Preprocessing, Run

__all__ = [
    "CheckpointError",
    "CheckpointFallbackWarning",
    "Preprocessing",
    "Run",
    "export",
    "load",
    "load_exported",
    "load_state",
    "save",
    "save_state",
]
