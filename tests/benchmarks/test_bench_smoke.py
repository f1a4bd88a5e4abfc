"""Smoke tests of the benchmark scripts (``--quick``) and unit tests of their harness.

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
sys.path.insert(0, str(BENCH_DIR))

import _cli as C  # noqa: E402
import _harness as H  # noqa: E402

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
JAX_PEERS = {"nnjax", "nnjax_scan", "flax_nnx", "flax_nnx_partial", "equinox"}
PEER_MODULE = {"equinox": "equinox", "keras": "keras", "torch": "torch"}

# Two groups so that pytest-xdist runs them side by side; the second also exercises
# the options for shared machines (one thread, CPU-time clock).
MLP_GROUPS = {
    "jax": (["nnjax", "nnjax_scan", "flax_nnx", "flax_nnx_partial"], []),
    "peers": (["nnjax", "equinox", "keras", "torch"], ["--threads", "1", "--clock", "cpu"]),
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


@pytest.mark.parametrize("group", sorted(MLP_GROUPS))
def test_bench_mlp_quick_writes_complete_result(group, tmp_path):
    peers, options = MLP_GROUPS[group]
    out = tmp_path / "mlp.json"
    args = ["--quick", "--peers", ",".join(peers), "--out", str(out), *options]
    proc = _run_script("bench_mlp.py", args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())

    assert record["benchmark"] == "mlp"
    assert ENV_KEYS <= set(record["environment"])
    assert record["environment"]["versions"]["jax"]
    assert record["config"]["quick"] is True
    assert record["config"]["clock"] == ("cpu" if options else "wall")
    assert record["errors"] == {}

    rows = record["results"]
    for row in rows:
        assert ROW_KEYS <= set(row), row
        assert row["median_s"] > 0 and row["compile_s"] > 0 and row["examples_per_s"] > 0
        if row["peer"] in JAX_PEERS:
            assert row["traces"] == 1, f"{row['peer']} {row['task']} was traced again"
    for peer in peers:
        tasks = {r["task"] for r in rows if r["peer"] == peer}
        if _installed(peer):
            assert tasks == {"train", "predict"}, peer
        else:
            assert peer in record["skipped"] and record["skipped"][peer]
    assert all(r["ratio_vs_nnjax"] == 1.0 for r in rows if r["peer"] == "nnjax")
    scan = [r for r in rows if r["peer"] == "nnjax_scan" and r["task"] == "train"]
    assert all(r["steps_per_call"] == record["config"]["scan_steps"] > 1 for r in scan)
    assert "ratio" in proc.stdout and "nnjax" in proc.stdout


def test_bench_mlp_rejects_unknown_peer(tmp_path):
    proc = _run_script("bench_mlp.py", ["--quick", "--peers", "nnjax,caffe"])
    assert proc.returncode == 2
    assert "caffe" in proc.stderr and "known" in proc.stderr


# ----------------------------------------------------------------------- harness


def test_time_call_counts_calls_and_reports_per_call_seconds():
    calls = []
    timing = H.time_call(lambda: calls.append(1), sync=H.sync_none, repeats=4, warmup=2)
    assert len(calls) == 1 + 2 + 4 * timing.number
    assert timing.repeats == 4
    assert 0 < timing.q1_s <= timing.median_s <= timing.q3_s
    assert timing.first_s > 0 and timing.iqr_s >= 0


def test_time_call_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        H.time_call(lambda: None, sync=H.sync_none, repeats=0)


def test_quartiles_match_numpy():
    np = pytest.importorskip("numpy")
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    expected = np.percentile(samples, [25, 50, 75])
    assert H._quartiles(samples) == pytest.approx(tuple(expected))


def test_add_ratios_divides_by_the_nnjax_row_of_the_same_task_and_batch():
    rows = [
        {"peer": "nnjax", "task": "train", "batch_size": 8, "median_s": 2.0},
        {"peer": "nnjax", "task": "train", "batch_size": 16, "median_s": 4.0},
        {"peer": "torch", "task": "train", "batch_size": 8, "median_s": 3.0},
        {"peer": "torch", "task": "train", "batch_size": 16, "median_s": 2.0},
        {"peer": "torch", "task": "predict", "batch_size": 8, "median_s": 1.0},
    ]
    ratios = [r["ratio_vs_nnjax"] for r in H.add_ratios(rows)]
    assert ratios == [1.0, 1.0, 1.5, 0.5, None]


def test_row_derives_throughput_from_the_median():
    timing = H.Timing(first_s=1.0, median_s=0.01, q1_s=0.009, q3_s=0.012, repeats=5, number=2)
    row = H.row("nnjax", "train", 32, timing)
    assert row["examples_per_s"] == pytest.approx(3200.0)
    assert row["calls_per_s"] == pytest.approx(100.0)
    assert row["iqr_s"] == pytest.approx(0.003)


def test_int_list_parses_and_rejects():
    assert C.int_list("32,256") == [32, 256]
    for bad in ("a,2", "0", ""):
        with pytest.raises(Exception, match="integers"):
            C.int_list(bad)


def test_missing_module_gives_a_note():
    assert "not importable" in C.missing_module("no_such_module_nnjax_bench")
    assert C.missing_module("json") is None


def test_limit_threads_rejects_zero():
    with pytest.raises(ValueError, match="threads"):
        C.limit_threads(0)


def test_format_table_lists_every_row():
    timing = H.Timing(1.0, 0.002, 0.001, 0.003, 3, 1)
    rows = H.add_ratios([H.row("nnjax", "train", 8, timing), H.row("torch", "train", 8, timing)])
    table = H.format_table(rows)
    assert "nnjax" in table and "torch" in table and "1.00" in table
