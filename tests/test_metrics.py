"""nnjax.metrics: accuracy in its three label forms, checked against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import metrics

rng = np.random.default_rng(1)
LOGITS = rng.normal(size=(50, 4)).astype(np.float32)
LABELS = rng.integers(0, 4, size=50)


def test_accuracy_integer_labels():
    expected = np.mean(LOGITS.argmax(-1) == LABELS)
    np.testing.assert_allclose(metrics.accuracy(LOGITS, LABELS), expected)


def test_accuracy_one_hot_labels():
    one_hot = np.eye(4)[LABELS]
    np.testing.assert_allclose(
        metrics.accuracy(LOGITS, one_hot), np.mean(LOGITS.argmax(-1) == LABELS)
    )


def test_accuracy_binary_logits():
    z = rng.normal(size=(50,)).astype(np.float32)
    y = rng.integers(0, 2, size=50)
    expected = np.mean((z > 0) == (y == 1))
    np.testing.assert_allclose(metrics.accuracy(z, y), expected)
    np.testing.assert_allclose(metrics.accuracy(z[:, None], y), expected)


def test_accuracy_mismatch_raises():
    with pytest.raises(ValueError, match="accuracy: cannot match"):
        metrics.accuracy(jnp.zeros((5, 1)), jnp.zeros((4,)))


def test_accuracy_under_jit_and_vmap():
    jitted = jax.jit(metrics.accuracy)
    np.testing.assert_allclose(jitted(LOGITS, LABELS), metrics.accuracy(LOGITS, LABELS))
    per_row = jax.vmap(metrics.accuracy)(LOGITS[:, None, :], LABELS[:, None])
    np.testing.assert_array_equal(per_row, (LOGITS.argmax(-1) == LABELS).astype(np.float32))


def test_get():
    assert metrics.get("acc") is metrics.accuracy
    with pytest.raises(ValueError, match=r"unknown metric 'f1'.*accuracy"):
        metrics.get("f1")
