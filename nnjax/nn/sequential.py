"""Sequential composition of modules and callables."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax.nn._base import recorded


@recorded
class Sequential(nnx.Module):
    """Applies its layers in order: ``layers[-1](... layers[0](x))``.

    Layers may be NNX modules or plain callables (e.g. ``jax.nn.relu``).

    Raises:
      TypeError: if a layer is not callable (naming its position).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import Dense
      >>> rngs = nnx.Rngs(0)
      >>> model = Sequential(Dense(4, 8, rngs=rngs), jax.nn.relu, Dense(8, 2, rngs=rngs))
      >>> model(jax.numpy.ones((3, 4))).shape
      (3, 2)
    """

    def __init__(self, *layers: nnx.Module | Callable[[jax.Array], jax.Array]):
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: layer {i} is not callable: {layer!r}")
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Applies every layer in turn."""
        y = jnp.asarray(x)
        for layer in self.layers:
            y = layer(y)
        return y

    @property
    def integer_inputs(self) -> tuple[str, ...]:
        """``("x",)`` when the first layer takes integers (an ``Embedding`` first), else ``()``.

        ``fit``, ``evaluate`` and ``predict`` then take integer ``x`` with the input check
        on (see :mod:`nnjax.train.model_call`).
        """
        if not len(self.layers):
            return ()
        first = self.layers[0]
        names = getattr(first, "integer_inputs", ())
        try:
            params = list(inspect.signature(first).parameters)  # of its __call__
        except (TypeError, ValueError):  # a callable without a signature
            params = []
        return ("x",) if params[:1] and params[0] in names else ()

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int):
        return self.layers[index]
