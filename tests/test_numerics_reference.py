"""The numerical modules against independent references (scikit-learn, PyTorch, the
initializers' formulas), edge cases included: streamed metrics over uneven batches,
integer/one-hot/boolean labels, extreme logits, gradients at kinks, fans of kernels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics as skm

from nnjax import activations, initializers, losses, metrics
from nnjax.errors import ShapeError

torch = pytest.importorskip("torch")

# Edge grids against scikit-learn and PyTorch: the slow group (``pytest -m slow``, which CI
# runs). The default run keeps these functions' own tests (test_losses.py,
# test_metrics.py, test_activations.py) and stays under 10 minutes.
pytestmark = pytest.mark.slow

TF = torch.nn.functional

rng = np.random.default_rng(35)


@pytest.fixture(autouse=True)
def _fresh_rng():
    """Each test draws from a fresh ``rng``: its values do not depend on the test order."""
    global rng
    rng = np.random.default_rng(35)


# ---------------------------------------------------------------- metrics vs sklearn


def _streamed(spec, pred, y, sizes, width=8):
    """The metric over batches of the given sizes, each padded to ``width`` rows."""
    m = metrics.resolve(spec)
    stats, start = [], 0
    for size in sizes:
        p, t = pred[start : start + size], y[start : start + size]
        start += size
        pad = width - size
        mask = np.r_[np.ones(size), np.zeros(pad)].astype(np.float32)
        p, t = (
            np.concatenate([p, np.repeat(p[:1], pad, 0)]),
            np.concatenate([t, t[:1].repeat(pad, 0)]),
        )
        stats.append(jax.device_get(jax.jit(m.stats)(p, t, mask)))
    assert start == len(y)
    return m.result(metrics.accumulate(m, stats))


SIZES = [1, 7, 8, 3, 8, 8, 8, 8, 6]  # 57 rows, uneven
N, C = sum(SIZES), 6
MULTI = rng.normal(size=(N, C)).astype(np.float32)
MULTI[:, 5] -= 10.0  # class 5 is never predicted
MULTI_Y = rng.integers(0, 4, size=N)  # classes 4 and 5 never occur
SCORES = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}


@pytest.mark.parametrize("one_hot", [False, True], ids=["ids", "one-hot"])
@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("kind", sorted(SCORES))
def test_multiclass_scores_over_uneven_batches_equal_sklearn(kind, average, one_hot):
    y = np.eye(C, dtype=np.float32)[MULTI_Y] if one_hot else MULTI_Y
    ours = _streamed(f"{kind}_{average}", MULTI, y, SIZES)
    ref = SCORES[kind](MULTI_Y, MULTI.argmax(1), average=average, zero_division=0)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("truth", ["all-one", "all-zero", "mixed"])
@pytest.mark.parametrize("kind", sorted(SCORES))
def test_binary_scores_with_one_class_equal_sklearn(kind, truth):
    z = rng.normal(size=(20, 1)).astype(np.float32)
    y = {"all-one": np.ones(20, int), "all-zero": np.zeros(20, int)}.get(
        truth, (z[:, 0] > 0.4).astype(int)
    )
    pred = (z[:, 0] > 0).astype(int)
    for average in ("binary", "macro", "micro"):
        ours = _streamed(f"{kind}_{average}", z, y, [8, 8, 4])
        ref = SCORES[kind](y, pred, average=average, zero_division=0)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, err_msg=average)
    np.testing.assert_allclose(_streamed("accuracy", z, y, [8, 8, 4]), skm.accuracy_score(y, pred))


@pytest.mark.parametrize("name", ["precision_binary", "recall_binary", "f1_binary"])
def test_binary_average_refuses_more_than_two_classes(name):
    """It used to report class 1's score of a six-class model (scikit-learn raises)."""
    pattern = rf"{name}: average='binary' .*shape \(8, 6\) have 6 classes"
    with pytest.raises(ValueError, match=pattern):
        _streamed(name, MULTI, MULTI_Y, SIZES)


def test_auc_with_one_hot_two_class_labels_equals_sklearn():
    """Same-shaped (B, 2) logits and one-hot labels were flattened into one AUC."""
    z = rng.normal(size=(30, 2)).astype(np.float32)
    y = rng.integers(0, 2, 30)
    ref = skm.roc_auc_score(y, jax.nn.softmax(z)[:, 1])
    np.testing.assert_allclose(
        _streamed("auc", z, np.eye(2)[y], [8, 8, 8, 6]), ref, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(_streamed("auc", z, y, [8, 8, 8, 6]), ref, rtol=1e-12, atol=1e-12)


def test_auc_refuses_one_hot_labels_of_more_classes():
    with pytest.raises(ShapeError, match=r"auc: .*predictions \(8, 6\) and labels \(8, 6\)"):
        _streamed("auc", MULTI, np.eye(C)[MULTI_Y], SIZES)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_accepts_one_hot_labels(k):
    """One-hot labels were refused as 'integer labels of shape (8, 6)'."""
    ours = _streamed(metrics.top_k_accuracy(k), MULTI, np.eye(C)[MULTI_Y], SIZES)
    ref = skm.top_k_accuracy_score(MULTI_Y, MULTI, k=k, labels=range(C))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_top_k_breaks_ties_as_sklearn(k):
    """Quantised logits (bfloat16 models, all-zero starts) tie often: jax.lax.top_k's
    lower-index-first gave 0.5 where scikit-learn gives 0.25 (all-zero logits, k=2)."""
    z = np.round(rng.normal(size=(N, 5))).astype(np.float32)
    z[:4] = 0.0
    y = rng.integers(0, 5, N)
    ours = _streamed(metrics.top_k_accuracy(k), z, y, SIZES)
    np.testing.assert_allclose(ours, skm.top_k_accuracy_score(y, z, k=k, labels=range(5)))


def test_top_k_counts_a_nan_logit_as_the_highest():
    m = metrics.top_k_accuracy(1)
    z = jnp.array([[np.nan, 0.0, 1.0], [0.0, np.nan, 1.0], [2.0, 1.0, 0.0]])
    stats = m.stats(z, jnp.array([0, 2, 0]), jnp.ones(3))
    assert float(stats["correct"]) == 1.0  # only the finite row; a NaN is never a hit


def test_sequence_metrics_equal_sklearn_on_the_flattened_steps():
    z = rng.normal(size=(10, 3, 4)).astype(np.float32)
    y = rng.integers(0, 4, (10, 3))
    flat_y, flat_z = y.ravel(), z.reshape(-1, 4)
    expected = {
        "accuracy": skm.accuracy_score(flat_y, flat_z.argmax(1)),
        "f1_macro": skm.f1_score(flat_y, flat_z.argmax(1), average="macro"),
        "top_2_accuracy": skm.top_k_accuracy_score(flat_y, flat_z, k=2),
    }
    for name, ref in expected.items():
        spec = metrics.top_k_accuracy(2) if name == "top_2_accuracy" else name
        np.testing.assert_allclose(
            _streamed(spec, z, y, [8, 2]), ref, rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_accuracy_counts_over_many_batches_stay_exact():
    """Float32 counts per batch, float64 totals: 100 000 rows in 100 batches."""
    z = rng.normal(size=(100_000, 3)).astype(np.float32)
    y = rng.integers(0, 3, 100_000)
    m = metrics.resolve("accuracy")
    step = jax.jit(m.stats)
    stats = [
        jax.device_get(step(z[i : i + 1000], y[i : i + 1000], np.ones(1000, np.float32)))
        for i in range(0, 100_000, 1000)
    ]
    assert m.result(metrics.accumulate(m, stats)) == skm.accuracy_score(y, z.argmax(1))


# ---------------------------------------------------------------- losses vs PyTorch


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("form", ["ids", "one-hot", "soft", "sequence"])
def test_cross_entropy_values_and_gradients_match_torch(form, smoothing, reduction):
    shape = (4, 3, 5) if form == "sequence" else (6, 5)
    z = rng.normal(size=shape) * 3
    ids = rng.integers(0, 5, size=shape[:-1])
    y = {"one-hot": np.eye(5)[ids], "soft": rng.dirichlet(np.ones(5), size=shape[:-1])}.get(
        form, ids
    )

    def ours(z):
        return losses.cross_entropy(
            z, jnp.asarray(y), label_smoothing=smoothing, reduction=reduction
        )

    with jax.enable_x64(True):
        value, pullback = jax.vjp(ours, jnp.asarray(z))
        cot = np.ones(np.shape(value))
        (grad,) = pullback(jnp.asarray(cot))
    tz = _t(z, grad=True)
    # torch takes the class axis second
    move = (lambda a: a.permute(0, 2, 1)) if form == "sequence" else (lambda a: a)
    ty = _t(y) if form in ("ids", "sequence") else move(_t(y))
    ref = TF.cross_entropy(move(tz), ty, label_smoothing=smoothing, reduction=reduction)
    (ref * _t(cot)).sum().backward()
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_cross_entropy_accepts_integer_and_boolean_one_hot_labels(dtype):
    """They were refused as 'integer class indices ... no class axis'; accuracy took them."""
    local = np.random.default_rng(3)  # not the module's: values independent of test order
    z = jnp.asarray(local.normal(size=(6, 4)), jnp.float32)
    ids = jnp.asarray(local.integers(0, 4, 6))
    one_hot = jax.nn.one_hot(ids, 4, dtype=dtype)
    expected = losses.cross_entropy(z, ids, label_smoothing=0.1)
    np.testing.assert_allclose(
        losses.cross_entropy(z, one_hot, label_smoothing=0.1), expected, rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(  # jit and eager may differ in the last bit
        jax.jit(losses.cross_entropy)(z, one_hot),
        losses.cross_entropy(z, ids),
        rtol=1e-6,
        atol=1e-7,
    )
    with pytest.raises(ValueError, match=r"cross_entropy: `labels` row 0 sums to 2, not 1"):
        losses.cross_entropy(z[:1], jnp.array([[1, 1, 0, 0]], dtype))


def test_cross_entropy_with_soft_labels_keeps_the_dtype_of_logits():
    z = jnp.asarray(rng.normal(size=(6, 4)), jnp.bfloat16)
    one_hot = jax.nn.one_hot(jnp.arange(6) % 4, 4)  # float32
    assert losses.cross_entropy(z, one_hot).dtype == jnp.bfloat16
    assert losses.cross_entropy(z, jnp.arange(6) % 4).dtype == jnp.bfloat16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_at_extreme_logits_matches_torch(dtype):
    z = np.array([100.0, -100.0, 100.0, -100.0, 0.0, 30.0, -30.0], dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.25, 0.75], dtype)
    with jax.enable_x64(True):
        value, grad = jax.value_and_grad(
            lambda z: losses.binary_cross_entropy(z, jnp.asarray(y), reduction="sum")
        )(jnp.asarray(z))
    tz = _t(z, grad=True)
    ref = TF.binary_cross_entropy_with_logits(tz, _t(y), reduction="sum")
    ref.backward()
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (losses.mse, TF.mse_loss),
        (losses.mae, TF.l1_loss),
        (
            lambda p, t, **kw: losses.huber(p, t, delta=0.5, **kw),
            lambda p, t, **kw: TF.huber_loss(p, t, delta=0.5, **kw),
        ),
    ],
    ids=["mse", "mae", "huber"],
)
def test_regression_gradients_match_torch_at_zero_error_and_at_delta(ours, ref):
    """The MAE's gradient at a zero error was 1 (jnp.abs); PyTorch's is sign(0) = 0."""
    p = np.array([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 3.0])
    t = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0])
    with jax.enable_x64(True):
        value, grad = jax.value_and_grad(lambda p: ours(p, jnp.asarray(t)))(jnp.asarray(p))
    tp = _t(p, grad=True)
    r = ref(tp, _t(t))
    r.backward()
    np.testing.assert_allclose(value, r.item(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_take_integer_targets(name):
    """mse and huber raised optax's TypeError on integer arrays; mae summed in int32."""
    fn = losses.get(name)
    p, t = np.array([1, 2, 5]), np.array([1, 4, 0])
    expected = fn(p.astype(np.float32), t.astype(np.float32), reduction="none")
    for reduction in ("none", "sum"):
        got = fn(jnp.asarray(p), jnp.asarray(t), reduction=reduction)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, expected if reduction == "none" else expected.sum())
    mixed = fn(jnp.asarray(p, jnp.float32), jnp.asarray(t), reduction="none")
    np.testing.assert_allclose(mixed, expected)


# ---------------------------------------------------------------- activations vs torch

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": TF.relu,
    "elu": TF.elu,
    "swish": TF.silu,
    "softplus": TF.softplus,
    "mish": TF.mish,
    "selu": TF.selu,
    "celu": TF.celu,
    "log_sigmoid": TF.logsigmoid,
    "gelu": lambda t: TF.gelu(t, approximate="tanh"),
    "hard_tanh": TF.hardtanh,
    "hard_sigmoid": TF.hardsigmoid,
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_at_zero_and_extremes_match_torch(name):
    """Values and gradients in float32 at 0, around 0 and at |x| up to 1e4: finite."""
    x = np.array([-1e4, -100.0, -30.0, -1e-30, 0.0, 1e-30, 30.0, 100.0, 1e4], np.float32)
    fn = activations.get(name)
    y = fn(jnp.asarray(x))
    grad = jax.vmap(jax.grad(fn))(jnp.asarray(x))
    tx = _t(x, grad=True)
    ty = ACTIVATIONS[name](tx)
    ty.sum().backward()
    assert np.isfinite(y).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- initializers


VARIANCE = {
    "glorot_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "glorot_normal": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "xavier_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_uniform": lambda fan_in, fan_out: 2.0 / fan_in,
    "he_normal": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun_uniform": lambda fan_in, fan_out: 1.0 / fan_in,
    "lecun_normal": lambda fan_in, fan_out: 1.0 / fan_in,
}


@pytest.mark.parametrize("shape", [(5, 16, 48), (3, 3, 32, 64), (2, 2, 2, 16, 24)])
@pytest.mark.parametrize("name", sorted(VARIANCE))
def test_conv_kernel_variance_uses_the_receptive_field(name, shape):
    field = int(np.prod(shape[:-2]))
    variance = VARIANCE[name](field * shape[-2], field * shape[-1])
    w = np.asarray(initializers.init_param(name, jax.random.key(7), shape, jnp.float32))
    # ~25k-98k samples: the sample variance is within a few percent
    np.testing.assert_allclose(w.var(), variance, rtol=0.05, atol=1e-3)
    assert abs(w.mean()) < 0.05 * np.sqrt(variance)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * variance)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, "float32"])
@pytest.mark.parametrize("name", initializers.names())
def test_init_param_honours_the_dtype(name, dtype):
    w = initializers.init_param(name, jax.random.key(0), (4, 3, 8), dtype)
    assert w.dtype == jnp.dtype(dtype) and w.shape == (4, 3, 8)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_init_param_refuses_a_non_floating_dtype(dtype):
    """An integer kernel used to come back as the draws rounded: mostly zeros."""
    pattern = rf"init_param: `dtype` is {jnp.dtype(dtype)}; .*'he_normal' need a floating"
    with pytest.raises(TypeError, match=pattern):
        initializers.init_param("he_normal", jax.random.key(0), (3, 3), dtype)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("he_normal", (5,)),
        ("glorot_uniform", (0, 5)),
        ("he_normal", (3, 3, 0, 8)),
        ("orthogonal", (4,)),
    ],
)
def test_init_param_names_the_initializer_and_shape_it_cannot_draw(name, shape):
    """JAX's own message named neither (a ZeroDivisionError for a zero fan)."""
    pattern = rf"init_param: initializer '{name}' cannot draw an array of shape {shape}"
    with pytest.raises(ShapeError, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        initializers.init_param(name, jax.random.key(0), shape, jnp.float32)


@pytest.mark.parametrize("name", ["normal", "uniform", "truncated_normal", "orthogonal", "zeros"])
def test_init_param_draws_empty_arrays_for_initializers_without_a_fan(name):
    """Only the variance-scaling names divide by a fan; these were refused a zero axis."""
    drawn = initializers.init_param(name, jax.random.key(0), (0, 5), jnp.bfloat16)
    assert drawn.shape == (0, 5) and drawn.dtype == jnp.bfloat16
