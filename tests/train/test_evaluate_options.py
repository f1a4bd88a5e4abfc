"""``evaluate`` with ``fit``'s ``loss_fn``, and ``verbose`` for ``evaluate`` and ``predict``.

``evaluate`` took ``loss`` only (``loss_fn`` was a TypeError), so a model trained with a
custom objective could not be scored with it; and ``verbose=0``, which Keras users pass
everywhere, was a TypeError too. Both now take what ``fit`` takes, checked by ``fit``'s
own code, with ``fit``'s messages.
"""

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.train import compiled
from nnjax.train.progress import format_logs
from tests.train._data import blobs, mlp

ONE = jax.devices()[:1]


def _loss_fn(with_logs=False):
    """Cross-entropy over the real rows (weighted by ``batch.weight``, 0 on padding)."""

    def loss_fn(model, batch):
        values = optax.softmax_cross_entropy_with_integer_labels(model(batch.x), batch.y)
        loss = jnp.sum(values * batch.weight) / jnp.sum(batch.weight)
        return (loss, {"mean_logit": jnp.mean(model(batch.x))}) if with_logs else loss

    return loss_fn


@pytest.mark.parametrize("with_logs", [False, True])
def test_loss_fn_gives_what_fit_validation_logs(with_logs):
    x, y = blobs(n=60)
    xv, yv = blobs(n=37, seed=1)  # 2 batches of 16 and a padded one
    model = mlp(seed=21)
    loss_fn = _loss_fn(with_logs)
    history = T.fit(model, (x, y), loss_fn=loss_fn, epochs=1, batch_size=16,
                    validation_data=(xv, yv), verbose=0, devices=ONE)  # fmt: skip
    logs = T.evaluate(model, (xv, yv), loss_fn=loss_fn, batch_size=16, devices=ONE)
    np.testing.assert_allclose(logs["loss"], history.history["val_loss"][-1], rtol=0, atol=1e-6)
    val_names = {k[len("val_") :] for k in history.history if k.startswith("val_")}
    assert set(logs) == val_names == ({"loss", "mean_logit"} if with_logs else {"loss"})
    assert ("mean_logit" in history.history) is with_logs
    builtin = T.evaluate(model, (xv, yv), loss="cross_entropy", batch_size=16, devices=ONE)
    np.testing.assert_allclose(logs["loss"], builtin["loss"], rtol=1e-6, atol=1e-6)


def test_loss_fn_over_an_iterable_and_several_devices_matches_arrays():
    x, y = blobs(n=40)
    model = mlp(seed=22)
    one = T.evaluate(model, (x, y), loss_fn=_loss_fn(), batch_size=8, devices=ONE)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 40, 8)]
    for other, names in (
        (T.evaluate(model, batches, loss_fn=_loss_fn(True)), {"loss", "mean_logit"}),
        (
            T.evaluate(model, (x, y), loss_fn=_loss_fn(), batch_size=8, devices=jax.devices()),
            {"loss"},
        ),
    ):
        assert set(other) == names  # _loss_fn(True) logs mean_logit
        np.testing.assert_allclose(other["loss"], one["loss"], rtol=1e-6, atol=1e-6)


def test_neither_or_both_of_loss_and_loss_fn_is_an_error():
    data = blobs(n=8)
    words = r"^evaluate needs exactly one of `loss` \(a name or loss\(pred, y\)\) and `loss_fn`$"
    with pytest.raises(ValueError, match=words):
        T.evaluate(mlp(), data)
    with pytest.raises(ValueError, match=words):
        T.evaluate(mlp(), data, loss="cross_entropy", loss_fn=_loss_fn())
    with pytest.raises(ValueError, match=r"with `loss_fn`, .* `metrics` need model outputs"):
        T.evaluate(mlp(), data, loss_fn=_loss_fn(), metrics=["accuracy"])  # fit's message


def test_a_loss_fn_is_checked_as_fit_checks_it():
    x, y = blobs(n=10)

    def per_example(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(model(batch.x), batch.y)

    with pytest.raises(ValueError, match=r"loss_fn must return a scalar loss.*shape \(8,\)"):
        T.evaluate(mlp(), (x[:8], y[:8]), loss_fn=per_example, batch_size=8, devices=ONE)
    unmasked = lambda model, batch: per_example(model, batch).mean()  # counts the copies
    with pytest.warns(UserWarning, match=r"`data`: .*loss_fn reads neither batch.mask"):
        T.evaluate(mlp(), (x, y), loss_fn=unmasked, batch_size=8, devices=ONE)


def test_a_second_evaluate_with_an_equal_loss_fn_compiles_nothing():
    data = blobs(n=30)
    model = mlp(seed=23)
    first = T.evaluate(model, data, loss_fn=_loss_fn(), batch_size=8, devices=ONE)
    traces = compiled.TRACES.count
    again = T.evaluate(model, data, loss_fn=_loss_fn(), batch_size=8, devices=ONE)  # fresh, equal
    T.evaluate(model, blobs(n=50), loss_fn=_loss_fn(), batch_size=8, devices=ONE)  # another size
    assert compiled.TRACES.count == traces
    assert again == first


def test_verbose_zero_and_the_default_print_nothing(capsys):
    x, y = blobs(n=12)
    model = mlp()
    for kw in ({}, {"verbose": 0}):
        T.evaluate(model, (x, y), loss="cross_entropy", **kw)
        T.evaluate(model, (x, y), loss_fn=_loss_fn(), **kw)
        T.predict(model, x, **kw)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
def test_verbose_prints_one_line_as_fit_does(capsys, monkeypatch, verbose):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    x, y = blobs(n=11)
    model = mlp()
    logs = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=4, verbose=verbose)
    out = T.predict(model, x, batch_size=4, verbose=verbose)
    assert out.shape == (11, 3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"evaluate - \d+\.\ds - loss: \S+ - accuracy: \S+", lines[0])
    assert lines[0].endswith(" - " + format_logs(logs))  # fit's epoch-line format
    assert re.fullmatch(r"predict: 11 examples in 3 batches - \d+\.\ds", lines[1])


def test_only_process_zero_prints(capsys, monkeypatch):
    monkeypatch.setattr(jax, "process_index", lambda *a: 1)
    x, y = blobs(n=8)
    T.evaluate(mlp(), (x, y), loss="cross_entropy", verbose=2)
    T.predict(mlp(), x, verbose=2)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("bad", [3, -1, "yes", True, None])
def test_a_bad_verbose_is_fit_error_naming_the_value(bad):
    x, y = blobs(n=8)
    with pytest.raises(ValueError) as from_fit:
        T.fit(mlp(), (x, y), loss="cross_entropy", verbose=bad, devices=ONE)
    assert repr(bad) in str(from_fit.value)
    for call in (
        lambda: T.evaluate(mlp(), (x, y), loss="cross_entropy", verbose=bad),
        lambda: T.predict(mlp(), x, verbose=bad),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(str(from_fit.value))}$"):
            call()


def test_predict_has_a_module_of_its_own_and_keeps_its_old_imports():
    module = importlib.import_module("nnjax.train.prediction")
    from nnjax.train.evaluate import divisible, predict

    assert predict is module.predict is T.predict
    assert divisible is module.divisible
