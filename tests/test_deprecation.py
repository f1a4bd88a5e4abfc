"""Renamed keyword arguments keep working for one release, with a warning at the caller."""

import inspect
import warnings

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


POOLS = [F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d]


def _pool_input(op):
    spatial = int(op.__name__[-2])  # 1, 2 or 3 spatial axes
    return jax.random.normal(jax.random.key(0), (1,) + (4,) * spatial + (2,))


@pytest.mark.parametrize("op", POOLS, ids=lambda op: op.__name__)
def test_pools_take_window_and_stride_without_a_warning(op):
    """DESIGN: ``max_pool2d``/``avg_pool2d`` (and the 1-D/3-D pools) take ``window``,
    ``stride=window``, ``padding="VALID"``; outside code runs with warnings as errors."""
    params = inspect.signature(op).parameters
    assert list(params)[:4] == ["x", "window", "stride", "padding"]
    assert params["stride"].default is None and params["padding"].default == "VALID"
    x = _pool_input(op)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_keyword = op(x, window=2, stride=2, padding="VALID")
        default_stride = op(x, window=2)
        positional = op(x, 2, 2, "VALID")
    np.testing.assert_array_equal(by_keyword, positional)
    np.testing.assert_array_equal(default_stride, positional)
    assert by_keyword.shape == (1,) + (2,) * (x.ndim - 2) + (2,)


@pytest.mark.parametrize("op", POOLS, ids=lambda op: op.__name__)
def test_pools_keep_window_shape_with_a_warning_naming_window(op):
    x = _pool_input(op)
    with pytest.warns(
        DeprecationWarning,
        match=rf"{op.__name__}: `window_shape` is deprecated .* nnjax 0\.3; use `window`",
    ) as rec:
        old = op(x, window_shape=2, stride=1)
    assert rec[0].filename == __file__
    np.testing.assert_array_equal(old, op(x, window=2, stride=1))
    with pytest.raises(TypeError, match=r"both `window_shape`.*and `window`"):
        op(x, window_shape=2, window=2)


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
