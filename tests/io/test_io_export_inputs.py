"""nnjax.export of models with several inputs, called as the model is; its argument checks.

Inputs follow :func:`nnjax.train.predict`'s rule (one array, a tuple of positional
inputs, a dict of keyword inputs); the loaded function is called as the model is.
Before, a tuple failed in NumPy ("inhomogeneous shape") and a dict in JAX ("does not
support string indexing"); an unknown platform (``"tpuu"``, or ``"cpu"`` read as
``("c", "p", "u")``) was written into the file.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn


class TwoInputs(nnx.Module):
    """``a (B, 3)`` and ``b (B, 2, 2)`` to ``(B, 4)``; integer ``b`` welcome."""

    def __init__(self, rngs):
        self.a = nn.Dense(3, 4, rngs=rngs)
        self.b = nn.Dense(4, 4, rngs=rngs)

    def __call__(self, a, b):
        return self.a(a) * self.b(b.reshape(b.shape[0], -1).astype(a.dtype))


class OneDict(nnx.Module):
    """One input, a dict: ``x["image"]``."""

    def __init__(self, rngs):
        self.dense = nn.Dense(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.dense(x["image"])


def _inputs(batch, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (batch, 3)), jax.random.randint(k2, (batch, 2, 2), 0, 5)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_positional_inputs_are_called_as_the_model_is(tmp_path):
    model = TwoInputs(nnx.Rngs(0))
    path = nnjax.export(model, _inputs(2), tmp_path / "two.jaxexport")
    loaded = nnjax.load_exported(path)
    for batch in (1, 5):
        a, b = _inputs(batch, seed=batch)
        np.testing.assert_allclose(loaded(a, b), model(a, b), rtol=1e-6, atol=1e-6)
    assert nnjax.export(model, list(_inputs(2)), tmp_path / "list.jaxexport").exists()


def test_keyword_inputs_are_called_by_name(tmp_path):
    model = TwoInputs(nnx.Rngs(0))
    a, b = _inputs(2)
    loaded = nnjax.load_exported(nnjax.export(model, {"a": a, "b": b}, tmp_path / "kw"))
    a, b = _inputs(6, seed=3)
    np.testing.assert_allclose(loaded(a=a, b=b), model(a, b), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="input keys"):  # the model's own argument names
        nnjax.export(model, {"a": a, "c": b}, tmp_path / "bad")


def test_one_dict_input_goes_in_a_tuple(tmp_path):
    model = OneDict(nnx.Rngs(0))
    x = {"image": jnp.ones((2, 3))}
    loaded = nnjax.load_exported(nnjax.export(model, (x,), tmp_path / "dict"))
    x = {"image": jax.random.normal(jax.random.key(1), (4, 3))}
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("example", "error", "match"),
    [
        ((jnp.ones((2, 3)), jnp.ones((3, 2, 2))), ValueError, r"batch sizes differ .*\[0\] 2"),
        ((jnp.ones((2, 3)), 1.0), TypeError, r"example_input\[1\] must be an array"),
        ((jnp.ones((2, 3)), jnp.ones(())), ValueError, r"example_input\[1\] has no batch axis"),
        ((), ValueError, "holds no arrays"),
    ],
)
def test_bad_examples_are_named_before_writing(tmp_path, example, error, match):
    with pytest.raises(error, match=match):
        nnjax.export(TwoInputs(nnx.Rngs(0)), example, tmp_path / "model")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("platforms", "error", "match"),
    [
        (["tpuu"], ValueError, "unknown platform 'tpuu'; known: cpu, cuda, rocm, tpu"),
        ([], TypeError, "platform names"),
        ([3], TypeError, "platform names"),
    ],
)
def test_platforms_are_checked(tmp_path, platforms, error, match):
    with pytest.raises(error, match=match):
        nnjax.export(nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0)), jnp.ones((1, 3)), tmp_path / "m",
                     platforms=platforms)  # fmt: skip


def test_one_platform_name_and_upper_case_are_read_as_meant(tmp_path):
    model = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    for platforms in ("cpu", ["CPU", "cuda"]):
        path = nnjax.export(model, jnp.ones((1, 3)), tmp_path / "m", platforms=platforms)
        exported = jax.export.deserialize(bytearray(path.read_bytes()[:-20]))
        assert exported.platforms == (("cpu",) if platforms == "cpu" else ("cpu", "cuda"))
        path.unlink()
