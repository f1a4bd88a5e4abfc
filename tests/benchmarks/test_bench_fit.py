"""Smoke test of ``benchmarks/bench_fit.py --quick`` (tiny model and data, one epoch)."""

import json
import os
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
    # the script sets Keras's backend itself (not inherited from this process's imports)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, env=env)
    record = json.loads(out.read_text())
    rows = {r["case"]: r for r in record["results"]}
    assert {"bare_step", "fit_arrays", "fit_iterator", "fit_memmap"} <= set(rows)
    assert rows["bare_step"]["ratio_vs_bare_step"] == 1.0
    assert all(r["epoch_s"] > 0 and r["examples"] == 256 for r in rows.values())
    assert "keras_fit" in rows or "keras" in record["skipped"]["keras_fit"]
    assert record["environment"]["versions"]["jax"]


@pytest.mark.slow
def test_a_failing_case_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_fit

    def broken(*args):
        raise RuntimeError("no such backend")

    monkeypatch.setitem(bench_fit.BUILDERS, "bare_step", broken)
    out = tmp_path / "fit.json"
    argv = "--quick --models mlp --batch-sizes 8 --examples 32 --cases bare_step,fit_arrays"
    assert bench_fit.main([*argv.split(), "--out", str(out)]) == 1
    record = json.loads(out.read_text())
    assert record["errors"] == {"mlp/bare_step@8": "RuntimeError: no such backend"}
    assert [r["case"] for r in record["results"]] == ["fit_arrays"]
    assert record["results"][0]["ratio_vs_bare_step"] is None
