"""``nnjax.train._canonical``: equal fresh optimizers share one object, different ones do not."""

import jax
import numpy as np
import optax
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import fit
from nnjax.train._canonical import canonical

RATE = 0.1  # a module global read by the schedules below, as in a script's loop


def _sgd_reading_the_global() -> optax.GradientTransformation:
    return optax.sgd(lambda step: RATE)  # the same code object on every call


def test_equal_fresh_optimizers_share_the_first():
    assert canonical(optax.adam(1e-3)) is canonical(optax.adam(1e-3))
    assert canonical(optax.adam(1e-3)) is not canonical(optax.adam(2e-3))


def test_a_schedule_reading_a_changed_global_is_another_optimizer(monkeypatch):
    """Globals were not part of the fingerprint: the second of two ``optax.sgd(lambda
    step: base_lr)`` in a loop over rates was mapped to the first (trained at its rate)."""
    first = canonical(_sgd_reading_the_global())
    monkeypatch.setattr(f"{__name__}.RATE", 0.001)
    second = canonical(_sgd_reading_the_global())
    assert second is not first
    assert canonical(_sgd_reading_the_global()) is second
    monkeypatch.setattr(f"{__name__}.RATE", 0.1)
    assert canonical(_sgd_reading_the_global()) is first


def _trained(optimizer) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = MLP(4, (8,), 2, rngs=nnx.Rngs(0))
    kw = dict(loss="cross_entropy", epochs=1, batch_size=32, verbose=0, devices=jax.devices()[:1])
    fit(model, (x, y), optimizer=optimizer, **kw)
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_fit_in_a_loop_over_a_global_rate_trains_at_each_rate(monkeypatch):
    _trained(_sgd_reading_the_global())  # at 0.1
    monkeypatch.setattr(f"{__name__}.RATE", 0.001)
    looped = _trained(_sgd_reading_the_global())
    for a, b in zip(looped, _trained(optax.sgd(0.001))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
