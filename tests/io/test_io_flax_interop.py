"""nnjax checkpoints are Flax checkpoints: the guide's plain Orbax code reads and writes them.

The guide is Flax's "Save and load checkpoints" (flax.readthedocs.io, nnx_basics /
checkpointing): ``ocp.StandardCheckpointer`` over ``nnx.to_pure_dict(state)``, restored
with ``nnx.eval_shape`` + ``nnx.split`` + ``nnx.replace_by_pure_dict`` + ``nnx.merge``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

import nnjax
from nnjax import nn


class TwoLayerMLP(nnx.Module):  # the guide's model
    def __init__(self, dim, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(dim, dim, rngs=rngs, use_bias=False)
        self.linear2 = nnx.Linear(dim, dim, rngs=rngs, use_bias=False)

    def __call__(self, x):
        return self.linear2(self.linear1(x))


def test_the_guides_restore_reads_an_nnjax_checkpoint(tmp_path):
    model = nn.Sequential(nn.Dense(3, 4, rngs=nnx.Rngs(0)), nn.BatchNorm(4, rngs=nnx.Rngs(1)))
    model(jnp.arange(6.0).reshape(2, 3))  # batch statistics away from their init
    nnjax.save(model, tmp_path / "ckpt")
    # -- the guide's code, verbatim but for the model --
    checkpointer = ocp.StandardCheckpointer()
    restored_pure_dict = checkpointer.restore(tmp_path / "ckpt" / "state")
    abstract_model = nnx.eval_shape(
        lambda: nn.Sequential(nn.Dense(3, 4, rngs=nnx.Rngs(9)), nn.BatchNorm(4, rngs=nnx.Rngs(9)))
    )
    graphdef, abstract_state = nnx.split(abstract_model)
    nnx.replace_by_pure_dict(abstract_state, restored_pure_dict)
    restored = nnx.merge(graphdef, abstract_state)
    # --
    expected, got = nnx.to_flat_state(nnx.state(model)), nnx.to_flat_state(nnx.state(restored))
    for (path_a, a), (path_b, b) in zip(expected, got, strict=True):
        assert path_a == path_b
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_the_guides_restore_with_rng_keys_as_key_data(tmp_path):
    model = nn.MLP(2, (3,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    nnjax.save_state(model, tmp_path / "ckpt")
    restored = ocp.StandardCheckpointer().restore(tmp_path / "ckpt" / "state")
    key_data = restored["dropouts"]["0"]["rngs"]["key"]
    np.testing.assert_array_equal(key_data, jax.random.key_data(model.dropouts[0].rngs.key[...]))


def test_nnjax_loads_what_the_guides_code_writes(tmp_path):
    model = TwoLayerMLP(4, rngs=nnx.Rngs(0))
    _, state = nnx.split(model)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "state", state)  # the guide's first form: the State
    checkpointer.save(tmp_path / "pure_dict", nnx.to_pure_dict(state))  # and the pure dict
    checkpointer.wait_until_finished()
    x = jnp.ones((2, 4))
    for folder in ("state", "pure_dict"):
        other = nnjax.load_state(TwoLayerMLP(4, rngs=nnx.Rngs(1)), tmp_path / folder)
        np.testing.assert_array_equal(other(x), model(x))
    # the guide's ckpt_dir, the folder above its item: the error names the item to pass
    with pytest.raises(nnjax.io.CheckpointError, match=r"guide is read from its item: .*state"):
        nnjax.load_state(TwoLayerMLP(4, rngs=nnx.Rngs(1)), tmp_path)
