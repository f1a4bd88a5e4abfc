"""nn.summary(model) without an input shape: inferred from the recorded constructor call."""

import jax.numpy as jnp
import pytest
from flax import nnx

from nnjax import nn
from nnjax.nn.summary import inferred_input

R = nnx.Rngs


def _without_input_line(text):
    return "\n".join(line for line in text.splitlines() if not line.startswith("Input shape:"))


@pytest.mark.parametrize(
    ("make", "shape", "origin"),
    [
        (lambda: nn.MLP(6, (5,), 3, rngs=R(0)), (1, 6), "MLP(in_features=6)"),
        (lambda: nn.Dense(6, 3, rngs=R(0)), (1, 6), "Dense(in_features=6)"),
        (lambda: nn.Autoencoder(6, (4,), 2, rngs=R(0)), (1, 6), "Autoencoder(in_features=6)"),
        (lambda: nn.CNN((8, 8), 2, conv_features=(2,), dense=(3,), rngs=R(0)),
         (1, 8, 8), "CNN(input_shape=(8, 8))"),
        (lambda: nn.CNN((8, 8, 3), 2, conv_features=(2,), dense=(3,), rngs=R(0)),
         (1, 8, 8, 3), "CNN(input_shape=(8, 8, 3))"),
        (lambda: nn.WideAndDeep(3, (4,), rngs=R(0)), (1, 3), "WideAndDeep(in_features=3)"),
        (lambda: nn.Sequential(nn.Dense(6, 4, rngs=R(0)), jnp.tanh),
         (1, 6), "Sequential's first layer Dense(in_features=6)"),
        (lambda: nn.Sequential(nn.Sequential(nn.MLP(6, (), 2, rngs=R(0))), jnp.tanh),
         (1, 6), "Sequential's first layer Sequential's first layer MLP(in_features=6)"),
    ],
)  # fmt: skip
def test_inferred_table_is_the_table_for_that_shape(make, shape, origin):
    model = make()
    inferred = nn.summary(model, print_fn=None)
    assert f"Input shape: {shape} (inferred from {origin})" in inferred.splitlines()
    # the same table as passing the shape, plus the one line that says where it came from
    assert _without_input_line(inferred) == nn.summary(model, shape, print_fn=None)
    assert nn.summary(model, None, print_fn=None) == inferred


def test_conv_autoencoder_input_comes_from_its_input_shape():
    model = nn.ConvAutoencoder((8, 8, 1), (2,), 2, rngs=R(0))
    text = nn.summary(model, print_fn=None)
    assert (
        "Input shape: (1, 8, 8, 1) (inferred from ConvAutoencoder(input_shape=(8, 8, 1)))" in text
    )
    assert "Output shape: (1, 8, 8, 1)" in text


def test_wide_and_deep_with_a_deep_input_gets_two_inputs():
    model = nn.WideAndDeep(3, (4,), 1, deep_features=5, rngs=R(0))
    spec, origin = inferred_input(model)
    assert [s.shape for s in spec] == [(1, 3), (1, 5)]
    assert origin == "WideAndDeep(in_features=3, deep_features=5)"
    text = nn.summary(model, print_fn=None)
    assert "Input shape: (1, 3), (1, 5)" in text and "Output shape: (1, 1)" in text


def test_dtype_applies_to_the_inferred_input():
    spec, _ = inferred_input(nn.MLP(4, (), 2, rngs=R(0)), jnp.bfloat16)
    assert (spec.shape, spec.dtype) == ((1, 4), jnp.bfloat16)
    assert "Output shape: (1, 2)" in nn.summary(
        nn.MLP(4, (), 2, rngs=R(0)), dtype=jnp.bfloat16, print_fn=None
    )


def test_prints_by_default_and_leaves_the_state_untouched(capsys):
    model = nn.CNN(
        (4, 4), 2, conv_features=(2,), dense=(3,), batch_norm=True, dropout=0.5, rngs=R(0)
    )
    before = str(nnx.to_pure_dict(nnx.state(model)))
    text = nn.summary(model)
    assert capsys.readouterr().out.strip() == text
    assert str(nnx.to_pure_dict(nnx.state(model))) == before


class _Own(nnx.Module):
    def __init__(self, rngs):
        self.dense = nn.Dense(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.dense(x)


class _MyMLP(nn.MLP):  # a subclass may take other inputs: not inferred
    pass


@pytest.mark.parametrize(
    ("make", "why", "types"),
    [
        (lambda: nn.LSTM(4, 8, rngs=R(0)), "the constructor arguments of LSTM do not fix its input",
         ["LSTM"]),
        (lambda: nn.SequenceClassifier(3, (4,), 2, rngs=R(0)),
         "the constructor arguments of SequenceClassifier do not fix its input",
         ["Dropout", "Dense", "LSTM"]),
        (lambda: nn.Sequential(nn.Flatten(), nn.Dense(4, 2, rngs=R(0))),
         "the constructor arguments of Sequential's first layer Flatten do not fix its input",
         ["Flatten", "Dense"]),
        (lambda: nn.Sequential(jnp.tanh, nn.Dense(4, 2, rngs=R(0))),
         "Sequential's first layer tanh is not a module whose arguments fix it", ["Dense"]),
        (lambda: nn.Sequential(), "Sequential has no layers", ["Sequential"]),
        (lambda: _Own(R(0)), "the constructor arguments of _Own do not fix its input", ["Dense"]),
        (lambda: _MyMLP(3, (4,), 2, rngs=R(0)),
         "the constructor arguments of _MyMLP do not fix its input", ["Dense", "Dense"]),
        (lambda: nn.MLP(3, (4,), 2, activation=lambda x: x, rngs=R(0)),
         "the constructor call of MLP was not recorded", ["Dense", "Dense"]),
    ],
)  # fmt: skip
def test_unknown_input_gives_params_without_shapes(make, why, types):
    model = make()
    assert inferred_input(model)[0] is None
    text = nn.summary(model, print_fn=None)
    lines = text.splitlines()
    assert lines[2].split() == ["Layer", "(path)", "Type", "Params"]  # no shape column
    assert [line.split()[1] for line in lines[4:-3]] == types
    assert lines[-2].startswith(f"Output shapes not shown: {why}")
    assert "pass `input_shape`, e.g. summary(model, (1, ...))" in lines[-2]
    assert lines[-1] == f"Total params: {nn.count_params(model):,}"
    assert sum(int(line.split()[-1].replace(",", "")) for line in lines[4:-3]) == (
        nn.count_params(model)
    )


def test_catalogue_layers_are_one_row_each_without_a_call():
    model = nn.Sequential(
        nn.Embedding(50, 16, rngs=R(0)),
        nn.SinusoidalPositionEncoding(16),
        nn.MultiHeadAttention(4, 16, rngs=R(0)),
        nn.Bidirectional(16, 8, return_sequences=True, rngs=R(0)),
    )
    text = nn.summary(model, print_fn=None)
    rows = [line.split() for line in text.splitlines() if line.startswith("layers/")]
    assert [(r[0], r[1]) for r in rows] == [
        ("layers/0", "Embedding"), ("layers/1", "SinusoidalPositionEncoding"),
        ("layers/2", "MultiHeadAttention"), ("layers/3", "Bidirectional"),
    ]  # fmt: skip
    assert rows[2][-1] == f"{4 * (16 * 16 + 16):,}"


def test_an_inferred_input_that_does_not_fit_falls_back_to_params():
    # Dense takes (..., in): a Sequential using it on (B, T, F) before an LSTM
    model = nn.Sequential(nn.Dense(3, 4, rngs=R(0)), nn.LSTM(4, 5, rngs=R(1)))
    text = nn.summary(model, print_fn=None)
    note = text.splitlines()[-2]
    assert note.startswith(
        "Output shapes not shown: the input (1, 3) inferred from Sequential's first layer "
        "Dense(in_features=3) fails (lstm: argument `xs` has shape (1, 4)"
    )
    assert "Output shape:" not in text and "LSTM" in text
    assert "Output shape: (2, 5)" in nn.summary(model, (2, 7, 3), print_fn=None)  # last step


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (3, r"summary: `model` must be a Flax NNX module instance, got int 3"),
        (nn.MLP, r"summary: `model` must be .* got the class MLP"),
        ("runs/mlp", r"the model comes first: summary\(model, input_shape\)"),
    ],
)
def test_a_model_that_is_not_a_module_is_named(model, match):
    with pytest.raises(TypeError, match=match):
        nn.summary(model, print_fn=None)
