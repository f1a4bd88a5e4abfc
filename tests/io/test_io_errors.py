"""Bad input to nnjax.io: one clear line, nothing half-loaded, never unpickle."""

import ast
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn
from nnjax.io import CheckpointError

IO = pathlib.Path(nnjax.__file__).parent / "io"


@pytest.fixture
def saved(tmp_path):
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    nnjax.save(model, tmp_path / "m")
    return tmp_path / "m"


def _params(model):
    return [np.array(v.get_value()) for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param))]


def test_mismatched_architecture_names_the_path_and_both_shapes(saved):
    wider = nn.MLP(4, (16,), 3, rngs=nnx.Rngs(1))
    before = _params(wider)
    with pytest.raises(
        CheckpointError,
        match=r"layers/0/bias has shape \(8,\) in the checkpoint "
        r"but \(16,\) in the model",
    ):
        nnjax.load_state(wider, saved)
    for a, b in zip(before, _params(wider)):  # nothing half-loaded
        np.testing.assert_array_equal(a, b)


def test_other_parameter_count_names_the_first_extra_path(saved):
    deeper = nn.MLP(4, (8, 8), 3, rngs=nnx.Rngs(1))
    with pytest.raises(
        CheckpointError,
        match=r"layers/1/bias has shape \(3,\) in the checkpoint but \(8,\) in the model",
    ):
        nnjax.load_state(deeper, saved)
    with pytest.raises(CheckpointError, match=r"layers/2/bias \(shape \(3,\)\) is in the model"):
        nnjax.load_state(nn.MLP(4, (8, 3), 3, rngs=nnx.Rngs(1)), saved)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "nnjax.json").unlink(), r"m/nnjax.json: missing"),
        (lambda p: (p / "nnjax.json").write_text("{"), r"m/nnjax.json: garbled JSON"),
        (
            lambda p: (p / "nnjax.json").write_text(
                json.dumps({**json.loads((p / "nnjax.json").read_text()), "version": 99})
            ),
            r"format version 99 is newer than this nnjax reads \(1\); upgrade",
        ),
        (lambda p: (p / "state" / "_METADATA").unlink(), r"state/_METADATA: missing"),
        (
            lambda p: [f.write_bytes(f.read_bytes()[:9]) for f in (p / "state" / "d").iterdir()],
            r"state/d/[0-9a-f]+: damaged array file \(Requested byte range",
        ),
    ],
    ids=["no-metadata", "garbled-metadata", "future-version", "no-array-metadata", "truncated"],
)
def test_damaged_checkpoint_is_one_line_naming_the_file(saved, damage, message, capfd):
    damage(saved)
    with pytest.raises(CheckpointError, match=message) as err:
        nnjax.load(saved)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    assert "Traceback" not in capfd.readouterr().err


def test_empty_step_folder(tmp_path):
    (tmp_path / "ckpt" / "1").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"ckpt/1/nnjax.json: empty checkpoint folder"):
        nnjax.load(tmp_path / "ckpt")


def test_unknown_class_or_function_in_the_json_is_refused(saved):
    meta = json.loads((saved / "nnjax.json").read_text())
    meta["model"]["class"] = "os.system"
    (saved / "nnjax.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"unknown class 'os\.system'"):
        nnjax.load(saved)
    meta["model"] = {
        "class": "Dense",
        "args": [2, 2],
        "kwargs": {"activation": {"$function": "os.system"}},
    }
    (saved / "nnjax.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"unknown function 'os\.system'"):
        nnjax.load(saved)


def test_no_load_path_unpickles_or_evaluates():
    for path in IO.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "cloudpickle", "dill", "importlib"} & set(names), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "__import__"), path
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                pytest.fail(f"{path.name} passes allow_pickle")


def test_fallback_loads_the_newest_intact_and_says_which(tmp_path):
    model = nn.MLP(2, (3,), 2, rngs=nnx.Rngs(0))
    nnjax.save(model, tmp_path / "ckpt" / "1")
    nnjax.save(nn.MLP(2, (3,), 2, rngs=nnx.Rngs(1)), tmp_path / "ckpt" / "2")
    for f in (tmp_path / "ckpt" / "2" / "state" / "d").iterdir():
        f.write_bytes(b"")
    with pytest.raises(CheckpointError, match="damaged array file"):
        nnjax.load(tmp_path / "ckpt")
    with pytest.warns(nnjax.io.CheckpointFallbackWarning, match=r"loaded .*ckpt/1 instead"):
        loaded = nnjax.load(tmp_path / "ckpt", fallback=True)
    np.testing.assert_array_equal(loaded(jnp.ones((1, 2))), model(jnp.ones((1, 2))))


def test_an_unwritable_destination_names_the_path_the_user_gave(tmp_path, monkeypatch):
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(FileExistsError, match=f"cannot write {blocker}/m: {blocker} is a file"):
        nnjax.save(model, blocker / "m")
    x = jnp.ones((1, 4))
    with pytest.raises(OSError, match=f"cannot write {blocker}/m.jaxexport: {blocker} is a file"):
        nnjax.export(model, x, blocker / "m.jaxexport")

    def refuse(self, *args, **kwargs):  # a folder that may not be written (root ignores modes)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    with pytest.raises(PermissionError, match=f"cannot write {tmp_path}/m: Permission denied"):
        nnjax.save(model, tmp_path / "m")
    monkeypatch.undo()
    target = tmp_path / "m.jaxexport"
    target.write_bytes(b"old")
    monkeypatch.setattr(pathlib.Path, "write_bytes", refuse)
    with pytest.raises(PermissionError, match=f"cannot write {target}: Permission denied"):
        nnjax.export(model, x, target)
    assert target.read_bytes() == b"old"  # the old file unchanged, no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "m.jaxexport"]


def _swapped_or_wrong(tmp_path, model):
    folder = tmp_path / "out"
    x = np.ones((1, 4), np.float32)
    return {
        "save swapped": (lambda: nnjax.save(folder, model), r"nnjax\.save: `model`.*the path"
                         r".*the model comes first: nnjax\.save\(model, directory\)"),
        "save_state swapped": (lambda: nnjax.save_state(str(folder), model),
                               r"nnjax\.save_state: `model`.*the model comes first"),
        "load_state swapped": (lambda: nnjax.load_state(str(folder), model),
                               r"nnjax\.load_state: `model`.*the model comes first"),
        "export swapped": (lambda: nnjax.export(str(folder), x, model),
                           r"nnjax\.export\(model, example_input, path\)"),
        "save a dict": (lambda: nnjax.save({"w": x}, folder),
                        r"nnjax\.save: `model` must be a Flax NNX module instance, got dict"),
        "save to an int": (lambda: nnjax.save(model, 3),
                           r"nnjax\.save: `directory` must be a path .*, got int 3"),
        "load a model": (lambda: nnjax.load(model),
                         r"nnjax\.load: `directory` must be a path .*, got MLP$"),
        "load_exported None": (lambda: nnjax.load_exported(None),
                               r"nnjax\.load_exported: `path` must be a path.*got NoneType None"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["save swapped", "save_state swapped", "load_state swapped", "export swapped",
     "save a dict", "save to an int", "load a model", "load_exported None"],
)  # fmt: skip
def test_swapped_or_wrong_arguments_are_named_and_nothing_is_written(tmp_path, case):
    """Before, a swapped call failed deep inside (a weak reference to a str, an
    IndexError, "'str' object is not callable")."""
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    call, match = _swapped_or_wrong(tmp_path, model)[case]
    with pytest.raises(TypeError, match=match):
        call()
    assert list(tmp_path.iterdir()) == []
