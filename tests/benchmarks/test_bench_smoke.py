"""Smoke tests of the benchmark scripts (``--quick``); the harness has ``test_harness.py``.

Each script runs as a subprocess, exactly as a user runs it, on tiny sizes; the test
checks the JSON result file: environment record, one row per peer and task with
positive timings, a ratio of 1 for nnjax itself, one trace per jitted function (no
recompilation after the first call), and a note for every peer that was skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "benchmarks"
ROW_KEYS = {
    "peer",
    "task",
    "batch_size",
    "compile_s",
    "median_s",
    "iqr_s",
    "calls_per_s",
    "examples_per_s",
    "ratio_vs_nnjax",
    "steps_per_call",
}
ENV_KEYS = {"date_utc", "platform", "device_kind", "cpu_model", "cpu_count", "versions"}
JAX_PEERS = {
    "nnjax",
    "nnjax_bf16",
    "nnjax_precision",
    "nnjax_scan",
    "nnjax_no_donate",
    "nnjax_per_step",
    "nnjax_precompute",
    "flax_nnx",
    "flax_nnx_partial",
    "equinox",
}
PEER_MODULE = {"equinox": "equinox", "keras": "keras", "torch": "torch", "torch_aten": "torch"}
CPU_OPTIONS = ["--threads", "1", "--clock", "cpu"]

# (script, peers, options) per run. Each script runs in three groups of peers, each a
# few seconds on an idle 2-core machine, so that pytest-xdist spreads them; the last
# group of each also exercises the options for shared machines (one thread, CPU clock).
# Only the first group has the nnjax baseline; the others check that ratios are absent.
RUNS = {
    "mlp-nnjax": ("mlp", ["nnjax", "nnjax_scan", "nnjax_no_donate", "torch"], []),
    "mlp-flax": ("mlp", ["flax_nnx", "flax_nnx_partial"], []),
    "mlp-others": ("mlp", ["equinox", "keras"], CPU_OPTIONS),
    "cnn-nnjax": (
        "cnn",
        ["nnjax", "nnjax_no_donate", "nnjax_bf16", "nnjax_precision", "torch"],
        [],
    ),
    "cnn-flax": ("cnn", ["flax_nnx", "flax_nnx_partial"], []),
    "cnn-others": ("cnn", ["equinox", "keras"], CPU_OPTIONS),
    "lstm-nnjax": (
        "lstm",
        ["nnjax", "nnjax_per_step", "nnjax_precompute", "torch", "torch_aten"],
        [],
    ),
    "lstm-bf16": ("lstm", ["nnjax", "nnjax_bf16", "nnjax_precision"], []),
    "lstm-flax": ("lstm", ["flax_nnx", "flax_nnx_partial"], []),
    "lstm-others": ("lstm", ["equinox", "keras"], CPU_OPTIONS),
    "gru-nnjax": ("lstm", ["nnjax", "nnjax_per_step", "flax_nnx", "torch"], ["--cell", "gru"]),
    "gru-others": ("lstm", ["equinox", "keras"], ["--cell", "gru", *CPU_OPTIONS]),
    # two CPU devices: the nnjax peers split each batch over them, as fit would
    "lstm-devices": ("lstm", ["nnjax", "nnjax_per_step", "flax_nnx"], ["--cpu-devices", "2"]),
    "attention-nnjax": ("attention", ["nnjax", "nnjax_no_donate", "nnjax_precision", "torch"], []),
    "attention-flax": ("attention", ["flax_nnx", "flax_nnx_partial"], []),
    "attention-others": ("attention", ["equinox", "keras"], CPU_OPTIONS),
}


def _run_script(script: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["KERAS_BACKEND"] = "jax"
    return subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _installed(peer: str) -> bool:
    module = PEER_MODULE.get(peer)
    return module is None or importlib.util.find_spec(module) is not None


def _check_script_specifics(name: str, record: dict, options: list[str]) -> None:
    config, rows = record["config"], record["results"]
    devices = 2 if "--cpu-devices" in options else None
    assert config["cpu_devices"] == devices
    assert record["environment"]["device_count"] == (devices or 1)
    if name == "mlp":
        scan = [r for r in rows if r["peer"] == "nnjax_scan" and r["task"] == "train"]
        assert len(scan) == ("nnjax_scan" in config["peers"])
        assert all(r["steps_per_call"] == config["scan_steps"] > 1 for r in scan)
    elif name == "cnn":
        assert config["input_shape"] == [12, 12, 1] and config["conv_features"] == [4, 8]
    elif name == "lstm":
        assert (config["seq_len"], config["features"], config["hidden"]) == (8, 4, 16)
        assert config["nnjax_precompute_inputs"] in (True, False)
        assert config["cell"] == ("gru" if "--cell" in options else "lstm")
    elif name == "attention":
        assert (config["seq_len"], config["dim"], config["heads"]) == (8, 16, 2)


# Each run compiles a benchmark script in a subprocess (20-30 s on 2 cores): opt-in with
# `pytest -m slow`, which CI runs after the default suite.
@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(RUNS))
def test_bench_quick_writes_complete_result(run, tmp_path):
    name, peers, options = RUNS[run]
    out = tmp_path / f"{name}.json"
    args = ["--quick", "--peers", ",".join(peers), "--out", str(out), *options]
    proc = _run_script(f"bench_{name}.py", args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())

    assert record["benchmark"] == name and record["complete"] is True
    assert ENV_KEYS <= set(record["environment"])
    assert record["environment"]["versions"]["jax"]
    assert record["config"]["quick"] is True
    assert record["config"]["clock"] == ("cpu" if "--clock" in options else "wall")
    assert record["config"]["peers"] == peers
    assert record["errors"] == {}

    rows = record["results"]
    for row in rows:
        assert ROW_KEYS <= set(row), row
        assert row["batch_size"] == 8
        assert row["median_s"] > 0 and row["compile_s"] > 0 and row["examples_per_s"] > 0
        if row["peer"] in JAX_PEERS:
            assert row["traces"] == 1, f"{row['peer']} {row['task']} was traced again"
    for peer in peers:
        tasks = sorted(r["task"] for r in rows if r["peer"] == peer)
        if _installed(peer):
            assert tasks == ["predict", "train"], peer
        else:
            assert peer in record["skipped"] and record["skipped"][peer]
    if "nnjax" in peers:
        assert all(r["ratio_vs_nnjax"] == 1.0 for r in rows if r["peer"] == "nnjax")
        assert all(r["ratio_vs_nnjax"] > 0 for r in rows)
    else:
        assert all(r["ratio_vs_nnjax"] is None for r in rows)
    _check_script_specifics(name, record, options)
    if name in ("mlp", "cnn", "lstm"):  # the hardware's bfloat16 case and its goal
        assert "bfloat16 (nnjax_bf16): " in proc.stdout and "goal: bfloat16" in proc.stdout
    if "nnjax_bf16" in peers and "nnjax" in peers:
        assert "bf16 / f32 train time: batch 8" in proc.stdout
    assert "ratio" in proc.stdout and all(peer in proc.stdout for peer in peers)


# One script checks it by default; each is a fresh interpreter importing JAX and PyTorch.
@pytest.mark.parametrize(
    "name",
    ["mlp", *(pytest.param(n, marks=pytest.mark.slow) for n in ("cnn", "lstm", "attention"))],
)
def test_bench_rejects_unknown_peer(name):
    proc = _run_script(f"bench_{name}.py", ["--quick", "--peers", "nnjax,caffe"])
    assert proc.returncode == 2
    assert "caffe" in proc.stderr and "known" in proc.stderr


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_lstm_formulation_quick(tmp_path):
    out = tmp_path / "formulation.json"
    args = ["--quick", "--cells", "lstm", "--unrolls", "1", "--out", str(out)]
    done = _run_script("bench_lstm_formulation.py", args)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["complete"] is True
    rows = result["results"]
    assert {row["precompute_inputs"] for row in rows} == {True, False}
    for row in rows:
        assert row["cell"] == "lstm" and row["unroll"] == 1
        assert row["forward_ms"] > 0 and row["forward_backward_ms"] > 0
        assert row["forward_compile_s"] > 0
