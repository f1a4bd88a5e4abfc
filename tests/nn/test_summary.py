import jax.numpy as jnp
import pytest
from flax import nnx

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
