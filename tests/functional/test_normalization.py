"""Tests for nnjax.functional batch_norm and layer_norm: PyTorch reference, stats, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._torch_ref import (
    assert_close,
    nchw_to_nhwc,
    nhwc_to_nchw,
    rand,
    to_numpy,
    to_torch,
    torch,
    value_and_vjp,
)
from ._transforms import assert_transforms

EPS = 1e-3
SHAPES = [(8, 3), (4, 3, 2, 3)]  # (B, F) and NHWC (B, H, W, F)


def _bn_inputs(shape, seed=0):
    features = shape[-1]
    x = 2.0 + 3.0 * rand(shape, seed)  # offset and spread: normalisation must matter
    params = {"scale": rand((features,), seed + 1), "bias": rand((features,), seed + 2)}
    stats = {"mean": rand((features,), seed + 3), "var": 1.0 + rand((features,), seed + 4) ** 2}
    return params, stats, x


def _channels_first(x):
    return nhwc_to_nchw(x) if x.ndim == 4 else x


def _channels_last(x):
    return nchw_to_nhwc(x) if x.ndim == 4 else x


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_matches_torch_outputs_and_grads(shape, training):
    params, stats, x = _bn_inputs(shape)
    momentum = 0.9  # ours; PyTorch's momentum is 1 - ours
    tx = to_torch(_channels_first(x), requires_grad=True)
    tw = to_torch(params["scale"], requires_grad=True)
    tb = to_torch(params["bias"], requires_grad=True)
    t_mean, t_var = to_torch(stats["mean"]), to_torch(stats["var"])
    ty = torch.nn.functional.batch_norm(
        tx, t_mean, t_var, tw, tb, training=training, momentum=1 - momentum, eps=EPS
    )
    cot = rand(shape, 9)
    (ty * to_torch(_channels_first(cot))).sum().backward()

    def bn(params, x):
        return F.batch_norm(params, stats, x, training=training, momentum=momentum, epsilon=EPS)

    with jax.enable_x64(True):
        (y, new_stats), (g_params, g_x) = value_and_vjp(
            bn, params, x, cotangent=(cot, jax.tree.map(np.zeros_like, stats))
        )

    assert_close(y, _channels_last(to_numpy(ty)))
    assert_close(g_x, _channels_last(to_numpy(tx.grad)))
    assert_close(g_params["scale"], tw.grad)
    assert_close(g_params["bias"], tb.grad)

    assert_close(new_stats["mean"], t_mean)  # torch updated its running stats in place
    if not training:
        assert_close(new_stats["var"], t_var)
        return
    # PyTorch stores the unbiased batch variance; ours is biased (Keras/Flax): undo n/(n-1).
    n = x.size // shape[-1]
    torch_batch_var = (to_numpy(t_var) - momentum * stats["var"]) / (1 - momentum)
    expected = momentum * stats["var"] + (1 - momentum) * torch_batch_var * (n - 1) / n
    assert_close(new_stats["var"], expected)
    axes = tuple(range(x.ndim - 1))
    assert_close(new_stats["var"], momentum * stats["var"] + (1 - momentum) * x.var(axis=axes))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_layer_norm_matches_torch_outputs_and_grads(shape):
    x = 1.0 + 2.0 * rand(shape, 1)
    params = {"scale": rand((5,), 2), "bias": rand((5,), 3)}
    cot = rand(shape, 4)
    tx = to_torch(x, requires_grad=True)
    tw = to_torch(params["scale"], requires_grad=True)
    tb = to_torch(params["bias"], requires_grad=True)
    ty = torch.nn.functional.layer_norm(tx, (5,), tw, tb, eps=EPS)
    (ty * to_torch(cot)).sum().backward()

    ln = lambda params, x: F.layer_norm(params, x, epsilon=EPS)
    with jax.enable_x64(True):
        y, (g_params, g_x) = value_and_vjp(ln, params, x, cotangent=cot)

    assert_close(y, ty)
    assert_close(g_x, tx.grad)
    assert_close(g_params["scale"], tw.grad)
    assert_close(g_params["bias"], tb.grad)


def test_init_values(key):
    params, stats = F.batch_norm_init(key, 3, dtype=jnp.bfloat16)
    np.testing.assert_array_equal(params["scale"], np.ones(3))
    np.testing.assert_array_equal(params["bias"], np.zeros(3))
    np.testing.assert_array_equal(stats["mean"], np.zeros(3))
    np.testing.assert_array_equal(stats["var"], np.ones(3))
    assert params["scale"].dtype == stats["var"].dtype == jnp.bfloat16
    assert jax.tree.map(jnp.shape, F.layer_norm_init(key, 4)) == {"scale": (4,), "bias": (4,)}


def test_large_offset_keeps_variance_accurate_in_float32():
    """Two-pass variance: E[x^2] - E[x]^2 would lose every digit at this offset."""
    x = (1e4 + rand((64, 2), 0)).astype(np.float32)
    params, stats = F.batch_norm_init(jax.random.key(0), 2)
    _, new = F.batch_norm(params, stats, x, training=True, momentum=0.0)
    np.testing.assert_allclose(new["var"], x.astype(np.float64).var(axis=0), rtol=1e-3, atol=1e-6)


def test_sync_batch_norm_over_vmapped_axis_equals_full_batch():
    params, stats, x = _bn_inputs((8, 3))
    x = x.astype(np.float32)
    full, full_stats = F.batch_norm(params, stats, x, training=True)
    shards = x.reshape(2, 4, 3)
    bn = lambda x: F.batch_norm(params, stats, x, training=True, axis_name="batch")
    y, new_stats = jax.vmap(bn, axis_name="batch")(shards)
    np.testing.assert_allclose(y.reshape(8, 3), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_stats["var"][0], full_stats["var"], rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_check_grads(training):
    params, stats, x = _bn_inputs((3, 2, 2, 2))
    bn = lambda params, x: F.batch_norm(params, stats, x, training=training, epsilon=EPS)[0]
    with jax.enable_x64(True):
        check_grads(jax.jit(bn), (params, x), order=2, modes=("fwd", "rev"))


@pytest.mark.slow
def test_layer_norm_check_grads():
    x = rand((3, 4), 0)
    params = {"scale": rand((4,), 1), "bias": rand((4,), 2)}
    with jax.enable_x64(True):
        check_grads(jax.jit(F.layer_norm), (params, x), order=2, modes=("fwd", "rev"))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_jit_vmap_grad_float32_bfloat16(training):
    params, stats, x = _bn_inputs((4, 2, 2, 3))
    bn = lambda p, s, x: F.batch_norm(p, s, x, training=training)
    assert_transforms(bn, params, stats, x)


def test_layer_norm_jit_vmap_grad_float32_bfloat16():
    x = rand((2, 3, 4), 0)
    params = {"scale": rand((4,), 1), "bias": rand((4,), 2)}
    assert_transforms(F.layer_norm, params, x)


def test_bfloat16_input_matches_float32_closely():
    x = (5.0 + rand((4, 16), 0)).astype(jnp.bfloat16)
    params = F.layer_norm_init(jax.random.key(0), 16)
    y16 = F.layer_norm(params, x)
    y32 = F.layer_norm(params, jnp.asarray(x, jnp.float32))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=3e-2)


def test_batch_norm_bad_shapes_name_op_argument_and_shapes(key):
    params, stats = F.batch_norm_init(key, 3)
    with pytest.raises(
        AssertionError,
        match=r"batch_norm: argument `x` has shape \(2, 4\), expected \(\.\.\., 3\)",
    ):
        F.batch_norm(params, stats, jnp.ones((2, 4)), training=True)
    with pytest.raises(
        AssertionError,
        match=r"batch_norm: argument `stats\['mean'\]` has shape \(4,\), expected \(3,\)",
    ):
        F.batch_norm(params, F.batch_norm_init(key, 4)[1], jnp.ones((2, 3)), training=True)
    with pytest.raises(
        AssertionError, match=r"batch_norm: argument `x` has shape \(3,\) \(rank 1\)"
    ):
        F.batch_norm(params, stats, jnp.ones(3), training=False)
    bad = {**params, "scale": jnp.ones(2)}
    with pytest.raises(AssertionError, match=r"batch_norm: argument `params\['scale'\]`"):
        jax.jit(lambda x: F.batch_norm(bad, stats, x, training=True))(jnp.ones((2, 3)))


def test_layer_norm_bad_shapes(key):
    params = F.layer_norm_init(key, 3)
    with pytest.raises(
        AssertionError,
        match=r"layer_norm: argument `x` has shape \(2, 4\), expected \(\.\.\., 3\)",
    ):
        F.layer_norm(params, jnp.ones((2, 4)))
    with pytest.raises(
        AssertionError,
        match=r"layer_norm: argument `params\['scale'\]` has shape \(2,\), expected \(3,\)",
    ):  # the bias and x agree: the scale is the odd one out
        F.layer_norm({**params, "scale": jnp.ones(2)}, jnp.ones((2, 3)))
    with pytest.raises(AssertionError, match=r"layer_norm: argument `x` has shape \(\) \(rank 0\)"):
        F.layer_norm(params, jnp.ones(()))


def test_integer_input_raises_type_error(key):
    params, stats = F.batch_norm_init(key, 3)
    with pytest.raises(TypeError, match="batch_norm: argument `x` has dtype int32"):
        F.batch_norm(params, stats, jnp.ones((2, 3), jnp.int32), training=True)
    with pytest.raises(TypeError, match="layer_norm: argument `x` has dtype int32"):
        F.layer_norm(params, jnp.ones((2, 3), jnp.int32))


@pytest.mark.parametrize(
    ("momentum", "epsilon", "match"),
    [
        (1.5, 1e-5, r"batch_norm: `momentum` must be in \[0, 1\], got 1.5"),
        (-0.1, 1e-5, r"batch_norm: `momentum` must be in \[0, 1\], got -0.1"),
        (0.9, -1.0, r"batch_norm: `epsilon` must be > 0, got -1.0"),
        (0.9, 0.0, r"batch_norm: `epsilon` must be > 0, got 0.0"),
        (np.float32(2.0), 1e-5, r"batch_norm: `momentum` must be in \[0, 1\]"),
    ],
)
def test_batch_norm_checks_concrete_momentum_and_epsilon(key, momentum, epsilon, match):
    params, stats = F.batch_norm_init(key, 3)
    with pytest.raises(ValueError, match=match):
        F.batch_norm(params, stats, jnp.ones((4, 3)), training=True, momentum=momentum,
                     epsilon=epsilon)  # fmt: skip


@pytest.mark.parametrize("training", ["False", 0, None])
def test_batch_norm_training_must_be_a_python_bool(key, training):
    params, stats = F.batch_norm_init(key, 3)
    with pytest.raises(
        TypeError, match=rf"batch_norm: `training` must be a Python bool.*{training!r}"
    ):
        F.batch_norm(params, stats, jnp.ones((4, 3)), training=training)


def test_batch_norm_traced_training_says_to_mark_it_static(key):
    params, stats = F.batch_norm_init(key, 3)
    with pytest.raises(TypeError, match=r"`training`.*traced.*static_argnames='training'"):
        jax.jit(F.batch_norm)(params, stats, jnp.ones((4, 3)), training=True)


def test_checked_batch_norm_and_layer_norm_still_run_under_jit(key):
    params, stats = F.batch_norm_init(key, 3)
    x = jax.random.normal(key, (4, 3))
    fn = jax.jit(F.batch_norm, static_argnames="training")
    # momentum and epsilon traced: not checked, still used
    y, new = fn(params, stats, x, training=True, momentum=jnp.float32(0.5), epsilon=1e-3)
    y0, new0 = F.batch_norm(params, stats, x, training=True, momentum=0.5, epsilon=1e-3)
    np.testing.assert_allclose(y, y0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new["var"], new0["var"], rtol=1e-6, atol=1e-6)
    ln = F.layer_norm_init(key, 3)
    np.testing.assert_allclose(jax.jit(F.layer_norm)(ln, x, epsilon=1e-3),
                               F.layer_norm(ln, x, epsilon=1e-3), rtol=1e-6)  # fmt: skip
    with pytest.raises(AssertionError, match=r"layer_norm: argument `x` has shape \(4, 5\)"):
        jax.jit(F.layer_norm)(ln, jnp.ones((4, 5)))


@pytest.mark.parametrize("epsilon", [0.0, -1e-5, float("nan")])
def test_layer_norm_epsilon_must_be_positive(key, epsilon):
    with pytest.raises(ValueError, match=r"layer_norm: `epsilon` must be > 0"):
        F.layer_norm(F.layer_norm_init(key, 3), jnp.ones((2, 3)), epsilon=epsilon)


@pytest.mark.parametrize("init", [F.layer_norm_init, F.batch_norm_init])
@pytest.mark.parametrize("bad", [0, -3, 4.0, True, "4", None])
def test_norm_inits_check_num_features(key, init, bad):
    with pytest.raises(
        ValueError, match=rf"{init.__name__}: `num_features` must be a positive int, got"
    ):
        init(key, bad)


def test_norm_inits_accept_numpy_ints_and_any_key():
    params = F.layer_norm_init(None, np.int64(3))  # the key is unused
    assert params["scale"].shape == (3,)
    assert F.batch_norm_init(None, np.int32(2))[1]["var"].shape == (2,)


# ------------------------------------------------ running statistics that are no arrays
def _bn_with(mean, *, training, var=None):
    params, stats = F.batch_norm_init(None, 2)
    stats = {"mean": mean, "var": stats["var"] if var is None else var}
    x = jnp.array([[1.0, 2.0], [3.0, 5.0]])
    return F.batch_norm(params, stats, x, training=training)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    ("mean", "error", "message"),
    [
        (np.zeros(2, object), TypeError,
         r"a NumPy array of dtype object \(convert it, e\.g\. stats\['mean'\]\.astype"),
        (np.array(["0", "0"]), TypeError, "a NumPy array of strings, dtype <U1"),
        ("0 0", TypeError, "the str '0 0'"),
        ([[0.0], [0.0, 1.0]], ValueError, r"a ragged list .* pad them"),
    ],
    ids=["object", "strings", "str", "ragged"],
)  # fmt: skip
def test_batch_norm_statistics_that_hold_no_numbers_are_named(training, mean, error, message):
    # each was JAX's or NumPy's own error ("Error interpreting argument to stage", ...)
    match = rf"^batch_norm: `stats\['mean'\]` must be a numeric array, got {message}"
    with pytest.raises(error, match=match):
        _bn_with(mean, training=training)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_statistics_may_be_lists_and_torch_tensors(training):
    want_y, want_stats = _bn_with(np.zeros(2, np.float32), training=training)
    torch = pytest.importorskip("torch")
    # a list was mapped item by item ("has shape (2,), expected (2,)"); a tensor that
    # requires grad was refused by numpy()
    for mean in ([0.0, 0.0], (0.0, 0.0), torch.zeros(2, requires_grad=True)):
        y, new = _bn_with(mean, training=training)
        np.testing.assert_array_equal(y, want_y)
        for name in ("mean", "var"):
            assert new[name].dtype == want_stats[name].dtype
            np.testing.assert_array_equal(new[name], want_stats[name])
    y, new = _bn_with(torch.zeros(2, dtype=torch.bfloat16), training=training)
    assert new["mean"].dtype == jnp.bfloat16  # the structure and dtypes of stats
    np.testing.assert_array_equal(y, want_y)


def test_batch_norm_integer_statistics_are_refused_in_training_only():
    # the update was rounded back to integers: the running mean never moved from 0
    with pytest.raises(TypeError, match=r"^batch_norm: argument `stats\['var'\]` has dtype int"):
        _bn_with(np.zeros(2, np.float32), var=np.ones(2, np.int32), training=True)
    with pytest.raises(TypeError, match=r"^batch_norm: argument `stats\['mean'\]` has dtype int"):
        _bn_with([0, 0], training=True)
    y, new = _bn_with(np.zeros(2, np.int32), training=False)  # inference reads them as before
    want, _ = _bn_with(np.zeros(2, np.float32), training=False)
    np.testing.assert_array_equal(y, want)
    assert new["mean"].dtype == jnp.int32


def test_batch_norm_statistics_none_is_named():
    with pytest.raises(TypeError, match=r"^batch_norm: `stats\['mean'\]` must be an array, got N"):
        _bn_with(None, training=False)  # was a ShapeError about shape ()
