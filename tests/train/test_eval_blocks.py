"""Evaluation and prediction in blocks of batches (nnjax.train.eval_blocks)."""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.functional import _conv_compiler
from nnjax.functional._forward_only import is_forward_only
from nnjax.nn import MLP
from nnjax.train import compiled, eval_blocks, sharding
from nnjax.train.data import ArraySource, _take
from tests.train._data import blobs, mlp

K = eval_blocks.BATCHES_PER_DISPATCH


def _counting(monkeypatch, name):
    """Counts the dispatches of ``eval_blocks.<name>``'s compiled functions."""
    calls = []
    real = getattr(eval_blocks, name)

    def spy(*args, **kwargs):
        fn = real(*args, **kwargs)

        def counted(*call_args):
            calls.append(1)
            return fn(*call_args)

        return counted

    monkeypatch.setattr(eval_blocks, name, spy)
    return calls


def test_evaluate_computes_eight_batches_per_dispatch_exactly(monkeypatch):
    x, y = blobs(n=85)  # 11 batches of 8, the last padded: dispatches of 8 and 3
    model = mlp()
    calls = _counting(monkeypatch, "compiled_eval_blocks")
    logs = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8)
    assert len(calls) == 2
    logits = np.asarray(model(x))
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["accuracy"], np.mean(logits.argmax(-1) == y), atol=1e-7)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 85, 8)]
    from_iterable = T.evaluate(model, batches, loss="cross_entropy")
    whole = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=85)
    for other in (from_iterable, whole):
        np.testing.assert_allclose(other["loss"], logs["loss"], rtol=1e-6, atol=1e-7)
        assert other["accuracy"] == logs["accuracy"]


def test_predict_computes_eight_batches_per_dispatch(monkeypatch):
    x, _ = blobs(n=3 * K * 4 + 1)  # 3 full dispatches of batch 4, then one padded batch
    model = mlp()
    model.eval()
    calls = _counting(monkeypatch, "compiled_predict_blocks")
    out = T.predict(model, x, batch_size=4)
    assert len(calls) == 4
    np.testing.assert_allclose(out, np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_a_new_dataset_size_does_not_recompile():
    model = mlp(seed=5)
    x, y = blobs(n=90)
    T.evaluate(model, (x[:40], y[:40]), loss="cross_entropy", batch_size=8)
    T.predict(model, x[:40], batch_size=8)
    traces = compiled.TRACES.count
    for n in (40, 17, 90):  # host blocks of (8, 8, ...): one program whatever the size
        T.evaluate(model, (x[:n], y[:n]), loss="cross_entropy", batch_size=8)
        T.predict(model, x[:n], batch_size=8)
    assert compiled.TRACES.count == traces


@pytest.mark.parametrize("devices", [jax.devices()[:1], jax.devices()])
def test_blocks_over_a_mesh_match_one_device(devices):
    x, y = blobs(n=70)
    model = mlp(seed=2)
    one = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8, devices=jax.devices()[:1])
    got = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8, devices=devices)
    np.testing.assert_allclose(got["loss"], one["loss"], rtol=1e-6, atol=1e-7)
    out = T.predict(model, x, batch_size=8, devices=devices)
    np.testing.assert_allclose(out, T.predict(model, x, batch_size=8), rtol=1e-6, atol=1e-6)


def test_host_feeder_stacks_on_the_host():
    src = ArraySource(np.ones((20, 2), np.float32), np.zeros(20, np.int32), batch_size=4)
    feeder = eval_blocks.host_feeder(src, sharding.make_mesh(jax.devices()[:1]))
    chunks = list(feeder.epoch(0, 0, shuffle=False))
    assert not feeder.gather and feeder.k == K
    assert [c.steps for c in chunks] == [5] and chunks[0].args[0].x.shape == (K, 4, 2)


def test_consecutive_rows_are_a_view_and_others_a_copy():
    x = np.arange(20.0, dtype=np.float32).reshape(10, 2)
    tree = {"x": x}
    view = _take(tree, np.arange(3, 7), "x")["x"]
    assert np.shares_memory(view, x) and view.tolist() == x[3:7].tolist()
    for rows in (np.array([3, 5, 4]), np.array([0, 1, 1]), np.array([2, 3, 0])):
        got = _take(tree, rows, "x")["x"]
        assert not np.shares_memory(got, x)
        np.testing.assert_array_equal(got, x[rows])
    assert _take(tree, np.arange(0), "x")["x"].shape == (0, 2)
    wide = _take({"x": x.astype(np.float64)}, np.arange(2), "x")["x"]
    assert wide.dtype == np.float32


@pytest.mark.parametrize("per_step", [None, 1])
@pytest.mark.slow
def test_sweep_validation_in_blocks_matches_evaluate_per_member(monkeypatch, per_step):
    x, y = blobs(n=85)  # 11 validation batches of 8: dispatches of 8 and 3
    calls = []
    real = eval_blocks.block_outputs

    def spy(fn, params, rest, feeder):
        out = real(fn, params, rest, feeder)
        calls.append([len(block["loss"]["sum"]) for block in out])
        return out

    monkeypatch.setattr(eval_blocks, "block_outputs", spy)
    result = T.sweep(
        lambda rngs: MLP(4, (5,), 3, rngs=rngs), (x, y),
        loss="cross_entropy", seeds=[0, 1, 2], epochs=2, batch_size=8,
        validation_data=(x, y), members_per_step=per_step,
    )  # fmt: skip
    assert calls == [[8, 3], [8, 3]]  # every batch of every epoch, once
    for i in range(3):
        logs = T.evaluate(result.member(i), (x, y), loss="cross_entropy", batch_size=8)
        got = result.history["val_loss"][i, -1]
        np.testing.assert_allclose(got, logs["loss"], rtol=1e-5, atol=1e-6)
        assert result.history["val_accuracy"][i, -1] == logs["accuracy"]


class _Probe(nnx.Module):
    """A dense layer that records, per trace, whether a library program and forward only."""

    def __init__(self, seen: list):
        self.dense = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        self.seen = seen  # a list: a pytree-free static attribute for nnx

    def __call__(self, x):
        self.seen.append((_conv_compiler.in_library_program(), is_forward_only()))
        return self.dense(x)


def test_evaluation_and_prediction_compile_as_fits_step():
    x, y = np.ones((10, 2), np.float32), np.zeros((10, 3), np.float32)
    seen: list = []
    model = _Probe(seen)
    library = bool(_conv_compiler.compiler_options())  # XLA:CPU: Eigen's convolutions
    calls = {
        "predict": lambda: T.predict(model, x, batch_size=4),
        "evaluate": lambda: T.evaluate(model, (x, y), loss="mse", batch_size=4),
        "fit's validation": lambda: T.fit(
            model, (x, y), loss="mse", batch_size=4, validation_data=(x, y), verbose=0
        ),
    }
    for name, call in calls.items():
        seen.clear()
        call()
        # the forward-only dispatch traced as fit's step (shape checks outside any program)
        assert any(lib for lib, forward_only in seen if forward_only) == library, name
