"""``benchmarks/gpu_run.sh``: every benchmark in one bounded run (dry runs on the CPU)."""

import json
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
    assert skipped[:3] == ["env", "tests", "lstm_formulation"] and skipped[-1] == "sweep"
    assert "rc=" not in log
    assert _results(tmp_path) == []


# PYTHON for the script: a benchmark script is replaced by a stub that checks and records
# its command line and writes its --out JSON; anything else (the env step) runs for real.
# The step limits are sized for the GPU machine: on a loaded 2-core CPU bench_ops.py
# --quick ran past its 60 s (rc=124: this test failed by chance); test_bench_ops.py runs
# it without a limit.
_STUB = """
import json, os, sys
script, *argv = sys.argv[1:]
assert os.path.isfile(script) and "--quick" in argv, sys.argv
with open(argv[argv.index("--out") + 1], "w") as f:
    json.dump({"script": script, "argv": argv}, f)
"""


def _stubbing_python(tmp_path) -> str:
    wrapper = tmp_path / "python"
    stub = tmp_path / "stub.py"
    stub.write_text(_STUB)
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f'case "$1" in benchmarks/bench_*.py) exec {sys.executable} {stub} "$@";; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.slow  # the env step imports JAX (the benchmark itself is stubbed)
def test_only_the_named_steps_run_and_their_results_come_back(tmp_path):
    out = tmp_path / "out"
    log = _run(out, budget=300, ONLY="env,ops", PYTHON=_stubbing_python(tmp_path))
    steps = [line.split()[1] for line in log.splitlines() if " rc=" in line]
    assert steps == ["env", "ops"]
    assert "== env rc=0" in log and "== ops rc=0" in log
    assert "native bfloat16" in log and "devices [CpuDevice(id=0)" in log
    assert _results(out) == ["ops.json"]
    with tarfile.open(out / "results.tgz") as tar:
        (member,) = [m for m in tar.getmembers() if m.name.endswith("ops.json")]
        called = json.load(tar.extractfile(member))
    assert called["script"] == "benchmarks/bench_ops.py" and called["argv"][0] == "--quick"
