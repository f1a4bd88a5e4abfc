"""Renamed keyword arguments keep working for one release, with a warning at the caller."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax import _deprecation


def test_renamed_args_maps_the_old_name_and_warns_at_the_caller():
    @_deprecation.renamed_args(size="num_features")
    def init(num_features=1):
        return num_features

    with pytest.warns(
        DeprecationWarning, match=r"init: `size` is deprecated.*`num_features`"
    ) as rec:
        assert init(size=4) == 4
    assert rec[0].filename == __file__
    assert init(num_features=5) == 5 and init(6) == 6
    with pytest.raises(TypeError, match=r"both `size`.*and `num_features`"):
        init(size=1, num_features=2)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool3d])
def test_pools_take_window_shape_and_the_old_window(op):
    spatial = int(op.__name__[-2])  # 1, 2 or 3 spatial axes
    x = jax.random.normal(jax.random.key(0), (1,) + (4,) * spatial + (2,))
    new = op(x, window_shape=2)
    with pytest.warns(DeprecationWarning, match="`window` is deprecated"):
        old = op(x, window=2)
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("init", [F.layer_norm_init, F.rms_norm_init])
def test_norm_inits_take_num_features(init):
    key = jax.random.key(0)
    with pytest.warns(DeprecationWarning, match=r"`features` is deprecated.*`num_features`"):
        old = init(key, features=3)
    assert jax.tree.map(jnp.shape, old) == jax.tree.map(jnp.shape, init(key, num_features=3))


def test_batch_norm_init_takes_num_features():
    with pytest.warns(DeprecationWarning, match="`features` is deprecated"):
        params, stats = F.batch_norm_init(jax.random.key(0), features=2)
    assert params["scale"].shape == stats["var"].shape == (2,)
