"""A ``loss_fn``'s logs on validation data (``val_<name>``) and in ``evaluate``.

``fit`` logged a ``loss_fn``'s logs on training data only: validation gave ``val_loss``
alone and ``evaluate(..., loss_fn=f)`` returned ``{"loss"}``, so Keras habits such as
``EarlyStopping(monitor="val_<name>")`` failed. Validation now logs ``val_<name>`` for
each log, averaged over its batches exactly as training averages it (each batch's value
weighted by its real rows), and ``evaluate`` returns the same values.
"""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train import compiled
from nnjax.train.callbacks import Callback
from tests.train._data import blobs, mlp

ONE = jax.devices()[:1]
ATOL = dict(rtol=1e-6, atol=1e-6)


def loss_fn(model, batch):
    """Cross-entropy over the real rows, logging the mean top logit and the real rows."""
    logits = model(batch.x)
    values = optax.softmax_cross_entropy_with_integer_labels(logits, batch.y)
    loss = jnp.sum(values * batch.weight) / jnp.sum(batch.weight)
    top = T.masked_mean(jnp.max(logits, axis=-1), batch.mask)
    return loss, {"top": top, "rows": jnp.sum(batch.mask)}


def rows_mean(n, batch_size):
    """``rows`` averaged as fit averages a log: batch sizes weighted by real rows."""
    sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
    return sum(s * s for s in sizes) / n


class Names(Callback):
    """Records the run's ``log_names`` (what callbacks' monitors are checked against)."""

    def on_train_begin(self, logs=None):
        self.names = list(self.loop.log_names)


def test_validation_logs_each_log_as_evaluate_returns_it_and_as_computed_by_hand(tmp_path):
    x, y = blobs(n=40)
    xv, yv = blobs(n=37, seed=1)  # batches of 16, 16 and 5 real rows (padded to 16)
    model, names = mlp(seed=3), Names()
    history = T.fit(
        model, (x, y), loss_fn=loss_fn, epochs=2, batch_size=16, validation_data=(xv, yv),
        verbose=0, devices=ONE, callbacks=[names, T.CSVLogger(tmp_path / "log.csv")],
    ).history  # fmt: skip
    logs = T.evaluate(model, (xv, yv), loss_fn=loss_fn, batch_size=16, devices=ONE)
    assert list(logs) == ["loss", "rows", "top"]  # as jax orders a dict (training too)
    for name in logs:
        np.testing.assert_allclose(logs[name], history[f"val_{name}"][-1], **ATOL)
    top = np.max(np.asarray(model(jnp.asarray(xv))), axis=-1).mean()  # no dropout: eval = train
    np.testing.assert_allclose(logs["top"], top, **ATOL)
    np.testing.assert_allclose(logs["rows"], rows_mean(37, 16), **ATOL)  # 537/37, not 37/3
    np.testing.assert_allclose(history["rows"], rows_mean(40, 16), **ATOL)  # training's rule
    with open(tmp_path / "log.csv", newline="") as f:
        header = next(csv.reader(f))
    assert names.names == list(history) == header[1:]
    assert not np.isnan([v for values in history.values() for v in values]).any()


def test_evaluate_logs_agree_over_iterables_and_devices():
    x, y = blobs(n=37, seed=2)
    model = mlp(seed=4)
    one = T.evaluate(model, (x, y), loss_fn=loss_fn, batch_size=16, devices=ONE)
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 37, 16)]
    for other in (
        T.evaluate(model, batches, loss_fn=loss_fn),
        T.evaluate(model, (x, y), loss_fn=loss_fn, batch_size=16, devices=jax.devices()),
    ):
        assert list(other) == ["loss", "rows", "top"]  # as jax orders a dict (training too)
        for name in one:
            np.testing.assert_allclose(other[name], one[name], **ATOL)


def test_early_stopping_monitors_a_validation_log():
    x, y = blobs(n=32)

    def constant(model, batch):  # its val_rows never improves after the first epoch
        loss, logs = loss_fn(model, batch)
        return loss, {"rows": logs["rows"]}

    stop = T.EarlyStopping(monitor="val_rows", mode="min", patience=1)
    history = T.fit(mlp(seed=5), (x, y), loss_fn=constant, epochs=6, batch_size=8,
                    validation_data=blobs(n=20, seed=1), callbacks=[stop], verbose=0,
                    devices=ONE)  # fmt: skip
    assert len(history.epoch) == 2 and stop.stopped_epoch == 1
    np.testing.assert_allclose(history.history["val_rows"], [rows_mean(20, 8)] * 2, **ATOL)


def test_names_that_clash_resolve_in_validation_as_in_training():
    """A log named ``loss`` replaces the loss in training: in validation and evaluate too.

    A log named ``learning_rate`` is shadowed by the learning rate in training (its
    validation value is ``val_learning_rate``), and a training log ``val_top`` by
    validation's ``val_top``, as a training log ``val_loss`` always was by ``val_loss``
    (its own validation value is ``val_val_top``).
    """
    x, y = blobs(n=24)
    xv, yv = blobs(n=20, seed=1)

    def clashing(model, batch):
        loss, logs = loss_fn(model, batch)
        lr, shadowed = jnp.float32(3.0), jnp.float32(-1.0)
        return loss, {
            "loss": 2.0 * loss,
            "learning_rate": lr,
            "top": logs["top"],
            "val_top": shadowed,
        }

    model, names = mlp(seed=6), Names()
    history = T.fit(model, (x, y), loss_fn=clashing, epochs=1, batch_size=8, verbose=0,
                    validation_data=(xv, yv), callbacks=[names], devices=ONE).history  # fmt: skip
    assert names.names == list(history)
    assert list(history) == ["loss", "learning_rate", "top", "val_top", "val_loss",
                             "val_learning_rate", "val_val_top"]  # fmt: skip
    logs = T.evaluate(model, (xv, yv), loss_fn=clashing, batch_size=8, devices=ONE)
    plain = T.evaluate(model, (xv, yv), loss_fn=loss_fn, batch_size=8, devices=ONE)
    np.testing.assert_allclose(logs["loss"], 2.0 * plain["loss"], **ATOL)
    np.testing.assert_allclose(history["val_loss"], [logs["loss"]], **ATOL)
    np.testing.assert_allclose(history["val_top"], [plain["top"]], **ATOL)
    assert history["learning_rate"] == [1e-3] and history["val_learning_rate"] == [3.0]
    assert history["val_val_top"] == [-1.0]
    assert logs["val_top"] == -1.0  # evaluate names its logs as loss_fn does


def test_a_metric_named_logs_is_a_metric_with_loss():
    def logs(predictions, y):  # a metric function of one's own, named like the logs
        return jnp.mean(predictions)

    data = blobs(n=20)
    out = T.evaluate(mlp(seed=7), data, loss="cross_entropy", metrics=[logs], devices=ONE)
    assert list(out) == ["loss", "logs"]
    assert np.isfinite(out["logs"])


def test_a_log_of_training_mode_only_is_not_a_validation_name():
    """Log names come from each mode's trace: none is NaN-padded or listed but absent."""
    x, y = blobs(n=24)

    def by_mode(model, batch):
        loss, logs = loss_fn(model, batch)
        if not model.dropouts[0].deterministic:  # training mode only
            logs = {**logs, "dropping": jnp.float32(1.0)}
        return loss, logs

    model, names = mlp(seed=8, dropout=0.5), Names()
    history = T.fit(model, (x, y), loss_fn=by_mode, epochs=2, batch_size=8, verbose=0,
                    validation_data=blobs(n=12, seed=1), callbacks=[names],
                    devices=ONE).history  # fmt: skip
    assert names.names == list(history)
    assert "dropping" in history and "val_dropping" not in history and "val_top" in history
    assert not np.isnan([v for values in history.values() for v in values]).any()


def test_a_second_evaluate_and_epoch_with_logs_compile_nothing():
    x, y = blobs(n=40)
    model = mlp(seed=9)

    class Traces(Callback):
        def on_epoch_end(self, epoch, logs=None):
            counts.append(compiled.TRACES.count)

    counts: list[int] = []
    T.fit(model, (x, y), loss_fn=loss_fn, epochs=3, batch_size=8, verbose=0,
          validation_data=blobs(n=20, seed=1), callbacks=[Traces()], devices=ONE)  # fmt: skip
    assert counts[1] == counts[2]  # the second epoch's validation (and update) reuse both
    first = T.evaluate(model, (x, y), loss_fn=loss_fn, batch_size=8, devices=ONE)
    traces = compiled.TRACES.count
    again = T.evaluate(model, (x, y), loss_fn=loss_fn, batch_size=8, devices=ONE)
    assert compiled.TRACES.count == traces
    assert again == first and "top" in again


@pytest.mark.slow  # a two-member sweep with validation (~8 s): CI's slow step
def test_sweep_logs_each_members_validation_logs():
    x, y = blobs(n=32)
    xv, yv = blobs(n=20, seed=1)
    stop = T.EarlyStopping(monitor="val_top", mode="max", patience=5)
    result = T.sweep(
        lambda rngs: MLP(4, (8,), 3, rngs=rngs), (x, y), loss_fn=loss_fn, optimizer=optax.sgd,
        members=T.grid(learning_rate=[0.05, 0.5]), epochs=2, batch_size=8,
        validation_data=(xv, yv), callbacks=[stop],
    )  # fmt: skip
    assert result.history["val_top"].shape == (2, 2)
    for i in range(2):
        member = result.member(i)
        logs = T.evaluate(member, (xv, yv), loss_fn=loss_fn, batch_size=8, devices=ONE)
        for name in logs:
            np.testing.assert_allclose(result.history[f"val_{name}"][i, -1], logs[name], **ATOL)
    assert result.history["val_top"][0, -1] != result.history["val_top"][1, -1]
    np.testing.assert_allclose(result.history["val_rows"], rows_mean(20, 8), **ATOL)
