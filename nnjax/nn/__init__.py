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

from nnjax.nn.autoencoder import Autoencoder, ConvAutoencoder
from nnjax.nn.cnn import CNN
from nnjax.nn.conv import Conv2D
from nnjax.nn.dense import Dense
from nnjax.nn.dropout import Dropout
from nnjax.nn.mlp import MLP
from nnjax.nn.normalization import BatchNorm, LayerNorm
from nnjax.nn.pooling import AvgPool2D, MaxPool2D
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
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "ConvAutoencoder",
    "Dense",
    "Dropout",
    "Flatten",
    "LayerNorm",
    "MaxPool2D",
    "Reshape",
    "SequenceClassifier",
    "SequenceRegressor",
    "Sequential",
    "Upsample2D",
    "WideAndDeep",
    "count_params",
    "summary",
]
