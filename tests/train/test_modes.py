"""Modes of modules of your own: ``fit`` trains in training mode, ``evaluate``,
``predict`` infer in inference mode, whatever ``train()``/``eval()`` left the model in.

A module of your own that keeps a ``deterministic`` attribute without a ``set_view``
(NNX's older convention, which ``model.train()``/``model.eval()`` still set) was left in
the model's mode: ``evaluate`` of a model left in ``train()`` added its noise.
"""

import numpy as np
import optax
from flax import nnx

import nnjax.train as T
from nnjax.nn import Dense
from nnjax.nn._modes import view_in_mode


class Shift(nnx.Module):
    """Adds 1 in training mode: an attribute, no ``set_view``."""

    def __init__(self):
        self.deterministic = False

    def __call__(self, x):
        return x if self.deterministic else x + 1.0


class Net(nnx.Module):
    def __init__(self):
        self.shift = Shift()
        self.dense = Dense(2, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.dense(self.shift(x))


X = np.arange(8.0, dtype=np.float32).reshape(4, 2) / 8
Y = np.ones((4, 1), np.float32)


def _mse(model, x):
    return float(np.mean((np.asarray(model(x)) - Y) ** 2))


def test_predict_and_evaluate_infer_with_the_shift_off():
    model = Net()
    model.train()
    eval_view = view_in_mode(model, deterministic=True)
    np.testing.assert_allclose(T.predict(model, X), eval_view(X), rtol=1e-6, atol=1e-6)
    loss = T.evaluate(model, (X, Y), loss="mse")["loss"]
    np.testing.assert_allclose(loss, _mse(eval_view, X), rtol=1e-6, atol=1e-7)
    assert model.shift.deterministic is False  # the model keeps its mode
    assert not np.allclose(_mse(model, X), loss)  # the shift matters here


def test_fit_trains_with_the_shift_on_after_eval():
    model = Net()
    model.eval()
    train_loss = _mse(view_in_mode(model, deterministic=False), X)
    history = T.fit(model, (X, Y), loss="mse", optimizer=optax.sgd(0.0), epochs=1,
                    batch_size=4, verbose=0)  # fmt: skip
    np.testing.assert_allclose(history.history["loss"][0], train_loss, rtol=1e-6, atol=1e-7)
    assert model.shift.deterministic is True


def test_mc_dropout_predict_turns_it_on():
    model = Net()
    model.eval()
    mean, std = T.mc_dropout_predict(model, X, n_samples=2)
    np.testing.assert_allclose(mean, view_in_mode(model, deterministic=False)(X), rtol=1e-6,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(std, 0.0, atol=1e-6)


def test_export_infers_with_the_shift_off(tmp_path):
    from nnjax.io import export, load_exported

    model = Net()
    model.train()
    export(model, X[:2], tmp_path / "net.jaxexport")
    exported = load_exported(tmp_path / "net.jaxexport")
    np.testing.assert_allclose(exported(X), T.predict(model, X), rtol=1e-6, atol=1e-6)


class KeepsOn(nnx.Module):
    """Its own ``set_view`` keeps the shift on in every view: its rule is kept."""

    def __init__(self):
        self.deterministic = False

    def set_view(self, deterministic: bool | None = None):
        """Keeps the shift on.

        Args:
          deterministic: ignored.
        """

    def __call__(self, x):
        return x if self.deterministic else x + 1.0


class ReadOnly(nnx.Module):
    """``deterministic`` is a property without a setter: not a mode attribute."""

    @property
    def deterministic(self):
        return False

    def __call__(self, x):
        return x


def test_a_set_view_of_its_own_and_a_read_only_property_are_left_alone():
    net = Net()
    net.shift = KeepsOn()
    np.testing.assert_allclose(T.predict(net, X), net(X), rtol=1e-6, atol=1e-6)
    net.shift = ReadOnly()
    T.fit(net, (X, Y), loss="mse", epochs=1, verbose=0)  # AttributeError: no setter
