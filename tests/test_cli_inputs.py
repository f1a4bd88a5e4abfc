"""Bad input to the ``nnjax`` command: flag values, ``--resume``, .npy files, config.json.

Each case is one line on stderr that names what the user passed, with exit status 2
(argparse's for a flag value), and no run folder or training where none was asked for.
"""

import json
import shutil

import numpy as np
import pytest

from nnjax import _cli_parser, cli, train
from tests._cli_runs import TINY, one_line, run_cli

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    """One epoch of a tiny MLP on XOR (inputs of shape (N, 2)), shared below."""
    out = tmp_path_factory.mktemp("inputs") / "run"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def no_fit(monkeypatch):
    """Records any call of ``train.fit`` (and fails it): nothing may train."""
    calls = []

    def fit(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("fit must not run")

    monkeypatch.setattr(train, "fit", fit)
    return calls


# ----------------------------------------------------------------- W16: --resume


def test_resume_into_a_folder_without_a_run_is_refused(tmp_path, capsys, no_fit):
    out = tmp_path / "newrun"
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--resume", "--out", out)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"--resume: {out} holds no run to continue" in err and "drop --resume" in err
    assert not out.exists() and no_fit == []


def test_resume_without_out_is_refused(tmp_path, capsys, monkeypatch, no_fit):
    monkeypatch.chdir(tmp_path)  # a run without --out would go to ./runs/<name>
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--resume")
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert "--resume continues the run in --out" in err
    assert list(tmp_path.iterdir()) == [] and no_fit == []


def test_resume_into_a_config_without_checkpoints_is_refused(xor_run, tmp_path, capsys, no_fit):
    out = tmp_path / "half"
    out.mkdir()
    shutil.copy(xor_run / "config.json", out / "config.json")
    code, _, err = run_cli(capsys, "train", "--epochs", "2", "--resume", "--quiet", "--out", out)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert "holds no run to continue" in err and "checkpoint" in err
    assert sorted(p.name for p in out.iterdir()) == ["config.json"] and no_fit == []


# ------------------------------------------------------- W17: non-finite inputs


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_predict_refuses_non_finite_inputs_naming_the_row(xor_run, tmp_path, capsys, bad):
    path = tmp_path / "x_bad.npy"
    np.save(path, np.array([[0, 1], [1, 1], [bad, 0], [np.nan, 1]], np.float32))
    code, out, err = run_cli(capsys, "predict", xor_run, path)
    assert code == cli.EXIT_USAGE and one_line(err) and out == "", err
    assert f"{path}: row 2 holds NaN or infinite values" in err


def test_evaluate_refuses_non_finite_inputs(xor_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[np.nan, 0.0]], np.float32))
    np.save(tmp_path / "y.npy", np.array([0]))
    argv = ["evaluate", xor_run, "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"]
    code, _, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert "x.npy: row 0 holds NaN" in err


@pytest.mark.parametrize(
    ("labels", "shown"),
    [(np.array([0.0, 1.9]), "label 1.9 (at 1)"), (np.array([0, 2]), "label 2 (at 1)"),
     (np.array([0, 2**32 + 1]), f"label {2**32 + 1} (at 1)")],
)  # fmt: skip
def test_evaluate_refuses_labels_that_are_not_classes(xor_run, tmp_path, capsys, labels, shown):
    # they were cast to int32: 1.9 read as 1 and 2**32 + 1 as 1, printing a plausible score
    np.save(tmp_path / "x.npy", np.array([[0, 1], [1, 1]], np.float32))
    np.save(tmp_path / "y.npy", labels)
    argv = ["evaluate", xor_run, "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"]
    code, _, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"{shown} is not a class of xor: labels are whole numbers in [0, 2)" in err


def test_predict_still_takes_finite_inputs(xor_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[0, 1], [1, 1]], np.float32))
    code, out, _ = run_cli(capsys, "predict", xor_run, tmp_path / "x.npy")
    assert code == 0 and len(out.strip().splitlines()) == 2


# --------------------------------------------------------------- U25: not .npy


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_text_file_named_npy_is_not_a_npy_file(xor_run, tmp_path, capsys, command):
    text = tmp_path / "x_txt.npy"
    text.write_text("1,2\n3,4\n")
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    argv = ["predict", xor_run, text]
    if command == "evaluate":
        argv = ["evaluate", xor_run, "--inputs", text, "--labels", tmp_path / "y.npy"]
    code, _, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"{text}: not a .npy file" in err and "allow_pickle" not in err


def test_an_object_array_is_refused_without_mentioning_pickles(xor_run, tmp_path, capsys):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    code, _, err = run_cli(capsys, "predict", xor_run, path)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"{path}: holds Python objects" in err and "allow_pickle" not in err


# ------------------------------------------------------------ U22-U24: flag values


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "abc"], "argument --epochs: expected a positive integer, got 'abc'"),
        (["--epochs", "1.5"], "argument --epochs: expected a positive integer, got '1.5'"),
        (["--lr", "abc"], "argument --lr: expected a positive finite number, got 'abc'"),
        (["--dropout", "abc"], "argument --dropout: expected a number in [0, 1), got 'abc'"),
        (["--lr", "-1e-3"], "argument --lr: expected a positive finite number, got '-1e-3'"),
        (["--lr", "-inf"], "argument --lr: expected a positive finite number, got '-inf'"),
        (["--seed", "-1"], "argument --seed: expected an integer in [0, 4294967295], got '-1'"),
        (["--seed", "99999999999999999999"], "got '99999999999999999999'"),
        (["--seed", "4294967296"], "argument --seed: expected an integer in [0, 4294967295]"),
        (["--seed", "x"], "argument --seed: expected an integer in [0, 4294967295], got 'x'"),
    ],
    ids=lambda a: "".join(a) if isinstance(a, list) else "",
)
def test_a_bad_flag_value_says_what_was_expected(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv, "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "invalid" not in err and "parse" not in err and "_rate" not in err
    assert not (tmp_path / "r").exists()


def test_negative_numbers_are_read_as_values():
    parser = _cli_parser._Parser()
    parser.add_argument("--x", type=float)
    for text in ("-1e-3", "-1E+3", "-2.5e3", "-.5", "-7", "-inf", "-nan"):
        value = parser.parse_args(["--x", text]).x
        assert value == float(text) or (np.isnan(value) and text == "-nan")
    args = cli.build_parser().parse_args(["train", "--seed", "4294967295"])
    assert args.seed == 2**32 - 1


# ----------------------------------------------------------- U26: config.json


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("dataset", None, "'dataset' should be a dataset name (a string), got null"),
        ("model", 3, "'model' should be a model name (a string), got 3"),
        ("hidden", [4, "x"], "'hidden' should be a list of positive integers, got [4, \"x\"]"),
        ("hidden", 4, "'hidden' should be a list of positive integers, got 4"),
        ("dropout", True, "'dropout' should be a number in [0, 1), got true"),
        ("seed", "0", "'seed' should be an integer >= 0, got \"0\""),
        ("learning_rate", None, "'learning_rate' should be a positive number, got null"),
        ("batch_size", 0, "'batch_size' should be a positive integer, got 0"),
        ("data_dir", 1, "'data_dir' should be a folder (a string) or null, got 1"),
        ("precision", "half", "'precision' should be one of 'float32', 'bfloat16', 'float16'"),
    ],
    ids=[
        "dataset-null",
        "model-int",
        "hidden-str",
        "hidden-int",
        "dropout-bool",
        "seed-str",
        "lr-null",
        "batch-0",
        "data_dir-int",
        "precision-half",
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_a_config_key_of_the_wrong_type_names_file_and_key(
    xor_run, tmp_path, capsys, key, value, words, command
):
    run = tmp_path / "run"
    shutil.copytree(xor_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, key: value}))
    argv = ["evaluate", run]
    if command == "resume":
        argv = ["train", "--resume", "--epochs", "2", "--quiet", "--out", run]
    code, _, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"{run / 'config.json'}: {words}" in err, err
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["1"]  # not trained


# ------------------------------------------------------------------ predict --output


def test_predict_output_is_written_under_the_exact_name(xor_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[0, 1], [1, 1]], np.float32))
    target = tmp_path / "outputs"  # no .npy suffix: numpy.save would add one
    code, _, _ = run_cli(capsys, "predict", xor_run, tmp_path / "x.npy", "--output", target)
    assert code == 0
    assert target.is_file() and not (tmp_path / "outputs.npy").exists()
    assert np.load(target).shape == (2, 2)


def test_an_unwritable_predict_output_names_the_option(xor_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[0, 1]], np.float32))
    target = tmp_path / "missing" / "out.npy"
    code, _, err = run_cli(capsys, "predict", xor_run, tmp_path / "x.npy", "--output", target)
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert f"--output {target}: cannot write (No such file or directory)" in err


# ------------------------------------------------------------------ empty inputs


def test_preprocessing_maps_no_rows_to_no_rows():
    from nnjax.io import Preprocessing

    flat = Preprocessing((2, 3), scale=255.0, flatten=True)(np.zeros((0, 2, 3), np.uint8))
    assert flat.shape == (0, 6) and flat.dtype == np.float32
    assert Preprocessing((2, 3))(np.zeros((0, 2, 3))).shape == (0, 2, 3)


def test_predict_of_no_rows_prints_nothing_and_writes_an_empty_output(xor_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((0, 2), np.float32))
    target = tmp_path / "out.npy"
    code, out, err = run_cli(capsys, "predict", xor_run, tmp_path / "x.npy", "--output", target)
    assert (code, out, err) == (0, "", "")
    outputs = np.load(target)
    assert outputs.shape == (0, 2) and outputs.dtype == np.float32  # as for rows: (N, 2)
