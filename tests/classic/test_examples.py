"""Smoke tests: every script in examples/classic runs with small settings."""

import pathlib
import runpy

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "classic"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    """The scripts import their plotting helper as `python examples/classic/x.py` would."""
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _main(name: str):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))["main"]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_perceptron_example(tmp_path):
    pytest.importorskip("sklearn")
    result = _main("perceptron")(["--samples", "80", "--epochs", "10", "--out", str(tmp_path)])
    assert result["nnjax"] == 1.0
    assert (tmp_path / "perceptron.png").stat().st_size > 0


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_logic_gates_example(capsys):
    result = _main("logic_gates")(["--steps", "600", "--restarts", "4"])
    assert result["xor_accuracy"] == 1.0
    assert "sign units" in capsys.readouterr().out


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_backprop_example():
    pytest.importorskip("sklearn")
    result = _main("backprop")(["--steps", "60", "--hidden", "16"])
    assert result["bp_error"] < 1e-5 and result["matrix_error"] < 1e-5
    assert result["test_accuracy"] > 0.8


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_hopfield_example(tmp_path):
    overlaps = _main("hopfield")(
        ["--units", "60", "--points", "3", "--max-ratio", "0.4", "--out", str(tmp_path)]
    )
    counts = sorted(overlaps)
    assert overlaps[counts[0]] == 1.0 > overlaps[counts[-1]]
    assert (tmp_path / "hopfield_capacity.png").exists()


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_echo_state_example():
    errors = _main("echo_state")(
        [
            "--units",
            "150",
            "--density",
            "0.05",
            "--train",
            "600",
            "--test",
            "200",
            "--horizons",
            "3",
        ]
    )
    assert errors[3] < 0.1


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_markov_example(tmp_path):
    result = _main("markov")(["--steps", "3000", "--out", str(tmp_path)])
    assert result["max_gap"] < 0.05
    assert (tmp_path / "markov.png").exists()


@pytest.mark.parametrize(
    "name", ["perceptron", "logic_gates", "backprop", "hopfield", "echo_state", "markov"]
)
def test_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main(name)(["--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out
