"""A benchmark run stopped part way keeps the batch sizes it finished (``_runner``).

On a GPU lent for minutes every script runs under a time limit (``timeout``: SIGTERM);
the rows of each batch size are printed and saved (``"complete": false``) as it ends,
and a SIGTERM saves what ended and exits with 128 + 15.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import _cli as C
import _harness as H
import _peers as P
import _runner as R

BENCHMARKS = pathlib.Path(R.__file__).parent


def _args(out: pathlib.Path):
    parser = C.make_parser("test", ["nnjax", "other"], ["nnjax", "other"], [64])
    return C.parse(parser, ["--quick", "--batch-sizes", "1,2", "--out", str(out)])


def _builder(stop_at: int | None):
    def build(batch: int) -> P.Case:
        if batch == stop_at:  # what a time limit's signal does mid-run
            raise KeyboardInterrupt
        return P.Case(train=lambda: None, predict=lambda: None, sync=H.sync_none)

    return build


def test_a_run_stopped_at_the_second_batch_size_keeps_the_first(tmp_path, capsys):
    out = tmp_path / "r.json"
    builders = {"nnjax": _builder(2), "other": _builder(None)}
    assert R.run_and_report("test", _args(out), builders, {}) == 128 + signal.SIGINT
    record = json.loads(out.read_text())
    assert record["complete"] is False
    rows = record["results"]
    assert {(r["peer"], r["task"], r["batch_size"]) for r in rows} == {
        (peer, task, 1) for peer in ("nnjax", "other") for task in ("train", "predict")
    }
    assert all(r["ratio_vs_nnjax"] is not None for r in rows)
    printed = capsys.readouterr().out
    assert "other" in printed and "nnjax" in printed  # the first batch's table
    assert f"stopped (interrupted): {out} keeps what ended" in printed
    assert list(tmp_path.iterdir()) == [out]  # no half-written file beside it


def test_a_finished_run_is_marked_complete(tmp_path):
    out = tmp_path / "r.json"
    builders = {"nnjax": _builder(None), "other": _builder(None)}
    assert R.run_and_report("test", _args(out), builders, {}) == 0
    record = json.loads(out.read_text())
    assert record["complete"] is True
    assert sorted({r["batch_size"] for r in record["results"]}) == [1, 2]
    assert list(tmp_path.iterdir()) == [out]


def test_sigterm_raises_stopped_within_and_the_handler_is_restored():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(H.Stopped), H.stop_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next bytecode; never reached
    assert signal.getsignal(signal.SIGTERM) is before


SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {benchmarks!r})
    import _cli as C, _harness as H, _peers as P, _runner as R

    def build(batch):
        if batch == 2:
            time.sleep(60)  # the time limit's SIGTERM comes here
        return P.Case(train=lambda: None, predict=lambda: None, sync=H.sync_none)

    parser = C.make_parser("test", ["nnjax"], ["nnjax"], [64])
    args = C.parse(parser, ["--quick", "--batch-sizes", "1,2", "--out", {out!r}])
    sys.exit(R.run_and_report("test", args, {{"nnjax": build}}, {{}}))
    """
)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_script_sent_sigterm_saves_what_ended_and_exits_143(tmp_path):
    out = tmp_path / "r.json"
    script = tmp_path / "bench_stub.py"
    script.write_text(SCRIPT.format(benchmarks=str(BENCHMARKS), out=str(out)))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # a loaded 2-core machine: imports take seconds
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), "no JSON after the first batch size"
        proc.send_signal(signal.SIGTERM)
        printed, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    record = json.loads(out.read_text())
    assert record["complete"] is False
    assert {r["batch_size"] for r in record["results"]} == {1}
    assert f"stopped (SIGTERM): {out} keeps what ended" in printed


def _stop_after_one(rows: list) -> object:
    """A stand-in for a script's loop: the first part ends and is saved, then SIGTERM."""
    parts = iter([rows])

    def part(*args, **kwargs):
        for rows in parts:
            return rows
        raise H.Stopped("SIGTERM")

    return part


def test_bench_ops_sent_sigterm_saves_the_groups_that_ended(tmp_path, monkeypatch):
    import bench_ops

    def run(args, on_group):
        rows = [{"op": "dense", "shape": "8x8", "batch_size": 4, "median_s": 1.0}]
        on_group(rows, {})
        raise H.Stopped("SIGTERM")

    monkeypatch.setattr(bench_ops, "run", run)
    out = tmp_path / "ops.json"
    assert bench_ops.main(["--quick", "--out", str(out)]) == 128 + signal.SIGTERM
    record = json.loads(out.read_text())
    assert record["complete"] is False and [r["op"] for r in record["results"]] == ["dense"]


def test_lstm_formulation_sent_sigterm_saves_the_sizes_that_ended(tmp_path, monkeypatch):
    import bench_lstm_formulation as B

    row = dict.fromkeys(("B", "T", "F", "H", "unroll", "forward_ms", "forward_backward_ms"), 1)
    row |= {"cell": "lstm", "formulation": "precompute", "forward_compile_s": 0.0}
    row |= {"forward_backward_compile_s": 0.0, "forward_backward_page_faults_per_call": 0}
    monkeypatch.setattr(B, "bench_size", _stop_after_one([row]))
    out = tmp_path / "formulation.json"
    with pytest.raises(SystemExit) as stop:
        B.main(["--quick", "--cells", "lstm", "gru", "--out", str(out)])
    assert stop.value.code == 128 + signal.SIGTERM
    record = json.loads(out.read_text())
    assert record["complete"] is False and record["results"] == [row]
