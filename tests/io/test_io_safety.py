"""The user's files are never deleted, and a kill mid-overwrite never loses a checkpoint.

* Only checkpoints count as step folders: a user's ``2024/`` or ``0/`` inside a
  ModelCheckpoint folder survives overwrite and pruning.
* ``overwrite=True`` replaces a checkpoint or an empty folder, never anything else.
* A kill between an overwrite's two renames: load recovers the hidden sibling, and the
  next write of the target removes what killed writes left beside it.
"""

import errno
import os

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
import nnjax.train as T
from nnjax import nn
from nnjax.io import CheckpointError, CheckpointFallbackWarning, steps
from nnjax.train.checkpoint import save_checkpoint
from tests.train._data import blobs, leaves, mlp

OTHER_FILES = "is a folder with other files, not an nnjax checkpoint"
KW = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=jax.devices()[:1], seed=5)


def _user_folders(root):
    """A user's own folders with all-digit names, each holding a file."""
    for name, file in (("2024", "photo.jpg"), ("0", "readme")):
        (root / name).mkdir(parents=True)
        (root / name / file).write_text(f"the user's {file}")
    return {root / "2024" / "photo.jpg", root / "0" / "readme"}


def _survive(files):
    for path in files:
        assert path.read_text() == f"the user's {path.name}", path


# W1: only checkpoints are step folders -------------------------------------------------


def test_user_folders_with_digit_names_are_not_step_folders(tmp_path):
    files = _user_folders(tmp_path)
    assert steps.epochs(tmp_path) == []
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)  # no refusal
    assert [e for e, _ in steps.epochs(tmp_path)] == [0, 1]
    _survive(files)


def test_overwrite_removes_the_old_run_but_not_the_users_folders(tmp_path):
    T.fit(mlp(), blobs(), epochs=3, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    files = _user_folders(tmp_path)
    with pytest.raises(
        FileExistsError, match=rf"{tmp_path} already holds checkpoints \(epochs 1\.\.3\)"
    ):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    cb = T.ModelCheckpoint(tmp_path, overwrite=True)
    T.fit(mlp(seed=1), blobs(), epochs=1, callbacks=[cb], **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "2024"]
    _survive(files)


def test_pruning_a_resumed_run_keeps_the_users_folders(tmp_path):
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    files = _user_folders(tmp_path)
    cb = T.ModelCheckpoint(tmp_path, max_to_keep=1)
    T.fit(mlp(), blobs(), epochs=4, resume_from=tmp_path, callbacks=[cb], **KW)
    assert [e for e, _ in steps.epochs(tmp_path)] == [3]
    _survive(files)


def test_a_user_folder_at_a_step_name_is_refused_not_replaced(tmp_path):
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "notes.txt").write_text("the user's notes.txt")
    with pytest.raises(OSError, match=rf"could not save epoch 2 to {tmp_path}/2: .*not an nnjax"):
        T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    _survive({tmp_path / "2" / "notes.txt"})


def test_a_step_folder_that_lost_its_metadata_still_counts_as_damaged(tmp_path):
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    (tmp_path / "2" / "nnjax.json").unlink()
    assert [e for e, _ in steps.epochs(tmp_path)] == [0, 1]
    with pytest.raises(CheckpointError, match=rf"{tmp_path}/2/nnjax.json: missing"):
        nnjax.load(tmp_path)


# W6: overwrite=True replaces only a checkpoint or an empty folder -----------------------


def test_overwrite_refuses_a_folder_that_is_not_a_checkpoint(tmp_path):
    folder = tmp_path / "thesis"
    (folder / "figs").mkdir(parents=True)
    (folder / "thesis.tex").write_text("the user's thesis.tex")
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    with pytest.raises(FileExistsError, match=rf"{folder} {OTHER_FILES}"):
        nnjax.save(model, folder, overwrite=True)
    with pytest.raises(FileExistsError, match=rf"{folder} {OTHER_FILES}"):
        nnjax.save_state(model, folder, overwrite=True)
    _survive({folder / "thesis.tex"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # nothing hidden left


def test_overwrite_refuses_a_file_and_leaves_nothing_hidden(tmp_path):
    afile = tmp_path / "model.ckpt"
    afile.write_text("the user's model.ckpt")
    with pytest.raises(FileExistsError, match=rf"{afile} is a file, not an nnjax checkpoint"):
        nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), afile, overwrite=True)
    _survive({afile})
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_path_overwrite_cannot_replace_is_named_without_suggesting_it(tmp_path, what, overwrite):
    path = tmp_path / "afile"  # the audit's beginner: the first message must be the right one
    if what == "file":
        path.write_text("the user's afile")
        said = rf"{path} is a file, not an nnjax checkpoint: choose another path"
    else:
        path.mkdir()
        (path / "afile").write_text("the user's afile")
        said = rf"{path} {OTHER_FILES} .*: choose"
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    with pytest.raises(FileExistsError, match=said) as err:
        nnjax.save(model, path, overwrite=overwrite)
    assert "pass overwrite=True" not in str(err.value)
    _survive({path if what == "file" else path / "afile"})


def test_a_path_overwrite_can_replace_suggests_it(tmp_path):
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    (tmp_path / "empty").mkdir()
    nnjax.save(model, tmp_path / "ckpt")
    for path in (tmp_path / "empty", tmp_path / "ckpt"):
        with pytest.raises(FileExistsError, match=rf"{path} already exists; pass overwrite=True"):
            nnjax.save_state(model, path)
        nnjax.save_state(model, path, overwrite=True)  # as it said


def test_overwrite_replaces_a_checkpoint_or_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    first, second = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1))
    nnjax.save(first, tmp_path / "empty", overwrite=True)
    nnjax.save(second, tmp_path / "empty", overwrite=True)
    assert leaves(nnjax.load(tmp_path / "empty"))[0].tolist() == leaves(second)[0].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_only_a_training_run_replaces_a_step_folder_that_lost_its_json(tmp_path):
    import orbax.checkpoint as ocp

    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    nnjax.save(model, tmp_path / "lost", overwrite=True)
    (tmp_path / "lost" / "nnjax.json").unlink()
    with pytest.raises(FileExistsError, match=rf"lost {OTHER_FILES}"):
        nnjax.save(model, tmp_path / "lost", overwrite=True)  # nnjax.save: never
    assert steps.lost_meta(tmp_path / "lost")  # fit's ModelCheckpoint: yes (its step)
    flax = tmp_path / "flax"  # Flax's guide: checkpointer.save(ckpt_dir / "state", ...)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(flax / "state", nnx.to_pure_dict(nnx.state(model)))
    checkpointer.wait_until_finished()
    (flax / "notes.txt").write_text("mine")
    assert not steps.lost_meta(flax)
    with pytest.raises(FileExistsError, match=rf"flax {OTHER_FILES}"):
        nnjax.save(model, flax, overwrite=True)
    assert (flax / "notes.txt").read_text() == "mine" and (flax / "state").is_dir()


# W3 + U1: a kill between the two renames of an overwrite --------------------------------


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_kill_between_the_renames_loses_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "ck"
    old, new = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1))
    nnjax.save(old, folder)
    real = os.rename

    def killed_after_the_first(src, dst):
        real(src, dst)
        if str(dst).endswith(".old"):
            raise KeyboardInterrupt  # stands in for SIGKILL right after the first rename

    monkeypatch.setattr(os, "rename", killed_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        nnjax.save(new, folder, overwrite=True)
    monkeypatch.undo()
    assert not folder.exists() and len(_hidden(tmp_path)) == 1  # only the .old is left
    np.testing.assert_array_equal(leaves(nnjax.load(folder))[0], leaves(old)[0])
    assert folder.is_dir() and _hidden(tmp_path) == []  # put back under its name


def test_the_complete_new_checkpoint_wins_over_the_old_one(tmp_path):
    folder = tmp_path / "ck"
    old, new = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1))
    nnjax.save(old, folder)
    nnjax.save(new, tmp_path / ".ck.0123abcd.tmp")  # the new one, complete (nnjax.json last)
    os.rename(folder, tmp_path / ".ck.89abcdef.old")  # the state a SIGKILL leaves
    (tmp_path / ".ck.fedcba98.tmp").mkdir()  # an older killed write, incomplete
    model = nnjax.load_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(2)), folder)
    np.testing.assert_array_equal(leaves(model)[0], leaves(new)[0])
    assert _hidden(tmp_path) == [".ck.89abcdef.old", ".ck.fedcba98.tmp"]  # a reader deletes nothing
    nnjax.save(old, folder, overwrite=True)  # the next write of "ck" removes them
    assert _hidden(tmp_path) == []


def test_stale_siblings_are_removed_before_the_next_write(tmp_path):
    folder = tmp_path / "ck"
    nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), folder)
    (tmp_path / ".ck.0123abcd.tmp" / "state").mkdir(parents=True)  # half-written, killed
    (tmp_path / ".ck.0123abcd.tmp" / "state" / "junk").write_bytes(b"x" * 100)
    (tmp_path / ".other.0123abcd.tmp").mkdir()  # another target's: not ours to remove
    nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1)), folder, overwrite=True)
    assert _hidden(tmp_path) == [".other.0123abcd.tmp"]


def test_a_hidden_step_folder_is_recovered_for_resume_and_tidied_by_the_next_run(tmp_path):
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    trained = leaves(nnjax.load(tmp_path))
    os.rename(tmp_path / "2", tmp_path / ".2.0123abcd.old")  # killed while re-saving step 2
    (tmp_path / ".3.89abcdef.tmp").mkdir()  # killed while writing step 3
    assert T.latest_epoch(tmp_path) == 1  # step 2 is back
    np.testing.assert_array_equal(leaves(nnjax.load(tmp_path))[0], trained[0])
    T.fit(
        mlp(),
        blobs(),
        epochs=3,
        resume_from=tmp_path,
        callbacks=[T.ModelCheckpoint(tmp_path)],
        **KW,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2", "3"]


def test_a_recovery_that_cannot_rename_names_the_hidden_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ck"
    nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), folder)
    os.rename(folder, tmp_path / ".ck.89abcdef.old")

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "rename", read_only)
    with pytest.raises(
        CheckpointError, match=rf"{folder}: missing .*in {tmp_path}/\.ck\.89abcdef\.old"
    ):
        nnjax.load(folder)


# W4: a per-array CRC32 in nnjax.json -------------------------------------------------------


def _flip_a_bit_in_the_largest_array_file(folder):
    largest = max(
        (p for p in (folder / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0x10
    largest.write_bytes(bytes(data))


def _save_step(folder, epoch, model):
    _, params, rest = nnx.split(model, nnx.Param, ...)
    save_checkpoint(folder, epoch, T.TrainState(params, (), rest), {"seed": 0}, model=model)


def test_a_flipped_bit_is_a_checkpoint_error_and_fallback_skips_it(tmp_path):
    old, new = nn.MLP(64, (256,), 3, rngs=nnx.Rngs(0)), nn.MLP(64, (256,), 3, rngs=nnx.Rngs(1))
    _save_step(tmp_path, 0, old)
    _save_step(tmp_path, 1, new)
    _flip_a_bit_in_the_largest_array_file(tmp_path / "2")
    with pytest.raises(
        CheckpointError, match=rf"{tmp_path}/2/state: layers/0/kernel fails its CRC32 check"
    ):
        nnjax.load(tmp_path)
    with pytest.warns(CheckpointFallbackWarning, match="CRC32"):
        model = nnjax.load(tmp_path, fallback=True)
    np.testing.assert_array_equal(leaves(model)[1], leaves(old)[1])


def test_a_checkpoint_without_checksums_loads_as_before(tmp_path):
    import json

    model = nn.MLP(64, (256,), 3, rngs=nnx.Rngs(0))
    folder = nnjax.save(model, tmp_path / "m")
    meta = json.loads((folder / "nnjax.json").read_text())
    assert set(meta["crc32"]["state"]) == {
        "layers/0/bias",
        "layers/0/kernel",
        "layers/1/bias",
        "layers/1/kernel",
    }
    del meta["crc32"]  # written by an older nnjax
    (folder / "nnjax.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(leaves(nnjax.load(folder))[1], leaves(model)[1])
