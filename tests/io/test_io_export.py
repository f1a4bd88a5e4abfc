"""nnjax.export / nnjax.load_exported: StableHLO with a symbolic batch, no model code."""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

pytest.importorskip("flatbuffers")  # jax.export's serialisation needs it


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.MLP(4, (8,), 3, dropout=0.5, rngs=nnx.Rngs(0)), (4,)),
        (
            lambda: nn.CNN(
                (8, 8, 1), 3, conv_features=(2,), dense=(4,), batch_norm=True, rngs=nnx.Rngs(1)
            ),
            (8, 8, 1),
        ),
        (lambda: nn.SequenceClassifier(3, 4, 2, cell="lstm", rngs=nnx.Rngs(2)), (5, 3)),
    ],
    ids=["mlp", "cnn", "lstm"],
)
def test_exported_model_runs_any_batch_with_equal_outputs(make, shape, tmp_path):
    model = make()
    path = nnjax.export(model, np.zeros((2, *shape), np.float32), tmp_path / "model.jaxexport")
    predict = nnjax.load_exported(path)
    model.eval()
    for batch in (1, 7):
        x = jax.random.normal(jax.random.key(batch), (batch, *shape))
        np.testing.assert_allclose(predict(x), model(x), rtol=1e-6, atol=1e-6)


def test_a_file_that_is_not_an_export_is_one_line(tmp_path):
    (tmp_path / "bad").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(nnjax.io.CheckpointError, match="bad: not an exported"):
        nnjax.load_exported(tmp_path / "bad")
    with pytest.raises(nnjax.io.CheckpointError, match="missing"):
        nnjax.load_exported(tmp_path / "missing")
