"""Restoring weights keeps the run's layout: FSDP parameters stay split, nothing recompiles.

``EarlyStopping(restore_best_weights=True)`` keeps a host copy of the best weights and
hands it back through :meth:`nnjax.train.driver.RunView.restore_weights`; each leaf must
go back with the sharding of the leaf it replaces (on the suite's 4 CPU devices).
"""

import logging

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax.nn import MLP
from nnjax.train import fit
from nnjax.train.callbacks import Callback, EarlyStopping
from nnjax.train.compiled import TRACES
from nnjax.train.driver import Run, RunView
from nnjax.train.sharding import make_mesh, put_state, state_layout, to_host
from nnjax.train.state import TrainState

SETTINGS = {"loss": "cross_entropy", "batch_size": 16, "verbose": 0, "seed": 1}


def _data(n=64, features=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, np.argmax(x[:, :classes], axis=1).astype(np.int32)


def _laid_out(array, spec):
    """Whether ``array`` is sharded as ``spec`` says (XLA drops trailing ``None`` s)."""
    return array.sharding.is_equivalent_to(NamedSharding(array.sharding.mesh, spec), array.ndim)


class KeepParams(Callback):
    """Host copies of the parameters after every epoch."""

    def __init__(self):
        self.params = []

    def on_epoch_end(self, epoch, logs=None):
        self.params.append(to_host(self.loop.state.params))


class RestoreAfterFirstEpoch(Callback):
    """Restores the run's own weights (a host copy) after epoch 0; counts compiles after."""

    def __init__(self, records):
        self.records, self.marks = records, []

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            state = self.loop.state
            self.loop.restore_weights(*jax.device_get((state.params, state.rest)))
            self.marks.append((len(self.records), TRACES.count))

    def on_train_end(self, logs=None):
        self.marks.append((len(self.records), TRACES.count))


@pytest.mark.slow
def test_early_stopping_restores_fsdp_weights_split_and_equal_to_the_best_epoch():
    model = MLP(8, (32,), 4, rngs=nnx.Rngs(0))
    keep = KeepParams()
    # mode="max" on the loss: the first epoch is the "best", so the restore really
    # replaces the weights of the last one
    stop = EarlyStopping("val_loss", mode="max", patience=5, restore_best_weights=True)
    fit(model, _data(), validation_data=_data(32, seed=1), epochs=3, param_sharding="fsdp",
        callbacks=[stop, keep], **SETTINGS)  # fmt: skip
    assert stop.best_epoch == 0
    restored = jax.tree.leaves(nnx.state(model, nnx.Param))
    for got, want, last in zip(restored, jax.tree.leaves(keep.params[0]),
                               jax.tree.leaves(keep.params[-1])):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(got), want)
        assert not np.array_equal(want, last)
    assert _laid_out(model.layers[0].kernel[...], P(None, "data"))  # (8, 32): 32 is split
    assert {s.data.shape for s in model.layers[0].kernel[...].addressable_shards} == {(8, 8)}
    assert _laid_out(model.layers[1].kernel[...], P("data", None))  # (32, 4)


@pytest.mark.slow
def test_a_restore_during_an_fsdp_fit_recompiles_nothing(caplog):
    model = MLP(8, (32,), 4, rngs=nnx.Rngs(0))
    settings = {"validation_data": _data(32, seed=1), "param_sharding": "fsdp", **SETTINGS}
    fit(model, _data(), epochs=1, **settings)  # compiles the step and the evaluation
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        restore = RestoreAfterFirstEpoch(caplog.records)
        fit(model, _data(), epochs=3, callbacks=[restore], **settings)
    (records_before, traces_before), (records_after, traces_after) = restore.marks
    compiles = [r.getMessage() for r in caplog.records[records_before:records_after]]
    assert compiles == []  # the old replicated restore recompiled jit(from_device_data) here
    # tracing is cached on shapes, so TRACES alone would not see a sharding change
    assert traces_after == traces_before


def test_restore_weights_places_each_leaf_like_the_one_it_replaces():
    mesh = make_mesh(jax.devices())
    state = TrainState({"w": np.ones((4, 8), np.float32), "b": np.ones(3, np.float32)}, (), {})
    layout = state_layout(state, mesh, "fsdp")
    run = Run(model=None, state=put_state(state, layout), mesh=mesh, history=None, seed=0)
    new = {"w": np.arange(32.0, dtype=np.float32).reshape(4, 8), "b": np.zeros(3, np.float32)}
    RunView(run).restore_weights(new, {})
    assert _laid_out(run.state.params["w"], P(None, "data"))
    assert _laid_out(run.state.params["b"], P())  # 3 does not split over 4 devices
    np.testing.assert_array_equal(np.asarray(run.state.params["w"]), new["w"])
    with pytest.raises(ValueError, match="does not match the structure of the run's state"):
        RunView(run).restore_weights({"w": new["w"]}, {})


@pytest.mark.devices(4)
def test_put_state_without_like_replicates():
    mesh = make_mesh(jax.devices())
    run = Run(model=None, state=None, mesh=mesh, history=None, seed=0)
    placed = RunView(run).put_state({"w": np.ones((4, 8), np.float32)})
    assert placed["w"].sharding.is_fully_replicated and len(placed["w"].sharding.device_set) == 4
