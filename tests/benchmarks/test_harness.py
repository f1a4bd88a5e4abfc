"""Unit tests of the benchmark machinery: timing, ratios, table, options, peer specs."""

from __future__ import annotations

import doctest
import pathlib
import sys
from collections import Counter

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import itertools

import _bfloat16
import _cli as C
import _harness as H
import _isolated
import _markdown
import _order
import _paired
import _peers as P
import _runner as R
import _timing


def test_time_call_counts_calls_and_reports_per_call_seconds():
    calls = []
    timing = H.time_call(lambda: calls.append(1), sync=H.sync_none, repeats=4, warmup=2)
    assert len(calls) == 1 + 2 + 4 * timing.number
    assert timing.repeats == 4
    assert 0 < timing.q1_s <= timing.median_s <= timing.q3_s
    assert timing.first_s > 0 and timing.iqr_s >= 0


def test_a_sample_keeps_at_most_queued_calls_behind_the_one_it_waits_for():
    # 32 queued all-reduces deadlock jax 0.10's CPU devices (nnjax.train.in_flight)
    issued, waited = [], []

    def fn():
        issued.append(len(issued))
        # waiting for a call's output means every earlier call is done (one device queue)
        oldest_queued = issued[-1] - 1 - _timing.QUEUED
        assert oldest_queued <= max(waited, default=-1), f"call {issued[-1]}: {waited[-3:]}"
        return issued[-1]

    H.time_call(fn, sync=waited.append, repeats=2, warmup=0, target_s=1.0, clock=_FakeClock())
    assert len(issued) > 3 * _timing.QUEUED
    assert waited[-1] == issued[-1]


class _FakeClock:
    """A clock that advances 1 ms per reading: ``target_s=1`` gives long samples."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1e-3
        return self.now


def test_time_call_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        H.time_call(lambda: None, sync=H.sync_none, repeats=0)


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
    assert all(r["paired_vs_nnjax"] is None for r in rows)  # no samples kept


def test_add_ratios_pairs_the_samples_of_the_same_rounds():
    def timing(samples):
        return H.Timing(1.0, sorted(samples)[1], min(samples), max(samples), 3, 1, samples)

    rows = H.add_ratios(
        [
            H.row("nnjax", "train", 8, timing((1.0, 2.0, 4.0))),
            H.row("torch", "train", 8, timing((0.9, 1.6, 2.8))),
            H.row("keras", "train", 8, timing((1.0, 2.0))),  # not from the same rounds
        ]
    )
    assert rows[0]["paired_vs_nnjax"] == pytest.approx([1.0, 1.0, 1.0])
    assert rows[1]["paired_vs_nnjax"] == pytest.approx([0.75, 0.8, 0.85])
    assert rows[2]["paired_vs_nnjax"] is None
    assert rows[1]["samples_s"] == [0.9, 1.6, 2.8]
    table = H.format_table(rows)
    assert "paired (IQR)" in table and "0.80 (0.75-0.85)" in table


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


def test_set_cpu_devices_rejects_zero_and_leaves_the_default_alone():
    with pytest.raises(ValueError, match="cpu-devices"):
        C.set_cpu_devices(0)
    C.set_cpu_devices(None)  # JAX's default: nothing to configure


def test_machine_summary_names_the_device_count_beyond_one():
    env = {"platform": "cpu", "device_kind": "cpu", "cpu_model": "X", "load_average_1m": 0.1}
    assert "(cpu x2)" in H.machine_summary({**env, "device_count": 2, "cpu_count": 2})
    assert "(cpu)" in H.machine_summary({**env, "device_count": 1, "cpu_count": 2})


def test_format_table_lists_every_row():
    timing = H.Timing(1.0, 0.002, 0.001, 0.003, 3, 1)
    rows = H.add_ratios([H.row("nnjax", "train", 8, timing), H.row("torch", "train", 8, timing)])
    table = H.format_table(rows)
    assert "nnjax" in table and "torch" in table and "1.00" in table


def test_spec_data_is_the_same_batch_in_every_layout():
    spec = P.Spec((6, 5, 3), 4, layouts={"torch": P.channels_first})
    x, y = spec.data(2)
    x_t, y_t = spec.data(2, framework="torch")
    assert x.shape == (2, 6, 5, 3) and x_t.shape == (2, 3, 6, 5)
    np.testing.assert_array_equal(np.moveaxis(x_t, 1, -1), x)
    np.testing.assert_array_equal(y, y_t)
    assert y.dtype == np.int32 and 0 <= y.min() and y.max() < 4


def test_spec_data_stacks_k_batches_and_is_seeded():
    spec = P.Spec((3,), 2)
    xs, ys = spec.data(5, k=4)
    assert xs.shape == (4, 5, 3) and ys.shape == (4, 5)
    np.testing.assert_array_equal(spec.data(5, k=4)[0], xs)
    assert not np.array_equal(xs[0], xs[1])


def test_per_step_divides_statistics_but_not_compile_time():
    timing = H.Timing(2.0, 0.8, 0.4, 1.2, repeats=3, number=1, samples_s=(0.4, 0.8, 1.2))
    per = R.per_step(timing, 4)
    assert (per.median_s, per.q1_s, per.q3_s, per.first_s) == (0.2, 0.1, 0.3, 2.0)
    assert per.samples_s == (0.1, 0.2, 0.3)
    assert R.per_step(timing, 1) is timing


def test_time_calls_interleaves_rounds_and_drops_failing_calls():
    log = []

    def b():
        log.append("b")
        if log.count("b") == 4:  # first call, warm-up, sample 1, then sample 2 fails
            raise RuntimeError("broken")

    calls = {"a": (lambda: log.append("a"), H.sync_none), "b": (b, H.sync_none)}
    timings, errors = H.time_calls(calls, repeats=3, warmup=1, target_s=0.0)
    assert sorted(timings) == ["a"] and isinstance(errors["b"], RuntimeError)
    assert timings["a"].number == 1 and timings["a"].repeats == 3
    # first + warm-up of a, then of b, then rounds (a, b), (b fails, a), (a): with two
    # calls the balanced orders alternate.
    assert log == ["a", "a", "b", "b", "a", "b", "b", "a", "a"]
    assert len(timings["a"].samples_s) == 3


@pytest.mark.parametrize("n", range(1, 9))
def test_carryover_balanced_orders_follow_every_call_equally_often(n):
    rows = _order.carryover_balanced(n)
    assert len(rows) == (1 if n == 1 else n if n % 2 == 0 else 2 * n)
    assert all(sorted(row) == list(range(n)) for row in rows)
    follows = Counter((a, b) for row in rows for a, b in itertools.pairwise(row))
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) <= 1  # every ordered pair equally often


def test_carryover_balanced_rejects_no_calls():
    with pytest.raises(ValueError, match="`n` must be >= 1, got 0"):
        _order.carryover_balanced(0)


def test_time_calls_lets_every_call_follow_every_other():
    log: list[str] = []
    calls = {k: (lambda k=k: log.append(k), H.sync_none) for k in "abc"}
    H.time_calls(calls, repeats=6, warmup=1, target_s=0.0)
    rounds = log[6:]  # after each call's first run and warm-up
    follows = Counter(itertools.pairwise(rounds))
    # ABC/CBA alternation had c follow only b; now c follows a as often as b
    assert follows[("a", "c")] >= 2 and follows[("b", "c")] >= 2
    assert follows[("c", "b")] >= 2 and follows[("a", "b")] >= 2


def test_time_calls_keeps_each_rounds_sample_in_round_order():
    now = [0.0]
    durations = iter([9.0, 9.0, 3.0, 1.0, 2.0])  # first call, warm-up, three rounds

    def call():
        now[0] += next(durations)

    timings, _ = H.time_calls(
        {"a": (call, H.sync_none)}, repeats=3, warmup=1, target_s=0.0, clock=lambda: now[0]
    )
    assert timings["a"].samples_s == (3.0, 1.0, 2.0)
    assert (timings["a"].q1_s, timings["a"].median_s, timings["a"].q3_s) == (1.5, 2.0, 2.5)


@pytest.mark.parametrize(
    "module",
    [H, _timing, _order, _paired, _markdown, _bfloat16, _isolated, R],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("backend", "cuda", "expected"),
    [("gpu", True, "cuda"), ("gpu", False, "cpu"), ("cpu", True, "cpu")],
)
def test_pytorch_runs_on_cuda_only_where_jax_runs_on_a_gpu(monkeypatch, backend, cuda, expected):
    torch = pytest.importorskip("torch")
    import jax

    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    device, sync = H.torch_device()
    assert device == expected
    assert sync is (H.sync_torch_cuda if expected == "cuda" else H.sync_none)


def test_a_quick_run_never_overwrites_the_recorded_results():
    recorded, quick = H.default_out("mlp"), H.default_out("mlp", quick=True)
    assert recorded.parent == H.RESULTS_DIR and quick.parent == H.RESULTS_DIR / "quick"
    assert quick.name == recorded.name
