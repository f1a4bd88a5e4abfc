"""Batch statistics over the real rows of a padded batch (``F.batch_norm(mask=...)``).

The masked moments must equal those of the real rows alone (NumPy reference), the
padded rows must not move the running statistics or the real rows' outputs and
gradients, and :func:`F.batch_mask` must reach :class:`nnjax.nn.BatchNorm` only for
inputs whose first axis is the batch's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax import nn
from nnjax.errors import ShapeError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 2, 3)).astype(np.float32)  # (B, T, F): rows 4 and 5 are padding
MASK = np.array([1, 1, 1, 1, 0, 0], np.float32)


def _real_rows_stats(x):
    real = x[MASK > 0].reshape(-1, x.shape[-1]).astype(np.float64)
    return real.mean(axis=0), real.var(axis=0)


def test_masked_statistics_are_the_real_rows():
    params, stats = F.batch_norm_init(jax.random.key(0), 3)
    padded = X.copy()
    padded[4:] = 100.0  # padding far from the data: any leak shows
    y, new = F.batch_norm(params, stats, padded, training=True, momentum=0.0, mask=MASK)
    mean, var = _real_rows_stats(padded)
    np.testing.assert_allclose(new["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["var"], var, rtol=1e-5, atol=1e-6)
    expect = (padded[:4] - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(y[:4], expect, rtol=1e-4, atol=1e-5)
    y_real, _ = F.batch_norm(params, stats, padded[:4], training=True, momentum=0.0)
    np.testing.assert_allclose(y[:4], y_real, rtol=1e-5, atol=1e-6)  # as the real batch alone


def test_gradients_of_the_real_rows_ignore_the_padding():
    params, stats = F.batch_norm_init(jax.random.key(0), 3)

    def real_loss(x, mask):
        y, _ = F.batch_norm(params, stats, x, training=True, mask=mask)
        return jnp.sum(jnp.sin(y) * mask[:, None, None])

    g_masked = jax.grad(real_loss)(jnp.asarray(X), jnp.asarray(MASK))
    g_alone = jax.grad(real_loss)(jnp.asarray(X[:4]), jnp.ones(4))
    np.testing.assert_allclose(g_masked[:4], g_alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g_masked[4:], 0.0)


@pytest.mark.slow  # float64 finite differences of every input: runs in CI's slow step
def test_masked_batch_norm_check_grads():
    params, stats = F.batch_norm_init(jax.random.key(0), 3)
    with jax.enable_x64(True):
        x64 = jnp.asarray(X, jnp.float64)
        f = lambda x: F.batch_norm(params, stats, x, training=True, mask=jnp.asarray(MASK))[0]
        check_grads(f, (x64,), order=1, modes=("rev",))


def test_sync_batch_norm_with_masks_of_unequal_shards():
    params, stats = F.batch_norm_init(jax.random.key(0), 3)
    shards, masks = X.reshape(2, 3, 2, 3), MASK.reshape(2, 3)  # 3 and 1 real rows

    def one(x, m):
        return F.batch_norm(params, stats, x, training=True, momentum=0.0, mask=m, axis_name="d")

    _, synced = jax.vmap(one, axis_name="d")(shards, masks)
    mean, var = _real_rows_stats(X)
    np.testing.assert_allclose(synced["mean"][0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(synced["var"][1], var, rtol=1e-5, atol=1e-6)


def test_a_mask_of_the_wrong_shape_is_a_shape_error():
    params, stats = F.batch_norm_init(jax.random.key(0), 3)
    with pytest.raises(ShapeError, match=r"batch_norm: argument `mask` has shape \(5,\)"):
        F.batch_norm(params, stats, X, training=True, mask=np.ones(5, np.float32))


def test_the_layer_reads_the_block_for_batch_major_inputs_only():
    padded = X.copy()
    padded[4:] = 100.0
    layer = lambda: nn.BatchNorm(3, momentum=0.0, rngs=nnx.Rngs(0))
    with F.batch_mask(jnp.asarray(MASK)):
        masked = layer()
        masked(padded)
        flat = layer()
        flat(padded.reshape(12, 3))  # reshaped inside a model: not batch-major, every row
    mean, _ = _real_rows_stats(padded)
    np.testing.assert_allclose(masked.mean[...], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat.mean[...], padded.reshape(12, 3).mean(0), rtol=1e-5, atol=1e-5)
    explicit = layer()
    explicit(padded, mask=MASK)  # Flax's keyword, outside any block
    np.testing.assert_allclose(explicit.mean[...], mean, rtol=1e-5, atol=1e-6)
    assert F.current_batch_mask() is None
