"""Regression tests for audited bugs in regularization, per_example, mc_dropout, ensemble and
history (max-norm on attention kernels, integer leaves, prefixes, value checks, pytree
inputs, seeds, bfloat16 and partial appends)."""

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import nn, train
from nnjax.train import ensemble as E
from nnjax.train import freezing as Fz
from nnjax.train import mc_dropout as MC
from nnjax.train import per_example as P
from nnjax.train import regularization as R
from nnjax.train.history import History
from nnjax.train.sweep_result import MemberGroup, SweepResult

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _mlp_state():
    return nnx.state(nn.MLP(3, (4, 4), 1, rngs=nnx.Rngs(0)), nnx.Param)


def _frozen_paths(tx, params):
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    flat = jax.tree_util.tree_flatten_with_path(updates)[0]
    return sorted("/".join(R.path_names(p)) for p, u in flat if not jnp.any(u))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_max_norm_attention_qkv_kernels_norm_per_head_and_dim():
    """F1: q/k/v kernels (in, heads, head_dim) have one unit per (head, dim)."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(6, 2, 3)).astype(np.float32)
    norms = np.linalg.norm(q, axis=0, keepdims=True)
    target = np.where(rng.random((1, 2, 3)) < 0.5, 0.8, 2.5).astype(np.float32)
    q = q / norms * target  # some units at norm 0.8 (kept), some at 2.5 (scaled to 1)
    out = rng.normal(size=(2, 3, 4)).astype(np.float32) * 3  # (H, D, out): as before
    params = {"attention": {n: {"kernel": jnp.asarray(q)} for n in ("query", "key", "value")}}
    params["attention"]["out"] = {"kernel": jnp.asarray(out)}
    got = R.project_max_norm(params, 1.0)["attention"]
    expected = q * np.minimum(1.0, 1.0 / np.linalg.norm(q, axis=0, keepdims=True))
    for name in ("query", "key", "value"):
        np.testing.assert_allclose(got[name]["kernel"], expected, **TOL)
    out_norms = np.linalg.norm(out, axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(got["out"]["kernel"], out / np.maximum(out_norms, 1.0), **TOL)
    # the layer's own parameters, through the transformation
    model = nn.MultiHeadAttention(2, 8, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    tx = R.max_norm(0.5)
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, state), tx.init(state), state)
    kernel = optax.apply_updates(state, updates)["query"]["kernel"][...]
    ref = np.asarray(state["query"]["kernel"][...])
    ref = ref * np.minimum(1.0, 0.5 / np.linalg.norm(ref, axis=0, keepdims=True))
    np.testing.assert_allclose(kernel, ref, **TOL)


def test_add_l1_l2_skips_integer_leaves():
    """F2: integer leaves are not differentiated; they get their updates unchanged."""
    params = {"kernel": jnp.array([[1.0, -2.0]]), "step": jnp.array(3, jnp.int32)}
    for where in (R.is_kernel, None):
        tx = R.add_l1_l2(l1=0.1, l2=0.5, where=where)
        updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
        expected = 0.1 * np.sign([[1.0, -2.0]]) + 2 * 0.5 * np.array([[1.0, -2.0]])
        np.testing.assert_allclose(updates["kernel"], expected, **TOL)
        assert updates["step"].dtype == jnp.int32 and int(updates["step"]) == 0


@pytest.mark.parametrize("prefix", [("layers", "0"), ("layers", 0), "layers/0", ["layers/0"]])
def test_freeze_takes_one_prefix_as_by_prefix_does(prefix):
    """F3: a tuple is one prefix (as for by_prefix), not one prefix per name."""
    assert _frozen_paths(Fz.freeze(optax.sgd(1.0), prefix), _mlp_state()) == [
        "layers/0/bias",
        "layers/0/kernel",
    ]


def test_freeze_list_is_several_prefixes():
    tx = Fz.freeze(optax.sgd(1.0), ["layers/0", ("layers", 2)])
    assert _frozen_paths(tx, _mlp_state()) == [
        "layers/0/bias",
        "layers/0/kernel",
        "layers/2/bias",
        "layers/2/kernel",
    ]


@pytest.mark.parametrize("prefix", ["layer/0", "/layers/0", "layers/0/", ("layers", 9)])
def test_freeze_prefix_matching_nothing_is_an_error(prefix):
    """F4: a typo used to freeze nothing, silently."""
    tx = Fz.freeze(optax.sgd(1.0), prefix)
    with pytest.raises(ValueError, match=r"freeze: prefix .* matches no parameter.*layers/0/"):
        tx.init(_mlp_state())


@pytest.mark.parametrize("prefix", [b"layers", 0, ("layers", 0.5)])
def test_bad_prefix_kinds_are_type_errors(prefix):
    with pytest.raises(TypeError, match="freeze: `frozen`"):
        Fz.freeze(optax.sgd(1.0), prefix)
    with pytest.raises(TypeError, match="by_prefix: `prefixes`"):
        Fz.by_prefix(prefix)


@pytest.mark.parametrize(
    "call",
    [
        lambda v: R.l1_l2_penalty({"kernel": jnp.ones((2, 2))}, l2=v),
        lambda v: R.add_l1_l2(l1=v),
    ],
)
def test_penalty_factors_are_checked(call):
    """F5: factors are finite numbers >= 0."""
    for bad in (-1.0, math.nan, math.inf, np.float32(-0.5)):
        with pytest.raises(ValueError, match=r"`l[12]` must be in \[0, inf\)"):
            call(bad)
    for bad in ("0.1", True):
        with pytest.raises(TypeError, match=r"`l[12]` must be a real number"):
            call(bad)
    call(0.0)
    call(jnp.asarray(0.1))  # JAX arrays pass unchecked


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: R.clip_gradients(optax.sgd(1.0), v), "clip_gradients: `max_norm`"),
        (lambda v: R.max_norm(v), "max_norm: `max_value`"),
        (lambda v: R.project_max_norm({"kernel": jnp.ones((2, 2))}, v), "`max_value`"),
        (lambda v: P.clip_per_example({"w": jnp.ones((1, 2))}, v), "clip_per_example"),
    ],
)
def test_bounds_are_finite_and_positive(make, name):
    for bad in (-1.0, 0.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=name):
            make(bad)
    with pytest.raises(TypeError, match=name):
        make("1")
    make(np.float64(1.0))


def _sequence_data():
    model = nn.SequenceClassifier(2, 4, 3, dropout=0.5, rngs=nnx.Rngs(0))
    xs = np.random.default_rng(0).normal(size=(3, 4, 2)).astype(np.float32)
    return model, xs, np.array([4, 2, 1], np.int32)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_mc_dropout_takes_tuple_inputs_and_numpy_seeds():
    """F6, F7: (xs, lengths) as positional inputs, as predict takes them; np.int64 seeds."""
    model, xs, lengths = _sequence_data()
    samples = MC.mc_dropout_samples(model, (xs, lengths), 3, seed=np.int64(3))
    np.testing.assert_array_equal(samples, MC.mc_dropout_samples(model, (xs, lengths), 3, seed=3))
    mean, _ = MC.mc_dropout_predict(model, {"xs": xs, "lengths": lengths}, 3, seed=3)
    np.testing.assert_allclose(mean, np.asarray(samples).mean(axis=0), **TOL)
    with pytest.raises(TypeError, match="n_samples"):
        MC.mc_dropout_predict(model, (xs, lengths), True)


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_per_example_grads_take_tuple_inputs():
    """F6: every example's gradient equals the gradient on that example alone."""
    model, xs, lengths = _sequence_data()
    y = np.array([0, 2, 1], np.int32)
    got = P.per_example_grads(model, "cross_entropy", (xs, lengths), y)
    view = nnx.view(model, raise_if_not_found=False, deterministic=True)  # inference mode
    graphdef, params, rest = nnx.split(view, nnx.Param, ...)

    def loss(p, b):
        logits = nnx.merge(graphdef, p, rest)(xs[b : b + 1], lengths[b : b + 1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[b : b + 1]).mean()

    for b in range(3):
        ref = jax.grad(loss)(params, b)
        jax.tree.map(lambda g, r, b=b: np.testing.assert_allclose(g[b], r, **TOL), got, ref)
    with pytest.raises(ValueError, match="leading batch axis"):
        P.per_example_grads(model, "cross_entropy", (xs, lengths[:2]), y)


def test_per_example_grads_rejects_apply_fn_with_a_model():
    """F10: apply_fn was silently ignored for a model."""
    model = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    x, y = np.ones((2, 3), np.float32), np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="per_example_grads: `apply_fn` is only for"):
        P.per_example_grads(model, "mse", x, y, apply_fn=lambda p, x: x)


def _sweep_result(model, members):
    gd, p0, r0 = nnx.split(model, nnx.Param, ...)
    p1 = jax.tree.map(lambda a: a * 2, p0)
    stack = lambda *trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
    group = MemberGroup(gd, stack(p0, p1), stack(r0, r0), (), np.array(members), {})
    return SweepResult([group], np.array([0, 1]), {}, {"loss": np.zeros((2, 1))}), p0, p1


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_ensemble_takes_tuple_inputs_and_reorders_one_unsorted_group():
    """F6 and the one-group member order: members [1, 0] come back as member 0, 1."""
    model, xs, lengths = _sequence_data()
    result, p0, p1 = _sweep_result(model, [1, 0])
    gd, _, rest = nnx.split(model, nnx.Param, ...)
    outs = [np.asarray(train.predict(nnx.merge(gd, p, rest), (xs, lengths))) for p in (p1, p0)]
    got = E.member_predictions(result, (xs, lengths))
    np.testing.assert_allclose(got, np.stack(outs), **TOL)
    mean = E.ensemble_predict(result, {"xs": xs, "lengths": lengths})
    np.testing.assert_allclose(mean, np.mean(outs, axis=0), **TOL)


def test_history_amend_keeps_bfloat16_scalars():
    """F8: bfloat16 (dtype kind 'V') was dropped."""
    h = History()
    h.append(0, {"loss": 1.0})
    h.amend(0, {"bf16": jnp.asarray(0.25, jnp.bfloat16), "np": np.array(0.5, ml_dtypes.bfloat16)})
    assert h.history == {"loss": [1.0], "bf16": [0.25], "np": [0.5]}


def test_history_failed_append_changes_nothing():
    """F9: a bad value used to leave lists of different lengths."""
    h = History()
    h.append(0, {"loss": 1.0, "acc": 0.5})
    with pytest.raises(TypeError, match=r"History.append: logs\['acc'\].*'n/a'"):
        h.append(1, {"loss": 0.9, "acc": "n/a", "new": 1.0})
    assert h.epoch == [0] and h.history == {"loss": [1.0], "acc": [0.5]}


def test_member_predictions_reorder_one_unsorted_group_of_arrays():
    model = nn.MLP(2, (3,), 1, rngs=nnx.Rngs(0))
    result, p0, p1 = _sweep_result(model, [1, 0])
    x = np.ones((2, 2), np.float32)
    gd, _, rest = nnx.split(model, nnx.Param, ...)
    ref = [np.asarray(nnx.merge(gd, p, rest)(x)) for p in (p1, p0)]
    np.testing.assert_allclose(E.member_predictions(result, x), np.stack(ref), **TOL)
