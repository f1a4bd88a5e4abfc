import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.errors import ShapeError
from nnjax.nn import CNN, BatchNorm, Dropout

from ._helpers import assert_jit_traces_once, assert_same_model, param_dict

SMALL = {"conv_features": (2, 3), "dense": (4,)}


@pytest.mark.slow
def test_matches_functional_composition():
    model = CNN((8, 8), 3, **SMALL, rngs=nnx.Rngs(0))
    p = param_dict(model)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8))
    h = x[..., None]
    for i in (0, 2):  # conv, pool, conv, pool
        h = F.max_pool2d(jax.nn.relu(F.conv2d(p["features"]["layers"][i], h)), 2)
    h = jax.nn.relu(F.dense(p["head"]["layers"][0], h.reshape(2, -1)))
    np.testing.assert_allclose(model(x), F.dense(p["head"]["layers"][1], h), rtol=1e-5, atol=1e-5)
    assert p["head"]["layers"][0]["kernel"].shape == (2 * 2 * 3, 4)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_batch_norm_dropout_and_train_eval():
    model = CNN(
        (4, 4, 2),
        2,
        **SMALL,
        pool="avg",
        batch_norm=True,
        dropout=0.5,
        conv_dropout=0.5,
        rngs=nnx.Rngs(0),
    )
    layers = model.features.layers
    assert any(isinstance(m, BatchNorm) for m in layers)
    assert any(isinstance(m, Dropout) and m.broadcast_dims == (1, 2) for m in layers)
    x = jax.random.normal(jax.random.key(2), (3, 4, 4, 2))
    before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    call = nnx.jit(lambda m, x: m(x))  # one compile per mode instead of op-by-op dispatch
    model.eval()
    np.testing.assert_array_equal(call(model, x), call(model, x))
    unchanged = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    chex_equal = jax.tree.map(np.array_equal, before, unchanged)
    assert all(jax.tree.leaves(chex_equal))
    model.train()
    assert not np.allclose(call(model, x), call(model, x))
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, before, after)))


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_deterministic_given_seed_and_mixed_precision():
    a = CNN((4, 4), 2, **SMALL, dropout=0.2, rngs=nnx.Rngs(3))
    b = CNN((4, 4), 2, **SMALL, dropout=0.2, rngs=nnx.Rngs(3))
    assert_same_model(a, b)
    c = CNN((4, 4), 2, **SMALL, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert c(jnp.ones((1, 4, 4))).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (4,)}, "input_shape"),
        ({"conv_features": (2, 0)}, r"conv_features\[1\]"),
        ({"pool": "median"}, "pool.*max, avg"),
        ({"activation": "nope"}, "known"),
        ({"out_features": 0}, r"CNN: `out_features` must be a positive int, got 0"),
        ({"dropout": -0.1}, r"CNN: `dropout` must be in \[0, 1\], got -0.1"),
        ({"pool_window": 0}, r"CNN: `pool_window` must be a positive int or a pair .*got 0"),
        ({"kernel_size": (3, 0)}, r"CNN: `kernel_size` must be a positive int or a pair"),
        ({"kernel_size": (3,)}, r"CNN: `kernel_size` .*got \(3,\)"),  # was conv2d_init's
        ({"pool_window": (2, 2, 2)}, r"CNN: `pool_window` .*got \(2, 2, 2\)"),  # MaxPool2D's
        ({"padding": "FULL"}, r"CNN: `padding` must be 'SAME', 'VALID'.*got 'FULL'"),
        ({"padding": -1}, r"CNN: `padding` must be 'SAME', 'VALID', a non-negative int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNN(**({"input_shape": (4, 4), "out_features": 2} | SMALL | kwargs), rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(
        CNN((4, 4), 2, **SMALL, batch_norm=True, rngs=nnx.Rngs(0)), jnp.ones((2, 4, 4))
    )


def test_channels_first_input_shape_is_named():
    with (
        pytest.warns(UserWarning, match=r"input_shape \(1, 28, 28\) reads as 1x28 images"),
        pytest.raises(ValueError, match=r"CNN: input_shape \(1, 28, 28\) \(is it channels-first"),
    ):
        CNN((1, 28, 28), 10, **SMALL, rngs=nnx.Rngs(0))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_channels_first_shape_that_builds_warns():
    """PyTorch's CIFAR layout built (as 3x32 images of 32 channels) and trained silently."""
    words = (
        r"^CNN: input_shape \(3, 32, 32\) reads as 3x32 images of 32 channels \(nnjax is "
        r"channels-last\); for channels-first \(C, H, W\) images pass "
        r"input_shape=\(32, 32, 3\)"
    )
    with pytest.warns(UserWarning, match=words) as caught:
        CNN((3, 32, 32), 10, conv_features=(8,), rngs=nnx.Rngs(0))
    assert caught[0].filename == __file__  # the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in [(32, 32, 3), (1, 128, 9), (4, 4, 64), (2, 100, 8)]:  # channels-last
            CNN(shape, 10, conv_features=(8,), pool_window=1, rngs=nnx.Rngs(0))


def test_input_shape_too_small_for_the_blocks_is_named():
    with pytest.raises(
        ValueError,
        match=r"CNN: input_shape \(8, 8, 1\) is too small for conv_features=\(4, 4, 4, 4\)",
    ):
        CNN((8, 8), 10, conv_features=(4, 4, 4, 4), padding="VALID", rngs=nnx.Rngs(0))


@pytest.mark.slow
def test_images_of_another_shape_are_named_also_under_jit():
    model = CNN((8, 8), 3, **SMALL, rngs=nnx.Rngs(0))
    call = nnx.jit(lambda m, x: m(x))
    for fn in (model, lambda x: call(model, x)):
        with pytest.raises(
            ShapeError,
            match=r"CNN: argument `x` has shape \(2, 12, 12\), expected \(B, 8, 8, 1\) or \(B, 8",
        ):
            fn(jnp.ones((2, 12, 12)))
    rgb = CNN((8, 8, 3), 3, **SMALL, rngs=nnx.Rngs(0))
    with pytest.raises(
        ShapeError, match=r"CNN: argument `x` has shape \(2, 8, 8\), expected \(B, 8, 8, 3\):"
    ):
        rgb(jnp.ones((2, 8, 8)))
    x = jax.random.normal(jax.random.key(0), (2, 8, 8))
    np.testing.assert_allclose(call(model, x), model(x[..., None]), rtol=1e-5, atol=1e-6)
