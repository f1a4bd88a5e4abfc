import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm

from ._helpers import assert_jit_traces_once, assert_params_match


def test_batch_norm_state_is_batch_norm_init():
    bn = BatchNorm(3, rngs=nnx.Rngs(0))
    params, stats = F.batch_norm_init(nnx.Rngs(0).params(), 3)
    assert_params_match(bn, params)
    actual_stats = nnx.to_pure_dict(nnx.state(bn, nnx.BatchStat))
    assert jax.tree.structure(actual_stats) == jax.tree.structure(stats)
    jax.tree.map(np.testing.assert_array_equal, actual_stats, stats)


def test_batch_norm_train_updates_stats_and_eval_uses_them():
    bn = BatchNorm(3, momentum=0.9, rngs=nnx.Rngs(0))
    params, stats = F.batch_norm_init(jax.random.key(0), 3)
    x = jax.random.normal(jax.random.key(1), (8, 2, 2, 3)) * 3.0 + 1.0
    y_ref, stats_ref = F.batch_norm(params, stats, x, training=True, momentum=0.9)
    np.testing.assert_allclose(bn(x), y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.mean[...], stats_ref["mean"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bn.var[...], stats_ref["var"], rtol=1e-6, atol=1e-6)
    bn.eval()
    y_eval, _ = F.batch_norm(params, stats_ref, x, training=False)
    np.testing.assert_allclose(bn(x), y_eval, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.mean[...], stats_ref["mean"], rtol=1e-6, atol=1e-6)  # unchanged
    assert not np.allclose(y_eval, y_ref)


def test_batch_norm_mixed_precision_and_errors():
    bn = BatchNorm(2, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert bn(jnp.ones((4, 2))).dtype == jnp.bfloat16
    assert bn.mean[...].dtype == jnp.float32
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm(0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(2, momentum=1.5, rngs=nnx.Rngs(0))


def test_layer_norm_is_layer_norm():
    ln = LayerNorm(4, epsilon=1e-3, rngs=nnx.Rngs(0))
    params = F.layer_norm_init(jax.random.key(0), 4)
    assert_params_match(ln, params)
    x = jax.random.normal(jax.random.key(2), (3, 4))
    np.testing.assert_allclose(ln(x), F.layer_norm(params, x, epsilon=1e-3), rtol=1e-6, atol=1e-6)


def test_jit_does_not_retrace():
    assert_jit_traces_once(BatchNorm(2, rngs=nnx.Rngs(0)), jnp.ones((4, 2)))
    assert_jit_traces_once(LayerNorm(2, rngs=nnx.Rngs(0)), jnp.ones((4, 2)))


@pytest.mark.parametrize("cls", [BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm])
@pytest.mark.parametrize("epsilon", [0.0, -1e-5])
def test_epsilon_must_be_positive_and_is_named_as_the_layers(cls, epsilon):
    kw = {"num_groups": 2} if cls is GroupNorm else {}
    with pytest.raises(ValueError, match=rf"{cls.__name__}: `epsilon` must be > 0, got {epsilon}"):
        cls(4, epsilon=epsilon, **kw, rngs=nnx.Rngs(0))


def test_shape_errors_blame_x_and_numpy_sizes_work():
    layer = LayerNorm(np.int64(4), rngs=nnx.Rngs(0))
    with pytest.raises(
        AssertionError, match=r"layer_norm: argument `x` has shape \(2, 5\), expected"
    ):
        layer(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"GroupNorm: `num_features` must be a positive int"):
        GroupNorm(0, num_groups=2, rngs=nnx.Rngs(0))
