"""Tests for nnjax.functional.prelu: PyTorch reference, transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms


@pytest.mark.parametrize("channels", [1, 3])
def test_matches_torch_on_channels_last(channels):
    x = rand((2, 4, 3), 0)
    params = {"negative_slope": rand((channels,), 1)}
    torch_fn = lambda p, x: torch.nn.functional.prelu(
        x.movedim(-1, 1), p["negative_slope"]
    ).movedim(1, -1)
    assert_matches_torch(F.prelu, torch_fn, (params, x))


def test_init_and_transforms(key):
    params = F.prelu_init(key, 3)
    np.testing.assert_array_equal(params["negative_slope"], [0.25] * 3)
    assert_transforms(F.prelu, params, jax.random.normal(key, (2, 3)))


def test_errors():
    with pytest.raises(
        AssertionError, match=r"prelu: argument `x` has shape \(4, 3\), expected \(\.\.\., 2\)"
    ):
        F.prelu({"negative_slope": jnp.ones(2)}, jnp.ones((4, 3)))
    with pytest.raises(AssertionError, match=r"prelu: argument `params\['negative_slope'\]`"):
        F.prelu({"negative_slope": jnp.ones((1, 3))}, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="prelu_init: `num_parameters` must be a positive int"):
        F.prelu_init(None, 0)
    with pytest.raises(TypeError, match="prelu: argument `x` has dtype int32"):
        F.prelu(F.prelu_init(None), jnp.ones((2, 1), jnp.int32))
    for init in ("a", None, True, 1j):
        with pytest.raises(TypeError, match=r"prelu_init: `init` must be a real number"):
            F.prelu_init(None, 2, init=init)
    np.testing.assert_array_equal(F.prelu_init(None, 2, init=jnp.float32(0.1))["negative_slope"],
                                  jnp.full(2, 0.1, jnp.float32))  # fmt: skip


def test_misspelt_or_missing_slope_key_is_named():
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match=r"unexpected key 'slope'.*expected keys: 'negative_"):
        F.prelu({"slope": jnp.ones(3)}, x)
    with pytest.raises(KeyError, match=r"prelu: `params` has no key 'negative_slope'"):
        F.prelu({}, x)


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_init_rejects_non_positive_sizes(n):
    with pytest.raises(ValueError, match=rf"`num_parameters` must be a positive int, got {n!r}"):
        F.prelu_init(jax.random.key(0), n)
