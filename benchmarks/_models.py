"""Dense stacks (Linear, ReLU between, logits out) in every peer framework.

The benchmark scripts build their models from these: the MLP is one stack, the CNN's
head is another. Each framework's package is imported only when its builder runs, so
a missing peer costs nothing.

Example:
  >>> from flax import nnx
  >>> import jax.numpy as jnp
  >>> flax_mlp((4, 8, 3), nnx.Rngs(0))(jnp.ones((2, 4))).shape
  (2, 3)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax


def _relu_between(layers: Sequence[Any], x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jax.nn.relu(layer(x))
    return layers[-1](x)


def flax_mlp(sizes: Sequence[int], rngs: Any) -> Any:
    """``nnx.Linear`` layers of ``sizes`` with ReLU between them (Flax NNX)."""
    from flax import nnx

    class FlaxMLP(nnx.Module):
        def __init__(self, sizes: Sequence[int], rngs: nnx.Rngs):
            self.layers = nnx.List(
                [nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)]
            )

        def __call__(self, x: jax.Array) -> jax.Array:
            return _relu_between(self.layers, x)

    return FlaxMLP(sizes, rngs)


def equinox_mlp(sizes: Sequence[int], key: jax.Array) -> Any:
    """``eqx.nn.Linear`` layers of ``sizes`` with ReLU between them, for one example."""
    import equinox as eqx

    class EqxMLP(eqx.Module):
        layers: list

        def __init__(self, sizes: Sequence[int], key: jax.Array):
            keys = jax.random.split(key, len(sizes) - 1)
            self.layers = [
                eqx.nn.Linear(a, b, key=k) for (a, b), k in zip(itertools.pairwise(sizes), keys)
            ]

        def __call__(self, x: jax.Array) -> jax.Array:
            return _relu_between(self.layers, x)

    return EqxMLP(sizes, key)


def keras_dense(sizes: Sequence[int]) -> list[Any]:
    """``keras.layers.Dense`` after an input of ``sizes[0]`` features (ReLU hidden)."""
    import keras

    hidden = [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
    return [*hidden, keras.layers.Dense(sizes[-1])]


def torch_dense(sizes: Sequence[int]) -> list[Any]:
    """``torch.nn.Linear`` layers of ``sizes`` with ``ReLU`` between them."""
    import torch

    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return layers[:-1]
