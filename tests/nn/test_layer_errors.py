"""Constructor and call errors of the layers name the layer (or model) and the argument.

Each check runs in the constructor before any parameter is drawn, so a bad initializer,
``use_bias`` or conv size is reported as the layer's argument, not as the argument of
the functional init (``conv1d_init``) or of an inner layer (``Dense``, ``LSTM``) that
the value is handed to.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

R = nnx.Rngs

# (layer name, the argument, builder taking that argument's value)
INIT_ARGS = [
    ("MLP", "kernel_init", lambda v, r: nn.MLP(6, (5,), 3, kernel_init=v, rngs=r)),
    ("Dense", "kernel_init", lambda v, r: nn.Dense(2, 3, kernel_init=v, rngs=r)),
    ("Dense", "bias_init", lambda v, r: nn.Dense(2, 3, bias_init=v, rngs=r)),
    ("Conv1D", "bias_init", lambda v, r: nn.Conv1D(3, 4, bias_init=v, rngs=r)),
    ("Conv2D", "kernel_init", lambda v, r: nn.Conv2D(3, 4, kernel_init=v, rngs=r)),
    ("Conv3D", "kernel_init", lambda v, r: nn.Conv3D(3, 4, kernel_init=v, rngs=r)),
    ("ConvTranspose1D", "kernel_init",
     lambda v, r: nn.ConvTranspose1D(3, 4, kernel_init=v, rngs=r)),
    ("ConvTranspose2D", "bias_init", lambda v, r: nn.ConvTranspose2D(3, 4, bias_init=v, rngs=r)),
    ("ConvTranspose3D", "kernel_init",
     lambda v, r: nn.ConvTranspose3D(3, 4, kernel_init=v, rngs=r)),
    ("MultiHeadAttention", "kernel_init",
     lambda v, r: nn.MultiHeadAttention(2, 4, kernel_init=v, rngs=r)),
    ("TransformerEncoderBlock", "kernel_init",
     lambda v, r: nn.TransformerEncoderBlock(4, 2, kernel_init=v, rngs=r)),
    ("Embedding", "embedding_init", lambda v, r: nn.Embedding(4, 2, embedding_init=v, rngs=r)),
    ("Bidirectional", "kernel_init", lambda v, r: nn.Bidirectional(3, 4, kernel_init=v, rngs=r)),
    ("Bidirectional", "recurrent_init",
     lambda v, r: nn.Bidirectional(3, 4, recurrent_init=v, rngs=r)),
    ("RNN", "recurrent_init", lambda v, r: nn.RNN(3, 4, recurrent_init=v, rngs=r)),
    ("GRU", "kernel_init", lambda v, r: nn.GRU(3, 4, kernel_init=v, rngs=r)),
    ("LSTM", "recurrent_init", lambda v, r: nn.LSTM(3, 4, recurrent_init=v, rngs=r)),
    ("CNN", "kernel_init", lambda v, r: nn.CNN((8, 8), 2, kernel_init=v, rngs=r)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("layer", "arg", "build"), INIT_ARGS, ids=[f"{a}-{b}" for a, b, _ in INIT_ARGS]
)
def test_a_bad_initializer_names_the_layer_and_the_argument(layer, arg, build):
    rngs = R(0)
    unknown = rf"^{layer}: `{arg}`: unknown initializer 'foo'; known: .*glorot_uniform"
    with pytest.raises(ValueError, match=unknown):
        build("foo", rngs)
    wrong_type = rf"^{layer}: `{arg}`: initializer must be a name or a callable, got 3 \(int\)"
    with pytest.raises(TypeError, match=wrong_type):
        build(3, rngs)
    assert rngs.params.count[...] == 0  # raised before any parameter was drawn


def test_a_named_or_callable_initializer_still_builds():
    ones = jax.nn.initializers.ones
    assert np.all(nn.Dense(2, 3, kernel_init=ones, rngs=R(0)).kernel[...] == 1)
    assert nn.Embedding(4, 2, embedding_init=None, rngs=R(0)).embedding.shape == (4, 2)
    layer = nn.LSTM(3, 4, kernel_init="zeros", recurrent_init="ZEROS", rngs=R(0))
    assert not np.any(layer.w_x[...]) and not np.any(layer.w_h[...])


CONV_ARGS = [
    # padding: one axis takes one (lo, hi) pair, ((lo, hi),); a flat pair is shown it
    (lambda: nn.Conv1D(2, 1, 3, padding=(1, 2), rngs=R(0)), ValueError,
     r"^Conv1D: `padding` must be 'SAME', 'VALID', a non-negative int, a 1-tuple of them or "
     r"\(\(lo, hi\),\) of "
     r"non-negative ints, got \(1, 2\); for 1 before and 2 after the sequence, pass "
     r"\(\(1, 2\),\)$"),
    (lambda: nn.Conv1D(3, 4, (3, 3), rngs=R(0)), ValueError,
     r"^Conv1D: `kernel_size` must be a positive int or a 1-tuple of them, got \(3, 3\)$"),
    (lambda: nn.Conv2D(3, 4, (3, 3, 3), rngs=R(0)), ValueError,
     r"^Conv2D: `kernel_size` must be a positive int or a pair of them, got \(3, 3, 3\)$"),
    (lambda: nn.ConvTranspose3D(3, 4, (2, 2), rngs=R(0)), ValueError,
     r"^ConvTranspose3D: `kernel_size` must be a positive int or a triple of them"),
    (lambda: nn.Conv3D(3, 4, stride=(1, 2), rngs=R(0)), ValueError,
     r"^Conv3D: `stride` must be a positive int or a triple of them, got \(1, 2\)$"),
    (lambda: nn.ConvTranspose1D(3, 4, 3, padding=-1, rngs=R(0)), ValueError,
     r"^ConvTranspose1D: `padding` must be 'SAME', 'VALID', a non-negative int or a 1-tuple of "
     r"them, got -1$"),
    (lambda: nn.ConvTranspose2D(3, 4, 3, padding=(1, 2, 3), rngs=R(0)), ValueError,
     r"^ConvTranspose2D: `padding` must be 'SAME', 'VALID', a non-negative int or a pair of "
     r"them, got \(1, 2, 3\)$"),
    (lambda: nn.Conv1D(3, 4, use_bias="no", rngs=R(0)), TypeError,
     r"^Conv1D: `use_bias` must be a Python bool"),
    (lambda: nn.ConvTranspose2D(3, 4, use_bias=1, rngs=R(0)), TypeError,
     r"^ConvTranspose2D: `use_bias` must be a Python bool"),
    (lambda: nn.Dense(3, 4, use_bias="no", rngs=R(0)), TypeError,
     r"^Dense: `use_bias` must be a Python bool"),
    (lambda: nn.MultiHeadAttention(2, 4, use_bias="no", rngs=R(0)), TypeError,
     r"^MultiHeadAttention: `use_bias` must be a Python bool"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "match"), CONV_ARGS)
def test_conv_and_bias_arguments_name_the_layer(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_the_1d_padding_the_message_suggests_pads_lo_and_hi():
    layer = nn.Conv1D(2, 1, 3, padding=((1, 2),), use_bias=False, rngs=R(0))
    x = jax.random.normal(jax.random.key(1), (1, 10, 2))
    expected = jax.lax.conv_general_dilated(
        x, layer.kernel[...], (1,), [(1, 2)], dimension_numbers=("NWC", "WIO", "NWC")
    )
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert expected.shape == (1, 11, 1)


@pytest.mark.parametrize("cls", [nn.SequenceClassifier, nn.SequenceRegressor])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"output_activation": "nope"}, ValueError,
         r"`output_activation`: unknown activation 'nope'; known: "),
        ({"output_activation": 3}, TypeError, r"`output_activation`: activation must be"),
        ({"dtype": jnp.int32}, TypeError, r"`dtype` must be a floating dtype"),
        ({"param_dtype": jnp.int8}, TypeError, r"`param_dtype` must be a floating dtype"),
    ],
)  # fmt: skip
def test_sequence_models_name_themselves(cls, kwargs, error, match):
    with pytest.raises(error, match="^" + re.escape(cls.__name__) + ": " + match):
        cls(3, 4, 2, **kwargs, rngs=R(0))


def test_self_attention_on_a_cross_attention_layer_says_to_pass_context():
    layer = nn.MultiHeadAttention(2, 4, in_kv_features=6, rngs=R(0))
    x = jnp.ones((2, 3, 4))
    match = (
        r"^MultiHeadAttention: `context` is None \(self attention over `x`\), but the layer "
        r"was built for cross attention with in_kv_features=6 \(!= in_features=4\); pass "
        r"`context` of shape \(B, S, 6\)$"
    )
    with pytest.raises(nnjax.ShapeError, match=match):
        layer(x)
    assert layer(x, jnp.ones((2, 5, 6))).shape == (2, 3, 4)
    # in_kv_features equal to in_features is self attention's width: no context needed
    same = nn.MultiHeadAttention(2, 4, in_kv_features=4, rngs=R(0))
    np.testing.assert_allclose(same(x), same(x, x), rtol=1e-6, atol=1e-6)
