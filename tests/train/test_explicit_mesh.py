"""``fit``, ``evaluate``, ``predict`` and ``sweep`` with meshes of ``Explicit`` axes.

``jax.make_mesh`` makes ``Explicit`` axes by default from jax 0.9. A user's mesh of that
kind passed as ``fit(mesh=...)``, or set for the whole program with ``jax.set_mesh``,
made the first gather of a batch raise ``ShardingTypeError`` (or JAX's "context mesh
should match the aval mesh"); the results must equal those on ``fit``'s own mesh.
Four fake CPU devices (``tests/conftest.py``); the meshes use two.
"""

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import AxisType

from nnjax import nn
from nnjax.train import sharding
from nnjax.train.evaluate import evaluate, predict
from nnjax.train.loop import fit
from nnjax.train.sweep import grid, sweep

RNG = np.random.default_rng(0)
X = RNG.standard_normal((32, 5, 3)).astype(np.float32)
Y = (X[:, 0, 0] > 0).astype(np.int32)
FIT = dict(loss="cross_entropy", epochs=2, batch_size=8, verbose=0)


def _explicit(n: int = 2):
    return jax.make_mesh((n,), ("data",), axis_types=(AxisType.Explicit,))


def _model(rngs=None):
    return nn.SequenceClassifier(3, 4, 2, rngs=rngs or nnx.Rngs(0))


def _fit_evaluate_predict(**kw):
    model = _model()
    history = fit(model, (X, Y), **FIT, **kw)
    logs = evaluate(model, (X, Y), loss="cross_entropy", batch_size=8)
    return history.history["loss"], logs["loss"], predict(model, X, batch_size=8)


@pytest.fixture(scope="module")
def on_own_mesh():
    """The reference: the same calls on fit's own mesh of the same two devices."""
    return _fit_evaluate_predict(devices=jax.devices()[:2])


def _assert_same(got, want):
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.devices(2)
def test_fit_takes_a_mesh_with_explicit_axes(on_own_mesh):
    _assert_same(_fit_evaluate_predict(mesh=_explicit()), on_own_mesh)


@pytest.mark.slow
def test_fit_evaluate_predict_under_a_global_mesh_with_explicit_axes(on_own_mesh):
    with jax.set_mesh(_explicit()):
        got = _fit_evaluate_predict(devices=jax.devices()[:2])
        assert not jax.sharding.get_abstract_mesh().empty  # the caller's mesh is back
    _assert_same(got, on_own_mesh)


@pytest.mark.slow
def test_sweep_under_a_global_mesh_with_explicit_axes():
    run = lambda: sweep(
        _model, (X, Y), loss="cross_entropy", optimizer=optax.adam,
        members=grid(seeds=[0, 1], learning_rate=[1e-2]), epochs=1, batch_size=8,
    )  # fmt: skip
    want = run()
    with jax.set_mesh(_explicit()):
        got = run()
    np.testing.assert_allclose(got.history["loss"], want.history["loss"], rtol=1e-5, atol=1e-6)


@pytest.mark.devices(2)
def test_automatic_keeps_devices_and_names_and_leaves_auto_meshes_alone():
    mesh = _explicit()
    auto = sharding.automatic(mesh)
    assert auto.axis_types == (AxisType.Auto,) and auto.axis_names == ("data",)
    assert list(auto.devices.flat) == list(mesh.devices.flat)
    own = sharding.make_mesh(jax.devices()[:2])
    assert sharding.automatic(own) is own


@pytest.mark.devices(2)
def test_own_mesh_runs_outside_the_callers_mesh_and_restores_it():
    inside = sharding.own_mesh(lambda: jax.sharding.get_abstract_mesh().empty)
    with jax.set_mesh(_explicit()):
        assert inside()
        assert not jax.sharding.get_abstract_mesh().empty
