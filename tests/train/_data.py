"""Tiny data sets and models shared by the tests of nnjax.train."""

import numpy as np
from flax import nnx

from nnjax.nn import MLP


def blobs(n=96, d=4, classes=3, seed=0):
    """Linearly separable-ish Gaussian blobs: float32 ``x (n, d)``, int32 ``y (n,)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    centers = rng.normal(size=(classes, d)) * 2.0
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


def mlp(d=4, classes=3, seed=0, **kwargs):
    """A small MLP classifier."""
    return MLP(d, (8,), classes, rngs=nnx.Rngs(seed), **kwargs)


def leaves(model):
    """The model's parameter arrays as NumPy, in tree order."""
    import jax

    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]
