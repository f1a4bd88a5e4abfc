"""Checks at the edges of nnjax.io: dtypes, bad configs, ``~``, damaged exports, files."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
import nnjax.train as T
from nnjax import nn
from nnjax.io import CheckpointError

KW = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=jax.devices()[:1], seed=5)


def test_a_dtype_mismatch_is_refused_naming_the_path_and_both_dtypes(tmp_path):
    nnjax.save_state(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), tmp_path / "f32")
    half = nnx.Linear(2, 3, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(1))
    before = np.asarray(half.kernel.get_value())
    with pytest.raises(
        CheckpointError,
        match=rf"{tmp_path}/f32/state: bias has dtype float32 in the checkpoint but bfloat16",
    ):
        nnjax.load_state(half, tmp_path / "f32")
    assert half.kernel.get_value().dtype == jnp.bfloat16  # unchanged
    np.testing.assert_array_equal(np.asarray(half.kernel.get_value()), before)


def test_a_config_this_nnjax_cannot_build_names_nnjax_json(tmp_path):
    folder = nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), tmp_path / "m")
    meta = json.loads((folder / "nnjax.json").read_text())
    meta["model"]["kwargs"]["newer_option"] = 1  # written by a newer nnjax
    (folder / "nnjax.json").write_text(json.dumps(meta))
    with pytest.raises(
        CheckpointError, match=rf"{folder}/nnjax.json: cannot rebuild .*newer_option"
    ):
        nnjax.load(folder)
    meta["model"]["kwargs"].pop("newer_option")
    meta["model"]["kwargs"]["hidden"] = "x"  # a bad value
    (folder / "nnjax.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=rf"{folder}/nnjax.json: cannot rebuild"):
        nnjax.load(folder)


def test_a_tilde_is_the_home_folder_everywhere(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    assert nnjax.save(model, "~/m") == home / "m"
    assert type(nnjax.load("~/m")).__name__ == "MLP"
    nnjax.load_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1)), "~/m")
    assert nnjax.export(model, np.ones((1, 4), np.float32), "~/m.jaxexport") == home / "m.jaxexport"
    assert nnjax.load_exported("~/m.jaxexport")(np.ones((2, 4), np.float32)).shape == (2, 3)
    x, y = np.ones((32, 4), np.float32), np.zeros(32, np.int32)
    T.fit(model, (x, y), epochs=1, callbacks=[T.ModelCheckpoint("~/run")], **KW)
    T.fit(
        model, (x, y), epochs=2, resume_from="~/run", callbacks=[T.ModelCheckpoint("~/run")], **KW
    )
    assert sorted(p.name for p in (home / "run").iterdir()) == ["1", "2"]
    assert T.latest_epoch("~/run") == 1
    assert list(cwd.iterdir()) == []  # no literal "~" folder


def test_a_damaged_export_fails_at_load_naming_the_file(tmp_path):
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    path = nnjax.export(model, np.ones((1, 4), np.float32), tmp_path / "m.jaxexport")
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    bad = tmp_path / "bad.jaxexport"
    garbled = dataclasses.replace(exported, mlir_module_serialized=b"ML\xefR garbage")
    bad.write_bytes(garbled.serialize())
    with pytest.raises(CheckpointError, match=rf"{bad}: not an exported"):
        nnjax.load_exported(bad)
    tree = jax.tree.structure(0)  # the inputs' structure damaged: not (args, kwargs)
    bad.write_bytes(dataclasses.replace(exported, in_tree=tree).serialize())
    with pytest.raises(CheckpointError, match=rf"{bad}: not an exported .*signature"):
        nnjax.load_exported(bad)


def test_a_file_where_a_folder_is_expected_says_so(tmp_path):
    afile = tmp_path / "run"
    afile.write_text("the user's file")
    model, data = (
        nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)),
        (np.ones((8, 4), np.float32), np.zeros(8, np.int32)),
    )
    with pytest.raises(FileExistsError, match=rf"ModelCheckpoint: {afile} is a file, not a folder"):
        T.fit(model, data, epochs=1, callbacks=[T.ModelCheckpoint(afile)], **KW)
    with pytest.raises(CheckpointError, match=rf"{afile} is a file, not a checkpoint folder"):
        nnjax.load(afile)
    assert afile.read_text() == "the user's file"
