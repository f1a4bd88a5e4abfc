"""Bad inputs to dropout, embeddings, attention, recurrences and positional encodings.

Each case asserts the error type and the words that name the culprit (the argument and
what the user passed); the dense, convolution, pooling and normalisation cases are in
test_reliability_functional.py.
"""

import jax.numpy as jnp
import pytest

import nnjax.functional as F
from nnjax.errors import ShapeError
from tests.reliability import _inputs as I
from tests.reliability._corpus import case, check, params

CASES = [
    # --- dropout
    case("dropout-rate-above", lambda: F.dropout(I.K, I.X2, 1.5), ValueError, "rate", "1.5"),
    case("dropout-rate-negative", lambda: F.dropout(I.K, I.X2, -0.1), ValueError, "rate", "-0.1"),
    case("dropout-rate-nan", lambda: F.dropout(I.K, I.X2, float("nan")), ValueError, "rate", "nan"),
    case("dropout-rate-string", lambda: F.dropout(I.K, I.X2, "0.5"), TypeError, "rate", "'0.5'"),
    case("dropout-rate-bool", lambda: F.dropout(I.K, I.X2, True), TypeError, "rate", "True"),
    case(
        "dropout-rate-vector",
        lambda: F.dropout(I.K, I.X2, jnp.array([0.1, 0.2])),
        TypeError,
        "rate",
    ),
    case(
        "dropout-int-x",
        lambda: F.dropout(I.K, jnp.ones(3, jnp.int32), 0.5),
        TypeError,
        "x",
        "int32",
    ),
    case(
        "dropout-broadcast-dims",
        lambda: F.dropout(I.K, I.X2, 0.5, broadcast_dims=(2,)),
        ValueError,
        "broadcast_dims",
        "(2,)",
    ),
    # --- embedding, prelu, attention
    case(
        "embedding-float-ids", lambda: F.embedding(I.EMB, jnp.ones(3)), TypeError, "ids", "float32"
    ),
    case(
        "embedding-misspelt",
        lambda: F.embedding({"embeddings": I.EMB["embedding"]}, jnp.array([1])),
        (KeyError, ValueError),
        "'embeddings'",
    ),
    case(
        "embedding-init-zero",
        lambda: F.embedding_init(I.K, 0, 4),
        ValueError,
        "num_embeddings",
        "0",
    ),
    case(
        "prelu-misspelt",
        lambda: F.prelu({"slope": jnp.ones(3)}, I.X2),
        (KeyError, ValueError),
        "'slope'",
        "negative_slope",
    ),
    case(
        "prelu-shape",
        lambda: F.prelu({"negative_slope": jnp.ones(4)}, I.X2),
        ShapeError,
        "negative_slope",
        "(4,)",
    ),
    case(
        "attention-dropout-without-key",
        lambda: F.multi_head_attention(I.ATT, jnp.ones((1, 5, 4)), dropout_rate=0.5),
        ValueError,
        "key",
        "dropout_rate",
    ),
    case(
        "attention-features",
        lambda: F.multi_head_attention(I.ATT, jnp.ones((1, 5, 3))),
        ShapeError,
        "x",
        "(1, 5, 3)",
    ),
    case(
        "attention-init-heads",
        lambda: F.multi_head_attention_init(I.K, 5, num_heads=2),
        ValueError,
        "num_heads",
        "2",
    ),
    # --- recurrent
    case("lstm-rank", lambda: F.lstm(I.LSTM, jnp.ones((5, 3))), ShapeError, "(5, 3)"),
    case("lstm-features", lambda: F.lstm(I.LSTM, jnp.ones((2, 5, 7))), ShapeError, "(2, 5, 7)"),
    case(
        "lstm-lengths-shape",
        lambda: F.lstm(I.LSTM, I.SEQ, lengths=jnp.array([1, 2, 3])),
        ValueError,
        "lengths",
        "(3,)",
    ),
    case(
        "lstm-missing-key",
        lambda: F.lstm({k: v for k, v in I.LSTM.items() if k != "w_h"}, I.SEQ),
        (KeyError, ValueError),
        "w_h",
    ),
    case(
        "lstm-init-hidden",
        lambda: F.lstm_cell_init(I.K, 3, 0),
        ValueError,
        "hidden_features",
        "0",
    ),
    # --- positional
    case(
        "sinusoidal-length",
        lambda: F.sinusoidal_position_encoding(-1, 4),
        ValueError,
        "length",
        "-1",
    ),
    case(
        "sinusoidal-odd-features",
        lambda: F.sinusoidal_position_encoding(5, 3),
        ValueError,
        "features",
        "3",
    ),
    case(
        "rotary-odd",
        lambda: F.rotary_position_encoding(jnp.ones((1, 5, 2, 3))),
        ValueError,
        "x.shape[-1]",
        "3",
    ),
]


@pytest.mark.parametrize("c", params(CASES))
def test_bad_functional_input(c):
    check(c)
