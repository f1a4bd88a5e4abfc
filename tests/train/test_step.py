"""Tests for the pure training steps in nnjax.train.step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads

import nnjax.train as T
from nnjax.nn import CNN, MLP
from nnjax.train import compiled as C
from nnjax.train import model_split
from nnjax.train import step as S


def _data(key, n=6, d=3, c=2):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, d)), jax.random.randint(ky, (n,), 0, c)


def _reference_loss(params, x, y):
    """Independent MLP forward (relu hidden layer) + softmax cross-entropy."""
    l0, l1 = params["layers"][0], params["layers"][1]
    h = jnp.maximum(x @ l0["kernel"] + l0["bias"][None, :], 0.0)
    logits = h @ l1["kernel"] + l1["bias"][None, :]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_train_step_matches_independent_sgd(key):
    model = MLP(3, (5,), 2, rngs=nnx.Rngs(1))
    gd, params, rest = S.split_model(model)
    x, y = _data(key)
    pure = nnx.to_pure_dict(params)
    grads = jax.grad(_reference_loss)(pure, x, y)
    expected = jax.tree.map(lambda p, g: p - 0.5 * g, pure, grads)
    tx = optax.sgd(0.5)
    new_params, _, _, logs = jax.jit(S.make_train_step(gd, "cross_entropy", tx))(
        params, tx.init(params), rest, x, y
    )
    got = nnx.to_pure_dict(new_params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, expected)
    np.testing.assert_allclose(logs["loss"], _reference_loss(pure, x, y), rtol=1e-6, atol=1e-6)


def test_loss_fn_gradients_numerically(key):
    gd, params, rest = S.split_model(MLP(3, (4,), 1, activation="tanh", rngs=nnx.Rngs(0)))
    x = jax.random.normal(key, (4, 3))
    y = jnp.ones((4, 1))
    loss_fn = S.make_loss_fn(gd, "mse")
    check_grads(jax.jit(lambda p: loss_fn(p, rest, x, y)[0]), (params,), order=1, modes=["rev"])


def test_dropout_rng_state_is_carried(key):
    model = MLP(3, (16,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    gd, params, rest = S.split_model(model)
    x, y = _data(key)
    loss_fn = jax.jit(S.make_loss_fn(gd, "cross_entropy"))
    _, (logits1, rest1) = loss_fn(params, rest, x, y)
    _, (logits2, _) = loss_fn(params, rest1, x, y)
    counts = [leaf for leaf in jax.tree.leaves(rest1) if leaf.dtype == jnp.uint32]
    assert counts and int(counts[0]) == 1
    assert int(jax.tree.leaves(rest)[0]) == 0  # the input state is not mutated
    assert not np.allclose(logits1, logits2)  # fresh dropout mask on the next call
    # inference mode: deterministic, state unchanged
    gd_eval = S.graphdef_for(model, training=False)
    predict = jax.jit(S.make_predict_step(gd_eval))
    p1, p2 = predict(params, rest, x), predict(params, rest, x)
    np.testing.assert_array_equal(p1, p2)


def test_split_model_leaves_model_mode_alone():
    model = MLP(3, (4,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    model.eval()
    S.split_model(model, training=True)
    assert model.dropouts[0].deterministic


def _dropout_modes(graphdef, params, rest):
    model = nnx.merge(graphdef, params, rest)
    return [d.deterministic for d in model.dropouts]


def test_split_model_puts_a_graph_in_a_mode_once(monkeypatch):
    views = []
    view = nnx.view
    monkeypatch.setattr(nnx, "view", lambda *a, **k: views.append(1) or view(*a, **k))
    model_split._MODE_GRAPHS.clear()
    model = MLP(3, (4,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    for _ in range(3):
        assert _dropout_modes(*S.split_model(model, training=False)) == [True]
        assert _dropout_modes(*S.split_model(model, training=True)) == [False]
    assert len(views) == 2  # one per mode, not one per call
    model.eval()  # another graph (the model's own mode changed): derived anew
    assert _dropout_modes(*S.split_model(model, training=True)) == [False]
    assert len(views) == 3


class _WithConfig(nnx.Module):
    """A module whose graph holds an unhashable static attribute (a dict)."""

    def __init__(self, rngs):
        self.dense = nnx.Linear(2, 2, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.config = nnx.static({"sizes": [2, 2]})

    def __call__(self, x):
        return self.dropout(self.dense(x))


def test_split_model_of_a_graph_that_cannot_be_hashed():
    model = _WithConfig(nnx.Rngs(0))
    graphdef, params, rest = S.split_model(model, training=False)
    with pytest.raises(TypeError):
        hash(graphdef)
    assert nnx.merge(graphdef, params, rest).dropout.deterministic
    assert not nnx.merge(*S.split_model(model, training=True)).dropout.deterministic


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_scan_steps_equals_sequential_steps(key):
    gd, params, rest = S.split_model(MLP(3, (4,), 2, rngs=nnx.Rngs(0)))
    tx = optax.adam(1e-2)
    xs = jax.random.normal(key, (3, 4, 3))
    ys = jax.random.randint(key, (3, 4), 0, 2)
    step = S.make_train_step(gd, "cross_entropy", tx)
    jstep = jax.jit(step)
    p, o, r = params, tx.init(params), rest
    losses = []
    for k in range(3):
        p, o, r, logs = jstep(p, o, r, xs[k], ys[k])
        losses.append(logs["loss"])
    p2, _, _, logs2 = jax.jit(C.scan_steps(step))(params, tx.init(params), rest, xs, ys)
    np.testing.assert_allclose(logs2["loss"], jnp.stack(losses), rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p, p2)


@pytest.mark.parametrize("scan", [False, True])
def test_jit_train_step_does_not_retrace(key, scan):
    gd, params, rest = S.split_model(MLP(3, (4,), 2, rngs=nnx.Rngs(0)))
    tx = optax.sgd(0.1)
    step = C.jit_train_step(gd, "cross_entropy", tx, scan=scan)
    shape = (2, 4) if scan else (4,)
    x = jax.random.normal(key, (*shape, 3))
    y = jnp.zeros(shape, jnp.int32)
    state = (params, tx.init(params), rest)
    for _ in range(3):
        *state, _ = step(*state, x, y)
    assert step._cache_size() == 1


def test_eval_step_ignores_masked_examples(key):
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    gd, params, rest = S.split_model(model, training=False)
    x, y = _data(key, n=4)
    batch = S.as_batch(x, y, mask=jnp.array([1.0, 1.0, 1.0, 0.0]))
    sums = jax.jit(S.make_eval_step(gd, "cross_entropy", ("accuracy",)))(params, rest, batch)
    logits = model(x[:3])
    assert float(sums["loss"]["count"]) == 3.0
    np.testing.assert_allclose(
        sums["loss"]["sum"] / 3,
        optax.softmax_cross_entropy_with_integer_labels(logits, y[:3]).mean(),
        rtol=1e-5,
        atol=1e-5,
    )
    expected_acc = np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(y[:3]))
    acc = sums["accuracy"]["correct"] / sums["accuracy"]["count"]
    np.testing.assert_allclose(acc, expected_acc, rtol=1e-6, atol=1e-6)


def test_metrics_may_not_shadow_loss():
    with pytest.raises(ValueError, match="loss"):
        S.resolve_metrics(("mse", "loss"))


def test_the_objective_names_are_still_in_step():
    from nnjax.train import objective

    for name in ("as_batch", "batch_loss", "call_model", "make_loss_fn", "make_objective"):
        assert getattr(S, name) is getattr(objective, name)
    values, mask = jnp.array([[1.0], [3.0], [100.0]]), jnp.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(S.masked_mean(values, mask), [2.0], atol=1e-7)
    np.testing.assert_allclose(S.masked_mean(values, jnp.zeros(3)), [0.0], atol=1e-7)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU picks differ from it")
def test_predict_and_eval_steps_trace_forward_only():
    # XLA's convolution, not the patches that "auto" picks for training on the CPU.
    x = jnp.ones((4, 12, 12, 3))
    model = CNN((12, 12, 3), 5, conv_features=(4,), dense=(8,), rngs=nnx.Rngs(0))
    gd, params, rest = S.split_model(model, training=False)
    prims = str(jax.make_jaxpr(S.make_predict_step(gd))(params, rest, x))
    assert "conv_general_dilated" in prims
    batch = S.as_batch(x, jnp.zeros(4, jnp.int32))
    prims = str(jax.make_jaxpr(S.make_eval_step(gd, "cross_entropy"))(params, rest, batch))
    assert "conv_general_dilated" in prims


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", None])
@pytest.mark.slow
def test_train_step_normalizes_after_differentiating_the_weighted_sum(loss):
    # the step differentiates sum(weight * per_example) and divides after; the update
    # must equal the gradient of the normalized objective (padding and weights included)
    from nnjax.train.objective import as_batch, loss_normalizer, make_objective

    model = MLP(3, (5,), 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = S.split_model(model)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    y = jnp.asarray([0, 1, 1, 0, 1, 0]) if loss == "cross_entropy" else jnp.ones((6, 2))
    mask = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    batch = as_batch(x, y, weight=mask * jnp.asarray([1.0, 2.0, 0.5, 1.0, 3.0, 3.0]), mask=mask)
    loss_fn = None
    if loss is None:  # a loss_fn normalizes itself: differentiated as it is

        def loss_fn(m, b):
            return jnp.sum(b.mask * jnp.sum(m(b.x) ** 2, -1)) / 4.0

    step = S.make_train_step(graphdef, loss, optax.sgd(1.0), loss_fn=loss_fn)
    new_params, _, _, logs = step(params, optax.sgd(1.0).init(params), rest, batch)
    objective = make_objective(graphdef, loss, loss_fn=loss_fn)
    (value, _), grads = jax.value_and_grad(objective, has_aux=True)(params, rest, batch)
    expected = jax.tree.map(lambda p, g: p - g, params, grads)
    np.testing.assert_allclose(logs["loss"], value, rtol=1e-6, atol=1e-7)
    for got, want in zip(jax.tree.leaves(new_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert (loss_normalizer(loss) is None) == (loss is None)
    if loss is not None:
        assert float(loss_normalizer(loss)(batch)) == 4.0


@pytest.mark.parametrize(
    "model, match",
    [
        (MLP, "got the class MLP; build one first"),
        (lambda v: v, "got function"),
        ("mlp", "got str 'mlp'"),
    ],
)
def test_a_model_that_is_not_an_nnx_module_is_named(model, match):
    x, y = np.ones((4, 2), np.float32), np.zeros(4, np.int32)
    for call in (
        lambda: T.fit(model, (x, y), loss="cross_entropy", verbose=0),
        lambda: T.evaluate(model, (x, y), loss="cross_entropy"),
        lambda: T.predict(model, x),
    ):
        with pytest.raises(TypeError, match=f"must be a Flax NNX module instance, {match}"):
            call()


def test_a_flax_linen_module_gets_the_bridge_hint():
    import flax.linen

    with pytest.raises(TypeError, match=r"a Flax Linen Dense; wrap it with nnx.bridge.ToNNX"):
        S.split_model(flax.linen.Dense(3))
