"""The ``nnjax`` command does what its help says: options reach ``fit``, files land where
named, errors are one line, a closed pipe and Ctrl-C end quietly (130/141)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import jax
import numpy as np
import pytest
from flax import nnx

from nnjax import _hardware, cli, nn, train
from tests._cli_runs import TINY, one_line, run_cli

pytest.importorskip("sklearn")


class _Stop(Exception):
    """Raised by the fake ``fit`` once it has seen its arguments."""


def test_train_options_reach_fit_and_the_model(tmp_path, capsys, monkeypatch):
    seen = {}

    def fit(model, data, **kwargs):
        seen.update(kwargs, model=model, data=data)
        raise _Stop("seen")

    monkeypatch.setattr(train, "fit", fit)
    argv = ["train", *TINY, "--epochs", "7", "--batch-size", "3", "--lr", "0.25"]
    argv += [
        "--optimizer",
        "sgd",
        "--seed",
        "11",
        "--precision",
        "bfloat16",
        "--out",
        tmp_path / "r",
    ]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "_Stop: seen" in err  # the fake fit's error, as one line
    assert (seen["epochs"], seen["batch_size"], seen["precision"]) == (7, 3, "bfloat16")
    assert (seen["learning_rate"], seen["optimizer"], seen["seed"]) == (0.25, "sgd", 11)
    assert seen["verbose"] == 0  # --quiet
    assert seen["resume_from"] is None
    x, y = seen["data"]
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 1, 0]
    # --seed also initialises the model: the same weights as nn.MLP with Rngs(11).
    expected = nn.MLP(2, (4,), 2, dropout=0.0, rngs=nnx.Rngs(11))
    got, want = (jax.tree.leaves(nnx.state(m, nnx.Param)) for m in (seen["model"], expected))
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=0)
    assert not (tmp_path / "r").exists()  # it failed before a checkpoint: cleaned up


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--epochs", "abc"], "nnjax train: error: argument --epochs: expected"),
        (["train", "--model", "nope"], "argument --model: invalid choice: 'nope'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["nope"], "nnjax: error: argument COMMAND: invalid choice: 'nope'"),
        ([], "nnjax: error: the following arguments are required: COMMAND"),
        (["launch", "--port", "70000", "--", "true"], "argument --port: expected a port"),
        (["launch", "--port", "0", "--", "true"], "expected a port in [1, 65535], got '0'"),
    ],
    ids=["epochs", "model", "unknown-flag", "command", "no-command", "port-big", "port-0"],
)
def test_a_parser_error_is_one_line_that_points_at_help(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert one_line(err) and words in err, err
    assert "usage:" not in err and "--help`)" in err


def test_data_list_refuses_a_dataset_name(capsys):
    code, out, err = run_cli(capsys, "data", "list", "mnist")
    assert code == cli.EXIT_USAGE and one_line(err) and out == ""
    assert "`nnjax data list` takes no dataset name, got 'mnist'" in err


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No dataset on disk and no network: every download fails as it would offline."""
    for name in ("NNJAX_DATA_DIR", "NNJAX_DATASET_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNJAX_CACHE_DIR", str(tmp_path / "cache"))
    tried = []

    def urlopen(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return tried


@pytest.mark.parametrize(
    "argv",
    [["train", "--dataset", "mnist", "--quiet"], ["data", "fetch", "mnist"]],
    ids=["train", "fetch"],
)
def test_a_dataset_missing_offline_is_one_line(offline, tmp_path, capsys, argv):
    if argv[0] == "train":
        argv = [*argv, "--out", tmp_path / "r"]
    code, _, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]  # after one "downloading ..." line per attempt
    assert last.startswith(f"nnjax {argv[0]}: error: ") and "could not be downloaded" in last
    assert offline and not (tmp_path / "r").exists()


def test_a_closed_stdout_is_status_141_without_a_message(capsys, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    code = cli.main(["data", "list"])
    monkeypatch.undo()
    assert code == cli.EXIT_BROKEN_PIPE and capsys.readouterr().err == ""


def _child_env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one device is enough, and starts faster
    return env


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_python_m_nnjax_into_a_closed_pipe_is_quiet():
    child = subprocess.Popen(
        [sys.executable, "-m", "nnjax", "data", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    )
    child.stdout.close()  # the reader is gone before the command prints
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == ""


# The fake fit tells the test it is running, then waits for Ctrl-C. With "gc", the first
# Ctrl-C is sent from inside a garbage-collector callback (as when it lands in JAX's), where
# CPython swallows the KeyboardInterrupt: the command must resend it, not go on.
_CTRL_C = textwrap.dedent(
    """
    import gc, os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    from nnjax import cli, train

    armed = []

    def interrupt_in_gc(phase, info):
        if armed and phase == "start":
            armed.clear()
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10000):  # the Python handler runs here, inside the callback
                pass

    def fit(*args, **kwargs):
        print("training", flush=True)
        if where == "gc":
            gc.callbacks.append(interrupt_in_gc)
            armed.append(True)
            gc.collect()
        time.sleep(30)
        print("not interrupted", file=sys.stderr)

    train.fit = fit
    out, where = sys.argv[1:]
    sys.argv = ["nnjax", "train", "--dataset", "xor", "--quiet", "--out", out]
    sys.exit(cli.main())
    """
)


@pytest.mark.parametrize("where", ["sleep", "gc"])
@pytest.mark.slow
def test_ctrl_c_during_train_is_130_one_line_and_no_folder(tmp_path, where):
    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C, str(out), where],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert child.stdout.readline().startswith("nnjax train: mlp on xor")
        assert child.stdout.readline() == "training\n"
        if where == "sleep":
            child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == cli.EXIT_INTERRUPTED, err
    assert err == "nnjax train: interrupted\n"
    assert not out.exists()


def test_ctrl_c_while_the_parser_is_built_is_130_and_one_line(capsys, monkeypatch):
    def interrupted():  # Ctrl-C while building the parser imports JAX and Optax
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code, out, err = run_cli(capsys, "train", "--quiet")
    except KeyboardInterrupt:  # not pytest's to see: it would stop the whole session
        pytest.fail("KeyboardInterrupt escaped nnjax.cli.main")
    assert code == cli.EXIT_INTERRUPTED and out == "" and err == "nnjax: interrupted\n"


def test_the_command_offers_the_precisions_fit_takes():
    from nnjax._cli_setup import PRECISIONS
    from nnjax.train import precision

    assert set(PRECISIONS) == set(precision.PRECISIONS) - {None}


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_the_precision_is_recorded_and_reaches_evaluate_and_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)  # no warning
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--precision", "bfloat16",
                           "--out", out)  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["precision"] == "bfloat16"
    seen = []
    for name in ("evaluate", "predict"):
        real = getattr(train, name)
        spy = lambda *a, _real=real, **k: seen.append(k.get("precision")) or _real(*a, **k)
        monkeypatch.setattr(train, name, spy)
    assert run_cli(capsys, "evaluate", out)[0] == 0
    np.save(tmp_path / "x.npy", np.array([[0.0, 1.0], [1.0, 1.0]], np.float32))
    assert run_cli(capsys, "predict", out, tmp_path / "x.npy")[0] == 0
    assert seen == ["bfloat16", "bfloat16"]
    # a run recorded before --precision (no key) trains, evaluates and predicts in float32
    config = json.loads((out / "config.json").read_text())
    del config["precision"]
    (out / "config.json").write_text(json.dumps(config))
    assert run_cli(capsys, "evaluate", out)[0] == 0 and seen[-1] is None
