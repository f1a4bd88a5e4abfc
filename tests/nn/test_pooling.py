import warnings

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn
from nnjax.nn import AvgPool2D, MaxPool2D

from ._helpers import param_dict


@pytest.mark.parametrize(
    ("cls", "op", "kwargs"),
    [
        (MaxPool2D, F.max_pool2d, {}),
        (MaxPool2D, F.max_pool2d, {"stride": 1, "padding": "same"}),
        (AvgPool2D, F.avg_pool2d, {"padding": "SAME"}),
        (AvgPool2D, F.avg_pool2d, {"padding": "SAME", "count_include_pad": True}),
    ],
)
def test_call_is_functional_pool(cls, op, kwargs):
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 3))
    layer = cls((2, 3), **kwargs)
    assert param_dict(layer) == {}
    ref_kwargs = {k: (v.upper() if k == "padding" else v) for k, v in kwargs.items()}
    np.testing.assert_array_equal(layer(x), op(x, (2, 3), **ref_kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_shape": 0}, "window_shape"),
        ({"stride": (1, -2)}, "stride"),
        ({"padding": "full"}, "padding"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaxPool2D(**({"window_shape": 2} | kwargs))


def test_jit_does_not_retrace():
    from ._helpers import assert_jit_traces_once

    assert_jit_traces_once(AvgPool2D(2), jax.numpy.ones((1, 4, 4, 1)))
    assert nnx.state(MaxPool2D(2)) == nnx.State({})


def test_2d_pools_are_the_nd_layers_and_keep_the_old_keyword():
    from nnjax.nn.pooling_nd import _AvgPool, _Pool

    assert issubclass(MaxPool2D, _Pool) and issubclass(AvgPool2D, _AvgPool)
    with pytest.warns(DeprecationWarning, match="window_shape"):
        layer = AvgPool2D(window=2, count_include_pad=True)
    assert layer.window_shape == (2,) and layer.count_include_pad is True


WINDOW_POOLS = [nn.MaxPool1D, nn.AvgPool1D, MaxPool2D, AvgPool2D, nn.MaxPool3D, nn.AvgPool3D]


@pytest.mark.parametrize("cls", WINDOW_POOLS, ids=lambda cls: cls.__name__)
def test_layers_take_window_shape_and_pass_the_ops_window(cls, monkeypatch):
    """Layers keep Flax's ``window_shape``; the functional op gets its own ``window=``."""
    x = jax.random.normal(jax.random.key(0), (1,) + (4,) * int(cls.__name__[-2]) + (2,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # outside code runs with warnings as errors
        layer = cls(window_shape=2, stride=1, padding="SAME")
        np.testing.assert_array_equal(layer(x), layer._op(x, window=2, stride=1, padding="SAME"))
    seen = {}

    def op(x, *, window, stride, padding, **kwargs):  # keywords only: the names must match
        seen.update(window=window, stride=stride, padding=padding)
        return x

    monkeypatch.setattr(cls, "_op", staticmethod(op))
    layer(x)
    assert seen == {"window": 2, "stride": 1, "padding": "SAME"}
