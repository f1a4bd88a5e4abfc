"""Tests for nnjax.train.sweep: vmapped sweeps through fit's engine, ensembles."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import _hardware, activations, losses
from nnjax.nn import MLP
from nnjax.train import compiled, ensemble, model_split, sharding
from nnjax.train import step as step_lib
from nnjax.train.callbacks import EarlyStopping
from nnjax.train.data import ArraySource, epoch_index
from nnjax.train.evaluate import evaluate
from nnjax.train.loop import fit
from nnjax.train.sweep import (
    ensemble_predict,
    grid,
    member_predictions,
    sweep,
)
from nnjax.train.sweep_feeder import feed_mode
from tests.train._data import three_classes

N, BATCH, EPOCHS = 40, 8, 2


def make_model(rngs):
    return MLP(4, (8,), 3, dropout=0.2, rngs=rngs)


@pytest.fixture(scope="module")
def data():
    return three_classes(N)


def params_of(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def assert_close(a, b, rtol=2e-5, atol=2e-6):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=rtol, atol=atol), a, b)


def train_alone(seed, lr, data):
    """Reference: one model, a plain Python loop over the same pure step."""
    x, y = data
    gd, params, rest = step_lib.split_model(make_model(nnx.Rngs(seed)))
    tx = optax.adam(lr)
    step = jax.jit(step_lib.make_train_step(gd, "cross_entropy", tx, ("accuracy",)))
    opt_state, epoch_losses = tx.init(params), []
    for epoch in range(EPOCHS):
        logs = []
        for rows in epoch_index(seed, epoch, N, BATCH)[0]:  # N = 5 * BATCH: no padding
            params, opt_state, rest, out = step(params, opt_state, rest, x[rows], y[rows])
            logs.append(out["loss"])
        epoch_losses.append(np.mean(logs))
    return params, np.array(epoch_losses)


@pytest.fixture(scope="module")
def result(data):
    return sweep(
        make_model,
        data,
        loss="cross_entropy",
        optimizer=optax.adam,
        members=grid(seeds=[0, 1], learning_rate=[1e-2, 3e-2]),
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_data=(data[0][:16], data[1][:16]),
        steps_per_dispatch=3,  # 5 steps per epoch: dispatches of 3 and 2
    )


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_each_member_ends_where_training_it_alone_ends(result, data):
    assert result.num_members == 4
    np.testing.assert_array_equal(result.seeds, [0, 0, 1, 1])
    np.testing.assert_allclose(result.hyperparams["learning_rate"], [1e-2, 3e-2] * 2)
    assert result.history["loss"].shape == (4, EPOCHS)
    for i, (seed, lr) in enumerate([(0, 1e-2), (0, 3e-2), (1, 1e-2), (1, 3e-2)]):
        params, epoch_losses = train_alone(seed, lr, data)
        assert_close(jax.tree.map(lambda a, i=i: a[i], result.params), params)
        np.testing.assert_allclose(result.history["loss"][i], epoch_losses, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_member_matches_fit_with_the_same_seed(result, data):
    model = make_model(nnx.Rngs(1))
    history = fit(
        model,
        data,
        loss="cross_entropy",
        optimizer=optax.adam(3e-2),
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_data=(data[0][:16], data[1][:16]),
        seed=1,
        verbose=0,
    )  # both split each batch over the 4 devices
    assert_close(params_of(result.member(3)), params_of(model))
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(result.history[name][3], history.history[name], atol=1e-5)
    # Training accuracy under dropout: an example whose hidden units are all dropped
    # scores the output biases alone, a near-tie that float reassociation (vmap, the
    # device split) may flip: at most one of the N examples per epoch.
    np.testing.assert_allclose(
        result.history["accuracy"][3], history.history["accuracy"], atol=1 / N + 1e-6
    )


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_validation_history_is_each_members_evaluation(result, data):
    val = (data[0][:16], data[1][:16])
    assert result.history["val_loss"].shape == (4, EPOCHS)
    for i in range(4):
        scores = evaluate(result.member(i), val, loss="cross_entropy")
        np.testing.assert_allclose(result.history["val_loss"][i, -1], scores["loss"], atol=1e-5)
        np.testing.assert_allclose(result.history["val_accuracy"][i, -1], scores["accuracy"])


def test_no_recompilation_on_second_call(data):
    traces = []

    def counting_loss(logits, labels):
        traces.append(1)
        return losses.cross_entropy(logits, labels)

    def run(lrs):
        return sweep(
            make_model,
            data,
            loss=counting_loss,
            optimizer=optax.sgd,
            seeds=[0, 1],
            hyperparams={"learning_rate": lrs},
            batch_size=BATCH,
            metrics=(),
            steps_per_dispatch=5,
        )

    run([0.1, 0.2])
    n, dispatch_traces = len(traces), compiled.TRACES.count
    assert n > 0
    second = run([0.3, 0.4])  # other values of an injected hyperparameter: same program
    assert len(traces) == n and compiled.TRACES.count == dispatch_traces
    assert np.all(np.isfinite(second.history["loss"]))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_ensemble_predict_is_the_mean_of_member_outputs(result, data):
    x = jnp.asarray(data[0][:6])
    outs = [nnx.view(result.member(i), deterministic=True)(x) for i in range(4)]
    np.testing.assert_allclose(member_predictions(result, x), jnp.stack(outs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ensemble_predict(result, x), np.mean(outs, axis=0), rtol=1e-5, atol=1e-6
    )
    probs = np.mean([jax.nn.softmax(o) for o in outs], axis=0)
    got = ensemble_predict(result, x, activation="softmax")
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # uses the module's sweep result (trained in the slow step)
def test_ensemble_and_member_predictions_compile_once(result, data):
    x = data[0][:6]
    graphdef = step_lib.graphdef_for(result.member(0), training=False)
    members = ensemble._compiled_members(graphdef, None)  # float32: no precision
    mean = ensemble._compiled_ensemble(graphdef, activations.get("softmax"), None)
    sizes = []
    for _ in range(3):
        ensemble_predict(result, x, activation="softmax")
        member_predictions(result, x)
        sizes.append((members._cache_size(), mean._cache_size()))
    assert sizes[0] >= (1, 1) and sizes[1:] == [sizes[0]] * 2, sizes


@pytest.mark.slow  # uses the module's sweep result (trained in the slow step)
def test_predictions_derive_the_inference_graph_once(result, data, monkeypatch):
    """Rebuilding member 0 to get its graph took 9/10 of an ensemble_predict call."""
    views = []
    view = nnx.view
    monkeypatch.setattr(nnx, "view", lambda *a, **k: views.append(1) or view(*a, **k))
    model_split._MODE_GRAPHS.clear()
    for _ in range(3):
        ensemble_predict(result, data[0][:6])
        member_predictions(result, data[0][:6])
    assert len(views) == 1


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_member_is_an_independent_copy(result):
    model = result.member(0)
    model.layers[0].kernel[...] = jnp.zeros_like(model.layers[0].kernel[...])
    assert np.any(result.params["layers"][0]["kernel"][0] != 0)


@pytest.mark.slow  # a sweep and two fits with early stopping: ~50 s on a loaded 2-core machine
def test_early_stopping_per_member_equals_fit_with_early_stopping(data):
    """Each member stops (and restores its best epoch) exactly as fit alone does."""
    x, y = data
    val = (x[:16], y[:16])
    members = {"seeds": [0, 1], "hyperparams": {"learning_rate": [0.3, 3e-3]}}
    common = dict(loss="cross_entropy", epochs=6, batch_size=BATCH, validation_data=val)
    stop = dict(monitor="val_loss", patience=1, min_delta=0.02, restore_best_weights=True)
    result = sweep(
        make_model, data, optimizer=optax.sgd, members=members, callbacks=[EarlyStopping(**stop)],
        **common,
    )  # fmt: skip
    stopped = 0
    for i, (seed, lr) in enumerate(zip(members["seeds"], members["hyperparams"]["learning_rate"])):
        model, cb = make_model(nnx.Rngs(seed)), EarlyStopping(**stop)
        history = fit(
            model, data, optimizer=optax.sgd(lr), seed=seed, callbacks=[cb], verbose=0,
            devices=jax.devices()[:1], **common,
        )  # fmt: skip
        assert_close(params_of(result.member(i)), params_of(model), atol=1e-5)
        assert result.stopped_epoch[i] == (-1 if cb.stopped_epoch is None else cb.stopped_epoch)
        assert result.weights_epoch[i] == cb.best_epoch
        ran = len(history.epoch)
        np.testing.assert_allclose(
            result.history["val_loss"][i, :ran], history["val_loss"], atol=1e-5
        )
        assert np.all(np.isnan(result.history["val_loss"][i, ran:]))
        stopped += cb.stopped_epoch is not None
    assert stopped >= 1  # the test exercises a stop


@pytest.mark.slow  # three sweeps and a fit: ~40 s on a loaded 2-core machine
def test_structural_hyperparameters_are_grouped(data):
    def model_fn(rngs, width, activation="relu"):
        return MLP(4, (width,), 3, activation=activation, rngs=rngs)

    members = grid(seeds=[0], width=[4, 8], activation=["tanh"], learning_rate=[0.1])
    result = sweep(model_fn, data, loss="cross_entropy", optimizer=optax.sgd, members=members,
                   epochs=1, batch_size=BATCH)  # fmt: skip
    assert len(result.groups) == 2 and result.history["loss"].shape == (2, 1)
    for i in (1,):
        width, act = members["hyperparams"]["width"][i], members["hyperparams"]["activation"][i]
        model = model_fn(nnx.Rngs(0), width, act)
        fit(model, data, loss="cross_entropy", optimizer=optax.sgd(0.1), batch_size=BATCH,
            verbose=0, devices=jax.devices()[:1])  # fmt: skip
        assert result.member(i).layers[0].kernel.shape == (4, width)
        assert_close(params_of(result.member(i)), params_of(model))
    with pytest.raises(ValueError, match="2 groups"):
        _ = result.params
    split = sweep(model_fn, data, loss="cross_entropy", members=grid(seeds=[0, 1, 2], width=[4]),
                  epochs=0, members_per_program=2)  # fmt: skip
    assert [g.members.tolist() for g in split.groups] == [[0, 1], [2]]


@pytest.mark.slow  # ~16 s on a loaded 2-core machine (a second compile: host batches)
def test_memmap_members_are_read_per_batch_equal_arrays_and_compile_once(result, data, tmp_path):
    x, y = data
    np.save(tmp_path / "x.npy", x)
    mapped_x = np.load(tmp_path / "x.npy", mmap_mode="r")
    mesh = sharding.make_mesh(jax.devices())
    assert feed_mode(ArraySource(mapped_x, y, batch_size=BATCH), mesh) == "members"
    assert feed_mode(ArraySource(x, y, batch_size=BATCH), mesh) == "gather"

    def run(learning_rates):
        return sweep(
            make_model, (mapped_x, y), loss="cross_entropy", optimizer=optax.adam,
            members=grid(seeds=[0, 1], learning_rate=learning_rates), epochs=EPOCHS,
            batch_size=BATCH, validation_data=(x[:16], y[:16]), steps_per_dispatch=3,
        )  # fmt: skip

    mapped = run([1e-2, 3e-2])  # the fixture's members, fed from host batches
    for i in range(4):
        assert_close(params_of(mapped.member(i)), params_of(result.member(i)))
    for name, values in result.history.items():
        np.testing.assert_allclose(mapped.history[name], values, rtol=1e-5, atol=1e-5)
    dispatch_traces = compiled.TRACES.count
    run([2e-2, 5e-2])  # other injected values: the same program
    assert compiled.TRACES.count == dispatch_traces


@pytest.mark.slow  # ~45 s on a loaded 2-core machine
def test_loss_fn_and_iterable_data_match_fit(data):
    x, y = data
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, N, BATCH)]

    def loss_fn(model, batch):
        logits = model(batch.x)
        value = losses.cross_entropy(logits, batch.y)
        return value, {"mean_logit": jnp.mean(logits)}

    result = sweep(make_model, batches, loss_fn=loss_fn, optimizer=optax.sgd,
                   members=grid(seeds=[0, 1], learning_rate=[0.1]), epochs=1)  # fmt: skip
    assert set(result.history) == {"loss", "mean_logit", "learning_rate"}
    model = make_model(nnx.Rngs(1))
    history = fit(model, batches, loss_fn=loss_fn, optimizer=optax.sgd(0.1), seed=1, verbose=0,
                  devices=jax.devices()[:1])  # fmt: skip
    assert_close(params_of(result.member(1)), params_of(model))
    np.testing.assert_allclose(result.history["mean_logit"][1], history["mean_logit"], atol=1e-5)


def test_bad_arguments_are_reported_before_compiling(data):
    traces = compiled.TRACES.count
    with pytest.raises(ValueError, match="same length"):
        sweep(make_model, data, loss="mse", seeds=[0, 1], hyperparams={"learning_rate": [1, 2, 3]})
    with pytest.raises(ValueError, match="unknown optimizer"):
        sweep(make_model, data, loss="mse", optimizer="nope")
    with pytest.raises(ValueError, match="factory"):
        sweep(make_model, data, loss="mse", optimizer=optax.adam(1e-3))
    with pytest.raises(ValueError, match="'width' is taken neither"):
        sweep(make_model, data, loss="cross_entropy", members=grid(width=[4, 8]))
    with pytest.raises(TypeError, match="'b1' must be a number"):
        sweep(make_model, data, loss="cross_entropy", members=grid(b1=["high"]))
    with pytest.raises(ValueError, match="not both"):
        sweep(make_model, data, loss="cross_entropy", members=grid(), seeds=[1, 2])
    with pytest.raises(ValueError, match="save_best_only"):
        from nnjax.train.checkpoint import ModelCheckpoint

        cb = ModelCheckpoint("/tmp/never", monitor="loss", save_best_only=True)
        sweep(make_model, data, loss="cross_entropy", callbacks=[cb])
    with pytest.raises(ValueError, match="val_loss"):
        sweep(make_model, data, loss="cross_entropy", callbacks=[EarlyStopping("val_loss")])
    widths = iter([4, 5, 6])  # the first: built abstractly for its declared inputs
    with pytest.raises(ValueError, match="architectures"):
        sweep(lambda rngs: MLP(4, (next(widths),), 3, rngs=rngs), data, loss="cross_entropy",
              seeds=[0, 1], epochs=0)  # fmt: skip
    assert compiled.TRACES.count == traces


@pytest.mark.slow  # a sweep and a fit in bfloat16: ~30 s on a loaded 2-core machine
def test_precision_and_validation_split_are_passed_to_every_member(data, monkeypatch):
    # as on hardware with native bfloat16, where the precision changes the step
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    kw = dict(loss="cross_entropy", batch_size=BATCH, precision="bfloat16", validation_split=0.2)
    result = sweep(make_model, data, optimizer=optax.sgd, members=grid(seeds=[0, 1]), **kw)
    model = make_model(nnx.Rngs(1))
    history = fit(model, data, optimizer=optax.sgd(1e-3), seed=1, verbose=0,
                  devices=jax.devices()[:1], **kw)  # fmt: skip
    assert_close(params_of(result.member(1)), params_of(model), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(result.history["val_loss"][1], history["val_loss"], atol=1e-3)


@pytest.mark.slow  # three sweeps: ~40 s on a loaded 2-core machine
def test_members_per_step_formulations_agree(data):
    """vmapped, looped and blocked members end in the same place (float32 reassociation)."""
    members = grid(seeds=[0, 1, 2], learning_rate=[0.1])
    kw = dict(loss="cross_entropy", optimizer=optax.sgd, members=members, batch_size=BATCH)
    runs = [sweep(make_model, data, epochs=2, members_per_step=k, **kw) for k in (None, 1, 2)]
    for other in runs[1:]:
        assert_close(other.params, runs[0].params)
        np.testing.assert_allclose(other.history["loss"], runs[0].history["loss"], atol=1e-6)
    with pytest.raises(ValueError, match="members_per_step"):
        sweep(make_model, data, loss="cross_entropy", members=members, members_per_step=0)


@pytest.mark.slow
def test_declared_integer_inputs_pass_and_match_fit():
    from nnjax.nn import SequenceRegressor
    from nnjax.train import fit

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(24, 5, 2)).astype(np.float32)
    lengths = rng.integers(1, 6, 24).astype(np.int32)
    data = ({"xs": xs, "lengths": lengths}, rng.normal(size=(24, 1)).astype(np.float32))
    model_fn = lambda rngs: SequenceRegressor(2, 3, rngs=rngs)
    result = sweep(model_fn, data, loss="mse", members=grid(seeds=[0, 1]), batch_size=8)
    alone = model_fn(nnx.Rngs(1))
    fit(alone, data, loss="mse", batch_size=8, seed=1, verbose=0)
    np.testing.assert_allclose(
        result.member(1).head.kernel.get_value(), alone.head.kernel.get_value(), atol=5e-5
    )
    with pytest.raises(TypeError, match=r"x\['xs'\] has dtype int32"):
        sweep(model_fn, ({"xs": xs.astype(np.int32), "lengths": lengths}, data[1]), loss="mse")
