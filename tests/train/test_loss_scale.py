"""Tests for nnjax.train.loss_scale: dynamic loss scaling under precision="float16"."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import train
from nnjax.io import CheckpointError
from nnjax.nn import MLP
from nnjax.train import loss_scale
from nnjax.train.loss_scale import LossScaleState, dynamic_loss_scale, scale_of
from nnjax.train.step import make_train_step, split_model

# float16 runs emulated on the CPU, and says so (nnjax.train.precision.FLOAT16_ON_CPU)
pytestmark = pytest.mark.filterwarnings("ignore:precision='float16' on the CPU:UserWarning")

PARAMS = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.25)}
GRADS = {"w": jnp.array([0.1, -0.2, 0.3]), "b": jnp.array(-0.4)}


def _scaled(tree, scale):
    return jax.tree.map(lambda g: g * scale, tree)


def _close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7), a, b)


def test_updates_are_the_inner_optimizers_on_the_unscaled_gradients():
    inner = optax.adam(0.1)
    tx = dynamic_loss_scale(inner, initial_scale=1024.0)
    state, ref_state = tx.init(PARAMS), inner.init(PARAMS)
    for _ in range(3):
        updates, state = tx.update(_scaled(GRADS, 1024.0), state, PARAMS)
        ref_updates, ref_state = inner.update(GRADS, ref_state, PARAMS)
        _close(updates, ref_updates)
    _close(state.inner_state, ref_state)
    assert float(state.scale) == 1024.0 and int(state.good_steps) == 3


@pytest.mark.parametrize("bad", [jnp.inf, -jnp.inf, jnp.nan])
def test_a_step_whose_gradients_overflow_is_skipped_and_halves_the_scale(bad):
    tx = dynamic_loss_scale(optax.adam(0.1), initial_scale=64.0)
    state = tx.init(PARAMS)
    _, state = tx.update(_scaled(GRADS, 64.0), state, PARAMS)  # one good step first
    grads = {"w": GRADS["w"].at[1].set(bad), "b": GRADS["b"]}
    updates, new = tx.update(grads, state, PARAMS)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    _close(new.inner_state, state.inner_state)  # adam's count and moments kept
    assert float(new.scale) == 32.0 and int(new.good_steps) == 0


def test_the_scale_grows_after_the_interval_and_stays_within_its_bounds():
    tx = dynamic_loss_scale(optax.sgd(0.1), initial_scale=2.0, growth_interval=3)
    state = tx.init(PARAMS)
    scales = []
    for _ in range(7):
        _, state = tx.update(_scaled(GRADS, float(state.scale)), state, PARAMS)
        scales.append(float(state.scale))
    assert scales == [2.0, 2.0, 4.0, 4.0, 4.0, 8.0, 8.0]
    inf = jax.tree.map(lambda g: jnp.full_like(g, jnp.inf), GRADS)
    for _ in range(5):
        _, state = tx.update(inf, state, PARAMS)
    assert float(state.scale) == 1.0  # halved down to 1, not below
    top = dynamic_loss_scale(optax.sgd(0.1), initial_scale=loss_scale.MAX_SCALE, growth_interval=1)
    state = top.init(PARAMS)
    _, state = top.update(_scaled(GRADS, loss_scale.MAX_SCALE), state, PARAMS)
    assert float(state.scale) == loss_scale.MAX_SCALE


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_scale": 3.0},
        {"initial_scale": 0.5},
        {"initial_scale": 2.0**25},
        {"initial_scale": float("inf")},
        {"initial_scale": "1024"},
        {"initial_scale": True},
        {"growth_interval": 0},
        {"growth_interval": 1.5},
        {"growth_interval": True},
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        dynamic_loss_scale(optax.sgd(0.1), **kwargs)


def test_extra_arguments_reach_the_inner_optimizer():
    inner = optax.contrib.reduce_on_plateau(patience=1, factor=0.5)
    tx = dynamic_loss_scale(inner)
    state, ref_state = tx.init(PARAMS), inner.init(PARAMS)
    for _ in range(4):  # a loss that never improves: the plateau shrinks what it applies
        updates, state = tx.update(_scaled(GRADS, float(state.scale)), state, PARAMS, value=1.0)
        ref, ref_state = inner.update(GRADS, ref_state, PARAMS, value=1.0)
        _close(updates, ref)
    assert float(jax.tree.leaves(updates)[0]) != float(jax.tree.leaves(GRADS)[0])


def _tiny_loss(predictions, y):
    """An MSE whose gradients underflow in float16 without a scale (about 1e-9)."""
    return 1e-9 * jnp.mean((predictions - y) ** 2)


def _float16_step(tx, seed=0):
    model = MLP(4, (8,), 1, rngs=nnx.Rngs(seed))
    graphdef, params, rest = split_model(model)
    step = make_train_step(graphdef, _tiny_loss, tx, precision="float16")
    x = jax.random.normal(jax.random.key(1), (16, 4))
    y = jnp.ones((16, 1))
    return jax.jit(step), params, rest, x, y


def _first_kernel_change(tx):
    step, params, rest, x, y = _float16_step(tx)
    new, _, _, out = step(params, tx.init(params), rest, x, y)
    return np.asarray(new["layers"][0]["kernel"] - params["layers"][0]["kernel"]), out


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_the_train_step_scales_the_loss_where_the_optimizer_state_holds_a_scale():
    sgd = optax.sgd(1e6)  # turns gradients of about 1e-9 into visible updates
    plain, plain_out = _first_kernel_change(sgd)
    scaled, scaled_out = _first_kernel_change(dynamic_loss_scale(sgd))
    # without the scale the float16 backward pass underflows: no update at all
    assert np.all(plain == 0)
    # with it, the update of a float32 step to float16's precision
    model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model)
    ref_step = make_train_step(graphdef, _tiny_loss, sgd)
    x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.ones((16, 1))
    ref = ref_step(params, sgd.init(params), rest, x, y)[0]["layers"][0]["kernel"]
    expected = np.asarray(ref - params["layers"][0]["kernel"])
    assert np.abs(expected).max() > 1e-4
    np.testing.assert_allclose(scaled, expected, rtol=2e-2, atol=2e-2 * np.abs(expected).max())
    # the loss logged is the unscaled one
    np.testing.assert_allclose(scaled_out["loss"], plain_out["loss"], rtol=1e-6, atol=0)


def test_the_scaled_step_compiles_once():
    tx = dynamic_loss_scale(optax.sgd(0.1))
    step, params, rest, x, y = _float16_step(tx, seed=1)
    opt_state = tx.init(params)
    for _ in range(3):  # the scale is state, not a constant: no recompile as it changes
        params, opt_state, rest, _ = step(params, opt_state, rest, x, y)
    assert step._cache_size() == 1


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_fit_with_float16_trains_through_the_scale(monkeypatch):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.ones((32, 1), np.float32)
    kw = dict(loss=_tiny_loss, optimizer=optax.sgd(1e6), batch_size=16, verbose=0)

    def first_kernel(model):
        return np.asarray(model.layers[0].kernel[...])

    model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    before = first_kernel(model)
    history = train.fit(model, (x, y), precision="float16", **kw)
    assert np.abs(first_kernel(model) - before).max() > 1e-4
    assert np.isfinite(history.history["loss"]).all()
    # the same run without the wrapper: float16 gradients underflow, nothing moves
    monkeypatch.setattr(loss_scale, "for_precision", lambda tx, precision: tx)
    model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    train.fit(model, (x, y), precision="float16", **kw)
    np.testing.assert_array_equal(first_kernel(model), before)


def test_fit_wraps_the_optimizer_for_float16_only():
    assert isinstance(loss_scale.for_precision(optax.sgd(0.1), "float16").init({}), LossScaleState)
    sgd = optax.sgd(0.1)
    for precision in (None, "bfloat16"):
        assert loss_scale.for_precision(sgd, precision) is sgd


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_sweep_members_carry_a_scale_each_under_float16():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.ones((32, 1), np.float32)
    result = train.sweep(
        lambda rngs: MLP(4, (8,), 1, rngs=rngs), (x, y), loss=_tiny_loss, optimizer=optax.sgd,
        members=train.grid(seeds=[0, 1], learning_rate=[1e6]), batch_size=16,
        precision="float16", verbose=0,
    )  # fmt: skip
    group = result.groups[0]
    assert scale_of(group.opt_state).shape == (2,)  # one scale per member
    for i in range(2):
        before = MLP(4, (8,), 1, rngs=nnx.Rngs(i)).layers[0].kernel[...]
        after = result.member(i).layers[0].kernel[...]
        assert np.abs(np.asarray(after - before)).max() > 1e-4


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_a_float16_checkpoint_resumed_without_float16_says_why_it_does_not_fit(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.ones((32, 1), np.float32)
    kw = dict(loss="mse", batch_size=16, verbose=0)
    model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    train.fit(model, (x, y), precision="float16", callbacks=[train.ModelCheckpoint(tmp_path)], **kw)
    again = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    with pytest.raises(CheckpointError, match="resume with the precision the run was saved with"):
        train.fit(again, (x, y), epochs=2, resume_from=tmp_path, **kw)
    history = train.fit(again, (x, y), epochs=2, resume_from=tmp_path, precision="float16", **kw)
    assert history.epoch == [0, 1]


def _mse(predictions, y):
    return jnp.mean((predictions - y) ** 2)


def _overflowing_data():
    """Targets of about 30: scaled by 2**15, the float16 gradients overflow at first."""
    x = np.random.default_rng(2).normal(size=(64, 4)).astype(np.float32)
    return x, (30 * x[:, :1] + 5).astype(np.float32)


@pytest.mark.filterwarnings("ignore:precision='bfloat16' computes in float32:UserWarning")
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_fit_logs_the_scale_that_a_loop_of_its_steps_reaches():
    x, y = _overflowing_data()
    kw = dict(loss=_mse, optimizer=optax.adam(1e-3), batch_size=16, epochs=2, shuffle=False)
    history = train.fit(MLP(4, (8,), 1, rngs=nnx.Rngs(0)), (x, y), precision="float16", **kw)
    graphdef, params, rest = split_model(MLP(4, (8,), 1, rngs=nnx.Rngs(0)))
    tx = dynamic_loss_scale(optax.adam(1e-3))
    step = jax.jit(make_train_step(graphdef, _mse, tx, precision="float16"))
    opt_state, scales = tx.init(params), []
    for _ in range(2):
        for i in range(0, 64, 16):
            params, opt_state, rest, _ = step(params, opt_state, rest, x[i : i + 16], y[i : i + 16])
        scales.append(float(scale_of(opt_state)))
    assert scales[0] < loss_scale.INITIAL_SCALE  # steps were skipped, the scale came down
    assert history.history["loss_scale"] == scales
    for precision in (None, "bfloat16"):  # no scale, no log
        model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
        assert "loss_scale" not in train.fit(model, (x, y), precision=precision, **kw).history


def test_sweep_logs_each_members_scale_and_shows_no_best_of_it(capsys):
    x, y = _overflowing_data()
    result = train.sweep(
        lambda rngs: MLP(4, (8,), 1, rngs=rngs), (x, y), loss=_mse, optimizer=optax.adam,
        members=train.grid(seeds=[0, 1], learning_rate=[1e-3]), batch_size=16, epochs=2,
        precision="float16", verbose=2,
    )  # fmt: skip
    scales = np.asarray(result.history["loss_scale"])  # (members, epochs)
    assert scales.shape == (2, 2)
    np.testing.assert_array_equal(scales[:, -1], scale_of(result.groups[0].opt_state))
    assert (scales < loss_scale.INITIAL_SCALE).all()
    out = capsys.readouterr().out
    assert "best loss:" in out and "loss_scale" not in out
