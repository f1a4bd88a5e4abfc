"""Ready models check their call inputs and name them: ConvAutoencoder and WideAndDeep."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax.nn import ConvAutoencoder, WideAndDeep


@pytest.fixture(scope="module")
def cae():
    return ConvAutoencoder((12, 8), (3, 5), 2, rngs=nnx.Rngs(0))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize(
    "shape",
    [
        (2, 8, 12),  # transposed: same flat size, was accepted silently
        (2, 12, 9),  # was "dense: argument `x` has shape (2, 45)"
        (2, 12, 8, 3),  # wrong channels
        (12, 8),  # no batch axis
    ],
)
@pytest.mark.parametrize("method", ["__call__", "encode"])
def test_conv_autoencoder_checks_images_against_input_shape(cae, shape, method):
    call = getattr(cae, method)
    match = (
        rf"ConvAutoencoder: argument `x` has shape {re.escape(str(shape))}, "
        r"expected \(B, 12, 8, 1\) or \(B, 12, 8\): the model was built for input_shape "
        r"\(12, 8, 1\)"
    )
    with pytest.raises(nnjax.ShapeError, match=match):
        call(jnp.ones(shape))


@pytest.mark.slow
def test_conv_autoencoder_check_holds_under_jit(cae):
    call = nnx.jit(lambda m, x: m(x))
    with pytest.raises(nnjax.ShapeError, match=r"ConvAutoencoder: argument `x` has shape"):
        call(cae, jnp.ones((2, 8, 12)))
    x = jax.random.uniform(jax.random.key(0), (2, 12, 8))
    np.testing.assert_allclose(call(cae, x), cae(x), rtol=1e-5, atol=1e-6)
    # (B, H, W, 1) and (B, H, W) give the same codes.
    np.testing.assert_allclose(cae.encode(x[..., None]), cae.encode(x), rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def two_inputs():
    return WideAndDeep(5, (4,), 1, deep_features=3, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    "deep_shape",
    [
        (3, 3),  # batch mismatch: was a TypeError from jnp.concatenate
        (2, 4),  # wrong width: was "dense: argument `x` has shape (2, 4)"
        (2,),
    ],
)
def test_wide_and_deep_names_x_deep_and_x_wide(two_inputs, deep_shape):
    match = (
        rf"WideAndDeep: argument `x_deep` has shape {re.escape(str(deep_shape))}, "
        r"expected \(2, 3\).*`x_wide` \(shape \(2, 5\)\)"
    )
    with pytest.raises(nnjax.ShapeError, match=match):
        two_inputs(jnp.ones((2, 5)), jnp.ones(deep_shape))


def test_wide_and_deep_batch_mismatch_raises_also_under_jit(two_inputs):
    call = nnx.jit(lambda m, a, b: m(a, b))
    with pytest.raises(nnjax.ShapeError, match=r"`x_deep` has shape \(3, 3\), expected \(2, 3\)"):
        call(two_inputs, jnp.ones((2, 5)), jnp.ones((3, 3)))
    a, b = jnp.ones((2, 5)), jax.random.normal(jax.random.key(0), (2, 3))
    np.testing.assert_allclose(call(two_inputs, a, b), two_inputs(a, b), rtol=1e-6, atol=1e-6)


def test_wide_and_deep_x_wide_shape_is_named(two_inputs):
    for shape in [(2, 6), (5,)]:
        with pytest.raises(
            nnjax.ShapeError,
            match=r"WideAndDeep: argument `x_wide` has shape .*, expected \(\*, 5\)",
        ):
            two_inputs(jnp.ones(shape), jnp.ones((2, 3)))


def test_wide_and_deep_single_input_model_names_x_deep():
    model = WideAndDeep(5, (4,), 1, rngs=nnx.Rngs(0))
    with pytest.raises(nnjax.ShapeError, match=r"`x_deep` has shape \(2, 7\), expected \(2, 5\)"):
        model(jnp.ones((2, 5)), jnp.ones((2, 7)))
    x = jax.random.normal(jax.random.key(1), (2, 5))
    np.testing.assert_allclose(model(x, x), model(x), rtol=1e-6, atol=1e-6)


def test_wide_and_deep_flattens_a_multi_axis_deep_input():
    model = WideAndDeep(2, (4,), 1, deep_features=6, rngs=nnx.Rngs(0))
    a, b = jnp.ones((3, 2)), jax.random.normal(jax.random.key(2), (3, 2, 3))
    np.testing.assert_allclose(model(a, b), model(a, b.reshape(3, 6)), rtol=1e-6, atol=1e-6)
    with pytest.raises(nnjax.ShapeError, match=r"`x_deep` has shape \(3, 2, 4\)"):
        model(a, jnp.ones((3, 2, 4)))
