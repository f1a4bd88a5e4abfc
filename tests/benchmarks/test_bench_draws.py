"""Smoke test of ``benchmarks/bench_draws.py`` (two small shapes, two rounds)."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow  # compiles 16 small programs in a subprocess (~10 s)
def test_bench_draws_quick_writes_a_row_per_draw_and_shape(tmp_path):
    out = tmp_path / "draws.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_draws.py"),
        "--quick",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    record = json.loads(out.read_text())
    rows = {(r["what"], tuple(r["shape"])) for r in record["results"]}
    assert rows == {(w, s) for w in ("init", "dropout") for s in ((4, 3), (2, 3, 4, 5))}
    assert record["complete"] and not record["errors"] and record["config"]["rounds"] == 2
    for r in record["results"]:
        assert r["shaped_s"] > 0 and r["flat_s"] > 0
        q1, median, q3 = r["paired_shaped_vs_flat"]
        assert 0 < q1 <= median <= q3
    assert "shaped / flat" in done.stdout and "flags" in done.stdout


def test_bad_rounds_are_refused(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_draws

    with pytest.raises(SystemExit):
        bench_draws.parse_args(["--rounds", "0"])
    assert bench_draws.parse_args(["--quick"]).rounds == 2
