"""``fit``'s logged loss, (weighted) metrics and ``validation_split`` against Keras 3 itself.

Keras runs in a subprocess (its own JAX configuration; this suite's strict rank
promotion would fail inside Keras) on the same one-layer model, data and batch order
(``shuffle=False``), and hands back its per-epoch logs and split sizes as JSON.
"""

import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.metrics import weighted
from nnjax.nn import MLP, Dense
from nnjax.train import data as data_lib
from tests.train._data import blobs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras not installed"),
]

N, B, LR = 50, 16, 0.1
CLASS_WEIGHT = {0: 1.0, 1: 3.0, 2: 0.5}

KERAS = """
import json, sys
import numpy as np, keras
from keras.src.trainers.data_adapters.array_slicing import train_validation_split
x, y, sw, kernel, bias = (np.load(sys.argv[1])[k] for k in ("x", "y", "sw", "kernel", "bias"))
LR, B = float(sys.argv[2]), int(sys.argv[3])
out = {}
for name, kw in {"plain": {}, "sample_weight": {"sample_weight": sw},
                 "class_weight": {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5}}}.items():
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(3)])
    model.layers[0].set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(LR),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], weighted_metrics=["accuracy"])
    h = model.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0,
                  validation_split=0.2, **kw)
    out[name] = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    out[name + "_weights"] = [w.tolist() for w in model.layers[0].get_weights()]
xt, yt, swt = (np.load(sys.argv[1])[k] for k in ("xt", "yt", "swt"))  # weights per token
model = keras.Sequential([keras.Input(xt.shape[1:]), keras.layers.Dense(3)])
model.layers[0].set_weights([kernel, bias])
model.compile(optimizer=keras.optimizers.SGD(LR),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"], weighted_metrics=["accuracy"])
h = model.fit(xt, yt, sample_weight=swt, batch_size=B, epochs=2, shuffle=False, verbose=0,
              validation_split=0.2)
out["tokens"] = {k: [float(v) for v in vs] for k, vs in h.history.items()}
out["tokens_weights"] = [w.tolist() for w in model.layers[0].get_weights()]
splits = {}
for n, fraction in ((50, 0.25), (10, 0.05), (5, 0.5), (7, 0.3)):
    train, _ = train_validation_split((np.arange(n),), validation_split=fraction)
    splits[f"{n} {fraction}"] = len(train[0])
out["splits"] = splits
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    x, y = blobs(n=N)
    sw = np.random.default_rng(1).uniform(0.0, 3.0, N).astype(np.float32)
    model = MLP(4, (), 3, rngs=nnx.Rngs(0))
    kernel, bias = (np.asarray(p[...]) for p in (model.layers[0].kernel, model.layers[0].bias))
    path = tmp_path_factory.mktemp("keras") / "inputs.npz"
    xt, yt, swt = _tokens()
    np.savez(path, x=x, y=y, sw=sw, kernel=kernel, bias=bias, xt=xt, yt=yt, swt=swt)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    command = [sys.executable, "-c", KERAS, str(path), str(LR), str(B)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=True)
    return (x, y, sw), json.loads(done.stdout.strip().splitlines()[-1])


def _tokens():
    """``x (N, 6, 4)``, labels ``(N, 6)`` and weights per token: 0 past each length."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, (N, 6)).astype(np.int32)
    x = (rng.normal(size=(N, 6, 4)) + y[..., None]).astype(np.float32)
    lengths = rng.integers(1, 7, N)
    return (
        x,
        y,
        (np.arange(6) < lengths[:, None]) * rng.uniform(0.5, 2.0, (N, 6)).astype(np.float32),
    )


def _nnjax(x, y, sw, which):
    model = MLP(4, (), 3, rngs=nnx.Rngs(0))
    if which == "tokens":  # a dense layer per token, the same initial weights as the MLP's
        dense = Dense(4, 3, rngs=nnx.Rngs(1))
        dense.kernel[...], dense.bias[...] = model.layers[0].kernel[...], model.layers[0].bias[...]
        model, (x, y, sw) = dense, _tokens()
    data = (x, y, sw) if which in ("sample_weight", "tokens") else (x, y)
    history = T.fit(
        model, data, loss="cross_entropy", optimizer=optax.sgd(LR), batch_size=B, epochs=2,
        shuffle=False, verbose=0, validation_split=0.2, devices=jax.devices()[:1],
        class_weight=CLASS_WEIGHT if which == "class_weight" else None,
        metrics=["accuracy", weighted("accuracy")],
    )  # fmt: skip
    layer = model if which == "tokens" else model.layers[0]
    return history, [np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])]


@pytest.mark.parametrize("which", ["plain", "sample_weight", "class_weight", "tokens"])
def test_losses_metrics_and_weights_match_keras(keras_run, which):
    """The weighted loss over the real rows of a batch (not over the sum of weights),
    unweighted metrics (Keras ``metrics``) and weighted ones (``weighted_metrics``,
    logged by Keras as ``weighted_accuracy`` beside ``accuracy``), ``val_*`` weighted by
    the validation rows' sample weights and not by ``class_weight``; weights per token
    (Keras' ``sum_over_batch_size`` over the batch's tokens); the trained weights too."""
    (x, y, sw), keras = keras_run
    history, weights = _nnjax(x, y, sw, which)
    for name, values in keras[which].items():
        np.testing.assert_allclose(history[name], values, rtol=0, atol=2e-6, err_msg=name)
    for got, want in zip(weights, keras[which + "_weights"], strict=True):
        np.testing.assert_allclose(got, np.array(want, np.float32), rtol=0, atol=2e-6)


def test_validation_split_sizes_match_keras(keras_run):
    _, keras = keras_run
    for key, train_rows in keras["splits"].items():
        n, fraction = key.split()
        train, _ = data_lib.split_off((np.arange(int(n)), np.arange(int(n))), float(fraction))
        assert len(train[0]) == train_rows, key
