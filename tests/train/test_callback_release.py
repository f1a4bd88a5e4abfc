"""A callback the user keeps after ``fit`` or ``sweep`` holds none of the run's arrays.

Notebooks build callbacks once and keep them; each kept one held the last run's model
and optimizer state (``callback.loop``), about three times the model on the devices.
"""

import gc
import weakref

import jax
import numpy as np
import pytest
from flax import nnx

from nnjax import nn, train

X = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 32)
KW = dict(loss="cross_entropy", epochs=2, batch_size=8, verbose=0, devices=jax.devices()[:1])


class Kept(train.Callback):
    def on_train_end(self, logs=None):
        self.state_seen = self.loop.state is not None


class Fails(train.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("stop here")


def _live_bytes():
    gc.collect()
    return sum(a.nbytes for a in jax.live_arrays())


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_kept_callback_lets_the_model_and_state_go():
    before = _live_bytes()
    kept, stop = Kept(), train.EarlyStopping("val_loss", restore_best_weights=True)
    model = nn.MLP(8, (64,), 3, rngs=nnx.Rngs(0))
    alive = weakref.ref(model)
    history = train.fit(model, (X, Y), validation_data=(X, Y), callbacks=[kept, stop], **KW)
    del model
    assert alive() is None  # was kept alive by the callbacks' view
    assert _live_bytes() <= before
    assert kept.state_seen and kept.loop.state is None and kept.loop.model is None
    assert kept.loop.history is history and kept.loop.epoch == 1 and kept.loop.global_step == 8


def test_a_failed_fit_lets_them_go_too():
    kept = Kept()
    model = nn.MLP(8, (64,), 3, rngs=nnx.Rngs(0))
    alive = weakref.ref(model)
    with pytest.raises(RuntimeError, match="stop here"):
        train.fit(model, (X, Y), callbacks=[kept, Fails()], **KW)
    del model
    gc.collect()
    assert alive() is None and kept.loop.state is None


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_sweeps_kept_callback_lets_its_state_go():
    kept = Kept()
    result = train.sweep(
        lambda rngs: nn.MLP(8, (64,), 3, rngs=rngs), (X, Y),
        members=train.grid(learning_rate=[0.01, 0.1]), callbacks=[kept], **KW,
    )  # fmt: skip
    assert kept.state_seen and kept.loop.state is None
    assert len(result.history["loss"]) == 2
