"""Checkpoints of nnjax's first layout (before nnjax.io) still load."""

import json
import pathlib
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "v0_checkpoint"


def _flat(model):
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(model)):
        value = var.get_value()
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        out["/".join(map(str, path))] = np.asarray(value)
    return out


def test_first_layout_fixture_loads_bitwise():
    model = nnjax.load_state(nn.MLP(2, (3,), 2, dropout=0.5, rngs=nnx.Rngs(7)), FIXTURE / "run")
    # The state that made the fixture, as JSON (exact: float32 -> float64 -> float32).
    saved = json.loads((FIXTURE / "expected_state.json").read_text())
    expected = {
        name: np.array(v["values"], dtype=v["dtype"]).reshape(v["shape"])
        for name, v in saved.items()
    }
    got = _flat(model)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_first_layout_has_no_recorded_model(tmp_path):
    with pytest.raises(nnjax.io.CheckpointError, match=r"records no model.*load_state"):
        nnjax.load(FIXTURE / "run")


def test_first_layout_mismatch_names_the_path(tmp_path):
    shutil.copytree(FIXTURE / "run", tmp_path / "run")
    with pytest.raises(
        nnjax.io.CheckpointError,
        match=r"params: layers/0/bias has shape \(3,\) in the checkpoint but \(4,\)",
    ):
        nnjax.load_state(nn.MLP(2, (4,), 2, dropout=0.5, rngs=nnx.Rngs(7)), tmp_path / "run")
