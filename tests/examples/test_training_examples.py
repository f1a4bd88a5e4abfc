"""Smoke tests of the training examples in ``--quick`` mode (tiny subsets, one epoch).

Fashion-MNIST comes from ``$NNJAX_DATA_DIR`` (the ``data_dir`` fixture skips without it).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = (
    "fashion_mnist_mlp",
    "fashion_mnist_cnn",
    "lstm_adding_problem",
    "autoencoder",
    "dp_sgd",
    "char_language_model",
    "seq2seq",
)


def _results(out: Path) -> dict:
    record = json.loads((out / "results.json").read_text())
    assert record["quick"] is True
    assert record["environment"]["jax"]
    return record["results"]


def _png(path: Path, min_bytes: int = 5_000) -> None:
    assert path.exists(), path
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert path.stat().st_size > min_bytes


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_names_the_common_options(load, name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load(name).parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--epochs", "--quick", "--out", "--seed"):
        assert option in text


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_mlp_rows_functional_and_early_stopping(load, data_dir, tmp_path):
    out = tmp_path / "mlp"
    load("fashion_mnist_mlp").main(["--quick", "--rows", "1", "4", "--out", str(out)])
    rows = {row["row"]: row for row in _results(out)["rows"]}
    assert sorted(rows) == [1, 4]
    # Even on 1,024 images, one epoch lifts both well above chance (0.1).
    assert rows[1]["test_accuracy"] > 0.4
    assert rows[4]["test_accuracy"] > 0.4
    assert rows[1]["course_accuracy"] == 0.8242
    assert rows[4]["best_epoch"] == 1
    assert set(rows[4]["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_row_one_is_per_example_sgd(load):
    """One scanned epoch over two examples equals two hand-written SGD steps."""
    import jax

    mlp = load("fashion_mnist_mlp")
    params = mlp.normal_init(jax.random.key(1), sizes=(4, 3, 2))
    xs = np.random.default_rng(0).random((2, 4)).astype(np.float32)
    ys = np.array([1, 0], np.int32)
    expected = params
    for x, y in zip(xs, ys):
        grads = jax.grad(mlp.example_cost)(expected, x, y)
        expected = jax.tree.map(lambda p, g: p - 0.01 * g, expected, grads)
    copy = jax.tree.map(np.array, params)  # sgd_epoch donates its params
    got = mlp.sgd_epoch(jax.tree.map(jax.numpy.asarray, copy), xs, ys, 0.01)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), got, expected)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_cnn_quick(load, data_dir, tmp_path):
    out = tmp_path / "cnn"
    result = load("fashion_mnist_cnn").main(["--quick", "--out", str(out)])
    assert result["test_accuracy"] > 0.3
    assert _results(out)["epochs_run"] == 1


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_lstm_adding_problem_quick(load, tmp_path):
    out = tmp_path / "lstm"
    load("lstm_adding_problem").main(["--quick", "--out", str(out)])
    results = _results(out)
    # Var(u1 + u2) = 1/6 for two independent U(0, 1) values.
    assert abs(results["baseline_mse"] - 1 / 6) < 0.05
    assert set(results["test_mse"]) == {"lstm", "rnn"}
    assert all(math.isfinite(v) for v in results["test_mse"].values())
    _png(out / "learning_curves.png")


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_autoencoder_quick(load, data_dir, tmp_path):
    out = tmp_path / "ae"
    load("autoencoder").main(["--quick", "--out", str(out)])
    mse = _results(out)["test_reconstruction_mse"]
    # Predicting all zeros scores about 0.21 on Fashion-MNIST; the model does better.
    assert 0.0 < mse < 0.15
    for png in ("latent_space.png", "reconstructions.png", "latent_grid.png"):
        _png(out / png)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_dp_sgd_quick_trains_through_loss_fn(load, tmp_path):
    out = tmp_path / "dp"
    dp = load("dp_sgd")
    results = dp.main(["--quick", "--out", str(out)])
    assert _results(out)["steps"] == results["steps"] == 4
    assert 0.0 <= results["test_accuracy"] <= 1.0 and results["epsilon"] > 0
    assert np.isfinite(results["history"]["loss"]).all()
    # more noise costs less privacy
    assert dp.epsilon(0.01, 2.0, 1000, 1e-5) < dp.epsilon(0.01, 1.0, 1000, 1e-5)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_dp_sgd_gradient_is_the_clipped_noised_mean(load):
    """With zero noise, the DP step's gradient is the mean of clipped per-example ones."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import nnjax.train as T
    from nnjax import losses

    dp = load("dp_sgd")
    model = dp.model_for(0)
    rng = np.random.default_rng(0)
    x = rng.random((6, 64)).astype(np.float32)
    y = rng.integers(0, 10, 6).astype(np.int32)
    mask = jnp.array([1, 1, 1, 1, 1, 0], jnp.float32)
    batch = T.Batch(jnp.asarray(x), jnp.asarray(y), mask, mask)
    graphdef, params, rest = T.split_model(model)
    objective = T.make_objective(graphdef, loss_fn=dp.dp_loss_fn(0.5, 0.0))
    grads = jax.grad(lambda p: objective(p, rest, batch)[0])(params)
    per = T.per_example_grads(model, losses.cross_entropy, x[:5], y[:5])
    expected = T.batch_grad(T.clip_per_example(nnx.to_pure_dict(per), 0.5))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        nnx.to_pure_dict(grads),
        expected,
    )
