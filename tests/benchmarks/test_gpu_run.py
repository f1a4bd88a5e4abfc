"""``benchmarks/gpu_run.sh``: every benchmark in one bounded run (dry runs on the CPU)."""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_run.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(tmp_path, budget: int, **env: str) -> str:
    """Runs the script on the CPU with ``$OUT`` in ``tmp_path``; returns its log."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu",
           "QUICK": "1", **env}  # fmt: skip
    subprocess.run(["bash", str(SCRIPT), str(budget)], env=env, check=True, timeout=600,
                   capture_output=True, text=True)  # fmt: skip
    return (tmp_path / "log.txt").read_text()


def _results(tmp_path) -> list[str]:
    with tarfile.open(tmp_path / "results.tgz") as tar:
        return sorted(pathlib.Path(name).name for name in tar.getnames() if name.endswith(".json"))


def test_steps_past_the_budget_are_skipped_and_named(tmp_path):
    log = _run(tmp_path, budget=5)
    skipped = [line.split()[1] for line in log.splitlines() if line.endswith("is spent")]
    assert skipped[:3] == ["env", "lstm_formulation", "lstm"] and skipped[-1] == "tests"
    assert "rc=" not in log
    assert _results(tmp_path) == []


@pytest.mark.slow  # two steps of real work: the environment and bench_ops.py --quick
def test_only_the_named_steps_run_and_their_results_come_back(tmp_path):
    log = _run(tmp_path, budget=300, ONLY="env,ops")
    steps = [line.split()[1] for line in log.splitlines() if " rc=" in line]
    assert steps == ["env", "ops"]
    assert "== env rc=0" in log and "== ops rc=0" in log
    assert "native bfloat16" in log and "devices [CpuDevice(id=0)" in log
    assert _results(tmp_path) == ["ops.json"]
