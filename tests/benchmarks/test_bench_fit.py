"""Smoke test of ``benchmarks/bench_fit.py --quick`` (tiny model and data, one epoch)."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_bench_fit_quick_writes_every_case(tmp_path):
    out = tmp_path / "fit.json"
    cases = "bare_step,fit_arrays,fit_iterator,fit_memmap,keras_fit"
    options = "--quick --models mlp --batch-sizes 64 --examples 256 --cases".split()
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_fit.py"), *options, cases]
    cmd += ["--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    record = json.loads(out.read_text())
    rows = {r["case"]: r for r in record["results"]}
    assert {"bare_step", "fit_arrays", "fit_iterator", "fit_memmap"} <= set(rows)
    assert rows["bare_step"]["ratio_vs_bare_step"] == 1.0
    assert all(r["epoch_s"] > 0 and r["examples"] == 256 for r in rows.values())
    assert "keras_fit" in rows or "keras" in record["skipped"]["keras_fit"]
    assert record["environment"]["versions"]["jax"]
