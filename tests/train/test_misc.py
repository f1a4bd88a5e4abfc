"""Tests for the small helpers: optimizers by name, sharding choices, progress output."""

import jax
import numpy as np
import optax
import pytest

from nnjax.train import progress, sharding
from nnjax.train.optimizers import get_optimizer


def test_get_optimizer():
    tx = optax.sgd(0.1234)
    assert get_optimizer(tx) is get_optimizer(optax.sgd(0.1234))  # an equal twin is shared
    adam = get_optimizer("Adam", 0.01)
    assert adam is get_optimizer("adam", 0.02)  # the rate lives in the state
    assert get_optimizer(optax.adam(1e-3)) is get_optimizer(optax.adam(1e-3))
    assert get_optimizer(optax.adam(1e-3)) is not get_optimizer(optax.adam(2e-3))
    with pytest.raises(ValueError, match="known: adabelief"):
        get_optimizer("adamm")


@pytest.mark.devices(4)
def test_choose_devices_and_shardings():
    assert len(sharding.choose_devices(8)) == 4
    assert len(sharding.choose_devices(6)) == 1
    mesh = sharding.make_mesh(jax.devices())
    x = sharding.put_batch(np.ones((2, 8, 3)), mesh)
    assert x.addressable_shards[0].data.shape == (2, 2, 3)
    state = {"w": jax.numpy.ones(3)}
    copy = sharding.put_replicated(state, sharding.make_mesh(jax.devices()[:1]))
    assert copy["w"].unsafe_buffer_pointer() != state["w"].unsafe_buffer_pointer()


def test_progress_modes(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert progress.resolve_verbose("auto") == 2  # one line per epoch in pipes and logs
    with pytest.raises(ValueError, match="verbose"):
        progress.resolve_verbose(3)
    bar = progress.EpochProgress(epoch=0, epochs=2, steps=3, verbose=2)
    bar.update(3)
    bar.close({"loss": 0.25}, seconds=1.0)
    assert capsys.readouterr().out == "Epoch 1/2 - 1.0s - loss: 0.2500\n"
    pytest.importorskip("tqdm")  # the bar is the progress extra's
    bar = progress.EpochProgress(epoch=0, epochs=1, steps=3, verbose=1)
    bar.update(3)
    bar.close({"loss": 0.25})
    assert bar.bar.n == 3
