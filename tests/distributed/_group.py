"""The 2-process test group, launched once per test session (test side; private).

One launch of ``_worker.py`` in 2 processes x 2 fake CPU devices runs every scenario
(allreduce, fit, io, ckpt, sweep) in turn; the test modules that check them
(``test_two_process_*.py`` here, ``tests/io/test_io_multiprocess.py``) all read its
folder. :func:`group` launches it on the first call of the session and returns the
folder on every call: a file lock and a marker on disk, so the modules (and
pytest-xdist's workers, which share the parent of their temporary folders) never launch
it twice. ``conftest.py`` starts it in the background when the session begins (so the
other slow tests run meanwhile, and the group's two processes and this one share the
cores), and those modules sort last.
Every wait is bounded: the launcher's :data:`TIMEOUT_S`; in the workers,
``initialize(timeout_s=60, heartbeat_timeout_s=10)``.
"""

import fcntl
import importlib.util
import json
import os
import sys
import threading
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_worker.py")
#: Ends the group (status 124) if it hangs: well under Orbax's 300 s barrier timeout,
#: so a write that leaves one process waiting there fails the tests.
TIMEOUT_S = 240.0
ATOL = 1e-5  # float32 sums reassociated across devices and processes


def load_module(name):
    """A worker module of this folder by file (they run as scripts, not as a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = load_module("_fit_worker")
CKPT = load_module("_ckpt_worker")


def env():
    """This environment with this checkout first on the path; JAX's device count unset."""
    import nnjax

    root = os.path.dirname(os.path.dirname(nnjax.__file__))
    out = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out.pop("XLA_FLAGS", None)
    return out


def _prepare(out):
    """The inputs the scenarios read, written here by one process over its 4 devices."""
    import nnjax
    from nnjax import train
    from nnjax.train.checkpoint import ModelCheckpoint

    for name in ("fit", "io", "ckpt"):
        (out / name).mkdir()
    (x, y), _ = W.dataset()
    np.save(out / "fit" / "x.npy", x)  # read as a memmap
    one = CKPT.small_model(3)  # saved by this one process, restored by the two
    nnjax.save(one, out / "io" / "one")
    np.save(out / "io" / "one.npy", np.asarray(one.layers[0].kernel[...]))
    first = W.make_model()  # one epoch, resumed by the two
    callbacks = [ModelCheckpoint(out / "ckpt" / "one_ckpt")]
    train.fit(first, (x, y), verbose=0, callbacks=callbacks, **{**W.FIT, "epochs": 1})
    np.savez(out / "ckpt" / "first.npz", *W.leaves(first))


def _launch(out, environment, lock):
    """Runs the group; writes ``status.json``, then releases ``lock`` (an open lock file)."""
    from nnjax import distributed

    try:
        start = time.monotonic()
        command = [sys.executable, WORKER, str(out)]
        status = distributed.launch(command, processes=2, timeout_s=TIMEOUT_S, env=environment)
        report = {"status": status, "seconds": time.monotonic() - start}
    except Exception:  # reported by group(), also when this ran in a thread
        report = {"status": "error", "error": traceback.format_exc()}
    finally:
        (out / "status.json").write_text(json.dumps(report))
        lock.close()


def launch_once(tmp_path_factory, *, background=False):
    """Runs the group unless this session has run it (or runs it now); returns its folder.

    The inputs are prepared here, in this thread (JAX work in this process stays in the
    test's own thread); with ``background``, the launch then runs in a thread, which
    holds the lock until the group is done.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every xdist worker of this session
    out = base / "nnjax_two_process_group"
    lock = open(base / "nnjax_two_process_group.lock", "w")
    try:  # released when the file closes; in the background, never wait for another
        fcntl.flock(lock, fcntl.LOCK_EX | (fcntl.LOCK_NB if background else 0))
    except BlockingIOError:  # another xdist worker prepares or runs the group
        lock.close()
        return out
    if (out / "status.json").exists():
        lock.close()
        return out
    out.mkdir()
    try:
        _prepare(out)
    except Exception:  # reported by group(), not by the test that happened to start it
        report = {"status": "error", "error": traceback.format_exc()}
        (out / "status.json").write_text(json.dumps(report))
        lock.close()
        return out
    if background:
        thread = threading.Thread(target=_launch, args=(out, env(), lock), daemon=True)
        thread.start()
    else:
        _launch(out, env(), lock)
    return out


def group(tmp_path_factory):
    """The group's folder, launched on the first call of the session (or already running)."""
    out = launch_once(tmp_path_factory)
    report = json.loads((out / "status.json").read_text())
    logs = "\n".join(f"{p}:\n{p.read_text()}" for p in sorted(out.glob("*/*.log")))
    assert report["status"] == 0, f"the 2-process group failed: {report}\n{logs}"
    return out


def results(out, scenario):
    """Each process's results of ``scenario``: ``[{name: array}, {name: array}]``."""
    loaded = []
    for i in range(2):
        with np.load(out / scenario / f"{i}.npz") as f:
            loaded.append(dict(f))
    return loaded


def timings(out):
    """Each process's ``<i>.json``: seconds per scenario, the keys left in the store."""
    return [json.loads((out / f"{i}.json").read_text()) for i in range(2)]


def leaves_of(results, name):
    """The arrays ``name.0``, ``name.1``, ... of ``results``, in order."""
    keys = [k for k in results if k.startswith(f"{name}.")]
    return [results[k] for k in sorted(keys, key=lambda k: int(k.rsplit(".", 1)[1]))]


def params(model):
    """The model's parameters as NumPy arrays."""
    import jax
    from flax import nnx

    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def assert_leaves_close(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=ATOL)
