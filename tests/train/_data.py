"""Tiny data sets and models shared by the tests of nnjax.train."""

import jax
import numpy as np
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.callbacks import Callback


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
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def three_classes(n, seed=0):
    """``x (n, 4)`` float32 and labels 0..2 from thresholds on its first two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32)
    return x, y


def crash_at(at):
    """A callback raising ``RuntimeError("killed")`` at the end of epoch ``at``."""

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == at:
                raise RuntimeError("killed")

    return Crash()


class Scripted(Callback):
    """Overwrites ``val_loss`` with a script and keeps each epoch's parameters."""

    def __init__(self, values):
        self.values, self.params = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.params.append([np.asarray(a) for a in jax.tree.leaves(self.loop.state.params)])
