"""Float64 models under ``jax_enable_x64``: fit, evaluate and resume match float64 references.

x64 is switched on inside each test only (the ``x64`` fixture restores it even when
the test fails), so no other test of the worker sees it.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn, train
from nnjax.train import class_weights, loss_output


def _params(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def _dense(seed=0):
    return nn.Dense(3, 1, param_dtype=jnp.float64, rngs=nnx.Rngs(seed))


def _reference_sgd(model, x, y, lr):
    graphdef, state = nnx.split(model)
    loss = lambda s: jnp.mean((nnx.merge(graphdef, s)(x) - y) ** 2)
    value, grads = jax.value_and_grad(loss)(state)
    return float(value), jax.tree.map(lambda a, g: a - lr * g, state, grads)


def test_one_sgd_step_of_a_float64_model_is_float64_exact(x64):
    x = np.random.default_rng(0).normal(size=(10, 3))
    y = x.sum(1, keepdims=True)
    model = _dense()
    history = train.fit(
        model,
        (x, y),
        loss="mse",
        optimizer="sgd",
        learning_rate=0.5,
        epochs=1,
        batch_size=10,
        verbose=0,
    )
    value, ref = _reference_sgd(_dense(), x, y, 0.5)
    assert model.kernel[...].dtype == jnp.float64
    np.testing.assert_allclose(model.kernel[...], ref["kernel"][...], rtol=0, atol=1e-14)
    np.testing.assert_allclose(model.bias[...], ref["bias"][...], rtol=0, atol=1e-14)
    assert abs(history.history["loss"][0] - value) <= 1e-14 * abs(value)


def test_evaluate_keeps_a_float64_loss_without_overflow(x64):
    x = np.random.default_rng(1).normal(size=(12, 3))
    model = _dense()
    y = np.full((12, 1), 1e20)  # mse near 1e40: beyond float32's range
    reference = float(jnp.mean((model(jnp.asarray(x)) - y) ** 2))
    got = train.evaluate(model, (x, y), loss="mse", batch_size=5)
    loss = got["loss"] if isinstance(got, dict) else got
    assert np.isfinite(loss) and abs(loss - reference) <= 1e-14 * reference


def test_loss_scalar_keeps_float64_and_rounds_narrow_to_float32(x64):
    assert loss_output.scalar(jnp.float64(1e40)).dtype == jnp.float64
    assert loss_output.scalar(jnp.bfloat16(1.0)).dtype == jnp.float32
    assert loss_output.scalar(1.0).dtype == jnp.float32
    assert loss_output.scalar(jnp.int64(3)).dtype == jnp.float32


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_float32_models_weights_stay_float32_under_x64(x64):
    # float64 weights made a float32 model's loss_fn float64 (its logged loss changed)
    x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    y, seen = x.sum(1, keepdims=True), []

    def loss_fn(model, batch):
        seen.append(batch.weight.dtype)
        per = jnp.mean((model(batch.x) - batch.y) ** 2, -1)
        return jnp.sum(per * batch.weight) / jnp.maximum(batch.mask.sum(), 1)

    w = np.linspace(0.5, 1.5, 16)  # float64 given
    assert class_weights.class_weights("train", np.array([0, 1, 1]), {0: 1 / 3}).dtype == np.float32
    history = train.fit(nn.Dense(3, 1, rngs=nnx.Rngs(0)), (x, y, w), loss_fn=loss_fn, epochs=1,
                        batch_size=8, verbose=0)  # fmt: skip
    assert set(seen) == {jnp.dtype(jnp.float32)} and np.isfinite(history["loss"][0])


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_resumed_run_makes_the_due_plateau_reduction(x64, tmp_path):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(32, 3))
    y = x @ np.array([[1.0], [2.0], [-1.0]])

    def make():
        return nn.MLP(3, (8,), 1, activation="tanh", param_dtype=jnp.float64, rngs=nnx.Rngs(0))

    def plateau():
        return train.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1)

    kw = dict(loss="mse", optimizer="sgd", learning_rate=0.01, batch_size=16, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = make()
        h_full = train.fit(full, (x, y), epochs=3, callbacks=[plateau()], **kw)
        cbs = lambda: [train.ModelCheckpoint(tmp_path / "ck"), plateau()]
        train.fit(make(), (x, y), epochs=2, callbacks=cbs(), **kw)
        resumed = make()
        h_res = train.fit(
            resumed, (x, y), epochs=3, callbacks=cbs(), resume_from=tmp_path / "ck", **kw
        )
    assert h_res.history["learning_rate"] == h_full.history["learning_rate"]
    for a, b in zip(jax.tree.leaves(_params(full)), jax.tree.leaves(_params(resumed))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64:UserWarning")
def test_loading_a_float64_checkpoint_without_x64_says_how(tmp_path):
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        nnjax.save(nn.MLP(2, (3,), 1, param_dtype=jnp.float64, rngs=nnx.Rngs(0)), tmp_path / "m")
    finally:
        jax.config.update("jax_enable_x64", before)
    if before:
        pytest.skip("x64 is on in this process")
    with pytest.raises(
        Exception,
        match=r"float64 in the checkpoint but float32 in the model; "
        r"enable jax_enable_x64 \(jax.config.update\('jax_enable_x64', True\)\)",
    ):
        nnjax.load(tmp_path / "m")


def test_the_emulated_bfloat16_note_holds_for_a_float64_model():
    from nnjax import _hardware

    note = _hardware.emulated_bfloat16_note()
    assert "float64" in note and "the results are float32's." not in note
