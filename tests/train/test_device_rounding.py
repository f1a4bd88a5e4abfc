"""Batches the devices do not divide are padded (masked copies), never refused.

``evaluate`` rounded its batches up to a multiple of the devices; validation batches
from an iterable, ``predict`` with ``devices=`` and a ``fit`` whose data is smaller
than one batch did not (JAX's ``IndivisibleError``, or "batch_size=5 cannot be split
evenly" for a ``batch_size`` the user never passed). Each must equal the one-device run.
"""

import jax
import numpy as np
import pytest

import nnjax.train as T
from tests.train._data import blobs, leaves, mlp

ALL = jax.devices()
ONE = ALL[:1]
pytestmark = [
    pytest.mark.skipif(len(ALL) < 4, reason="needs 4 (fake) devices"),
    pytest.mark.slow,  # six fits over 4 devices: CI's slow step runs them
]
KW = dict(loss="cross_entropy", verbose=0)


def test_iterable_validation_batches_of_any_size_on_every_device():
    x, y = blobs(n=48)
    val = [(x[:7], y[:7]), (x[7:12], y[7:12])]  # 7 and 5 rows on a mesh of 4
    history = T.fit(mlp(), (x, y), batch_size=16, epochs=1, validation_data=val, **KW)
    model = mlp()
    T.fit(model, (x, y), batch_size=16, epochs=1, **KW)
    want = T.evaluate(model, (x[:12], y[:12]), loss="cross_entropy", devices=ONE)["loss"]
    np.testing.assert_allclose(history["val_loss"][0], want, rtol=1e-5, atol=1e-6)


def test_predict_pads_to_the_given_devices():
    model, x = mlp(), blobs(n=50)[0]
    want = np.asarray(model(x))
    for n, batch_size in ((5, 128), (50, 6)):
        got = T.predict(model, x[:n], batch_size=batch_size, devices=ALL)
        np.testing.assert_allclose(got, want[:n], rtol=1e-6, atol=1e-6)


def test_fit_on_fewer_examples_than_a_batch_over_the_given_devices():
    x, y = blobs(n=5)
    spread, single = mlp(), mlp()
    T.fit(spread, (x, y), batch_size=16, epochs=2, devices=ALL, **KW)
    T.fit(single, (x, y), batch_size=16, epochs=2, devices=ONE, **KW)
    for a, b in zip(leaves(spread), leaves(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"batch_size=6 cannot be split evenly over 4 devices"):
        T.fit(mlp(), blobs(n=48), batch_size=6, epochs=1, devices=ALL, **KW)  # the user's own
