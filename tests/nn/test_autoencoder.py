import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Autoencoder, ConvAutoencoder, Upsample2D

from ._helpers import assert_jit_traces_once, param_dict


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_dense_autoencoder_encode_decode():
    model = Autoencoder(12, (6,), 2, rngs=nnx.Rngs(0))
    p = param_dict(model)
    x = jax.random.uniform(jax.random.key(1), (3, 3, 4))
    z = F.dense(
        p["encoder"]["layers"][1], jax.nn.relu(F.dense(p["encoder"]["layers"][0], x.reshape(3, 12)))
    )
    np.testing.assert_allclose(model.encode(x), z, rtol=1e-5, atol=1e-5)
    r = jax.nn.relu(F.dense(p["decoder"]["layers"][0], z))
    r = jax.nn.sigmoid(F.dense(p["decoder"]["layers"][1], r))
    np.testing.assert_allclose(model.decode(z), r, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(x), r.reshape(3, 3, 4), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_conv_autoencoder_shapes_and_code():
    model = ConvAutoencoder((8, 4), (2, 3), latent=2, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (2, 8, 4))
    enc = model.encoder.layers
    h = enc[1](enc[0](x[..., None]))
    assert h.shape == (2, 2, 1, 3)  # two stride-2 convs
    np.testing.assert_allclose(model.encode(x), enc[3](h.reshape(2, -1)), rtol=1e-5, atol=1e-5)
    assert isinstance(model.decoder.layers[2], Upsample2D)
    y = jax.jit(lambda x: model(x))(x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0  # sigmoid output
    assert model.decode(jnp.zeros((5, 2))).shape == (5, 8, 4, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Autoencoder: `in_features` must be a positive int"):
        Autoencoder(0, (4,), 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*len\\(conv_features\\) = 4"):
        ConvAutoencoder((6, 8), (2, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="latent"):
        Autoencoder(4, (3,), 0, rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(
        ConvAutoencoder((4, 4), (2,), latent=2, rngs=nnx.Rngs(0)), jnp.ones((2, 4, 4))
    )
