"""nnjax.losses against PyTorch, plus reductions, gradients and shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from nnjax import losses
from nnjax.errors import ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(0)
PRED = rng.normal(size=(8, 5))
TARGET = rng.normal(size=(8, 5))
LOGITS = rng.normal(size=(8, 5)) * 3
LABELS = rng.integers(0, 5, size=8)


def _t(a):
    return torch.from_numpy(np.asarray(a))


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (losses.mse, lambda p, t: TF.mse_loss(p, t)),
        (losses.mae, lambda p, t: TF.l1_loss(p, t)),
        (losses.huber, lambda p, t: TF.huber_loss(p, t, delta=1.0)),
        (lambda p, t: losses.huber(p, t, delta=0.5), lambda p, t: TF.huber_loss(p, t, delta=0.5)),
    ],
)
def test_regression_losses_match_torch(ours, ref):
    with jax.enable_x64(True):
        value = float(ours(jnp.asarray(PRED), jnp.asarray(TARGET)))
    np.testing.assert_allclose(value, ref(_t(PRED), _t(TARGET)).item(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_non_finite_match_torch(name):
    # equal infinities (inf - inf) are NaN in PyTorch, not a loss of 0
    p = np.array([np.inf, -np.inf, np.inf, np.nan, 1.0, 2.0])
    t = np.array([np.inf, -np.inf, -np.inf, 1.0, np.inf, 2.0])
    ref = {"mse": TF.mse_loss, "mae": TF.l1_loss, "huber": TF.huber_loss}[name]
    with jax.enable_x64(True):
        value = getattr(losses, name)(jnp.asarray(p), jnp.asarray(t), reduction="none")
    expected = ref(_t(p), _t(t), reduction="none").numpy()
    np.testing.assert_array_equal(np.asarray(value), expected)


def test_cross_entropy_integer_labels_matches_torch():
    with jax.enable_x64(True):
        value = float(losses.cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS)))
    ref = TF.cross_entropy(_t(LOGITS), _t(LABELS)).item()
    np.testing.assert_allclose(value, ref, rtol=1e-12, atol=1e-12)


def test_cross_entropy_one_hot_equals_integer_labels():
    one_hot = jax.nn.one_hot(LABELS, 5)
    a = losses.cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS))
    b = losses.cross_entropy(jnp.asarray(LOGITS), one_hot)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_cross_entropy_label_smoothing_matches_torch():
    with jax.enable_x64(True):
        value = float(
            losses.cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS), label_smoothing=0.1)
        )
    ref = TF.cross_entropy(_t(LOGITS), _t(LABELS), label_smoothing=0.1).item()
    np.testing.assert_allclose(value, ref, rtol=1e-12, atol=1e-12)


def test_binary_cross_entropy_matches_torch():
    labels = (rng.random(size=(8, 5)) > 0.5).astype(np.float64)
    with jax.enable_x64(True):
        value = float(losses.binary_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(labels)))
    ref = TF.binary_cross_entropy_with_logits(_t(LOGITS), _t(labels)).item()
    np.testing.assert_allclose(value, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_reductions(reduction):
    per_element = (PRED - TARGET) ** 2
    expected = per_element.sum() if reduction == "sum" else per_element
    with jax.enable_x64(True):
        value = losses.mse(jnp.asarray(PRED), jnp.asarray(TARGET), reduction=reduction)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="reduction must be"):
        losses.mse(jnp.asarray(PRED), jnp.asarray(TARGET), reduction="avg")


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_gradients_pass_check_grads(name):
    fn = losses.get(name)
    with jax.enable_x64(True):
        targets = jnp.asarray((rng.random(size=(4, 3)) > 0.5).astype(np.float64))
        x = jnp.asarray(rng.normal(size=(4, 3)) + 0.1)
        check_grads(lambda p: fn(p, targets), (x,), order=1, modes=("rev",))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_cross_entropy_gradient_passes_check_grads():
    with jax.enable_x64(True):
        labels = jnp.asarray(LABELS)
        check_grads(lambda z: losses.cross_entropy(z, labels), (jnp.asarray(LOGITS),), order=2)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"mse: `predictions` has shape \(8, 5\).*\(8,\)"):
        losses.mse(jnp.zeros((8, 5)), jnp.zeros(8))
    with pytest.raises(ValueError, match=r"cross_entropy: `labels` has shape \(8, 4\)"):
        losses.cross_entropy(jnp.zeros((8, 5)), jnp.zeros((8, 4)))


def test_jit_does_not_recompile():
    import chex

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(z, y):
        return losses.cross_entropy(z, y)

    f(jnp.asarray(LOGITS, jnp.float32), jnp.asarray(LABELS))
    f(jnp.asarray(LOGITS, jnp.float32) + 1, jnp.asarray(LABELS))


def test_get_keras_names_and_unknown():
    assert losses.get("sparse_categorical_crossentropy") is losses.cross_entropy
    assert losses.get("mean_squared_error") is losses.mse
    with pytest.raises(ValueError, match=r"unknown loss 'dice'.*mse"):
        losses.get("dice")


def test_cross_entropy_refuses_logits_without_a_class_axis():
    # a model output (B,) with integer labels: the softmax would run over the batch
    with pytest.raises(ValueError, match=r"integer class indices of shape \(4,\).*no class axis"):
        losses.cross_entropy(jnp.zeros(4), jnp.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"`logits` has shape \(4, 1\), a single class"):
        losses.cross_entropy(jnp.zeros((4, 1)), jnp.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="`logits` is a scalar"):
        losses.cross_entropy(jnp.float32(0.0), jnp.int32(0))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.bool_])
def test_cross_entropy_refuses_a_single_class_whatever_the_labels(dtype):
    # one-hot labels (B, 1) for logits (B, 1): the loss and its gradient were always 0
    logits, labels = jnp.array([[2.0], [-3.0], [0.5]]), jnp.ones((3, 1), dtype)
    pattern = r"`logits` has shape \({}3, 1\), a single class.*binary_cross_entropy"
    with pytest.raises(ValueError, match=pattern.format("")):
        losses.cross_entropy(logits, labels)
    with pytest.raises(ValueError, match=pattern.format("")):
        jax.jit(losses.cross_entropy)(logits, labels)
    with pytest.raises(ValueError, match=pattern.format("1, ")):
        jax.jit(losses.cross_entropy)(logits[None], labels[None])


def test_the_class_axis_check_holds_under_jit():
    with pytest.raises(ValueError, match="no class axis"):
        jax.jit(losses.cross_entropy)(jnp.zeros(4), jnp.array([0, 1, 0, 1]))


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        ([[0.5, 0.5, 0.5]], r"`labels` row 0 sums to 1\.5, not 1"),
        ([[1.0, 0.0, 0.0], [0.2, 0.2, 0.2]], r"`labels` row 1 sums to 0\.6"),
        ([[1.5, -0.5, 0.0]], r"row 0 holds a negative or non-finite value"),
        ([[np.nan, 1.0, 0.0]], r"row 0 holds a negative or non-finite value"),
    ],
    ids=["sum-above", "sum-below", "negative", "nan"],
)
def test_soft_labels_must_be_probabilities(labels, pattern):
    labels = jnp.asarray(labels, jnp.float32)
    with pytest.raises(ValueError, match=pattern):
        losses.cross_entropy(jnp.zeros(labels.shape), labels)


def test_valid_soft_labels_pass_in_every_precision():
    probs = jax.nn.softmax(jax.random.normal(jax.random.key(0), (8, 10)))
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        losses.check_distribution("cross_entropy", "labels", probs.astype(dtype))
    smoothed = jax.nn.one_hot(jnp.arange(8) % 10, 10, dtype=jnp.bfloat16) * 0.9 + 0.01
    losses.check_distribution("cross_entropy", "labels", smoothed)
    ours = losses.cross_entropy(jnp.zeros((8, 10)), probs)
    np.testing.assert_allclose(ours, np.log(10.0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_soft_labels_pass_with_many_classes(dtype):
    # a 16-bit softmax of 1000 classes is off by about 0.004 (bfloat16), 0.0007 (float16)
    logits = jax.random.normal(jax.random.key(1), (16, 1000), dtype) * 3
    probs = jax.nn.softmax(logits)
    losses.check_distribution("cross_entropy", "labels", probs)
    smoothed = optax.smooth_labels(jax.nn.one_hot(jnp.arange(16), 1000, dtype=dtype), 0.1)
    losses.check_distribution("cross_entropy", "labels", smoothed)
    ours = losses.cross_entropy(logits, probs, label_smoothing=0.1)
    assert ours.dtype == dtype and np.isfinite(float(ours))


@pytest.mark.parametrize(("dtype", "classes"), [(jnp.bfloat16, 128), (jnp.float16, 1000)])
def test_16_bit_multi_hot_labels_are_refused(dtype, classes):
    # the tolerance was eps * C: any row sum in [0, 2] (bfloat16, C >= 128) passed
    labels = np.zeros((2, classes), np.float32)
    labels[0, [3, 7]] = [1.0, 0.5]
    with pytest.raises(ValueError, match=r"`labels` row 0 sums to 1\.5, not 1"):
        losses.check_distribution("cross_entropy", "labels", jnp.asarray(labels, dtype))
    labels[0] = np.eye(classes)[3]  # row 1: all zeros
    with pytest.raises(ValueError, match=r"`labels` row 1 sums to 0, not 1"):
        losses.cross_entropy(jnp.zeros((2, classes), dtype), labels)


@pytest.mark.parametrize("one_hot", [False, True], ids=["int-labels", "one-hot"])
def test_traced_label_smoothing_under_jit_and_vmap(one_hot):
    # a hyperparameter sweep: `if label_smoothing:` raised TracerBoolConversionError
    logits = jnp.asarray(LOGITS, jnp.float32)
    labels = jax.nn.one_hot(LABELS, 5) if one_hot else jnp.asarray(LABELS)
    sweep = jnp.array([0.0, 0.1])
    eager = [float(losses.cross_entropy(logits, labels, label_smoothing=s)) for s in (0.0, 0.1)]
    targets = lambda s: optax.smooth_labels(jax.nn.one_hot(LABELS, 5), s)
    ref = [float(optax.losses.softmax_cross_entropy(logits, targets(s)).mean()) for s in sweep]
    ce = lambda s: losses.cross_entropy(logits, labels, label_smoothing=s)
    np.testing.assert_allclose(jax.vmap(ce)(sweep), eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([jax.jit(ce)(s) for s in sweep], eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eager, ref, rtol=1e-6, atol=1e-6)
    low = jax.jit(losses.cross_entropy)(logits.astype(jnp.bfloat16), labels, label_smoothing=0.1)
    assert low.dtype == jnp.bfloat16  # a float32 smoothing does not promote the loss


def test_integer_labels_must_match_the_batch_of_logits():
    # the batch sizes used to reach JAX's "Incompatible shapes for broadcasting"
    pattern = r"cross_entropy: integer `labels` have shape \(3,\) but `logits` has shape \(4, 3\)"
    with pytest.raises(ShapeError, match=pattern):
        losses.cross_entropy(jnp.zeros((4, 3)), jnp.array([0, 1, 2]))
    with pytest.raises(ShapeError, match=pattern):
        jax.jit(losses.cross_entropy)(jnp.zeros((4, 3)), jnp.array([0, 1, 2]))


def test_float_class_ids_are_told_to_be_cast_to_int():
    with pytest.raises(ValueError, match=r"look like class ids, but in dtype float32: cast"):
        losses.cross_entropy(jnp.zeros((4, 3)), jnp.array([0.0, 1.0, 2.0, 0.0]))


@pytest.mark.parametrize(
    ("labels", "smoothing", "pattern"),
    [
        ([0, 1, 2, 3], 0.0, r"`labels\[3\]` = 3 is not a class id in \[0, 3\)"),
        ([0, -1, 2, 0], 0.0, r"`labels\[1\]` = -1 is not a class id in \[0, 3\)"),
        ([0, 1, 2, 5], 0.1, r"`labels\[3\]` = 5 is not a class id in \[0, 3\)"),
        ([[0, 1], [7, 0]], 0.0, r"`labels\[1, 0\]` = 7 is not a class id in \[0, 3\)"),
    ],
    ids=["equal-to-C", "negative", "smoothing", "2d"],
)
def test_concrete_class_ids_out_of_range_raise(labels, smoothing, pattern):
    labels = jnp.asarray(labels)
    logits = jnp.zeros((*labels.shape, 3))
    with pytest.raises(ValueError, match="cross_entropy: " + pattern):
        losses.cross_entropy(logits, labels, label_smoothing=smoothing)


@pytest.mark.parametrize("smoothing", [1.5, -0.5, 1.0, float("nan"), np.float32(2.0)])
def test_label_smoothing_must_be_in_0_1(smoothing):
    with pytest.raises(ValueError, match=r"cross_entropy: `label_smoothing` must be in \[0, 1\)"):
        losses.cross_entropy(jnp.zeros((4, 3)), jnp.array([0, 1, 2, 0]), label_smoothing=smoothing)


def test_binary_labels_must_lie_in_0_1():
    pattern = r"binary_cross_entropy: `labels\[2\]` = 2\.0 is outside \[0, 1\].*2 bad values"
    with pytest.raises(ValueError, match=pattern):
        losses.binary_cross_entropy(jnp.zeros(4), jnp.array([0.0, 1.0, 2.0, -1.0]))
    ok = losses.binary_cross_entropy(jnp.zeros(4), jnp.array([True, False, True, False]))
    np.testing.assert_allclose(ok, np.log(2.0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("delta", [-1.0, 0, float("nan")])
def test_huber_delta_must_be_positive(delta):
    with pytest.raises(ValueError, match=r"huber: `delta` must be > 0, got"):
        losses.huber(jnp.zeros(4), jnp.ones(4), delta=delta)


def test_shape_mismatches_are_shape_errors():
    with pytest.raises(ShapeError, match=r"mse: `predictions` has shape \(4,\)"):
        losses.mse(jnp.zeros(4), jnp.zeros(5))
    with pytest.raises(ShapeError, match=r"cross_entropy: `labels` has shape \(4, 2\)"):
        losses.cross_entropy(jnp.zeros((4, 3)), jnp.zeros((4, 2), jnp.int32))
    with pytest.raises(ShapeError, match=r"integer `labels` have shape \(5,\)"):
        losses.cross_entropy(jnp.zeros((4, 3)), jnp.zeros((5, 1), jnp.int32))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_class_ids_as_a_column_are_keras_sparse_labels(smoothing):
    """Integer labels ``(B, 1)`` for logits ``(B, C)``: Keras's sparse losses take them;
    the loss and its gradient equal those of ``(B,)`` labels, eager and jitted."""
    logits = jnp.asarray(LOGITS, jnp.float32)
    labels = jnp.asarray(LABELS)

    def loss(z, y):
        return losses.cross_entropy(z, y, label_smoothing=smoothing)

    for f in (loss, jax.jit(loss)):
        want, grad = jax.value_and_grad(f)(logits, labels)
        got, got_grad = jax.value_and_grad(f)(logits, labels[:, None])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got_grad, grad, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"`labels\[0\]` = 7 is not a class id"):
        loss(logits, jnp.full((len(LABELS), 1), 7))
    with pytest.raises(ValueError, match="look like class ids, but in dtype float32"):
        loss(logits, labels[:, None].astype(jnp.float32))


def test_value_checks_skip_traced_labels_under_jit():
    """Traced labels are not read (no concretization error); the loss and its gradient
    match the eager ones, and an out-of-range id gives NaN, as documented."""
    logits = jnp.asarray(LOGITS, jnp.float32)
    labels = jnp.asarray(LABELS)
    for smoothing in (0.0, 0.1):

        def f(z, y, s=smoothing):
            return losses.cross_entropy(z, y, label_smoothing=s)

        np.testing.assert_allclose(
            jax.jit(f)(logits, labels), f(logits, labels), rtol=1e-6, atol=1e-6
        )
        jax.jit(jax.grad(f))(logits, labels)
    soft = jax.nn.softmax(logits)
    np.testing.assert_allclose(
        jax.jit(losses.cross_entropy)(logits, soft), losses.cross_entropy(logits, soft), rtol=1e-6
    )
    bce = jax.jit(losses.binary_cross_entropy)
    y01 = (LOGITS > 0).astype(np.float32)
    np.testing.assert_allclose(bce(logits, y01), losses.binary_cross_entropy(logits, y01))
    assert np.isnan(jax.jit(losses.cross_entropy)(jnp.zeros((4, 3)), jnp.array([0, 1, 2, 3])))
    assert np.isfinite(bce(jnp.zeros(2), jnp.array([2.0, -1.0])))  # not checked when traced
    jax.jit(lambda p, t: losses.huber(p, t, delta=0.5))(logits, logits + 1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: losses.cross_entropy(jnp.ones((2, 3)), None), TypeError,
         r"cross_entropy: `labels` must be an array of numbers, got None"),
        (lambda: losses.mse(jnp.ones((3, 2)), None), TypeError,
         r"mse: `targets` must be an array of numbers, got None"),  # was "has shape ()"
        (lambda: losses.binary_cross_entropy(np.array([1.0, 2.0]), np.array(["a", "b"])),
         TypeError, r"binary_cross_entropy: `labels` must be numbers, got dtype <U1"),
        (lambda: losses.huber("x", jnp.ones(2)), TypeError, r"huber: `predictions` must be an"),
        (lambda: losses.mae(jnp.ones(2), jnp.ones(2) * 1j), TypeError, r"mae: `targets` is compl"),
    ],
)  # fmt: skip
def test_inputs_that_are_not_numbers_name_the_loss_and_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_lists_and_integer_logits_are_taken():
    # lists: "Cannot determine dtype" for mse; integer logits: Optax's dtype error
    np.testing.assert_allclose(losses.mse(jnp.ones((3, 2)), [[0.5, 0.5]] * 3), 0.25)
    np.testing.assert_allclose(
        losses.binary_cross_entropy(jnp.array([1, 0]), jnp.array([1, 0])),
        losses.binary_cross_entropy(jnp.array([1.0, 0.0]), jnp.array([1.0, 0.0])),
        rtol=1e-7, atol=0,
    )  # fmt: skip
    np.testing.assert_allclose(
        losses.cross_entropy(jnp.array([[1, 0]]), jnp.array([0])),
        losses.cross_entropy(jnp.array([[1.0, 0.0]]), jnp.array([0])),
        rtol=1e-7, atol=0,
    )  # fmt: skip
