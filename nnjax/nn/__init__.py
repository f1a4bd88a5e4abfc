"""Flax NNX modules and ready models, composed from :mod:`nnjax.functional`.

Each layer holds its functional parameter dict as ``nnx.Param`` attributes and calls
the functional op, so ``nnx.state(layer, nnx.Param)`` is the dict that ``F.<op>_init``
returns. ``model.train()`` / ``model.eval()`` toggle :class:`Dropout` and
:class:`BatchNorm`; every module takes ``dtype`` (compute) and ``param_dtype``.

Example:
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> model = nn.MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0))
  >>> nn.count_params(model)
  573910
"""

from nnjax.nn.attention import MultiHeadAttention, TransformerEncoderBlock
from nnjax.nn.autoencoder import Autoencoder, ConvAutoencoder
from nnjax.nn.bidirectional import Bidirectional
from nnjax.nn.cnn import CNN
from nnjax.nn.conv import Conv2D
from nnjax.nn.conv_nd import Conv1D, Conv3D, ConvTranspose1D, ConvTranspose2D, ConvTranspose3D
from nnjax.nn.dense import Dense
from nnjax.nn.dropout import Dropout
from nnjax.nn.embedding import Embedding
from nnjax.nn.mlp import MLP
from nnjax.nn.normalization import BatchNorm, LayerNorm
from nnjax.nn.norms import GroupNorm, InstanceNorm, PReLU, RMSNorm
from nnjax.nn.pooling import AvgPool2D, MaxPool2D
from nnjax.nn.pooling_nd import (
    AvgPool1D,
    AvgPool3D,
    GlobalAvgPool,
    GlobalMaxPool,
    MaxPool1D,
    MaxPool3D,
)
from nnjax.nn.positional import RotaryPositionEncoding, SinusoidalPositionEncoding
from nnjax.nn.recurrent import GRU, LSTM, RNN
from nnjax.nn.reshape import Flatten, Reshape, Upsample2D
from nnjax.nn.sequence import SequenceClassifier, SequenceRegressor
from nnjax.nn.sequential import Sequential
from nnjax.nn.summary import count_params, summary
from nnjax.nn.wide_deep import WideAndDeep

__all__ = [
    "CNN",
    "GRU",
    "LSTM",
    "MLP",
    "RNN",
    "Autoencoder",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm",
    "Bidirectional",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "ConvAutoencoder",
    "ConvTranspose1D",
    "ConvTranspose2D",
    "ConvTranspose3D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MultiHeadAttention",
    "PReLU",
    "RMSNorm",
    "Reshape",
    "RotaryPositionEncoding",
    "SequenceClassifier",
    "SequenceRegressor",
    "Sequential",
    "SinusoidalPositionEncoding",
    "TransformerEncoderBlock",
    "Upsample2D",
    "WideAndDeep",
    "count_params",
    "summary",
]
