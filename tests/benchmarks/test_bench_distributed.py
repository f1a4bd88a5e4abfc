"""Smoke test of ``benchmarks/bench_distributed.py --quick`` (1 and 2 processes, tiny MLP)."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow  # about 80 s on a shared 2-core machine (two process groups, two fits)
def test_bench_distributed_quick_writes_throughput_and_memory(tmp_path):
    out = tmp_path / "distributed.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_distributed.py"), "--quick"]
    cmd += ["--examples", "512", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=400)
    record = json.loads(out.read_text())
    assert record["errors"] == {}
    rows = record["results"]
    speed = {r["processes"]: r for r in rows if r["part"] == "throughput"}
    assert set(speed) == {1, 2}
    assert speed[1]["speedup"] == 1.0 and all(r["examples_per_s"] > 0 for r in speed.values())
    memory = {r["param_sharding"]: r for r in rows if r["part"] == "memory"}
    replicated, fsdp = memory["replicated"], memory["fsdp"]
    assert replicated["state_bytes_total"] == fsdp["state_bytes_total"]
    assert replicated["state_bytes_per_device"] == replicated["state_bytes_total"]
    # FSDP: about 1/devices of the parameters and Adam state on each device
    devices = fsdp["devices"]
    assert fsdp["state_bytes_per_device"] <= 1.05 * fsdp["state_bytes_total"] / devices
