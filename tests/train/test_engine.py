"""Tests for nnjax.train.engine and driver: the epoch loop over any state and logs."""

from typing import Any, NamedTuple

import numpy as np
import pytest

from nnjax.train.callbacks import Callback
from nnjax.train.driver import CallbackDriver, Run
from nnjax.train.engine import Plan, run_epochs
from nnjax.train.feeder import Chunk
from nnjax.train.flat_dispatch import on_leaves
from nnjax.train.history import History


class CountState(NamedTuple):
    total: Any
    active: Any


class Feeder:
    """Two dispatches per epoch of 3 and 1 updates."""

    def epoch(self, seed, epoch, *, shuffle=True):
        yield Chunk((3,), 3, 3)
        yield Chunk((1,), 1, 1)


def count(total, active, n):
    """A stand-in dispatch: adds ``n`` where active; logs one loss per update."""
    out = {"loss": np.full(n, float(total)), "count": np.ones(n), "logs": {}, "metrics": {}}
    return total + n * active, active, out


train_fn = on_leaves(count)  # the engine hands the dispatch the state's flat leaves


class Recorder(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, dict(logs)))
        if epoch == 1:
            self.loop.replace_state(active=0)


def run_with(logs_fn, epochs=3, initial=0):
    run = Run(model=None, state=CountState(0, 1), mesh=None, history=History(), seed=0)
    recorder = Recorder()
    driver = CallbackDriver([recorder], run)
    plan = Plan(train_fn, Feeder(), None, (), epochs, 4, True, 0, logs_fn=logs_fn)
    driver.train_begin(("loss", "total"))
    run_epochs(run, plan, driver, initial)
    return run, recorder


def test_any_named_tuple_state_and_custom_logs_go_through_the_loop():
    def logs_fn(state, host, epoch):
        assert isinstance(state, CountState)
        return {"loss": float(np.mean([o["loss"].mean() for o in host])), "total": state.total}

    run, recorder = run_with(logs_fn)
    # epochs 0, 1 add 4 each; after epoch 1 the callback deactivates the state
    assert [logs["total"] for _, logs in recorder.seen] == [4, 8, 8]
    assert run.state == CountState(8, 0)
    assert run.history["total"] == [4.0, 8.0, 8.0] and run.history.epoch == [0, 1, 2]
    assert run.global_step == 12


def test_initial_epoch_and_stop_requests():
    class Stop(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.loop.request_stop()

    run = Run(model=None, state=CountState(0, 1), mesh=None, history=History(), seed=0)
    driver = CallbackDriver([Stop()], run)
    plan = Plan(train_fn, Feeder(), None, (), 5, 4, True, 0, logs_fn=lambda s, h, e: {"t": 1.0})
    run_epochs(run, plan, driver, 2)
    assert run.history.epoch == [2] and run.state.total == 4


def test_replace_state_refuses_unknown_fields():
    run = Run(model=None, state=CountState(0, 1), mesh=None, history=History(), seed=0)
    recorder = Recorder()
    CallbackDriver([recorder], run)
    with pytest.raises(ValueError, match="no field \\['bogus'\\]"):
        recorder.loop.replace_state(bogus=1)


def test_a_metric_a_callback_adds_to_logs_reaches_the_history_and_later_callbacks():
    """Keras 3: History runs last, so what ``on_epoch_end`` adds to ``logs`` is recorded."""

    class AddMetric(Callback):
        def on_epoch_end(self, epoch, logs=None):
            assert self.loop.history.epoch[-1] == epoch  # the epoch is in the history already
            logs["doubled"] = 2.0 * logs["t"]

    class Reader(Callback):
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(logs.get("doubled"))  # the same dict as the callbacks before it

    run = Run(model=None, state=CountState(0, 1), mesh=None, history=History(), seed=0)
    reader = Reader()
    driver = CallbackDriver([AddMetric(), reader], run)
    plan = Plan(train_fn, Feeder(), None, (), 2, 4, True, 0, logs_fn=lambda s, h, e: {"t": e + 1.0})
    run_epochs(run, plan, driver, 0)
    assert reader.seen == [2.0, 4.0]
    assert run.history["doubled"] == [2.0, 4.0] and run.history["t"] == [1.0, 2.0]


def test_a_history_without_amend_still_works():
    """A sweep's history has only ``append``: the loop must not require ``amend``."""

    class Appends:
        def __init__(self):
            self.rows = []

        def append(self, epoch, logs):
            self.rows.append((epoch, dict(logs)))

    run = Run(model=None, state=CountState(0, 1), mesh=None, history=Appends(), seed=0)
    driver = CallbackDriver([], run)
    plan = Plan(train_fn, Feeder(), None, (), 2, 4, True, 0, logs_fn=lambda s, h, e: {"t": 1.0})
    run_epochs(run, plan, driver, 0)
    assert run.history.rows == [(0, {"t": 1.0}), (1, {"t": 1.0})]
