"""The ``nnjax`` command never shows a traceback: one line on stderr, exit status 1 or 2.

Every case runs through ``nnjax.cli.main`` in-process. A run that fails before its first
checkpoint leaves no run folder behind (only what it created is removed).
"""

import json
import shutil

import pytest

from nnjax import cli, train
from tests._cli_runs import run_cli
from tests.reliability._corpus import one_line

pytest.importorskip("sklearn")

TINY = ("--limit", "200", "--hidden", "8", "--quiet")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One epoch of a tiny MLP on the offline digits, shared by the cases below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def _copy(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def _file(tmp_path):
    path = tmp_path / "taken"
    path.write_text("a user's file")
    return path


def _step_folders(tmp_path):
    folder = tmp_path / "ckpt"
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "nnjax.json").write_text("{}")  # a checkpoint (an empty "1/" is not)
    return folder


def _config(tmp_path, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(text)
    return run


# (id, make(tmp_path) -> argv, status, words in the one line)
NO_TRAINING = [
    ("out-is-a-file", lambda t: ["train", "--out", _file(t)], 2, ("taken", "existing file")),
    (
        "out-holds-step-folders",
        lambda t: ["train", "--out", _step_folders(t)],
        2,
        ("ckpt", "checkpoints"),
    ),
    (
        "resume-garbled-config",
        lambda t: ["train", "--resume", "--out", _config(t, "{")],
        2,
        ("config.json", "garbled JSON"),
    ),
    (
        "resume-empty-config",
        lambda t: ["train", "--resume", "--out", _config(t, "")],
        2,
        ("config.json", "empty"),
    ),
    (
        "resume-config-not-object",
        lambda t: ["train", "--resume", "--out", _config(t, "[1]")],
        2,
        ("config.json", "not a run configuration"),
    ),
    (
        "evaluate-garbled-config",
        lambda t: ["evaluate", _config(t, "{")],
        2,
        ("config.json", "garbled JSON"),
    ),
    ("evaluate-empty-config", lambda t: ["evaluate", _config(t, "")], 2, ("config.json", "empty")),
    (
        "predict-garbled-config",
        lambda t: ["predict", _config(t, "{x"), t / "x.npy"],
        2,
        ("config.json", "garbled JSON"),
    ),
    ("evaluate-not-a-run", lambda t: ["evaluate", t], 2, ("not a run folder",)),
    (
        "evaluate-config-without-keys",
        lambda t: ["evaluate", _config(t, '{"model": "mlp"}')],
        2,
        ("config.json", "'dataset'"),
    ),
    (
        "resume-config-without-keys",
        lambda t: ["train", "--resume", "--out", _config(t, "{}")],
        2,
        ("config.json", "'dataset'"),
    ),
    (
        "train-unknown-dataset",
        lambda t: ["train", "--dataset", "nope", "--out", t / "r"],
        2,
        ("'nope'",),
    ),
    ("data-verify-without-name", lambda t: ["data", "verify"], 2, ("dataset name",)),
    ("launch-without-command", lambda t: ["launch"], 2, ("needs a command",)),
]


@pytest.mark.parametrize(
    ("make", "status", "words"), [c[1:] for c in NO_TRAINING], ids=[c[0] for c in NO_TRAINING]
)
def test_a_bad_command_is_one_line(tmp_path, capsys, make, status, words):
    code, _, err = run_cli(capsys, *make(tmp_path))
    assert code == status, err
    assert one_line(err), err
    assert all(w in err for w in words), err


def test_an_out_that_is_a_file_is_left_alone(tmp_path, capsys):
    path = _file(tmp_path)
    run_cli(capsys, "train", "--out", path)
    assert path.read_text() == "a user's file"


@pytest.mark.parametrize(
    "argv",
    [
        ["--lr", "0"],
        ["--lr", "-1"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--dropout", "1.5"],
        ["--dropout", "-0.1"],
        ["--dropout", "1"],
        ["--epochs", "0"],
        ["--batch-size", "0"],
        ["--limit", "-5"],
        ["--hidden", "0,4"],
        ["--hidden", "x"],
        ["--model", "rnn"],
        ["--optimizer", "adamm"],
        ["--verbose", "3"],
    ],
    ids=lambda a: "".join(a),
)
def test_a_bad_flag_value_is_refused_by_the_parser(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv, "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValueError("bad data"), 2),
        (RuntimeError("XLA said\nsomething long"), 1),
        (KeyboardInterrupt(), 130),
    ],
    ids=["value-error", "unexpected-error", "ctrl-c"],
)
def test_a_run_that_fails_before_training_leaves_no_folder(
    tmp_path, capsys, monkeypatch, error, status
):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(train, "fit", fail)
    out = tmp_path / "new" / "run"
    code, _, err = run_cli(capsys, "train", *TINY, "--out", out)
    assert code == status and one_line(err), err
    assert not out.exists()  # this run created it: gone
    assert (tmp_path / "new").is_dir()


def test_a_failed_run_removes_only_what_it_created(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(train, "fit", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad")))
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 2
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_diverging_run_is_exit_1_and_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", *TINY, "--epochs", "1", "--lr", "1e30", "--optimizer", "sgd", "--out", out
    )
    assert code == 1 and one_line(err) and "non-finite training loss" in err, err
    assert not out.exists()


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_resume_into_checkpoints_of_another_model_is_one_line(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hidden": [16]}))  # another model
    before = sorted(p.name for p in (run / "checkpoint").iterdir())
    code, _, err = run_cli(capsys, "train", "--resume", "--epochs", "2", "--quiet", "--out", run)
    assert code == 2 and one_line(err), err
    assert "(8" in err and "(16" in err, err  # names both shapes
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == before


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda r: (r / "checkpoint" / "1" / "nnjax.json").write_text(""), "nnjax.json: empty"),
        (lambda r: (r / "checkpoint" / "1" / "nnjax.json").write_text("{"), "garbled JSON"),
        (lambda r: shutil.rmtree(r / "checkpoint" / "1" / "opt_state"), "opt_state"),
    ],
    ids=["empty-metadata", "garbled-metadata", "no-optimizer-state"],
)
def test_resume_from_a_corrupt_checkpoint_is_one_line(tiny_run, tmp_path, capsys, damage, words):
    run = _copy(tiny_run, tmp_path)
    damage(run)
    code, _, err = run_cli(capsys, "train", "--resume", "--epochs", "2", "--quiet", "--out", run)
    assert code == 2 and one_line(err) and words in err, err


def test_the_csv_counts_epochs_like_history_json_across_a_resume(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path)
    assert run_cli(capsys, "train", *TINY, "--resume", "--epochs", "2", "--out", run)[0] == 0
    rows = (run / "history.csv").read_text().strip().splitlines()
    epochs = [int(line.split(",")[0]) for line in rows[1:]]
    assert epochs == json.loads((run / "history.json").read_text())["epoch"] == [1, 2]
    assert train.latest_epoch(run / "checkpoint") == 1


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--lr", "0.5"], "--lr 0.5 differs from the run's learning_rate 0.001"),
        (["--seed", "7"], "--seed 7 differs from the run's seed 0"),
        (["--hidden", "16"], "--hidden [16] differs from the run's hidden [8]"),
        (["--batch-size", "8"], "--batch-size 8 differs from the run's batch_size 32"),
        (["--opt", "sgd"], "--optimizer sgd differs from the run's optimizer adam"),
        (["--dropout", "0.5"], "--dropout 0.5 differs from the run's dropout 0.0"),
        (["--limit", "100"], "--limit 100 differs from the run's limit 200"),
    ],
    ids=["lr", "seed", "hidden", "batch-size", "optimizer-prefix", "dropout", "limit"],
)
def test_resume_with_changed_settings_is_refused_before_training(tiny_run, capsys, argv, words):
    before = sorted(p.name for p in tiny_run.rglob("*"))
    code, _, err = run_cli(capsys, "train", "--resume", "--epochs", "2", *argv, "--out", tiny_run)
    assert code == 2 and one_line(err) and words in err, err
    assert sorted(p.name for p in tiny_run.rglob("*")) == before


def test_resume_with_nothing_left_to_train_is_one_line(tiny_run, capsys):
    code, _, err = run_cli(
        capsys, "train", "--resume", "--epochs", "1", "--quiet", "--out", tiny_run
    )
    assert code == 2 and one_line(err) and "trained 1 epochs already" in err, err
