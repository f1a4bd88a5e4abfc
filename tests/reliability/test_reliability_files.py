"""Damaged, empty, garbled and unwritable files in nnjax.io: one error naming the file.

Also the multi-process rule: metadata files are written by JAX process 0 only.
"""

import errno
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax.io import _orbax, layout, run
from nnjax.io.errors import CheckpointError
from nnjax.nn import MLP
from tests.reliability._corpus import case, check, params


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model saved once; each case damages a copy."""
    folder = tmp_path_factory.mktemp("saved") / "mlp"
    nnjax.save(MLP(3, (4,), 2, rngs=nnx.Rngs(0)), folder)
    return folder


def _copy(saved, tmp_path):
    import shutil

    target = tmp_path / "m"
    shutil.copytree(saved, target)
    return target


def _meta(folder, text):
    path = folder / "nnjax.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _version(folder, version):
    meta = json.loads((folder / "nnjax.json").read_text())
    _meta(folder, json.dumps({**meta, "version": version}))


# (id, damage(folder), error, words): nnjax.load of the damaged copy
DAMAGED = [
    ("meta-garbled", lambda f: _meta(f, "{"), CheckpointError, ("m/nnjax.json", "garbled JSON")),
    ("meta-empty", lambda f: _meta(f, ""), CheckpointError, ("m/nnjax.json", "empty")),
    ("meta-blank", lambda f: _meta(f, "  \n"), CheckpointError, ("m/nnjax.json", "empty")),
    ("meta-binary", lambda f: _meta(f, b"\xff\xfe\x00"), CheckpointError, ("m/nnjax.json",)),
    ("meta-list", lambda f: _meta(f, "[1, 2]"), CheckpointError, ("m/nnjax.json", "not an nnjax")),
    (
        "meta-other-format",
        lambda f: _meta(f, '{"format": "keras"}'),
        CheckpointError,
        ("m/nnjax.json",),
    ),
    ("meta-future", lambda f: _version(f, 99), CheckpointError, ("m/nnjax.json", "version 99")),
    (
        "meta-version-text",
        lambda f: _version(f, "1"),
        CheckpointError,
        ("m/nnjax.json", "version 1"),
    ),
    (
        "meta-missing",
        lambda f: (f / "nnjax.json").unlink(),
        CheckpointError,
        ("m/nnjax.json", "missing"),
    ),
    (
        "state-missing",
        lambda f: __import__("shutil").rmtree(f / "state"),
        CheckpointError,
        ("state", "missing"),
    ),
]


@pytest.mark.parametrize(
    ("damage", "error", "words"), [d[1:] for d in DAMAGED], ids=[d[0] for d in DAMAGED]
)
def test_a_damaged_checkpoint_names_the_file(saved, tmp_path, damage, error, words):
    folder = _copy(saved, tmp_path)
    damage(folder)
    with pytest.raises(error) as info:
        nnjax.load(folder)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "\n" not in message


def _json_file(tmp_path, content):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_bytes(content)
    return path


def _prep(tmp_path, content):
    (tmp_path / run.FILE).write_text(content)
    return tmp_path


CASES = [
    case(
        "load-nonexistent",
        lambda: nnjax.load("/nonexistent/run"),
        (FileNotFoundError, CheckpointError),
        "/nonexistent/run",
    ),
    case(
        "read-json-missing",
        lambda: layout.read_json("/nonexistent/config.json"),
        CheckpointError,
        "/nonexistent/config.json",
        "missing",
    ),
    case(
        "write-json-no-folder",
        lambda: layout.write_json("/nonexistent/dir/config.json", {}),
        OSError,
        "/nonexistent/dir/config.json",
    ),
    case(
        "write-json-not-json",
        lambda: layout.write_json("/tmp/never.json", {"a": object()}),
        TypeError,
        "object",
    ),
]


@pytest.mark.parametrize("c", params(CASES))
def test_bad_path(c):
    check(c)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "missing"),
        (b"", "empty"),
        (b"{", "garbled JSON"),
        (b"\xff\xfe", "unreadable"),
        (b'{"a": }', "garbled JSON"),
    ],
    ids=["missing", "empty", "garbled", "binary", "half"],
)
def test_read_json_names_the_file(tmp_path, content, words):
    path = _json_file(tmp_path, content)
    with pytest.raises(CheckpointError) as info:
        layout.read_json(path)
    assert str(path) in str(info.value) and words in str(info.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "empty"),
        ("{", "garbled JSON"),
        ("[1]", "garbled"),
        ('{"version": 9, "input_shape": [2]}', "version 9"),
        ('{"version": 1}', "input_shape"),
    ],
    ids=["empty", "garbled", "list", "future", "no-shape"],
)
def test_a_damaged_preprocessing_file_names_it(tmp_path, content, words):
    with pytest.raises(CheckpointError) as info:
        run.read_preprocessing(_prep(tmp_path, content))
    assert run.FILE in str(info.value) and words in str(info.value)


def test_save_refuses_an_existing_folder_and_names_it(saved):
    with pytest.raises(FileExistsError, match=str(saved)):
        nnjax.save(MLP(3, (4,), 2, rngs=nnx.Rngs(1)), saved)


def test_loading_into_another_architecture_names_the_array_and_both_shapes(saved):
    other = MLP(3, (5,), 2, rngs=nnx.Rngs(0))
    with pytest.raises(CheckpointError) as info:
        nnjax.load_state(other, saved)
    message = str(info.value)
    assert "(4" in message and "(5" in message, message


@pytest.mark.parametrize(
    "error", [errno.ENOSPC, errno.EACCES, errno.EROFS], ids=["disk-full", "permission", "read-only"]
)
def test_a_failed_json_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch, error
):
    path = tmp_path / "config.json"
    layout.write_json(path, {"old": 1})

    def fail(fd):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError) as info:
        layout.write_json(path, {"new": 2})
    assert str(path) in str(info.value) and os.strerror(error) in str(info.value)
    assert info.value.errno == error
    monkeypatch.undo()
    assert layout.read_json(path) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES], ids=["disk-full", "permission"])
def test_a_failed_array_write_keeps_the_old_checkpoint(saved, tmp_path, monkeypatch, error):
    folder = _copy(saved, tmp_path)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))

    def fail(path, tree):
        raise OSError(error, os.strerror(error), str(path))

    monkeypatch.setattr(_orbax, "write", fail)
    with pytest.raises(OSError) as info:
        nnjax.save(MLP(3, (4,), 2, rngs=nnx.Rngs(1)), folder, overwrite=True)
    assert info.value.errno == error
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    nnjax.load(folder)


def test_a_failed_final_rename_puts_the_previous_checkpoint_back(saved, tmp_path, monkeypatch):
    folder = _copy(saved, tmp_path)
    expected = nnjax.load(folder)(jnp.ones((1, 3)))
    real = os.rename

    def fail_on_the_new_one(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "rename", fail_on_the_new_one)
    with pytest.raises(OSError):
        nnjax.save(MLP(3, (4,), 2, rngs=nnx.Rngs(7)), folder, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    np.testing.assert_array_equal(nnjax.load(folder)(jnp.ones((1, 3))), expected)


def test_only_process_0_writes_metadata(tmp_path, monkeypatch):
    # JSON side files come from process 0 alone; checkpoint folders are written by every
    # process together (tests/distributed/test_two_process_checkpoint.py runs two real processes).
    monkeypatch.setattr(jax, "process_index", lambda *a, **k: 1)
    layout.write_json(tmp_path / "config.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    layout.write_json(tmp_path / "config.json", {"a": 1})  # process 0 (one process): written
    assert layout.read_json(tmp_path / "config.json") == {"a": 1}
