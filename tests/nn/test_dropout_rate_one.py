"""Every layer with a dropout rate takes ``1.0``, as ``F.dropout``, Flax and PyTorch do.

Before, ``nnjax.nn`` refused 1.0 (``[0, 1)``) although ``F.dropout`` took it, and a rate
of the wrong type was a ``ValueError`` where ``F.dropout`` says ``TypeError``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax import nn

X = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 6)), jnp.float32)


def test_dropout_rate_one_matches_flax_without_any_stream():
    ours = nn.Dropout(1.0)  # no rngs: at rate 1 no mask is drawn (as Flax)
    theirs = nnx.Dropout(rate=1.0)
    np.testing.assert_allclose(ours(X), theirs(X), rtol=0, atol=0)
    np.testing.assert_allclose(ours(X), np.zeros(X.shape), rtol=0, atol=0)
    ours.eval()
    np.testing.assert_allclose(ours(X), X, rtol=0, atol=0)


def test_dropout_rate_one_draws_no_key_and_has_zero_finite_gradients():
    layer = nn.Dropout(1.0, broadcast_dims=(1,), rngs=nnx.Rngs(dropout=3))
    count = int(layer.rngs.count[...])
    grad = jax.grad(lambda x: jnp.sum(layer(x) * 2.0))(X)
    np.testing.assert_allclose(grad, np.zeros(X.shape), rtol=0, atol=0)
    assert int(layer.rngs.count[...]) == count  # the stream did not advance (as Flax)


@pytest.mark.slow
def test_attention_layers_rate_one():
    mha = nn.MultiHeadAttention(2, 6, dropout_rate=1.0, rngs=nnx.Rngs(params=0))
    bias = mha.out["bias"][...]
    np.testing.assert_allclose(mha(X), np.broadcast_to(bias, X.shape), rtol=0, atol=0)
    block = nn.TransformerEncoderBlock(6, 2, dropout_rate=1.0, rngs=nnx.Rngs(params=0))
    np.testing.assert_allclose(block(X), X, rtol=0, atol=0)  # both branches dropped
    block.eval()
    assert not np.allclose(block(X), X, atol=1e-3)


@pytest.mark.slow
def test_model_rates_of_one_build_and_drop_everything_while_training():
    mlp = nn.MLP(6, [5], 3, dropout=1.0, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(mlp(X[:, 0]), np.zeros((2, 3)), rtol=0, atol=0)  # zero bias
    cnn = nn.CNN((8, 8, 1), 3, conv_dropout=1.0, dropout=1.0, rngs=nnx.Rngs(0))
    assert cnn(jnp.ones((2, 8, 8, 1))).shape == (2, 3)
    seq = nn.SequenceClassifier(6, 4, 3, dropout=1.0, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(seq(X), np.zeros((2, 3)), rtol=0, atol=0)


def _makers():
    r = lambda: nnx.Rngs(0)
    return {
        "Dropout: `rate`": lambda v: nn.Dropout(v),
        "MultiHeadAttention: `dropout_rate`": lambda v: nn.MultiHeadAttention(
            2, 4, dropout_rate=v, rngs=r()
        ),
        "TransformerEncoderBlock: `dropout_rate`": lambda v: nn.TransformerEncoderBlock(
            4, 2, dropout_rate=v, rngs=r()
        ),
        "MLP: `dropout`": lambda v: nn.MLP(3, [4], 2, dropout=v, rngs=r()),
        "CNN: `dropout`": lambda v: nn.CNN((8, 8, 1), 2, dropout=v, rngs=r()),
        "CNN: `conv_dropout`": lambda v: nn.CNN((8, 8, 1), 2, conv_dropout=v, rngs=r()),
        "SequenceClassifier: `dropout`": lambda v: nn.SequenceClassifier(
            3, 4, 2, dropout=v, rngs=r()
        ),
        "SequenceRegressor: `dropout`": lambda v: nn.SequenceRegressor(
            3, 4, 2, dropout=v, rngs=r()
        ),
    }


MAKERS = _makers()


@pytest.mark.parametrize("where", list(MAKERS))
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-0.1, ValueError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        (np.bool_(False), TypeError),
        ("half", TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_rate_names_the_layer_the_argument_and_the_value(where, value, error):
    with pytest.raises(error, match=rf"^{where} must be .*, got {value!r}$"):
        MAKERS[where](value)


@pytest.mark.parametrize("where", list(MAKERS))
@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, np.float32(1.0), np.int64(1)])
def test_the_ends_of_the_interval_are_accepted(where, value):
    MAKERS[where](value)
