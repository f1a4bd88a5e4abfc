"""The layers' and models' on/off constructor arguments must be bools, named when not.

Before these checks ``CNN(batch_norm="no")`` inserted batch norms,
``SequenceClassifier(all_steps=None)`` predicted after the last step silently, and
``all_steps="no"`` failed naming the inner ``LSTM``'s ``return_sequences``.
"""

import numpy as np
import pytest
from flax import nnx

from nnjax import nn

R = lambda: nnx.Rngs(0)

CASES = {
    "SequenceClassifier: `all_steps`": lambda v: nn.SequenceClassifier(
        3, 4, 2, all_steps=v, rngs=R()
    ),
    "SequenceRegressor: `all_steps`": lambda v: nn.SequenceRegressor(
        3, (4, 5), all_steps=v, cell="gru", rngs=R()
    ),
    "CNN: `batch_norm`": lambda v: nn.CNN(
        (6, 6), 2, conv_features=(2,), dense=(), batch_norm=v, rngs=R()
    ),
    # checked before: kept here so that every flag of the recurrent layers stays covered
    **{
        f"{cls.__name__}: `{flag}`": (
            lambda v, cls=cls, flag=flag: cls(3, 4, **{flag: v}, rngs=R())
        )
        for cls in (nn.RNN, nn.LSTM, nn.GRU)
        for flag in ("reverse", "return_sequences", "return_state")
    },
    **{
        f"Bidirectional: `{flag}`": (
            lambda v, flag=flag: nn.Bidirectional(3, 4, **{flag: v}, rngs=R())
        )
        for flag in ("return_sequences", "return_state")
    },
}


@pytest.mark.parametrize("where", list(CASES))
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_flag_that_is_not_a_bool_is_named(where, value):
    with pytest.raises(TypeError, match=rf"^{where} must be a Python bool .*, got {value!r}$"):
        CASES[where](value)


@pytest.mark.parametrize("where", list(CASES))
def test_flags_take_python_and_numpy_bools(where):
    for value in (False, True, np.bool_(False), np.bool_(True)):
        CASES[where](value)


@pytest.mark.parametrize("cls", [nn.SequenceClassifier, nn.SequenceRegressor])
def test_all_steps_is_kept_as_a_python_bool(cls):
    model = cls(3, 4, 2, all_steps=np.bool_(True), rngs=R())
    assert model.all_steps is True
    assert all(layer.return_sequences is True for layer in model.recurrent)


def test_cnn_batch_norm_false_builds_no_batch_norm():
    def count(batch_norm):
        model = nn.CNN((6, 6), 2, conv_features=(2,), dense=(), batch_norm=batch_norm, rngs=R())
        return sum(isinstance(layer, nn.BatchNorm) for layer in model.features.layers)

    assert count(np.bool_(False)) == 0
    assert count(np.bool_(True)) == 1
