"""A failure inside a compiled update: the model stays usable (nnjax.train.engine)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax.train import sharding
from nnjax.train.callbacks import Callback
from nnjax.train.loop import fit
from tests.train._data import blobs, leaves, mlp


def _failing_objective(at):
    """A ``loss_fn`` whose host callback raises at its ``at``-th call (inside the update).

    Train it on one device: on several, the devices whose callback did not raise wait for
    the failed one in the gradients' all-reduce until XLA aborts the process.
    """
    calls = {"n": 0}

    def check(_):
        calls["n"] += 1
        if calls["n"] == at:
            raise RuntimeError("host check failed")

    def loss_fn(model, batch):
        per_example = optax.softmax_cross_entropy_with_integer_labels(model(batch.x), batch.y)
        loss = (per_example * batch.mask).sum() / jnp.maximum(batch.mask.sum(), 1)
        jax.debug.callback(check, loss)
        return loss

    return loss_fn


@pytest.mark.parametrize("steps_per_dispatch", [1, 3])
def test_an_error_inside_the_update_leaves_the_models_weights_from_before_fit(
    steps_per_dispatch,
):
    x, y = blobs()
    model = mlp()
    before = leaves(model)
    with pytest.raises(Exception, match="host check failed") as info:
        fit(
            model, (x, y), loss_fn=_failing_objective(7), epochs=3, batch_size=16, verbose=0,
            steps_per_dispatch=steps_per_dispatch, mesh=sharding.make_mesh(jax.devices()[:1]),
        )  # fmt: skip
    assert any("weights it had before fit" in note for note in info.value.__notes__)
    for a, b in zip(leaves(model), before, strict=True):  # readable, not deleted
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(np.asarray(model(x[:2]))).all()
    history = fit(model, (x, y), loss="cross_entropy", batch_size=16, verbose=0)  # trains again
    assert np.isfinite(history.history["loss"][0])


def test_an_error_outside_the_update_keeps_what_was_trained_without_a_note():
    class Fail(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("callback failed")

    x, y = blobs()
    model, twin = mlp(), mlp()
    with pytest.raises(RuntimeError, match="callback failed") as info:
        fit(
            model,
            (x, y),
            loss="cross_entropy",
            epochs=3,
            batch_size=16,
            verbose=0,
            callbacks=[Fail()],
        )
    assert not getattr(info.value, "__notes__", [])
    fit(twin, (x, y), loss="cross_entropy", epochs=2, batch_size=16, verbose=0)
    for a, b in zip(leaves(model), leaves(twin), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
