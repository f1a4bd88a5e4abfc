import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.errors import ShapeError
from nnjax.nn import CNN, MLP, count_params, summary


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_mlp_784_500_300_100_10_has_573910_params(capsys):
    model = MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0))
    text = summary(model, (1, 28, 28))
    assert capsys.readouterr().out.strip() == text
    lines = text.splitlines()
    assert lines[-1] == "Total params: 573,910"
    assert count_params(model) == 784 * 500 + 500 + 500 * 300 + 300 + 300 * 100 + 100 + 1010
    rows = [line.split() for line in lines if line.startswith("layers/")]
    assert [r[0] for r in rows] == ["layers/0", "layers/1", "layers/2", "layers/3"]
    assert [r[-1] for r in rows] == ["392,500", "150,300", "30,100", "1,010"]
    assert "(1, 500)" in text and "Output shape: (1, 10)" in text


def test_rows_in_call_order_and_state_untouched():
    model = CNN(
        (4, 4), 2, conv_features=(2,), dense=(3,), batch_norm=True, dropout=0.5, rngs=nnx.Rngs(0)
    )
    before = nnx.to_pure_dict(nnx.state(model))
    text = summary(model, (5, 4, 4), print_fn=None)
    types = [
        line.split()[1] for line in text.splitlines() if line.startswith(("features/", "head/"))
    ]
    assert types == ["Conv2D", "BatchNorm", "MaxPool2D", "Dense", "Dropout", "Dense"]
    assert "(5, 2, 2, 2)" in text
    after = nnx.to_pure_dict(nnx.state(model))
    assert str(before) == str(after)  # no tracer leaked, no statistic or RNG count advanced
    assert f"Total params: {count_params(model):,}" in text
    assert callable(MLP.__call__) and "recorded" not in MLP.__call__.__name__
    assert summary(MLP(2, (), 1, rngs=nnx.Rngs(0)), (1, 2), dtype=jnp.bfloat16, print_fn=None)


def test_an_example_array_gives_its_shape_and_dtype():
    model = MLP(4, (3,), 2, rngs=nnx.Rngs(0))
    by_shape = summary(model, (5, 4), print_fn=None)
    assert summary(model, jnp.ones((5, 4)), print_fn=None) == by_shape
    assert summary(model, np.ones((5, 4), np.float32), print_fn=None) == by_shape
    assert summary(model, jax.ShapeDtypeStruct((5, 4), jnp.float32), print_fn=None) == by_shape
    assert summary(model, [5, 4], print_fn=None) == by_shape


def test_example_dtype_reaches_the_model_unless_overridden():
    seen = []

    class Probe(nnx.Module):
        def __call__(self, x):
            seen.append(x.dtype)
            return x

    summary(Probe(), jnp.ones((2, 3), jnp.bfloat16), print_fn=None)
    summary(Probe(), jnp.ones((2, 3), jnp.bfloat16), dtype=jnp.float16, print_fn=None)
    summary(Probe(), (2, 3), print_fn=None)
    assert seen == [jnp.bfloat16, jnp.float16, jnp.float32]


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (784, TypeError, r"batch axis included, e\.g\. \(1, 784\)"),
        ("1, 784", TypeError, "must be a shape"),
        ((1, 2.5), TypeError, "must be a shape"),
        ((1, True), TypeError, "must be a shape"),
        ([None], TypeError, r"got \[None\]"),
        ((1, -4), ValueError, "negative size"),
    ],
)
def test_bad_input_shapes_are_named(bad, error, match):
    with pytest.raises(error, match=match):
        summary(MLP(4, (3,), 2, rngs=nnx.Rngs(0)), bad, print_fn=None)


def test_a_wrong_shape_gets_the_models_own_error():
    with pytest.raises(ShapeError, match="MLP"):
        summary(MLP(4, (3,), 2, rngs=nnx.Rngs(0)), jnp.ones((2, 5)), print_fn=None)


class _TwoInputs(nnx.Module):
    def __init__(self, rngs):
        from nnjax.nn import Dense

        self.a = Dense(3, 4, rngs=rngs)
        self.b = Dense(2, 4, rngs=rngs)

    def __call__(self, a, b):
        return self.a(a) + self.b(b)


def test_several_example_inputs_go_in_as_predict_passes_them():
    model = _TwoInputs(nnx.Rngs(0))
    a, b = jnp.ones((5, 3)), jnp.ones((5, 2))
    positional = summary(model, (a, b), print_fn=None)
    assert summary(model, {"a": a, "b": b}, print_fn=None) == positional
    assert (
        summary(model, [a, jax.ShapeDtypeStruct((5, 2), jnp.float32)], print_fn=None) == positional
    )
    rows = [line.split() for line in positional.splitlines() if line.startswith(("a ", "b "))]
    assert [r[:2] for r in rows] == [["a", "Dense"], ["b", "Dense"]]
    assert "Output shape: (5, 4)" in positional
    with pytest.raises(TypeError, match="must all be arrays"):
        summary(model, (a, 3), print_fn=None)
