"""A benchmark run stopped part way keeps the batch sizes it finished (``_runner``).

On a GPU lent for minutes every script runs under a time limit; the rows of each batch
size are printed and saved (``"complete": false``) as it ends.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import _cli as C
import _harness as H
import _peers as P
import _runner as R


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
    with pytest.raises(KeyboardInterrupt):
        R.run_and_report("test", _args(out), builders, {})
    record = json.loads(out.read_text())
    assert record["complete"] is False
    rows = record["results"]
    assert {(r["peer"], r["task"], r["batch_size"]) for r in rows} == {
        (peer, task, 1) for peer in ("nnjax", "other") for task in ("train", "predict")
    }
    assert all(r["ratio_vs_nnjax"] is not None for r in rows)
    printed = capsys.readouterr().out
    assert "other" in printed and "nnjax" in printed  # the first batch's table
    assert list(tmp_path.iterdir()) == [out]  # no half-written file beside it


def test_a_finished_run_is_marked_complete(tmp_path):
    out = tmp_path / "r.json"
    builders = {"nnjax": _builder(None), "other": _builder(None)}
    assert R.run_and_report("test", _args(out), builders, {}) == 0
    record = json.loads(out.read_text())
    assert record["complete"] is True
    assert sorted({r["batch_size"] for r in record["results"]}) == [1, 2]
    assert list(tmp_path.iterdir()) == [out]
