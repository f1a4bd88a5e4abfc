"""The measured choices of nnjax.train.compiled: updates per dispatch and donation."""

import pytest
from flax import nnx

from nnjax import nn
from nnjax.train import compiled


def _graphdef(model):
    return nnx.graphdef(model)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_conv_and_recurrent_models_take_one_step_per_dispatch():
    rngs = nnx.Rngs(0)
    cnn = nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs)
    assert compiled.steps_per_dispatch_for(cnn) == 1
    assert compiled.steps_per_dispatch_for(nnx.Conv(1, 2, (3, 3), rngs=rngs)) == 1
    lstm = nn.SequenceClassifier(3, 4, 2, rngs=rngs)
    assert compiled.steps_per_dispatch_for(lstm) == 1
    mlp = nn.MLP(2, (4,), 1, rngs=rngs)
    assert compiled.steps_per_dispatch_for(mlp) == compiled.DEFAULT_STEPS_PER_DISPATCH


def test_donation_off_on_cpu_for_conv_and_recurrent_models_only():
    rngs = nnx.Rngs(0)
    mlp = _graphdef(nn.MLP(2, (4,), 1, rngs=rngs))
    cnn = _graphdef(nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs))
    lstm = _graphdef(nn.SequenceClassifier(3, 4, 2, rngs=rngs))
    assert compiled.donate_for(mlp, "cpu")
    assert not compiled.donate_for(cnn, "cpu") and not compiled.donate_for(lstm, "cpu")
    assert compiled.donate_for(cnn, "gpu") and compiled.donate_for(lstm, "tpu")
