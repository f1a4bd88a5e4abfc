"""A folder written by Orbax's CheckpointManager (not by nnjax): a message that says
what it is and what to pass instead; its step folders load into a model you build."""

import re

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
import nnjax.train as T
from nnjax import nn
from nnjax.io import CheckpointError
from nnjax.train.checkpoint import restore_checkpoint
from tests.train._data import blobs, mlp

ocp = pytest.importorskip("orbax.checkpoint")


def _model(seed):
    return nn.MLP(4, (8,), 3, rngs=nnx.Rngs(seed))


def _kernel(model):
    return np.asarray(model.layers[0].kernel.get_value())


def _manager_folder(path, item=None, steps=(0, 1, 2)):
    """Steps 0, 1, 2 of models with seeds 0, 1, 2, as Flax's guide saves them."""
    with ocp.CheckpointManager(path) as manager:
        for step in steps:
            state = nnx.to_pure_dict(nnx.state(_model(step)))
            args = ocp.args.StandardSave(state)
            if item is not None:
                args = ocp.args.Composite(**{name: args for name in item})
            manager.save(step, args=args)
        manager.wait_until_finished()
    return path


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    return _manager_folder(tmp_path_factory.mktemp("orbax") / "run")


def _what_to_do(path):
    folder, newest = re.escape(str(path)), re.escape(str(path / "2"))
    return (
        rf"{folder} looks like an Orbax CheckpointManager folder \(steps 0, 1, 2\), not one "
        rf"nnjax wrote: .*nnjax.load_state \(e.g. {newest}, the newest\)"
        r".*orbax.checkpoint.CheckpointManager"
    )


_CALLS = {
    "load": lambda path: nnjax.load(path),
    "load_state": lambda path: nnjax.load_state(_model(5), path),
    "load_checkpoint": lambda path: T.load_checkpoint(path, _model(5)),
    "load_checkpoint_epoch": lambda path: T.load_checkpoint(path, _model(5), epoch=1),
    "restore_checkpoint": lambda path: restore_checkpoint(
        path, {"params": nnx.split(_model(5), nnx.Param, ...)[1]}
    ),
}


@pytest.mark.parametrize("call", list(_CALLS.values()), ids=list(_CALLS))
def test_loading_a_manager_folder_says_what_it_is_and_what_to_pass(manager, call):
    with pytest.raises(CheckpointError, match=_what_to_do(manager)):
        call(manager)


def test_resuming_fit_from_a_manager_folder_says_so(manager):
    kw = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=jax.devices()[:1])
    with pytest.raises(CheckpointError, match="cannot resume training from it"):
        T.fit(mlp(), blobs(), epochs=1, resume_from=manager, **kw)


def test_a_step_folder_and_its_item_folder_load_into_a_built_model(manager):
    for folder in (manager / "1", manager / "1" / "default"):
        model = nnjax.load_state(_model(5), folder)
        np.testing.assert_allclose(_kernel(model), _kernel(_model(1)), rtol=0, atol=0)
        with pytest.raises(CheckpointError, match="written without nnjax records no model"):
            nnjax.load(folder)


def test_a_step_folder_of_one_named_item_loads(tmp_path):
    folder = _manager_folder(tmp_path / "run", item=("state",), steps=(3,))
    assert T.load_checkpoint(folder / "3", _model(5)) == {}  # no metadata: not nnjax's
    np.testing.assert_allclose(
        _kernel(nnjax.load_state(_model(5), folder / "3")), _kernel(_model(3)), rtol=0, atol=0
    )


def test_a_step_folder_of_several_items_names_them(tmp_path):
    folder = _manager_folder(tmp_path / "run", item=("params", "state"), steps=(0,))
    with pytest.raises(
        CheckpointError,
        match=r"0: a step folder of an Orbax CheckpointManager with items "
        r"\['params', 'state'\]: pass the item folder",
    ):
        nnjax.load_state(_model(5), folder / "0")
    nnjax.load_state(_model(5), folder / "0" / "state")


@pytest.mark.parametrize("overwrite", [False, True])
def test_model_checkpoint_never_replaces_a_manager_folder(tmp_path, overwrite):
    folder = _manager_folder(tmp_path / "run")
    before = sorted(p.name for p in folder.iterdir())
    callback = T.ModelCheckpoint(folder, overwrite=overwrite)
    with pytest.raises(FileExistsError, match=r"looks like an Orbax CheckpointManager.*another"):
        T.fit(mlp(), blobs(), loss="cross_entropy", epochs=1, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in folder.iterdir()) == before
    np.testing.assert_array_equal(
        _kernel(nnjax.load_state(_model(5), folder / "2")), _kernel(_model(2))
    )


@pytest.mark.parametrize("inside", ["2", "2/default"])
def test_resuming_from_one_orbax_checkpoint_is_refused(manager, inside):
    # it used to start a fresh run without a word (no step folders inside)
    with pytest.raises(ValueError, match=r"is one checkpoint, not a run folder"):
        T.fit(mlp(), blobs(), loss="cross_entropy", epochs=1, verbose=0,
              resume_from=manager / inside)  # fmt: skip


def test_restore_checkpoint_reads_one_step_folder_as_load_checkpoint_does(tmp_path):
    from nnjax.train.checkpoint import save_checkpoint
    from nnjax.train.state import TrainState

    _, params, rest = nnx.split(_model(3), nnx.Param, ...)
    save_checkpoint(tmp_path, 1, TrainState(params, (), rest), {"seed": 0})
    _, template, _ = nnx.split(_model(5), nnx.Param, ...)
    whole, _ = restore_checkpoint(tmp_path, {"params": template})
    one, meta = restore_checkpoint(tmp_path / "2", {"params": template})  # was "no checkpoint"
    assert meta["epoch"] == 1
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(whole), strict=True):
        np.testing.assert_array_equal(a, b)
