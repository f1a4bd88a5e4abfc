"""Smoke test of ``benchmarks/bench_sweep.py --quick`` (tiny MLP, M = 1 and 2, one epoch)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _run(tmp_path, options):
    """The JSON record of ``bench_sweep.py OPTIONS``."""
    out = tmp_path / "sweep.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_sweep.py"), *options.split()]
    subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, text=True,
                   timeout=600)  # fmt: skip
    return json.loads(out.read_text())


@pytest.mark.slow  # compiles several sweeps and fits: ~1-2 min on 2 busy cores
def test_bench_sweep_quick_writes_every_case(tmp_path):
    record = _run(tmp_path, "--quick --models digits --members 1,2")
    rows = {(r["members"], r["case"]): r for r in record["results"]}
    cases = ("sweep", "sweep_vmap", "sweep_loop", "sweep_sequential", "fit_sequential")
    assert set(rows) == {(m, c) for m in (1, 2) for c in cases}
    assert all(r["examples_x_members_per_s"] > 0 for r in rows.values())
    assert rows[(2, "fit_sequential")]["speedup_vs_fit"] == 1.0
    assert not record["errors"]


@pytest.mark.slow  # a tiny CNN's sweeps and fits
@pytest.mark.skipif(not os.environ.get("NNJAX_DATA_DIR"), reason="needs Fashion-MNIST")
def test_bench_sweep_quick_runs_the_cnn(tmp_path):
    record = _run(tmp_path, "--quick --models cnn --members 2 --cases sweep,sweep_vmap")
    assert not record["errors"]
    assert {(r["model"], r["case"]) for r in record["results"]} == {
        ("cnn", "sweep"),
        ("cnn", "sweep_vmap"),
    }
