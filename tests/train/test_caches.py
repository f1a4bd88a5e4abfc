"""``nnjax.train.clear_caches``: the memoised programs let go of what users gave ``fit``."""

import gc
import weakref

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import clear_caches, compiled, fit


class _Table:
    """Stands for a large object (a dataset, a teacher model) a user's callable closes over."""

    scale = 1.0


def _fit_holding(kind: str) -> weakref.ref:
    table = _Table()

    def loss(pred, y):
        return table.scale * ((pred[:, 0] - y) ** 2).mean()

    def loss_fn(model, batch):
        return table.scale * jax.numpy.mean((model(batch.x)[:, 0] - batch.y) ** 2 * batch.mask)

    given = {
        "loss": dict(loss=loss),
        "loss_fn": dict(loss_fn=loss_fn),
        "schedule": dict(loss="mse", optimizer=optax.sgd(lambda step: 0.01 * table.scale)),
    }[kind]
    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.float32)
    fit(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (x, y), verbose=0, devices=jax.devices()[:1], **given)
    return weakref.ref(table)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("kind", ["loss", "loss_fn", "schedule"])
def test_clear_caches_releases_what_a_fit_was_given(kind):
    held = _fit_holding(kind)
    gc.collect()
    assert held() is not None  # memoised with the compiled step, so a refit compiles nothing
    clear_caches()
    gc.collect()
    assert held() is None


def test_fit_compiles_afresh_after_clear_caches():
    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.float32)
    kw = dict(loss="mse", verbose=0, devices=jax.devices()[:1])
    fit(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (x, y), **kw)
    traces = compiled.TRACES.count
    fit(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (x, y), **kw)
    assert compiled.TRACES.count == traces
    clear_caches()
    fit(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (x, y), **kw)
    assert compiled.TRACES.count > traces
