"""Keras 3's losses in nnjax.losses: values against Keras (and PyTorch), reductions,
gradients, jit, bfloat16, errors, the registry, and training through ``fit`` by name."""

import doctest
import importlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads

from nnjax import losses, metrics, nn, train
from nnjax.errors import ShapeError

# Edge grids against Keras: the slow group (``pytest -m slow``, which CI
# runs). The default run keeps these functions' own tests (test_losses.py,
# test_metrics.py, test_activations.py) and stays under 10 minutes.
pytestmark = pytest.mark.slow

NAMES = [
    "kl_divergence",
    "poisson",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
]
ROW_LOSSES = {"kl_divergence", "categorical_hinge", "cosine_similarity"}  # reduce the last axis


def _case(name: str, seed: int = 0, shape=(6, 4)) -> tuple[np.ndarray, np.ndarray]:
    """Valid ``(predictions, targets)`` for the loss, float64, away from kinks."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape)
    if name == "kl_divergence":
        return np.asarray(jax.nn.softmax(p, -1)), np.asarray(jax.nn.softmax(rng.normal(size=shape)))
    if name == "poisson":
        return np.abs(p) + 0.1, rng.poisson(2.0, size=shape).astype(np.float64)
    if name in ("hinge", "squared_hinge"):
        t = rng.choice([-1.0, 1.0], size=shape)
        offset = rng.uniform(0.2, 0.8, size=shape) * rng.choice([-1, 1], size=shape)
        return t * (1 + offset), t  # margins 1 - p * t = -offset, never 0
    if name == "categorical_hinge":
        t = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        return p + 0.5 * t, t
    return p, rng.normal(size=shape)


@pytest.fixture(scope="module")
def keras_losses():
    os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras is in the `dev` extra
    return pytest.importorskip("keras.losses")


def _keras(keras_losses, name, p, t):
    """Keras's per-row values ``(B,)`` (it takes targets first)."""
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(getattr(keras_losses, name)(t, p), np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_matches_keras(keras_losses, name):
    p, t = (a.astype(np.float32) for a in _case(name))
    ref = _keras(keras_losses, name, p, t)
    fn = losses.get(name)
    np.testing.assert_allclose(float(fn(p, t)), ref.mean(), rtol=1e-6, atol=1e-6)
    rows = np.asarray(fn(p, t, reduction="none"))
    rows = rows if name in ROW_LOSSES else rows.mean(-1)
    np.testing.assert_allclose(rows, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "p", "t"),
    [
        ("hinge", [[0.5, -2.0, 0.3]], [[1, 0, 0]]),  # 0/1 labels read as -1/1
        ("hinge", [[0.5, -2.0, 0.3]], [[1, -1, -1]]),  # integer -1/1 labels
        ("squared_hinge", [[0.5, -2.0], [3.0, 0.0]], [[True, False], [True, True]]),
        ("categorical_hinge", [[-2.0, -3.0, -1.0]], [[0, 0, 1]]),  # others all negative
        ("kl_divergence", [[0.0, 1.0], [0.3, 0.7]], [[1.0, 0.0], [0.5, 0.5]]),  # clipped
        ("poisson", [[0.0, 2.0]], [[0, 3]]),  # a zero rate: log(0 + 1e-7)
        ("cosine_similarity", [[0.0, 0.0], [1.0, 2.0]], [[1.0, 2.0], [-2.0, -4.0]]),  # zero row
    ],
)
def test_keras_edge_cases(keras_losses, name, p, t):
    p = np.asarray(p, np.float32)
    t = np.asarray(t)  # integer and boolean targets too
    ref = _keras(keras_losses, name, p, t.astype(np.float32))
    np.testing.assert_allclose(float(losses.get(name)(p, t)), ref.mean(), rtol=1e-6, atol=1e-6)


def test_categorical_hinge_is_keras_not_optax():
    """The true class enters Keras's max as 0: all other scores negative still cost."""
    p, t = jnp.array([[-2.0, -3.0, -1.0]]), jnp.array([[0, 0, 1]])
    assert float(losses.categorical_hinge(p, t)) == 2.0  # max(0 - (-1) + 1, 0)
    assert float(optax.losses.multiclass_hinge_loss(p, jnp.array([2]))[0]) == 0.0


def test_matches_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    with jax.enable_x64(True):
        p, t = _case("poisson")
        ref = tf.poisson_nll_loss(torch.tensor(p), torch.tensor(t), log_input=False, eps=1e-7)
        np.testing.assert_allclose(float(losses.poisson(p, t)), ref.item(), rtol=1e-12, atol=1e-12)
        p, t = _case("kl_divergence")
        log_p = torch.log(torch.tensor(p).clamp(1e-7, 1))
        ref = tf.kl_div(log_p, torch.tensor(t).clamp(1e-7, 1), reduction="batchmean")
        value = float(losses.kl_divergence(p, t))
        np.testing.assert_allclose(value, ref.item(), rtol=1e-12, atol=1e-12)
        p, t = _case("cosine_similarity")
        ref = -tf.cosine_similarity(torch.tensor(p), torch.tensor(t), dim=-1).mean()
        value = float(losses.cosine_similarity(p, t))
        np.testing.assert_allclose(value, ref.item(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name):
    fn = losses.get(name)
    p, t = (jnp.asarray(a, jnp.float32) for a in _case(name, shape=(3, 2, 4)))
    values = fn(p, t, reduction="none")
    assert values.shape == ((3, 2) if name in ROW_LOSSES else (3, 2, 4))
    np.testing.assert_allclose(fn(p, t, reduction="sum"), values.sum(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fn(p, t), values.mean(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        fn(p, t, reduction="avg")


@pytest.mark.parametrize("name", NAMES)
def test_gradients_pass_check_grads(name):
    fn = losses.get(name)
    with jax.enable_x64(True):
        p, t = _case(name, seed=1, shape=(4, 3))
        t = jnp.asarray(t)
        check_grads(jax.jit(lambda x: fn(x, t)), (jnp.asarray(p),), order=1, modes=("fwd", "rev"))


def test_zero_vectors_have_finite_gradients():
    grad = jax.grad(lambda p: losses.cosine_similarity(p, jnp.ones((2, 3))))(jnp.zeros((2, 3)))
    assert np.isfinite(np.asarray(grad)).all()
    grad = jax.grad(lambda p: losses.kl_divergence(p, jnp.full((1, 2), 0.5)))(jnp.zeros((1, 2)))
    assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_kl_divergence_16_bit_gradient_at_a_zero_prediction(dtype):
    """A prediction of exactly 0 (an underflowed softmax): ``-t / 1e-7`` overflowed
    float16 and the clip's zero mask made it NaN; in float32 it is the float32 one."""
    p, t = np.array([[0.0, 0.5, 0.5]]), np.array([[0.5, 0.5, 0.0]])

    def loss_and_grad(d):
        fn = lambda x: losses.kl_divergence(x, jnp.asarray(t, d)).astype(jnp.float32)
        value, grad = jax.value_and_grad(fn)(jnp.asarray(p, d))
        return float(value), np.asarray(grad, np.float32)

    (value, grad), (ref, ref_grad) = loss_and_grad(dtype), loss_and_grad(jnp.float32)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-2, atol=1e-6)
    np.testing.assert_allclose(value, ref, rtol=1e-2, atol=1e-3)
    assert losses.kl_divergence(jnp.asarray(p, dtype), jnp.asarray(t, dtype)).dtype == dtype


def test_cosine_similarity_float16_large_and_zero_vectors():
    """float16: a norm above 256 read as 0 (its square overflowed) and a zero vector
    gave NaN (``1e-7 ** 2`` underflowed); now the float32 values, in float16."""
    torch = pytest.importorskip("torch")
    p = np.array([[300.0, 300.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    t = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 2.0], [-1.0, 2.0, 2.0]])
    h, ref = (jnp.asarray(p, jnp.float16), jnp.asarray(t, jnp.float16)), (p, t)
    values = losses.cosine_similarity(*h, reduction="none")
    assert values.dtype == jnp.float16
    expected = np.asarray(losses.cosine_similarity(*ref, reduction="none"))
    np.testing.assert_allclose(np.asarray(values, np.float32), expected, rtol=2e-3, atol=1e-3)
    rows = (torch.tensor(p[[0, 2]], dtype=torch.float16), torch.tensor(t[[0, 2]]).half())
    theirs = -torch.nn.functional.cosine_similarity(*rows, dim=-1).float().numpy()
    np.testing.assert_allclose(np.asarray(values, np.float32)[[0, 2]], theirs, rtol=2e-3, atol=2e-3)
    fn = lambda x, t: losses.cosine_similarity(x[:1], t[:1]).astype(jnp.float32)
    grad = np.asarray(jax.grad(fn)(*h), np.float32)
    ref_grad = np.asarray(jax.grad(fn)(*(jnp.asarray(a, jnp.float32) for a in ref)))
    assert np.abs(ref_grad).max() > 1e-3  # was a zero gradient
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-2, atol=1e-5)


def test_cosine_similarity_gradient_at_a_zero_prediction_is_documented():
    """Not zero: ``-unit(t) / 1e-7`` over the rows, as torch's ``-unit(t) / eps``."""
    torch = pytest.importorskip("torch")
    t = np.array([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]])
    unit = t / np.linalg.norm(t, axis=-1, keepdims=True)
    grad = jax.grad(lambda p: losses.cosine_similarity(p, jnp.asarray(t)))(jnp.zeros((2, 3)))
    np.testing.assert_allclose(grad, -unit / 1e-7 / 2, rtol=1e-5, atol=1e-3)
    z = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    (-torch.nn.functional.cosine_similarity(z, torch.tensor(t), dim=-1, eps=1e-7)).mean().backward()
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-5, atol=1e-3)
    half = jnp.zeros((2, 3), jnp.float16)
    fn = lambda p: losses.cosine_similarity(p, jnp.asarray(t, jnp.float16)).astype(jnp.float32)
    assert np.isneginf(np.asarray(jax.grad(fn)(half), np.float32)[:, 1:]).all()  # overflows


@pytest.mark.parametrize("name", NAMES)
def test_jit_matches_eager(name):
    fn = losses.get(name)
    p, t = (jnp.asarray(a, jnp.float32) for a in _case(name))
    np.testing.assert_allclose(jax.jit(fn)(p, t), fn(p, t), rtol=1e-6, atol=1e-7)
    jax.jit(jax.grad(fn))(p, t)


def test_hinge_reads_0_1_labels_under_jit_and_skips_value_checks():
    p = jnp.array([0.5, -2.0, 0.3])
    binary, signs = jnp.array([1.0, 0.0, 0.0]), jnp.array([1.0, -1.0, -1.0])
    assert float(jax.jit(losses.hinge)(p, binary)) == float(losses.hinge(p, signs))
    mixed = jnp.array([1.0, 0.0, -1.0])  # refused when concrete, not checked when traced
    with pytest.raises(ValueError, match="hinge"):
        losses.hinge(p, mixed)
    assert np.isfinite(float(jax.jit(losses.hinge)(p, mixed)))


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_inputs(name):
    fn = losses.get(name)
    p, t = (jnp.asarray(a, jnp.float32) for a in _case(name))
    low = fn(p.astype(jnp.bfloat16), t.astype(jnp.bfloat16))
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(low), float(fn(p, t)), rtol=3e-2, atol=3e-2)
    assert fn(p.astype(jnp.bfloat16), t).dtype == jnp.float32  # promoted, as mse does


def test_integer_targets_take_the_floating_dtype():
    assert losses.hinge(jnp.zeros(3, jnp.bfloat16), jnp.array([1, -1, 1])).dtype == jnp.bfloat16
    assert losses.poisson(np.ones(3, np.int32), np.array([1, 2, 3])).dtype == jnp.float32


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: losses.hinge(jnp.zeros((2, 3)), jnp.ones(2)), ShapeError,
         r"hinge: `predictions` has shape \(2, 3\) but `targets` has shape \(2,\)"),
        (lambda: losses.kl_divergence(0.5, 0.5), ValueError, "kl_divergence: .* scalars"),
        (lambda: losses.cosine_similarity(1.0, 1.0), ValueError, "cosine_similarity: .* last axis"),
        (lambda: losses.log_cosh("a", jnp.zeros(2)), TypeError,
         "log_cosh: `predictions` must be an array of numbers, got 'a'"),
        (lambda: losses.poisson(jnp.ones(2), jnp.ones(2) * 1j), TypeError,
         "poisson: `targets` is complex"),
        (lambda: losses.kl_divergence(jnp.array([0.5, 1.5]), jnp.array([0.5, 0.5])), ValueError,
         r"kl_divergence: `predictions\[1\]` = 1.5 is outside \[0, 1\]"),
        (lambda: losses.kl_divergence(jnp.array([0.5, 0.5]), jnp.array([-0.5, 1.5])), ValueError,
         r"kl_divergence: `targets\[0\]` = -0.5 is outside \[0, 1\]: .*2 bad values"),
        (lambda: losses.poisson(jnp.array([1.0, -1.0]), jnp.ones(2)), ValueError,
         r"poisson: `predictions\[1\]` = -1.0 is negative or NaN: predictions are rates"),
        (lambda: losses.poisson(jnp.ones(2), jnp.array([2, -3])), ValueError,
         r"poisson: `targets\[1\]` = -3 is negative or NaN: targets are counts"),
        (lambda: losses.hinge(jnp.zeros(3), jnp.array([1, 0, -1])), ValueError,
         r"hinge: `targets\[1\]` = 0 is not -1 or 1"),
        (lambda: losses.squared_hinge(jnp.zeros(2), jnp.array([2.0, 1.0])), ValueError,
         r"squared_hinge: `targets\[0\]` = 2.0 is not -1 or 1: .*all 0/1"),
        (lambda: losses.categorical_hinge(jnp.zeros((1, 2)), jnp.array([[0.5, 0.5]])), ValueError,
         r"categorical_hinge: `targets\[0, 0\]` = 0.5 is not 0 or 1"),
        (lambda: losses.categorical_hinge(jnp.zeros((2, 2)), jnp.array([[1, 0], [1, 1]])),
         ValueError, r"categorical_hinge: `targets.sum\(axis=-1\)\[1\]` = 2.0 is not 1"),
    ],
)  # fmt: skip
def test_bad_inputs_name_the_loss_and_argument(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("name", NAMES)
def test_registered_for_fit_and_metrics(name):
    fn = getattr(losses, name)
    assert losses.get(name) is fn and losses.get(name.upper()) is fn and name in losses.__all__
    metric = metrics.resolve(name)
    p, t = (jnp.asarray(a, jnp.float32) for a in _case(name))
    value = metric.result(metrics.accumulate(metric, [metric.stats(p, t, jnp.ones(len(p)))]))
    sign = -1.0 if name == "cosine_similarity" else 1.0  # the metric logs the similarity
    np.testing.assert_allclose(value, sign * float(fn(p, t)), rtol=1e-6, atol=1e-6)
    assert metrics.default_metrics(name) == ()  # as Keras: nothing besides the loss
    assert losses.get("kld") is losses.kl_divergence


#: name -> (outputs, output activation, targets (10, outputs))
FIT_CASES = {
    "kl_divergence": (3, "softmax", lambda r: np.asarray(jax.nn.softmax(r.normal(size=(10, 3))))),
    "poisson": (2, "softplus", lambda r: r.poisson(2.0, size=(10, 2)).astype(np.float32)),
    "log_cosh": (2, None, lambda r: r.normal(size=(10, 2)).astype(np.float32)),
    "hinge": (1, None, lambda r: r.choice([-1, 1], size=(10, 1))),
    "squared_hinge": (1, None, lambda r: r.choice([0.0, 1.0], size=(10, 1)).astype(np.float32)),
    "categorical_hinge": (3, None, lambda r: np.eye(3, dtype=np.int32)[r.integers(0, 3, 10)]),
    "cosine_similarity": (3, None, lambda r: r.normal(size=(10, 3)).astype(np.float32)),
}


@pytest.mark.parametrize("name", NAMES)
def test_fit_by_name_logs_the_loss_of_the_model(name):
    """Batches of 4 over 10 examples (the last padded), weights held (set_to_zero):
    the epoch's loss and the loss as a metric are the loss of the initial model."""
    outputs, activation, targets = FIT_CASES[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    y = targets(rng)
    model = nn.MLP(3, (4,), outputs, output_activation=activation, rngs=nnx.Rngs(0))
    expected = float(losses.get(name)(model(jnp.asarray(x)), y))
    history = train.fit(
        model, (x, y), loss=name, optimizer=optax.set_to_zero(), metrics=[name],
        epochs=1, batch_size=4, verbose=0,
    )  # fmt: skip
    assert sorted(history.history) == sorted(["loss", name])
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-6, atol=1e-6)
    sign = -1.0 if name == "cosine_similarity" else 1.0  # the metric logs the similarity
    np.testing.assert_allclose(history.history[name][0], sign * expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["kl_divergence", "categorical_hinge", "cosine_similarity"])
def test_fit_names_the_shape_when_integer_labels_meet_a_loss_that_wants_rows(name):
    """Integer labels (B,) are not class ids for these losses: the error is the loss's
    shape error, not an out-of-range label (y holds 3 with 3 outputs)."""
    x = np.zeros((6, 3), np.float32)
    y = np.array([0, 1, 2, 3, 0, 1])
    model = nn.MLP(3, (4,), 3, output_activation="softmax", rngs=nnx.Rngs(0))
    with pytest.raises(ShapeError, match=name):
        train.fit(model, (x, y), loss=name, epochs=1, batch_size=3, verbose=0)


@pytest.mark.parametrize("module", ["nnjax._losses_keras", "nnjax._loss_checks"])
def test_private_module_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(
        mod, globs={"jax": jax, "jnp": jnp, "np": np, **vars(mod)},
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, report=True,
    )  # fmt: skip
    assert result.attempted > 0 and result.failed == 0
