"""Bad input to fit/evaluate/predict: clear errors before anything is compiled."""

import numpy as np
import pytest

import nnjax.train as T
from nnjax.train import compiled
from tests.train._data import blobs, mlp


@pytest.fixture(autouse=True)
def no_compiles(monkeypatch):
    def refuse(*args):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(compiled, "compiled_train", refuse)


def _fit(data, model=None, **kw):
    kw = {"loss": "cross_entropy", "epochs": 1, "verbose": 0, **kw}
    T.fit(model or mlp(), data, **kw)


def test_mismatched_lengths():
    x, y = blobs()
    with pytest.raises(
        ValueError, match=r"same number of examples \(96\); got x \(96, 4\), y \(95,\)"
    ):
        _fit((x, y[:-1]))


def test_empty_dataset():
    x, y = blobs()
    with pytest.raises(ValueError, match="`train` is empty"):
        _fit((x[:0], y[:0]))


def test_labels_out_of_range():
    x, y = blobs()
    y = y.copy()
    y[7] = 3
    with pytest.raises(ValueError, match=r"y\[7\] = 3 is out of range.*3 outputs.*\[0, 2\]"):
        _fit((x, y))
    with pytest.raises(ValueError, match=r"`validation` y\[0\] = -1"):
        _fit(blobs(), validation_data=(x[:2], np.array([-1, 0])))


def test_wrong_input_shape_names_expected():
    x, y = blobs(d=5)
    with pytest.raises(ValueError, match=r"per-example shape \(5,\).*expects 4 input features"):
        _fit((x, y))
    with pytest.raises(ValueError, match=r"per-example shape \(5,\)"):
        T.predict(mlp(), x)


def test_uint8_images_need_scaling():
    x = np.zeros((8, 2, 2), np.uint8)
    with pytest.raises(TypeError, match=r"uint8.*astype\('float32'\) / 255"):
        _fit((x, np.zeros(8, np.int32)))


def test_loss_and_label_shapes_must_agree():
    x, y = blobs()
    with pytest.raises(ValueError, match="loss cannot compare"):
        _fit((x, y.astype(np.float32)), loss="mse")
    with pytest.raises(ValueError, match="`validation`: the loss cannot compare"):
        _fit((x, y), validation_data=(x, np.eye(4, dtype=np.float32)[y]))


def test_not_a_pair_and_bad_names():
    with pytest.raises(ValueError, match="pair"):
        _fit(blobs()[0])
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        _fit(blobs(), optimizer="adamm")
    with pytest.raises(ValueError, match="unknown loss"):
        _fit(blobs(), loss="crossentropy")
    with pytest.raises(ValueError, match="cannot be split evenly over 4 devices"):
        import jax

        _fit(blobs(), batch_size=6, devices=jax.devices())
