"""nnjax.save of a model that Flax rebuilt: ``nnx.merge``, ``nnx.clone``, ``copy.deepcopy``.

The constructor call is kept on the module as a static attribute (``nnjax/nn/_config.py``),
so it travels in the graphdef. Before, it was held in a weak dictionary keyed by the
instance, and every rebuilt model (the functional ``split``/``merge`` of Flax's guides)
was refused: "has no recorded constructor arguments".
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_io_save_load import _sequential  # tests/io is on sys.path (rootdir mode)

import nnjax
from nnjax import nn


def _merged(model):
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, state)


def _abstract_then_filled(model):
    """``nnx.eval_shape`` of the same constructor, then the state (and mode) of ``model``."""
    abstract = nnx.eval_shape(lambda: _sequential()[0])
    nnx.update(abstract, nnx.state(model))
    abstract.eval()
    return abstract


REBUILDS = {
    "merge": _merged,
    "clone": nnx.clone,
    "deepcopy": copy.deepcopy,
    "eval_shape": _abstract_then_filled,
}


@pytest.mark.parametrize("rebuild", sorted(REBUILDS))
def test_a_rebuilt_model_saves_and_loads(rebuild, tmp_path):
    model, shape = _sequential()  # nested: its layers are constructor arguments
    model.eval()
    rebuilt = REBUILDS[rebuild](model)
    assert rebuilt is not model
    loaded = nnjax.load(nnjax.save(rebuilt, tmp_path / "m"))
    assert type(loaded) is nn.Sequential
    x = jax.random.normal(jax.random.key(0), shape)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_models_built_alike_share_a_graphdef_and_a_program():
    """The recorded call is static: equal calls give equal graphdefs, so ``nnx.jit``
    traces once for two models built alike (and again for a different call)."""
    a, b = (nn.MLP(4, (8,), 3, rngs=nnx.Rngs(seed)) for seed in (0, 1))
    assert nnx.graphdef(a) == nnx.graphdef(b)
    traces = []
    forward = nnx.jit(lambda m, x: traces.append(1) or m(x))
    x = jnp.ones((2, 4))
    forward(a, x)
    forward(b, x)
    assert len(traces) == 1
    forward(nn.MLP(4, (8,), 3, activation="tanh", rngs=nnx.Rngs(0)), x)
    assert len(traces) == 2


def test_an_unsaveable_argument_is_named_after_a_rebuild(tmp_path):
    odd = nn.Dense(2, 3, activation=lambda x: 2 * x, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"Dense argument activation=.*<lambda> cannot be"):
        nnjax.save(nnx.clone(odd), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_the_recorded_call_is_hidden_from_the_repr():
    text = repr(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)))
    assert "_nnjax_call" not in text and '"class"' not in text


def _ensemble():
    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nn.MLP(4, (8,), 3, rngs=rngs)

    return create(nnx.Rngs(0))


def _replaced_layer():
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    model.layers[0] = nn.Dense(4, 5, rngs=nnx.Rngs(1))
    return model


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_ensemble, r"layers/0/bias: \(3, 8\) here, \(8,\) rebuilt"),
        (_replaced_layer, r"layers/0/bias: \(5,\) here, \(8,\) rebuilt"),
    ],
)
def test_a_model_changed_after_it_was_built_is_refused_before_writing(make, match, tmp_path):
    """Its recorded call would rebuild another model: ``nnjax.load`` could not read the
    folder back. ``save_state`` still writes it."""
    model = make()
    with pytest.raises(TypeError, match=rf"state does not match.*{match}.*nnjax\.save_state"):
        nnjax.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    nnjax.save_state(model, tmp_path / "w")
    assert (tmp_path / "w" / "nnjax.json").is_file()


def test_a_constructor_that_cannot_run_abstractly_still_saves(tmp_path):
    """The shape check is skipped where the constructor reads array values (it cannot
    run under ``nnx.eval_shape``); such a model saved before the check existed."""
    from nnjax.nn._base import recorded

    @recorded
    class Scaled(nnx.Module):
        def __init__(self, n: int, rngs: nnx.Rngs):
            w = jax.random.normal(rngs.params(), (n,))
            self.norm = float(jnp.linalg.norm(w))  # a concrete value: fails abstractly
            self.w = nnx.Param(w / self.norm)

        def __call__(self, x):
            return x * self.w[...]

    model = Scaled(3, rngs=nnx.Rngs(0))
    loaded = nnjax.load(nnjax.save(nnx.clone(model), tmp_path / "m"))
    np.testing.assert_array_equal(loaded(jnp.ones(3)), model(jnp.ones(3)))
