"""``--isolate``: each peer timed in processes of its own, rounds combined (``_isolated``)."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import _cli as C
import _harness as H
import _isolated

from tests.benchmarks.test_bench_smoke import _run_script


def test_a_childs_options_win_over_the_runs_and_keep_the_rest():
    parser = C.make_parser("demo", ("nnjax", "torch"), ("nnjax",), (32,))
    argv = ["--peers", "nnjax,torch", "--batch-sizes", "8,16", "--repeats", "7", "--isolate", "3"]
    args = parser.parse_args(_isolated.child_args(argv, "torch", 16, "x.json"))
    assert (args.peers, args.batch_sizes, str(args.out), args.isolate) == (
        ["torch"],
        [16],
        "x.json",
        0,
    )
    assert args.repeats == 7


def test_parse_keeps_argv_and_rejects_negative_rounds():
    parser = C.make_parser("demo", ("nnjax",), ("nnjax",), (32,))
    assert C.parse(parser, ["--isolate", "2"]).argv == ["--isolate", "2"]
    with pytest.raises(SystemExit):
        C.parse(parser, ["--isolate", "-1"])


def test_each_peer_goes_first_equally_often():
    peers = ["a", "b", "c"]
    firsts = [_isolated.rotated(peers, r)[0] for r in range(6)]
    assert sorted(firsts) == ["a", "a", "b", "b", "c", "c"]
    assert all(sorted(_isolated.rotated(peers, r)) == peers for r in range(6))


def _round_row(peer, median, compile_s=1.0):
    timing = H.Timing(compile_s, median, median, median, 5, 1, (median,) * 5)
    return H.add_ratios([H.row(peer, "train", 8, timing, steps_per_call=1)])[0]


def test_rounds_combine_to_the_median_of_their_medians_and_pair_by_round():
    nnjax = _isolated.combined([_round_row("nnjax", m) for m in (2.0, 4.0, 3.0)])
    torch = _isolated.combined([_round_row("torch", m, 0.5) for m in (3.0, 4.0, 6.0)])
    assert (nnjax["median_s"], torch["median_s"]) == (3.0, 4.0)
    assert torch["samples_s"] == [3.0, 4.0, 6.0] and torch["rounds"] == 3
    assert torch["compile_s"] == 0.5 and torch["steps_per_call"] == 1
    assert "ratio_vs_nnjax" not in torch  # a child's ratio (to itself) is not carried over
    rows = H.add_ratios([nnjax, torch])
    assert rows[1]["ratio_vs_nnjax"] == pytest.approx(4.0 / 3.0)
    assert rows[1]["paired_vs_nnjax"] == pytest.approx([1.25, 1.5, 1.75])  # 1.5, 1.0, 2.0


# Two peers x two rounds, each a fresh interpreter compiling a tiny LSTM (about 30 s).
@pytest.mark.slow
def test_bench_lstm_isolates_each_peer_round_by_round(tmp_path):
    out = tmp_path / "lstm.json"
    peers = ["--peers", "nnjax,nnjax_per_step"]
    args = ["--quick", *peers, "--isolate", "2", "--cpu-devices", "2", "--out", str(out)]
    proc = _run_script("bench_lstm.py", args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    assert record["config"]["isolate"] == 2 and record["errors"] == {}, record["errors"]
    assert record["config"]["cpu_devices"] == 2
    assert record["environment"]["host_memory_retained"]  # as in every child
    rows = record["results"]
    assert sorted((r["peer"], r["task"]) for r in rows) == [
        (p, t) for p in ("nnjax", "nnjax_per_step") for t in ("predict", "train")
    ]
    for r in rows:
        assert r["rounds"] == 2 and len(r["samples_s"]) == 2 and r["median_s"] > 0
        assert r["paired_vs_nnjax"] is not None
    assert proc.stderr.count("round 2/2") == 2
