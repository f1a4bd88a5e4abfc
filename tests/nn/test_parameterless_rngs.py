"""Layers without parameters accept (and ignore) ``rngs``, as DESIGN's "every layer takes rngs"."""

import inspect
import tempfile

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

# (class, constructor arguments, an input)
CASES = [
    (nn.MaxPool1D, (2,), (1, 8, 3)),
    (nn.MaxPool2D, (2,), (1, 8, 8, 3)),
    (nn.MaxPool3D, (2,), (1, 4, 4, 4, 3)),
    (nn.AvgPool1D, (2,), (1, 8, 3)),
    (nn.AvgPool2D, (2,), (1, 8, 8, 3)),
    (nn.AvgPool3D, (2,), (1, 4, 4, 4, 3)),
    (nn.GlobalAvgPool, (), (2, 5, 5, 3)),
    (nn.GlobalMaxPool, (), (2, 5, 5, 3)),
    (nn.Flatten, (), (2, 4, 4, 3)),
    (nn.Reshape, ((4, 12),), (2, 48)),
    (nn.Upsample2D, (2,), (1, 3, 3, 2)),
]


def _name(value):
    return getattr(value, "__name__", "")


def test_every_exported_layer_takes_rngs():
    # containers (Sequential) take modules, not sizes: the one exception
    missing = [
        name
        for name in nn.__all__
        if inspect.isclass(cls := getattr(nn, name))
        and issubclass(cls, nnx.Module)
        and name != "Sequential"
        and "rngs" not in inspect.signature(cls.__init__).parameters
    ]
    assert missing == []


@pytest.mark.parametrize(("cls", "args", "shape"), CASES, ids=_name)
def test_rngs_is_accepted_and_changes_nothing(cls, args, shape):
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    plain, with_rngs = cls(*args), cls(*args, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(with_rngs(x), plain(x))
    assert nnx.state(with_rngs) == nnx.state(plain)  # nothing stored


@pytest.mark.parametrize(("cls", "args", "shape"), CASES[:3], ids=_name)
def test_a_layer_built_with_rngs_saves_and_loads(cls, args, shape):
    model = nn.Sequential(cls(*args, rngs=nnx.Rngs(0)), nn.Flatten(rngs=nnx.Rngs(1)))
    x = jnp.ones(shape)
    with tempfile.TemporaryDirectory() as tmp:
        nnjax.save(model, f"{tmp}/m")
        np.testing.assert_array_equal(nnjax.load(f"{tmp}/m")(x), model(x))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: nn.MLP(2, (3,), 1, rngs=0), r"MLP: `rngs` must be an nnx.Rngs .*got 0 \(int\)"),
        (lambda: nn.Dense(2, 3, rngs=None), r"Dense: `rngs` must be an nnx.Rngs .*got None"),
        (lambda: nn.Dense(2, 3, rngs=nnx.Rngs(0).params), r"Dense: .*got an RngStream"),
        (lambda: nn.Flatten(rngs=3), r"Flatten: `rngs` must be an nnx.Rngs, an nnx.RngStream"),
    ],
)
def test_a_wrong_rngs_is_named(build, match):
    # Flax's own error is "'int' object has no attribute 'params'"
    with pytest.raises(TypeError, match=match):
        build()


def test_optional_rngs_take_a_stream_or_none():
    assert nn.Dropout(0.1, rngs=nnx.Rngs(0).dropout).rate == 0.1
    assert isinstance(nn.Dropout(0.1, rngs=None), nn.Dropout)
