"""``EarlyStopping``'s ``baseline`` and ``start_from_epoch``: Keras 3's rule, in ``fit``,
in a resumed run and per sweep member.

The referee is Keras 3's own ``EarlyStopping`` (JAX backend): both callbacks are driven
on the same metric sequences, with a stand-in model whose "weights" are the epoch
number, and must agree on the epoch of the stop, the best epoch, the wait count and the
epoch whose weights are put back (``restore_best_weights``). The hand-traced cases
document the rule (a baseline never beaten, a warm-up, a start past the last epoch).
"""

import os
from types import SimpleNamespace

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train.sweep import sweep
from tests.train._data import Scripted, blobs, leaves, mlp, three_classes

ONE = jax.devices()[:1]


@pytest.fixture(scope="module")
def keras_stopping():
    """Keras 3's ``EarlyStopping`` class (the ``bench`` extra installs Keras)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras.src.callbacks").EarlyStopping


class KerasModel:
    """What Keras' callback touches; its "weights" are the current epoch."""

    def __init__(self):
        self.stop_training, self.epoch, self.restored = False, None, None

    def get_weights(self):
        return self.epoch

    def set_weights(self, weights):
        self.restored = weights


def keras_run(keras_stopping, values, **kwargs):
    """Keras': ``(stop epoch, best epoch, wait, restored epoch)`` (None: none)."""
    model, cb = KerasModel(), keras_stopping(monitor="m", restore_best_weights=True, **kwargs)
    cb.set_model(model)
    cb.on_train_begin()
    stop = None
    for epoch, value in enumerate(values):
        model.epoch = epoch
        cb.on_epoch_end(epoch, {"m": value})
        if model.stop_training:
            stop = epoch
            break
    cb.on_train_end()
    best = None if cb.best is None else cb.best_epoch  # Keras: best_epoch=0 before any
    return stop, best, cb.wait, model.restored


class FakeRun:
    """What our callback needs of ``self.loop``; the "parameters" are the epoch."""

    def __init__(self):
        self.stop, self.state, self.restored = False, None, None

    def request_stop(self):
        self.stop = True

    def restore_weights(self, params, rest):
        self.restored = int(params["epoch"])


def our_run(values, **kwargs):
    """Ours: ``(stop epoch, best epoch, wait, restored epoch)`` (None: none)."""
    cb, run = T.EarlyStopping("m", restore_best_weights=True, **kwargs), FakeRun()
    cb.set_loop(run)
    cb.on_train_begin()
    stop = None
    for epoch, value in enumerate(values):
        run.state = SimpleNamespace(params={"epoch": np.asarray(epoch)}, rest={})
        cb.on_epoch_end(epoch, {"m": value})
        if run.stop:
            stop = epoch
            break
    cb.on_train_end()
    assert cb.stopped_epoch == stop
    return stop, cb.best_epoch, cb.wait, run.restored


CASES = [
    # a baseline never beaten: improvements go on counting; the first epoch that does
    # not improve once `patience` epochs were counted stops; the best epoch (which did
    # not beat the baseline) is restored
    ([0.9, 0.8, 0.85, 0.7], dict(patience=2, baseline=0.5), (2, 1, 3, 1)),
    # ... and an improvement never stops, however long the wait
    ([0.9, 0.8, 0.7, 0.6, 0.55], dict(patience=2, baseline=0.5), (None, 4, 5, 4)),
    ([0.9, 0.95], dict(patience=0, baseline=0.5), (1, 0, 2, 0)),
    # beating the baseline resets the wait
    ([0.9, 0.8, 0.4, 0.45, 0.5, 0.3], dict(patience=2, baseline=0.5), (4, 2, 2, 2)),
    # min_delta counts against the baseline too: 0.45 is not below 0.5 - 0.1
    ([0.45, 0.3, 0.35, 0.32], dict(patience=2, baseline=0.5, min_delta=0.1), (3, 1, 2, 1)),
    # mode max
    ([0.5, 0.6, 0.55], dict(patience=1, baseline=0.8, mode="max"), (2, 1, 3, 1)),
    ([0.5, 0.85, 0.84, 0.9], dict(patience=1, baseline=0.8, mode="max"), (2, 1, 1, 1)),
    # start_from_epoch=0 is the default rule
    ([1.0, 0.9, 0.95, 0.96], dict(patience=1, start_from_epoch=0), (2, 1, 1, 1)),
    # a warm-up is not counted at all, even its best value (epoch 0)
    ([0.1, 0.2, 0.9, 0.95, 0.8], dict(patience=1, start_from_epoch=2), (3, 2, 1, 2)),
    ([5.0, 6.0, 7.0, 8.0], dict(patience=0, start_from_epoch=2), (3, 2, 1, 2)),
    # past the last epoch: nothing counted, stopped or restored
    ([0.5, 0.6, 0.7, 0.8, 0.9], dict(patience=0, start_from_epoch=10), (None, None, 0, None)),
    # both: epoch 0 beats the baseline but is not counted
    ([0.2, 0.9, 0.8, 0.85], dict(patience=1, baseline=0.5, start_from_epoch=1), (3, 2, 3, 2)),
    # mode max, a warm-up and min_delta: 0.53 is not above 0.5 + 0.05
    (
        [0.9, 0.5, 0.53, 0.6, 0.62],
        dict(patience=1, mode="max", min_delta=0.05, start_from_epoch=1),
        (2, 1, 1, 1),
    ),
]


@pytest.mark.parametrize("values, kwargs, expected", CASES)
def test_hand_traced_decisions_are_keras(values, kwargs, expected, keras_stopping):
    kwargs.setdefault("mode", "min")
    assert our_run(values, **kwargs) == expected
    assert keras_run(keras_stopping, values, **kwargs) == expected


def test_keras_takes_the_same_decisions_on_random_sequences(keras_stopping):
    rng = np.random.default_rng(1)
    seen = set()
    for trial in range(240):
        values = [float(v) for v in rng.normal(size=10).cumsum() * 0.1]
        mode = ("min", "max")[trial % 2]
        sign = 1.0 if mode == "min" else -1.0
        baseline = [
            None,
            float(np.quantile(values, rng.uniform(0.1, 0.9))),  # beaten on some epochs
            min(values) - 1.0 if mode == "min" else max(values) + 1.0,  # never beaten
            values[0] + sign * 1.0,  # beaten at once
        ][trial // 2 % 4]
        kwargs = dict(
            mode=mode,
            patience=int(rng.integers(0, 4)),
            min_delta=float(rng.choice([0.0, 0.03])),
            baseline=baseline,
            start_from_epoch=int(rng.choice([0, 1, 3, 9, 12])),
        )
        ours = our_run(values, **kwargs)
        assert ours == keras_run(keras_stopping, values, **kwargs), (values, kwargs)
        seen.add(ours[0] is None)
    assert seen == {True, False}  # both runs that stop and runs that do not


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(baseline=True), TypeError, r"EarlyStopping: `baseline` must be a number, got True"),
        (dict(baseline="0.5"), TypeError, r"`baseline` must be a number, got '0.5' \(str\)"),
        (dict(baseline=float("nan")), ValueError, r"`baseline` must be a finite number, got nan"),
        (dict(baseline=-float("inf")), ValueError, r"`baseline` must be a finite.*got -inf"),
        (dict(start_from_epoch=-1), ValueError, r"`start_from_epoch` must be >= 0, got -1"),
        (dict(start_from_epoch=1.0), TypeError, r"`start_from_epoch` must be an int.*got 1.0"),
        (dict(start_from_epoch=True), TypeError, r"`start_from_epoch` must be an int.*got True"),
        (dict(start_from_epoch=None), TypeError, r"`start_from_epoch` must be an int.*got None"),
    ],
)
def test_bad_baseline_and_start_name_what_was_passed(kwargs, error, match):
    with pytest.raises(error, match=match):
        T.EarlyStopping("val_loss", **kwargs)


def test_numpy_scalars_and_defaults_are_accepted():
    stop = T.EarlyStopping("loss", baseline=np.float32(0.5), start_from_epoch=np.int64(3))
    assert (stop.baseline, stop.start_from_epoch) == (0.5, 3)
    assert type(stop.baseline) is float and type(stop.start_from_epoch) is int
    default = T.EarlyStopping("loss", baseline=-2)
    assert (default.baseline, default.start_from_epoch) == (-2.0, 0)
    assert T.EarlyStopping("loss").baseline is None


@pytest.mark.parametrize(
    "values, kwargs, stopped, best",
    [
        # never beaten: stops after epoch 2, the weights of epoch 1 (the best) come back
        ([0.9, 0.8, 0.85, 0.7, 0.6], dict(patience=2, baseline=0.5), 2, 1),
        # a warm-up of one epoch: epoch 0's low value is not the best
        ([0.1, 0.9, 1.0, 1.1, 1.2], dict(patience=1, start_from_epoch=1), 2, 1),
        # a start past the last epoch: nothing stops nor is restored (the last weights)
        ([0.5, 0.4, 0.3], dict(patience=0, start_from_epoch=5), None, None),
    ],
)
def test_fit_stops_and_restores_where_keras_does(values, kwargs, stopped, best, keras_stopping):
    expected = keras_run(keras_stopping, values, mode="min", **kwargs)
    assert expected[:2] == (stopped, best)
    script = Scripted(values)
    stop = T.EarlyStopping("val_loss", restore_best_weights=True, **kwargs)
    model = mlp()
    history = T.fit(
        model, blobs(), loss="cross_entropy", batch_size=96, verbose=0, devices=ONE,
        epochs=len(values), validation_data=blobs(n=8), callbacks=[script, stop],
    )  # fmt: skip
    assert (stop.stopped_epoch, stop.best_epoch) == (stopped, best)
    ran = len(values) if stopped is None else stopped + 1
    assert len(history) == ran == len(script.params)
    kept = script.params[ran - 1 if best is None else best]
    for a, b in zip(kept, leaves(model), strict=True):
        np.testing.assert_array_equal(a, b)
    if best is not None:  # the weights really changed since the best epoch
        assert any(not np.array_equal(a, b) for a, b in zip(script.params[-1], kept))


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_a_resumed_run_stops_where_the_uninterrupted_run_stops(tmp_path, keras_stopping):
    # val_loss falls by about 0.004 an epoch; from epoch 3 on, each epoch adds one to the
    # wait (the baseline is never beaten) until the first that falls by < min_delta
    x, y = blobs(n=50)
    kw = dict(
        loss="cross_entropy", batch_size=16, verbose=0, devices=ONE, seed=0,
        validation_split=0.2,
    )  # fmt: skip
    rule = dict(patience=2, min_delta=0.0035, baseline=0.5, start_from_epoch=3)

    def go(epochs, folder=None, **more):
        stop = T.EarlyStopping("val_loss", restore_best_weights=True, **rule)
        cbs = [stop] + ([T.ModelCheckpoint(folder)] if folder is not None else [])
        model = mlp(seed=2)
        history = T.fit(model, (x, y), epochs=epochs, callbacks=cbs, **kw, **more)
        return stop, history, leaves(model)

    stop, full, best_params = go(30)
    values = full["val_loss"]
    keras = keras_run(keras_stopping, values, mode="min", **rule)
    assert (stop.stopped_epoch, stop.best_epoch, stop.wait) == keras[:3]
    assert stop.stopped_epoch is not None and stop.stopped_epoch > rule["start_from_epoch"]
    # the rule matters here: without the baseline, or from epoch 0, it would differ
    for changed in (dict(rule, baseline=None), dict(rule, start_from_epoch=0)):
        assert our_run(values, mode="min", **changed)[:3] != keras[:3]
    for interrupted_after in (rule["start_from_epoch"] - 1, stop.stopped_epoch):
        folder = tmp_path / f"run{interrupted_after}"
        go(interrupted_after, folder)  # epochs 0 .. interrupted_after - 1
        resumed_stop, resumed, params = go(30, folder, resume_from=folder)
        assert (resumed_stop.stopped_epoch, resumed_stop.best_epoch, resumed_stop.wait) == (
            stop.stopped_epoch,
            stop.best_epoch,
            stop.wait,
        ), interrupted_after
        assert len(resumed["loss"]) == len(full["loss"])
        np.testing.assert_allclose(resumed["val_loss"], values, rtol=1e-6, atol=1e-7)
        # the best epoch (the one before the stop) comes back either way: trained after
        # the resume from the warm-up, or read from its checkpoint when resumed after it
        assert resumed_stop.best_weights is not None
        for a, b in zip(params, best_params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def dropout_mlp(rngs):
    return MLP(4, (8,), 3, dropout=0.2, rngs=rngs)


@pytest.mark.slow
def test_each_sweep_member_stops_where_its_own_fit_stops(keras_stopping):
    """Per member, as fit: member 0 stops only because of the baseline (epoch 5), member
    1 too (epoch 2), member 2 keeps improving without beating it (no stop), member 3
    beats it (no stop); the warm-up epoch 0 is not counted."""
    x, y = data = three_classes(40)
    seeds, rates = [0, 1, 2, 3], [0.3, 3e-3, 0.05, 1.0]
    rule = dict(
        monitor="val_loss", patience=2, min_delta=0.01, baseline=0.6, start_from_epoch=1,
        restore_best_weights=True,
    )  # fmt: skip
    common = dict(loss="cross_entropy", epochs=8, batch_size=8, validation_data=(x[:16], y[:16]))
    members = {"seeds": seeds, "hyperparams": {"learning_rate": rates}}
    result = sweep(
        dropout_mlp, data, optimizer=optax.sgd, members=members,
        callbacks=[T.EarlyStopping(**rule)], **common,
    )  # fmt: skip
    stops = []
    for i, (seed, lr) in enumerate(zip(seeds, rates)):
        model, cb = dropout_mlp(nnx.Rngs(seed)), T.EarlyStopping(**rule)
        history = T.fit(
            model, data, optimizer=optax.sgd(lr), seed=seed, callbacks=[cb], verbose=0,
            devices=ONE, **common,
        )  # fmt: skip
        keras_rule = {k: v for k, v in rule.items() if k not in ("monitor", "restore_best_weights")}
        keras = keras_run(keras_stopping, history["val_loss"], mode="min", **keras_rule)
        assert (cb.stopped_epoch, cb.best_epoch, cb.wait) == keras[:3], i
        assert result.stopped_epoch[i] == (-1 if cb.stopped_epoch is None else cb.stopped_epoch)
        assert result.weights_epoch[i] == cb.best_epoch
        ran = len(history.epoch)
        np.testing.assert_allclose(
            result.history["val_loss"][i, :ran], history["val_loss"], rtol=0, atol=2e-5
        )
        assert np.all(np.isnan(result.history["val_loss"][i, ran:]))
        for a, b in zip(leaves(result.member(i)), leaves(model), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
        stops.append(cb.stopped_epoch)
    assert stops == [5, 2, None, None]


def test_rerunning_a_run_that_stopped_trains_no_more(tmp_path):
    """The same script run again with ``resume_from``: the stop is replayed (it trained
    one epoch more, and resumed runs with other callbacks diverged from there)."""
    values = [0.9, 0.8, 0.85, 0.86, 0.87, 0.88]

    def go(resume):
        stop = T.EarlyStopping("val_loss", patience=1, restore_best_weights=True)
        model = mlp()
        history = T.fit(
            model, blobs(), loss="cross_entropy", batch_size=96, verbose=0, devices=ONE,
            epochs=len(values), validation_data=blobs(n=8), resume_from=tmp_path if resume
            else None, callbacks=[Scripted(values), stop, T.ModelCheckpoint(tmp_path)],
        )  # fmt: skip
        return stop, history, leaves(model)

    (stop, history, params), (again, rerun, rerun_params) = go(False), go(True)
    assert (stop.stopped_epoch, stop.best_epoch) == (2, 1)
    assert (again.stopped_epoch, again.best_epoch) == (2, 1)
    assert len(history) == len(rerun) == 3
    for a, b in zip(params, rerun_params, strict=True):  # the best epoch's, restored
        np.testing.assert_array_equal(a, b)


def test_a_resumed_run_that_went_on_past_a_stall_goes_on(tmp_path):
    """Only a stop after the last recorded epoch is replayed: a run that went on (a
    larger patience then) trains on under the new rule, from where it was."""
    values = [0.9, 0.8, 0.85, 0.7, 0.75, 0.6]

    def go(epochs, patience, resume):
        stop = T.EarlyStopping("val_loss", patience=patience)
        history = T.fit(
            mlp(), blobs(), loss="cross_entropy", batch_size=96, verbose=0, devices=ONE,
            epochs=epochs, validation_data=blobs(n=8), resume_from=tmp_path if resume
            else None, callbacks=[Scripted(values), stop, T.ModelCheckpoint(tmp_path)],
        )  # fmt: skip
        return stop, history

    first, history = go(4, 3, False)  # epoch 2 stalls; patience 3 went on
    assert first.stopped_epoch is None and len(history) == 4
    again, resumed = go(6, 1, True)  # epoch 4 stalls: stops there, not at once
    assert (again.stopped_epoch, again.best_epoch, len(resumed)) == (4, 3, 5)
