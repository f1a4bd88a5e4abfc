"""nnjax.export / nnjax.load_exported: StableHLO with a symbolic batch, no model code."""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn


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
@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
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


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_the_exported_file_runs_without_nnjax_or_flax(tmp_path):
    import subprocess
    import sys

    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    nnjax.export(model, np.zeros((1, 4), np.float32), tmp_path / "m.jaxexport")
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    code = (
        "import os, sys, jax, numpy as np\n"
        "os.chdir(sys.argv[1])\n"
        "f = jax.export.deserialize(bytearray(open('m.jaxexport', 'rb').read()))\n"
        "np.save('y.npy', np.asarray(f.call(np.load('x.npy'))))\n"
        "assert not [m for m in sys.modules if m.startswith(('nnjax', 'flax'))]\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    x = np.load(tmp_path / "x.npy")
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(x), rtol=1e-6, atol=1e-6)
