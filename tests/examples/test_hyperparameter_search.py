"""Smoke test of ``examples/hyperparameter_search.py --quick`` (Fashion-MNIST subset, 1 epoch)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    path = EXAMPLES / "hyperparameter_search.py"
    spec = importlib.util.spec_from_file_location("example_hyperparameter_search", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_help_names_the_options(example, capsys):
    with pytest.raises(SystemExit) as exit_info:
        example.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--epochs", "--quick", "--out", "--seed", "--members"):
        assert option in text


@pytest.mark.slow  # a three-member sweep and a test evaluation: ~60 s on 2 busy cores
def test_quick_search_reports_the_best_members_test_accuracy(example, data_dir, tmp_path):
    results = example.main(["--quick", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["quick"] is True and record["results"]["course_accuracy"] == 0.8804
    members = record["results"]["members"]
    assert len(members) == 3
    best = results["best_member"]
    assert members[best]["best_val_accuracy"] == max(m["best_val_accuracy"] for m in members)
    assert results["test_accuracy"] > 0.3  # 1,024 images, one epoch: well above chance
