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


@pytest.mark.parametrize("cls", WINDOW_POOLS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("padding", [1, ((1, 0),), "pairs"])
def test_layers_take_explicit_padding_and_ceil_mode(cls, padding):
    nd = int(cls.__name__[-2])
    if padding == "pairs":
        padding = ((1, 0), (0, 1), (1, 1))[:nd]
    elif isinstance(padding, tuple):
        padding = (1,) * nd  # one int per axis
    x = jax.random.normal(jax.random.key(1), (1,) + (5,) * nd + (2,))
    layer = cls(3, 2, padding, ceil_mode=True)
    want = layer._op(x, window=3, stride=2, padding=padding, ceil_mode=True)
    np.testing.assert_array_equal(layer(x), want)
    assert layer.ceil_mode is True and isinstance(layer.padding, tuple)


def test_resnet_layers_match_torch():
    """nn.MaxPool2d(3, 2, padding=1) and nn.AvgPool2d(3, 2, 1, ceil_mode=True), ported."""
    torch = pytest.importorskip("torch")
    x = np.array(jax.random.normal(jax.random.key(2), (2, 8, 7, 3)))  # writable, for torch
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)
    pairs = [
        (MaxPool2D(3, 2, padding=1), torch.nn.MaxPool2d(3, 2, padding=1)),
        (
            AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=True),
            torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True),
        ),
        (
            AvgPool2D(3, 2, 1, ceil_mode=True),
            torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        ),
    ]
    for ours, theirs in pairs:
        want = theirs(tx).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(ours(x), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": -1}, ValueError, r"MaxPool2D: `padding` must be .*, got -1"),
        ({"padding": 2}, ValueError, r"MaxPool2D: `padding`=2 pads axis 0 by \(2, 2\), more than"),
        ({"padding": ((1, 1),)}, ValueError, r"MaxPool2D: `padding` must be"),
        ({"ceil_mode": "yes"}, TypeError, r"MaxPool2D: `ceil_mode` must be a Python bool"),
    ],
)
def test_bad_padding_and_ceil_mode_raise_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        MaxPool2D(**({"window_shape": 3} | kwargs))


def test_padding_and_ceil_mode_are_saved_and_loaded(tmp_path):
    import nnjax

    model = nn.Sequential(
        MaxPool2D(3, 2, ((1, 1), (0, 1)), ceil_mode=True),
        AvgPool2D((3, 2), 1, (1, 0), ceil_mode=True, count_include_pad=True),
    )
    loaded = nnjax.load(nnjax.save(model, tmp_path / "m"))
    x = jax.random.normal(jax.random.key(3), (2, 8, 7, 3))
    np.testing.assert_array_equal(loaded(x), model(x))
    first, second = loaded.layers[0], loaded.layers[1]
    assert first.padding == ((1, 1), (0, 1)) and first.ceil_mode is True
    assert second.padding == ((1, 1), (0, 0)) and second.count_include_pad is True


def test_padded_layers_do_not_retrace():
    from ._helpers import assert_jit_traces_once

    x = jax.numpy.ones((1, 6, 5, 2))
    assert_jit_traces_once(MaxPool2D(3, 2, ((1, 1), (0, 1)), ceil_mode=True), x)
    assert_jit_traces_once(AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=True), x)
