"""The ``nnjax`` command, run in-process through ``nnjax.cli.main``."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nnjax import cli

pytest.importorskip("sklearn")


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One small training run on the offline digits, shared by the tests below."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    code = cli.main(
        ["train", "--limit", "400", "--epochs", "2", "--hidden", "32", "--quiet", "--out", str(out)]
    )
    assert code == 0
    return out


def test_train_writes_a_complete_run_folder(digits_run):
    for name in (
        "config.json",
        "history.csv",
        "history.json",
        "result.json",
        "learning_curves.png",
    ):
        assert (digits_run / name).is_file(), name
    assert (digits_run / "checkpoint").is_dir()
    history = json.loads((digits_run / "history.json").read_text())
    assert history["epoch"] == [0, 1]
    assert set(history["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["history"]["loss"][1] < history["history"]["loss"][0]
    rows = (digits_run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3


def test_evaluate_reproduces_the_final_test_accuracy(digits_run, capsys):
    code, out, _ = _run(capsys, "evaluate", str(digits_run))
    assert code == 0
    result = json.loads((digits_run / "result.json").read_text())
    reported = float(out.split("test accuracy: ")[1].split(",")[0])
    np.testing.assert_allclose(reported, result["val_accuracy"], atol=1e-4)
    assert "after epoch 2" in out


def test_resume_continues_the_run_like_an_uninterrupted_one(tmp_path, capsys):
    common = ["train", "--limit", "200", "--hidden", "16", "--quiet"]
    assert cli.main([*common, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    assert cli.main([*common, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert cli.main([*common, "--epochs", "3", "--resume", "--out", str(tmp_path / "resumed")]) == 0
    capsys.readouterr()
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert resumed["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(
        resumed["history"]["loss"], straight["history"]["loss"], rtol=1e-6, atol=1e-6
    )


def test_existing_run_folder_is_not_overwritten(digits_run, capsys):
    before = (digits_run / "history.json").read_text()
    code, _, err = _run(capsys, "train", "--epochs", "1", "--quiet", "--out", str(digits_run))
    assert code == cli.EXIT_USAGE
    assert "already holds a run" in err and "--resume" in err
    assert (digits_run / "history.json").read_text() == before


def test_summary_of_the_course_mlp(capsys):
    code, out, _ = _run(capsys, "summary", "--model", "mlp", "--dataset", "fashion-mnist")
    assert code == 0
    assert "Total params: 573,910" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["train", "--model", "cnn", "--dataset", "xor"], "--model cnn needs image data"),
        (["evaluate", "/nonexistent-run"], "not a run folder"),
        (["data", "verify"], "needs a dataset name"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    code, _, err = _run(
        capsys, *argv, *(["--out", str(tmp_path / "r")] if argv[0] == "train" else [])
    )
    assert code == cli.EXIT_USAGE
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["train", "--epochs", "-1"], ["train", "--hidden", "a,b"]])
def test_bad_flag_values_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_data_list_and_verify(capsys, data_dir, tmp_path):
    code, out, _ = _run(capsys, "data", "list")
    assert code == 0 and "fashion-mnist" in out and "digits" in out
    code, out, _ = _run(capsys, "data", "verify", "fashion-mnist", "--data-dir", data_dir)
    assert code == 0 and "all 4 files verified" in out
    # A damaged copy is reported, with a non-zero exit.
    bad = tmp_path / "fashion-mnist"
    shutil.copytree(f"{data_dir}/fashion-mnist", bad)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    code, out, err = _run(capsys, "data", "verify", "fashion-mnist", "--data-dir", str(bad))
    assert code == 1 and "t10k-labels-idx1-ubyte.gz" in out and "nnjax data fetch" in err


@pytest.mark.parametrize("command", ["train", "evaluate", "summary", "data", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: nnjax " + command in capsys.readouterr().out


def test_console_script_is_installed():
    exe = shutil.which("nnjax")
    if exe is None:
        pytest.skip("the nnjax console script is not on PATH (package not installed)")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "train" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "nnjax.cli", "nope"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice" in done.stderr
