"""FunctionalModule: every parameter attribute is declared on the class."""

import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn
from nnjax.nn._base import FunctionalModule, declared_attributes

LAYERS = [
    lambda r: nn.Dense(2, 3, rngs=r),
    lambda r: nn.Dense(2, 3, use_bias=False, rngs=r),
    lambda r: nn.Conv2D(2, 3, 3, use_bias=False, rngs=r),
    lambda r: nn.Conv1D(2, 3, 3, rngs=r),
    lambda r: nn.ConvTranspose2D(2, 3, 3, rngs=r),
    lambda r: nn.Embedding(5, 3, rngs=r),
    lambda r: nn.BatchNorm(3, rngs=r),
    lambda r: nn.LayerNorm(3, rngs=r),
    lambda r: nn.GroupNorm(4, num_groups=2, rngs=r),
    lambda r: nn.RMSNorm(3, rngs=r),
    lambda r: nn.PReLU(rngs=r),
    lambda r: nn.RNN(2, 3, rngs=r),
    lambda r: nn.GRU(2, 3, rngs=r),
    lambda r: nn.LSTM(2, 3, rngs=r),
    lambda r: nn.MultiHeadAttention(2, 4, rngs=r),
    lambda r: nn.TransformerEncoderBlock(4, 2, rngs=r),
    lambda r: nn.Bidirectional(2, 3, rngs=r),
]


@pytest.mark.parametrize("make", LAYERS)
def test_every_parameter_and_statistic_is_a_declared_attribute(make):
    layer = make(nnx.Rngs(0))
    declared = declared_attributes(type(layer))
    held = (*layer._param_names, *layer._stat_names)
    assert held and set(held) <= declared
    for name in held:
        assert getattr(layer, name) is not None


def test_an_absent_optional_bias_is_none_and_not_state():
    layer = nn.Dense(2, 3, use_bias=False, rngs=nnx.Rngs(0))
    assert layer.bias is None
    assert set(nnx.to_pure_dict(nnx.state(layer, nnx.Param))) == {"kernel"}


def test_an_undeclared_parameter_is_refused():
    class Undeclared(FunctionalModule):
        kernel: nnx.Param

        def __init__(self):
            self._set_params(F.dense_init(nnx.Rngs(0).params(), 2, 3))

    with pytest.raises(TypeError, match=r"Undeclared holds \['bias'\] without declaring"):
        Undeclared()
