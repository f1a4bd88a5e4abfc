"""The ``nnjax`` command, run in-process through ``nnjax.cli.main``."""

import json
import pathlib
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


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_train_writes_a_complete_run_folder(digits_run):
    for name in (
        "config.json",
        "history.csv",
        "history.json",
        "result.json",
        "learning_curves.png",
    ):
        assert (digits_run / name).is_file(), name
    assert [p.name for p in (digits_run / "checkpoint").iterdir()] == ["2"]  # after epoch 2
    history = json.loads((digits_run / "history.json").read_text())
    assert history["epoch"] == [1, 2]  # counted as the console counts
    assert set(history["history"]) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",  # fit logs the optimizer's (injected) learning rate
    }
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


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_resume_continues_the_run_like_an_uninterrupted_one(tmp_path, capsys):
    common = ["train", "--limit", "200", "--hidden", "16", "--quiet"]
    assert cli.main([*common, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    assert cli.main([*common, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    capsys.readouterr()
    resume = [*common, "--epochs", "3", "--resume", "--out", str(tmp_path / "resumed")]
    code, out, _ = _run(capsys, *resume, "--verbose", "2")
    assert code == 0
    assert "resuming after epoch 1" in out and "s for epochs 2-3)" in out  # honest timing
    result = json.loads((tmp_path / "resumed" / "result.json").read_text())
    assert result["epochs_run"] == 2 and result["epochs"] == 3
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert resumed["epoch"] == [1, 2, 3]
    np.testing.assert_allclose(
        resumed["history"]["loss"], straight["history"]["loss"], rtol=1e-6, atol=1e-6
    )


def _raw_digits_test_set(limit=400):
    from nnjax import data

    _, (x, y) = data.load("digits")
    return x[:limit], y[:limit]


def test_the_run_records_its_preprocessing_and_load_returns_it(digits_run):
    import nnjax

    model, prep = nnjax.load(digits_run)
    assert type(model).__name__ == "MLP"
    assert prep.input_shape == (8, 8) and prep.scale == 16.0 and prep.flatten
    assert prep.class_names == tuple("0123456789")
    x, _ = _raw_digits_test_set(3)
    np.testing.assert_array_equal(prep(x), (x.astype(np.float32) / 16).reshape(3, 64))


def test_predict_and_evaluate_work_on_raw_arrays(digits_run, tmp_path, capsys):
    import nnjax

    x, y = _raw_digits_test_set()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    code, out, _ = _run(
        capsys,
        "predict",
        str(digits_run),
        str(tmp_path / "x.npy"),
        "--output",
        str(tmp_path / "out.npy"),
    )
    assert code == 0
    model, prep = nnjax.load(digits_run)
    model.eval()
    expected = np.argmax(np.asarray(model(prep(x))), axis=-1)
    lines = out.strip().splitlines()
    assert lines[:2] == [f"0\t{expected[0]}", f"1\t{expected[1]}"] and len(lines) == len(x)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model(prep(x)), rtol=1e-5, atol=1e-5)
    code, out, _ = _run(
        capsys,
        "evaluate",
        str(digits_run),
        "--inputs",
        str(tmp_path / "x.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
    )
    assert code == 0
    accuracy = float(out.split("x.npy accuracy: ")[1].split(",")[0])
    np.testing.assert_allclose(accuracy, np.mean(expected == y), atol=1e-4)


def test_predict_refuses_inputs_of_another_shape(digits_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    code, _, err = _run(capsys, "predict", str(digits_run), str(tmp_path / "x.npy"))
    assert code == cli.EXIT_USAGE
    assert "inputs have shape (2, 28, 28); this model takes (N, *(8, 8))" in err


def test_version_defaults_and_choices_from_the_code(capsys):
    import nnjax
    from nnjax.train import optimizers

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"nnjax {nnjax.__version__}"
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: adam)" in help_text and "(default: 32)" in help_text
    assert "(default: 10; with --resume: the run's recorded total)" in help_text  # --epochs
    assert "(default: None)" not in help_text
    offered = next(a for a in cli.build_parser()._actions if a.dest == "command")
    choices = next(a for a in offered.choices["train"]._actions if a.dest == "optimizer").choices
    for name in choices:  # every offered optimizer is one fit accepts
        optimizers.get_optimizer(name, 0.1)
    with pytest.raises(SystemExit):
        cli.main(["train", "--optimizer", "momentum"])
    assert "invalid choice: 'momentum'" in capsys.readouterr().err


def test_a_run_folder_of_nnjax_0_1_still_evaluates_and_predicts(tmp_path, capsys):
    old = tmp_path / "v0_run"
    shutil.copytree(pathlib.Path(__file__).parent / "io" / "fixtures" / "v0_run", old)
    code, out, _ = _run(capsys, "evaluate", str(old))
    assert code == 0 and "(after epoch 1)" in out
    expected = json.loads((old / "result.json").read_text())["val_accuracy"]
    np.testing.assert_allclose(
        float(out.split("test accuracy: ")[1].split(",")[0]), expected, atol=1e-4
    )
    np.save(tmp_path / "x.npy", _raw_digits_test_set(2)[0])
    code, out, _ = _run(capsys, "predict", str(old), str(tmp_path / "x.npy"))
    assert code == 0 and len(out.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / "checkpoint" / "2" / "nnjax.json").write_text("{"), "garbled JSON"),
        (lambda run: shutil.rmtree(run / "checkpoint" / "2" / "state"), "state: missing"),
        (lambda run: (run / "preprocessing.json").write_text('{"version": 9}'), "version 9"),
    ],
    ids=["metadata", "arrays", "preprocessing"],
)
def test_a_damaged_run_is_a_one_line_error(digits_run, tmp_path, damage, message, capsys):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    damage(run)
    code, _, err = _run(capsys, "evaluate", str(run))
    assert code == cli.EXIT_USAGE
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_existing_run_folder_is_not_overwritten(digits_run, capsys):
    before = (digits_run / "history.json").read_text()
    code, _, err = _run(capsys, "train", "--epochs", "1", "--quiet", "--out", str(digits_run))
    assert code == cli.EXIT_USAGE
    assert "already holds a run" in err and "--resume" in err
    assert (digits_run / "history.json").read_text() == before


@pytest.mark.slow
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


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary", "data", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: nnjax " + command in capsys.readouterr().out


@pytest.mark.slow
def test_console_script_is_installed():
    # the script installed with this interpreter (a venv's bin/, even when not activated)
    beside = pathlib.Path(sys.executable).parent / "nnjax"
    exe = str(beside) if beside.exists() else shutil.which("nnjax")
    if exe is None:
        pytest.skip("the nnjax console script is not on PATH (package not installed)")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "train" in done.stdout
    done = subprocess.run(  # python -m nnjax (nnjax/__main__.py)
        [sys.executable, "-m", "nnjax", "nope"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr


def test_launch_starts_n_processes_with_their_indices(tmp_path):
    script = (
        "import os, sys; env = os.environ; "
        "open(sys.argv[1] + env['NNJAX_PROCESS_ID'], 'w').write(env['NNJAX_NUM_PROCESSES'])"
    )
    status = cli.main(
        ["launch", "--processes", "3", "--", sys.executable, "-c", script, str(tmp_path / "p")]
    )
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0", "p1", "p2"]
    assert {p.read_text() for p in tmp_path.iterdir()} == {"3"}


def test_launch_passes_a_failure_through(capsys):
    assert (
        cli.main(["launch", "--processes", "2", "--", sys.executable, "-c", "raise SystemExit(5)"])
        == 5
    )
    assert cli.main(["launch", "--processes", "2"]) == 2
    assert "needs a command after --" in capsys.readouterr().err


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_a_diverging_run_is_one_line_and_exit_1(tmp_path, capsys):
    code, _, err = _run(
        capsys,
        "train",
        "--limit",
        "200",
        "--epochs",
        "2",
        "--lr",
        "1e9",
        "--optimizer",
        "sgd",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 1
    assert "non-finite training loss" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_resume_refuses_changed_settings_and_accepts_equal_ones(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ("train", "--limit", "200", "--hidden", "8", "--quiet", "--out", out)
    assert _run(capsys, *base, "--epochs", "1", "--lr", "0.01")[0] == 0
    code, _, err = _run(capsys, *base, "--epochs", "2", "--resume", "--lr", "0.5")
    assert code == 2
    assert "--lr 0.5 differs from the run's learning_rate 0.01" in err
    code, _, err = _run(capsys, *base, "--epochs", "2", "--resume", "--batch=16")
    assert code == 2 and "--batch-size 16 differs from the run's batch_size 32" in err
    code, out_text, _ = _run(capsys, *base, "--epochs", "2", "--resume", "--lr=0.01")
    assert code == 0 and "resuming after epoch 1" in out_text
