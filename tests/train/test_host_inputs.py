"""What ``fit``, ``evaluate`` and ``predict`` make of the arrays they are given.

float64 stays float64 where JAX computes in 64 bits (``jax_enable_x64``) and becomes
float32 elsewhere, refusing values that float32 cannot hold (they were reported as
"NaN or inf"); PyTorch tensors are read detached (``requires_grad``) and bfloat16 ones as
bfloat16 (both failed inside PyTorch with errors that named no argument).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import Dense
from nnjax.train.evaluate import evaluate, predict
from nnjax.train.loop import fit
from tests.train._data import blobs, leaves, mlp

torch = pytest.importorskip("torch")


@pytest.fixture
def x64():
    """JAX computing in 64 bits for one test, as users turn it on: globally (``fit``'s
    feeder threads do not see ``jax.enable_x64``'s thread-local setting)."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def test_float64_stays_float64_where_jax_computes_in_64_bits(x64):
    rng = np.random.default_rng(0)
    x = 1.0 + 1e-9 * rng.normal(size=(8, 3))  # differences float32 cannot hold
    model = Dense(3, 1, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    direct = np.asarray(model(jnp.asarray(x)))
    predicted = predict(model, x)
    assert predicted.dtype == np.float64
    np.testing.assert_allclose(predicted, direct, rtol=1e-12, atol=1e-15)
    logs = evaluate(model, (x, direct), loss="mse")
    assert logs["loss"] < 1e-20  # in float32 the inputs round to 1: loss 1.2 in the audit


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_float64_beyond_float32s_range_is_named_not_called_nan(call):
    x, y = blobs(16)
    big = x.astype(np.float64)
    big[3, 1] = 1e39  # finite in float64, inf in float32
    model = mlp()
    words = r"`data x` holds float64 values beyond float32's range \(up to 1e\+39"
    with pytest.raises(
        ValueError, match=words if call != "predict" else words.replace("data ", "")
    ):
        if call == "fit":
            fit(model, (big, y), epochs=1, verbose=0, loss="cross_entropy")
        elif call == "evaluate":
            evaluate(model, (big, y), loss="cross_entropy")
        else:
            predict(model, big)


def test_a_tensor_that_requires_grad_is_read_detached():
    x, y = blobs(32)
    a, b = mlp(), mlp()
    fit(a, (x, y), epochs=1, batch_size=8, shuffle=False, verbose=0, loss="cross_entropy")
    fit(b, (torch.tensor(x).requires_grad_(), torch.tensor(y)), epochs=1, batch_size=8,
        shuffle=False, verbose=0, loss="cross_entropy")  # fmt: skip
    for p, q in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(predict(a, torch.tensor(x).requires_grad_()), predict(a, x))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_bfloat16_tensors_and_arrays_are_bfloat16_inputs():
    x, y = blobs(32)
    x16 = x.astype(jnp.bfloat16)
    model = mlp()
    from_numpy = predict(model, x16)
    from_torch = predict(model, torch.tensor(x).bfloat16())
    assert from_torch.dtype == from_numpy.dtype == np.dtype(jnp.bfloat16)  # the input's dtype
    np.testing.assert_array_equal(from_torch, from_numpy)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x).bfloat16(), torch.tensor(y)), batch_size=8
    )
    history = fit(
        model, loader, epochs=1, verbose=0, loss="cross_entropy"
    )  # was: "x has dtype bfloat16; models
    assert np.isfinite(history.history["loss"][0])  # expect floating inputs"
    fit(model, (x16, y), epochs=1, verbose=0, loss="cross_entropy")


def test_a_memmaps_float64_beyond_float32s_range_names_its_argument(tmp_path):
    """Memmaps are read a batch at a time: the error names the data they came in."""
    x, y = blobs(16)
    big = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float64, x.shape)
    big[:] = x
    big[3, 1] = 1e39
    big.flush()
    words = r"holds float64 values beyond float32's range \(up to 1e\+39"
    with pytest.raises(ValueError, match=r"^`x` " + words):
        predict(mlp(), big)
    with pytest.raises(ValueError, match=r"^`validation x` " + words):
        fit(mlp(), (x, y), loss="cross_entropy", epochs=1, verbose=0, validation_data=(big, y))
