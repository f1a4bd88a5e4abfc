import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.nn import Flatten, Reshape, Upsample2D

from ._helpers import param_dict


def test_flatten_and_reshape_are_inverse():
    x = jnp.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    flat = Flatten()(x)
    assert flat.shape == (2, 60)
    np.testing.assert_array_equal(flat[1], np.asarray(x[1]).ravel())
    np.testing.assert_array_equal(Reshape((3, 4, 5))(flat), x)
    assert param_dict(Flatten()) == {}


def test_upsample_repeats_pixels():
    x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
    y = Upsample2D((2, 3))(x)[0, :, :, 0]
    np.testing.assert_array_equal(y, np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 3))))


def test_errors():
    with pytest.raises(ValueError, match="factor"):
        Upsample2D(0)
    with pytest.raises(ValueError, match="shape"):
        Reshape(())
    with pytest.raises(AssertionError, match="Upsample2D"):
        Upsample2D(2)(jnp.ones((2, 3)))


def test_flatten_takes_an_empty_batch():
    assert Flatten()(jnp.ones((0, 3, 4))).shape == (0, 12)
