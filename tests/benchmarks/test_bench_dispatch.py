"""Smoke tests of ``benchmarks/bench_dispatch.py`` (tiny models, few updates)."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow  # compiles two fits per model
def test_bench_dispatch_quick_writes_a_row_per_value(tmp_path):
    out = tmp_path / "dispatch.json"
    options = "--quick --models mlp,cnn --steps 1,8 --out".split()
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_dispatch.py"), *options, str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    record = json.loads(out.read_text())
    rows = {(r["model"], r["steps_per_dispatch"]): r for r in record["results"]}
    assert set(rows) == {(m, k) for m in ("mlp", "cnn") for k in (1, 8)}
    assert record["complete"] and not record["errors"]
    for (_, k), r in rows.items():
        assert r["ms_per_update"] > 0 and r["first_epoch_s"] > 0
        assert r["default"] == (k == 8)  # steps_per_dispatch_for's choice, marked
        q1, median, q3 = r["paired_vs_first"]
        assert q1 <= median <= q3
        if k == 1:
            assert median == 1.0  # the first value against itself
    assert "(default)" in done.stdout and "flags" in done.stdout


def test_unknown_models_are_refused_by_name(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_dispatch

    with pytest.raises(SystemExit):
        bench_dispatch.parse_args(["--models", "cnn,resnet"])
    args = bench_dispatch.parse_args(["--quick", "--models", "gru"])
    assert args.models == ["gru"] and args.rounds == 2 and args.updates == 8
