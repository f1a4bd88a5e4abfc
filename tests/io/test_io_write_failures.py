"""A write that fails inside Orbax, and what Orbax cannot store: one clear line.

A full disk surfaced as TensorStore's ``ValueError: OUT_OF_RANGE: Error writing ...``
naming Orbax's hidden temporary folder, which ``ModelCheckpoint`` (it catches
``OSError``) let through. It is now an ``OSError`` naming the user's folder and the
cause, errno kept, the previous checkpoint intact and nothing left behind. Keys Orbax
would store as one array (it joins them with ".") and zero-size arrays are refused
before anything is written, naming the key path.
"""

import errno
import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
import nnjax.train as T
from nnjax.io import _orbax, layout
from tests.train._data import blobs, leaves, mlp

KW = dict(loss="cross_entropy", batch_size=32, verbose=0, seed=0)


def _tensorstore_error(path, code):
    """What TensorStore raises through Orbax when the disk is full (``code``: an errno)."""
    return ValueError(
        f'OUT_OF_RANGE: Error writing "layers.0.bias/0" in OCDBT database at local file '
        f'"{path}.orbax-checkpoint-tmp/ocdbt.process_0/": Failed to write 31950 bytes to '
        f"file 14: {os.strerror(code)} [os_error_code='{code}']"
    )


def _fill_the_disk(monkeypatch):
    """Makes every Orbax save fail as TensorStore does when a file may not grow (EFBIG)."""

    class Full:
        def save(self, path, *args, **kwargs):
            raise _tensorstore_error(path, errno.EFBIG)

    monkeypatch.setattr(_orbax, "_checkpointer", lambda tag=None: Full())


def test_a_full_disk_inside_orbax_is_an_oserror_naming_the_folder(tmp_path, monkeypatch):
    model = mlp(seed=0)
    folder = nnjax.save(model, tmp_path / "ck")
    _fill_the_disk(monkeypatch)
    with pytest.raises(OSError) as info:
        nnjax.save(mlp(seed=1), folder, overwrite=True)
    assert info.value.errno == errno.EFBIG
    assert str(info.value) == f"[Errno 27] cannot write {folder}: File too large"
    assert isinstance(info.value.__cause__, ValueError)  # Orbax's own, chained
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck"]  # no hidden temporary folder
    for a, b in zip(leaves(model), leaves(nnjax.load(folder)), strict=True):
        np.testing.assert_array_equal(a, b)  # the previous checkpoint is intact


def test_model_checkpoint_gives_its_message_for_a_full_disk(tmp_path, monkeypatch):
    _fill_the_disk(monkeypatch)
    with pytest.raises(OSError) as info:
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path / "ck")], **KW)
    message = str(info.value)
    assert message.startswith("[Errno 27] ModelCheckpoint: could not save epoch 1 to ")
    assert f"cannot write {tmp_path / 'ck' / '1'}: File too large" in message
    assert "orbax-checkpoint-tmp" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_tensorstore_error("/x/.ck.01234567.tmp/state", errno.ENOSPC), errno.ENOSPC),
        (ValueError('PERMISSION_DENIED: Error writing local file "/x/y"'), None),
        (PermissionError(errno.EACCES, "Permission denied", "/x/.ck.tmp/_METADATA"), 13),
    ],
    ids=["enospc", "status-only", "oserror"],
)
def test_write_failures_become_oserrors_naming_the_folder(tmp_path, error, expected):
    with pytest.raises(OSError) as info, _orbax.failures_named(tmp_path / "ck"):
        raise error
    assert info.value.errno == expected
    assert f"cannot write {tmp_path / 'ck'}: " in str(info.value)
    assert info.value.__cause__ is error


def test_other_orbax_errors_pass_through(tmp_path):
    with pytest.raises(TypeError, match="unsupported"), _orbax.failures_named(tmp_path):
        raise TypeError("unsupported leaf")


_FSIZE = """
import os, json, resource, signal, sys, warnings
warnings.simplefilter("ignore")
from flax import nnx
import nnjax
from nnjax import nn
folder = nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
try:
    nnjax.save(nn.MLP(4, (2000,), 3, rngs=nnx.Rngs(1)), folder, overwrite=True)
    out = {"error": None}
except Exception as err:
    out = {"error": type(err).__name__, "errno": getattr(err, "errno", None), "text": str(err)}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_real_file_size_limit_is_an_oserror_naming_the_folder(tmp_path):
    """The auditor's reproducer: RLIMIT_FSIZE in a child process (about 4 s)."""
    folder = tmp_path / "ck"
    script = textwrap.dedent(_FSIZE)
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "error": "OSError",
        "errno": errno.EFBIG,
        "text": f"[Errno 27] cannot write {folder}: File too large",
    }
    assert os.listdir(tmp_path) == ["ck"]
    assert nnjax.load(folder).layers[0].kernel.get_value().shape == (4, 8)  # the old one


class DotKeys(nnx.Module):
    def __init__(self, shape=(3,)):
        self.d = nnx.Dict(
            {"a.b": nnx.Param(jnp.ones(shape)), "a": nnx.Dict({"b": nnx.Param(jnp.zeros(3))})}
        )


@pytest.mark.parametrize("shape", [(2,), (3,)], ids=["other-shape", "same-shape"])
def test_keys_orbax_would_store_as_one_array_are_refused_before_writing(tmp_path, shape):
    with pytest.raises(
        ValueError,
        match=rf"cannot save {tmp_path}/ck: its state arrays d/a/b and d/a\.b would both be "
        r"stored as Orbax's array 'd\.a\.b'",
    ):
        nnjax.save_state(DotKeys(shape), tmp_path / "ck")
    assert os.listdir(tmp_path) == []  # nothing written, nothing hidden


def test_a_zero_size_array_is_refused_naming_it(tmp_path):
    class Empty(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.ones(2))
            self.z = nnx.Param(jnp.zeros((0, 3)))

    with pytest.raises(ValueError, match=r"ck: its state array z has zero size \(shape \(0, 3\)\)"):
        nnjax.save_state(Empty(), tmp_path / "ck")
    assert os.listdir(tmp_path) == []


def test_the_checks_leave_ordinary_states_alone(tmp_path):
    layout.write(tmp_path / "ck", {"state": {"a": np.ones(2), "b": {"a": np.zeros(())}}}, {})
    meta = json.loads((tmp_path / "ck" / "nnjax.json").read_text())
    assert set(meta["crc32"]["state"]) == {"a", "b/a"}


@pytest.mark.parametrize("call", ["replace", "rename"])
def test_a_failed_commit_names_the_folder_not_the_hidden_one(tmp_path, monkeypatch, call):
    """``nnjax.json``'s write (``os.replace``) or the last rename failing, on an overwrite.

    Only those calls fail (Orbax renames its own folders with the same ``os``).
    """
    old = mlp(seed=0)
    folder = nnjax.save(old, tmp_path / "ck")
    real = getattr(os, call)
    if call == "replace":
        err = OSError(errno.ENOSPC, "No space left on device")
        expected = f"[Errno 28] cannot write {folder}: No space left on device"
        last = lambda src, dst: os.path.basename(dst) == "nnjax.json"
    else:
        err = PermissionError(errno.EACCES, "Permission denied")
        expected = f"[Errno 13] cannot write {folder}: Permission denied"
        last = lambda src, dst: str(dst) == str(folder) and ".tmp" in str(src)

    def failing(src, dst, *args, **kwargs):
        if last(src, dst):
            raise err
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, call, failing)
    with pytest.raises(OSError) as info:
        nnjax.save(mlp(seed=1), folder, overwrite=True)
    monkeypatch.undo()
    assert str(info.value) == expected
    assert info.value.__cause__ is not None  # the original, chained
    assert os.listdir(tmp_path) == ["ck"]  # no hidden folder left, the old one back
    assert all(np.array_equal(a, b) for a, b in zip(leaves(nnjax.load(folder)), leaves(old)))
