"""fit's own-objective hook, mixed precision, gradient accumulation and remat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import _hardware, losses
from nnjax.nn import CNN, MLP
from nnjax.train import compiled, setup
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(batch_size=16, verbose=0, devices=ONE, optimizer="sgd", learning_rate=0.1)


def weighted_ce(model, batch):
    logits = model(batch.x)
    per = losses.cross_entropy(logits, batch.y, reduction="none")
    loss = jnp.sum(per * batch.weight) / jnp.maximum(jnp.sum(batch.mask), 1.0)
    return loss, {"mean_logit": jnp.mean(logits)}


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
@pytest.mark.parametrize("devices", [ONE, jax.devices()])
def test_loss_fn_trains_like_the_built_in_loss(devices):
    x, y = blobs(n=100)  # a padded last batch
    builtin, custom = mlp(dropout=0.2), mlp(dropout=0.2)
    kw = dict(KW, devices=devices, epochs=2)
    T.fit(builtin, (x, y), loss="cross_entropy", **kw)
    T.clear_caches()  # an earlier test in this process may have built the programs counted
    traces = compiled.TRACES.count
    history = T.fit(custom, (x, y), loss_fn=weighted_ce, validation_data=(x, y), **kw)
    assert compiled.TRACES.count == traces + 2  # its train dispatch and its validation's
    for a, b in zip(leaves(builtin), leaves(custom)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(history.history) == {
        "loss",
        "mean_logit",
        "val_loss",
        "val_mean_logit",
        "learning_rate",
    }
    logs = T.evaluate(custom, (x, y), loss="cross_entropy", devices=devices)
    np.testing.assert_allclose(history["val_loss"][-1], logs["loss"], rtol=1e-5, atol=1e-6)


def test_loss_fn_must_return_a_scalar_before_anything_trains():
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar.*shape \(16,\)"):
        T.fit(model, blobs(), loss_fn=lambda m, b: m(b.x).sum(-1), **KW)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"^fit needs exactly one of `loss`"):
        T.fit(model, blobs(), **KW)
    members = T.grid(seeds=[0])
    with pytest.raises(ValueError, match=r"^sweep needs exactly one of `loss`"):  # not "fit"
        T.sweep(lambda c: mlp(), blobs(), members=members, loss=None, **KW)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_accumulate_four_batches_of_8_equals_one_of_32():
    x, y = blobs(n=64)
    big, small = mlp(), mlp()
    T.fit(big, (x, y), loss="cross_entropy", **{**KW, "batch_size": 32, "epochs": 2})
    T.fit(
        small,
        (x, y),
        loss="cross_entropy",
        accumulate_steps=4,
        **{**KW, "batch_size": 8, "epochs": 2},
    )
    for a, b in zip(leaves(big), leaves(small)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    other = mlp()
    T.fit(other, (x, y), loss="cross_entropy", **{**KW, "batch_size": 8, "epochs": 2})
    assert not np.allclose(leaves(other)[0], leaves(small)[0], atol=1e-4)


def test_remat_gives_the_same_training():
    x, y = blobs(n=64)
    plain, remat = mlp(), mlp()
    T.fit(plain, (x, y), loss="cross_entropy", epochs=2, **KW)
    T.fit(remat, (x, y), loss="cross_entropy", epochs=2, remat=True, **KW)
    for a, b in zip(leaves(plain), leaves(remat)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.25, random_state=0)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_bfloat16_trains_to_float32s_accuracy(kind, monkeypatch):
    # as on hardware with native bfloat16 (elsewhere fit computes in float32: see
    # tests/train/test_precision_speed_path.py), so that the bfloat16 rounding is trained
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    xtr, xte, ytr, yte = _digits()
    if kind == "cnn":
        xtr, xte = xtr.reshape(-1, 8, 8, 1), xte.reshape(-1, 8, 8, 1)
    accs = {}
    for precision in (None, "bfloat16"):
        if kind == "mlp":
            model = MLP(64, (64,), 10, rngs=nnx.Rngs(0))
        else:
            model = CNN((8, 8, 1), 10, conv_features=(8,), dense=(32,), rngs=nnx.Rngs(0))
        kw = dict(KW, optimizer="adam", learning_rate=1e-2, batch_size=32)
        T.fit(model, (xtr, ytr), loss="cross_entropy", epochs=6, precision=precision, **kw)
        assert all(a.dtype == np.float32 for a in leaves(model))
        accs[precision] = T.evaluate(model, (xte, yte), loss="cross_entropy", devices=ONE)[
            "accuracy"
        ]
    assert accs[None] > 0.9
    # at most a point below float32 (4-5 of the 450 test images); the bfloat16 roundings
    # move the result either way (the CNN's was 1.1 points above float32's in session 10)
    assert accs["bfloat16"] >= accs[None] - 0.01 - 1e-9, accs


def _variance_objective(mean):
    """A batch-level loss: MSE of the first logit to y plus the batch variance of it."""

    def loss_fn(model, batch):
        z = model(batch.x)[:, 0]
        target = batch.y.astype(jnp.float32)
        m = batch.mask
        return mean((z - target) ** 2, m) + mean((z - mean(z, m)) ** 2, m)

    return loss_fn


def _reference_sgd(model, x, y, batch_size, lr=0.1):
    """Plain SGD over the real rows of each unshuffled batch (no padding anywhere)."""
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size].astype(np.float32)

        def loss(m, xb=xb, yb=yb):
            z = m(xb)[:, 0]
            return jnp.mean((z - yb) ** 2) + jnp.var(z)

        grads = nnx.grad(loss)(model)
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p, g: p - lr * g, params, grads))


@pytest.mark.slow  # about 18 s on a shared 2-core machine (two fits and an eager reference)
def test_a_batch_level_loss_fn_sees_only_real_rows_through_the_mask():
    from nnjax.train.objective import masked_mean

    x, y = blobs(n=20)  # batches of 8, 8 and 4 real rows + 4 padded
    reference, model, naive = mlp(), mlp(), mlp()
    _reference_sgd(reference, x, y, batch_size=8)
    kw = dict(KW, batch_size=8, shuffle=False, epochs=1)
    T.fit(model, (x, y), loss_fn=_variance_objective(masked_mean), **kw)
    for a, b in zip(leaves(model), leaves(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the same loss ignoring the mask counts the padded copies: visibly different, warned
    with pytest.warns(UserWarning, match="loss_fn reads neither batch.mask nor batch.weight"):
        T.fit(naive, (x, y), loss_fn=_variance_objective(lambda v, m=None: jnp.mean(v)), **kw)
    assert max(np.abs(a - b).max() for a, b in zip(leaves(naive), leaves(reference))) > 1e-4


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_a_batch_level_loss_taking_mask_gets_it_in_fit_and_evaluate():
    from nnjax.train.objective import masked_mean

    def batch_variance(pred, y, mask=None):
        z = pred[:, 0]
        mask = jnp.ones(z.shape) if mask is None else mask
        return masked_mean((z - y) ** 2, mask) + masked_mean((z - masked_mean(z, mask)) ** 2, mask)

    x, y = blobs(n=20)
    yf = y.astype(np.float32)
    reference, model = mlp(), mlp()
    _reference_sgd(reference, x, y, batch_size=8)
    T.fit(model, (x, yf), loss=batch_variance, **dict(KW, batch_size=8, shuffle=False), metrics=())
    for a, b in zip(leaves(model), leaves(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    z = np.asarray(model(x))[:, 0]
    parts = [slice(0, 8), slice(8, 16), slice(16, 20)]
    per_batch = [np.mean((z[s] - yf[s]) ** 2) + np.var(z[s]) for s in parts]
    expected = np.average(per_batch, weights=[8, 8, 4])  # each batch weighted by its real rows
    logs = T.evaluate(model, (x, yf), loss=batch_variance, batch_size=8, devices=ONE, metrics=())
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-6)


def test_repeated_fits_with_a_loss_fn_trace_it_once():
    calls = []

    def counted(model, batch):
        calls.append(1)  # once per trace: the setup check's and the compiled step's
        return weighted_ce(model, batch)

    x, y = blobs(n=48)
    model = mlp()
    T.fit(model, (x, y), loss_fn=counted, epochs=1, **KW)
    first = len(calls)
    for _ in range(3):
        history = T.fit(model, (x, y), loss_fn=counted, epochs=1, **KW)
    assert len(calls) == first  # the log names' trace is kept, like the compiled step
    assert "mean_logit" in history.history
    T.fit(model, (x, y), loss_fn=counted, epochs=1, **dict(KW, batch_size=8))
    assert len(calls) > first  # new shapes: traced again


@pytest.fixture
def no_compiles(monkeypatch):
    """The checks below all fail before fit compiles its step."""

    def refuse(*args):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(compiled, "compiled_train", refuse)


def _squares(model, batch):
    return (model(batch.x) ** 2).mean()


@pytest.mark.parametrize(
    "ret, error, match",
    [
        (lambda v: None, TypeError, r"loss_fn returned None; .*a missing `return`"),
        (lambda v: (v, {"a": v}, 0), ValueError, r"pair \(loss, logs\); it returned a tuple of 3"),
        (lambda v: (v, v), TypeError, r"logs an array, \(\) float32; logs must be a dict"),
        (lambda v: (v, [v]), TypeError, r"logs a list, .*logs must be a dict"),
        (lambda v: (v, {"a": jnp.ones(2)}), ValueError, r"loss_fn's logs\['a'\] must be a scalar"),
    ],
    ids=["none", "triple", "array-logs", "list-logs", "vector-log"],
)
def test_a_bad_loss_fn_result_names_loss_fn_and_what_it_returned(ret, error, match, no_compiles):
    model = mlp()
    before = leaves(model)
    with pytest.raises(error, match=match):
        T.fit(model, blobs(n=16), loss_fn=lambda m, b: ret(_squares(m, b)), **KW)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_an_error_inside_loss_fn_keeps_its_type_and_says_how_loss_fn_is_called(no_compiles):
    with pytest.raises(TypeError, match="unsupported operand") as info:
        T.fit(mlp(), blobs(n=16), loss_fn=lambda pred, y: ((pred - y) ** 2).mean(), **KW)
    assert any("for loss(predictions, y) use loss=" in n for n in info.value.__notes__)


def test_a_custom_loss_must_return_a_scalar_and_be_written_with_jax_numpy(no_compiles):
    with pytest.raises(ValueError, match=r"`data`: the loss, loss\(predictions, y\), must return"):
        T.fit(mlp(), blobs(n=16), loss=lambda p, t: p**2, **KW)
    with pytest.raises(
        TypeError, match=r"reads the values of its inputs .*write it with jax.numpy"
    ):
        T.fit(mlp(), blobs(n=16), loss=lambda p, t: np.mean(np.asarray(p)), **KW)


def test_classification_metrics_refuse_continuous_targets(no_compiles):
    x, _ = blobs(n=16)
    t = np.random.default_rng(1).normal(size=(16, 1)).astype(np.float32)
    with pytest.raises(
        ValueError, match=r"metrics \['accuracy'\] compare class labels.*continuous"
    ):
        T.fit(mlp(classes=1), (x, t), loss="mse", metrics=["accuracy"], **KW)
    out = jax.ShapeDtypeStruct((1, 1), jnp.float32)
    soft = np.array([[0.2], [0.9]], np.float32)  # soft binary labels of a classification loss
    setup.check_metric_labels(
        setup.objective("binary_cross_entropy", None, None, None, 0), out, soft
    )
    with pytest.raises(ValueError, match=r"metrics \['f1_macro'\]"):
        setup.check_metric_labels(setup.objective("mse", None, ["f1_macro"], None, 0), out, soft)
    setup.check_metric_labels(setup.objective("mse", None, ["mae"], None, 0), out, t)


def test_the_seed_is_a_count():
    assert setup.check_counts(1, 32, 1, None, 0, seed=np.int64(7)) == (1, 32, 1, None)
    with pytest.raises(TypeError, match=r"`seed` must be an integer, got '42' \(str\)"):
        setup.check_counts(1, 32, 1, None, 0, seed="42")
    with pytest.raises(ValueError, match="`seed` must be >= 0, got -1"):
        setup.check_counts(1, 32, 1, None, 0, seed=-1)
