"""How ``fit``, ``evaluate`` and ``predict`` hand a batch's inputs ``x`` to the model.

One array is passed as is; a tuple (or list) as positional inputs; a dict as keyword
inputs. The rule (and its integer inputs) is defined in :mod:`nnjax.nn._model_call`,
below both ``nnjax.train`` and ``nnjax.io``, so that :func:`nnjax.export` takes inputs
the same way; it is re-exported here, where it has always been.

Example:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> call_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (jnp.ones((3, 2)),)).shape
  (3, 1)
"""

from nnjax.nn._model_call import call_model, integer_input_paths

__all__ = ["call_model", "integer_input_paths"]
