"""Smoke test of benchmarks/bench_ops.py (--quick) and its machine description helpers."""

import json
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _harness as H  # noqa: E402


def test_cpu_flags_and_bfloat16_case_from_cpuinfo_text():
    amx = H.cpu_flags("processor : 0\nflags : fpu avx2 avx512f amx_tile amx_bf16\n")
    assert amx["avx512f"] and amx["amx_bf16"] and not amx["avx512_bf16"]
    assert H.bfloat16_hardware(amx).startswith("AMX")
    avx2 = H.cpu_flags("flags : fpu avx2 fma\n")
    assert H.bfloat16_hardware(avx2).startswith("none")
    assert H.bfloat16_hardware(H.cpu_flags("flags : avx512_bf16\n")).startswith("AVX512-BF16")


def test_load_note_says_high_above_half_the_cores():
    assert "HIGH" in H.load_note(1.5, 2) and "quiet" in H.load_note(0.5, 2)
    assert H.load_note(None, 2) == "load average unknown"


OPS = ("conv2d", "conv1d", "conv3d", "dwblock", "pointwise", "lstm", "dense", "pool")


@pytest.mark.slow  # compiles a dozen small programs: about a minute on a shared 2-core CPU
@pytest.mark.filterwarnings("ignore:precision='bfloat16' computes in float32:UserWarning")
def test_bench_ops_quick_writes_rows_and_marks_the_picks(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import _op_convs
    import bench_ops

    out = tmp_path / "ops.json"
    saved = []  # `complete` of each write: one per group as it ends, then the final one
    write = bench_ops.H.write_json
    monkeypatch.setattr(
        bench_ops.H,
        "write_json",
        lambda *a, **k: saved.append(k.get("complete", True)) or write(*a, **k),
    )
    ops = ",".join((*OPS, "conv_transpose", "strided"))
    assert bench_ops.main(["--quick", "--ops", ops, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["complete"] is True and saved[-1] is True
    assert saved[:-1] == [False] * len(set((r["op"], r["shape"]) for r in record["results"]))
    rows = record["results"]
    assert {r["op"] for r in rows} == {*OPS, "convT", "strided"}
    for op in (*OPS, "convT", "strided"):
        picked = [r for r in rows if r["op"] == op and r["picked"]]
        assert picked, f"no picked formulation recorded for {op}"
        assert all(r["paired_vs_picked"] == [1.0, 1.0, 1.0] for r in picked)
    conv = {r["formulation"] for r in rows if r["op"] == "conv2d"}
    assert {"xla", "patches", "torch"} <= conv
    assert ("library_precision" in conv) == _op_convs.rounds_operands()  # native bfloat16
    for op in ("conv1d", "conv3d"):
        forms = {r["formulation"] for r in rows if r["op"] == op}
        assert forms == {"xla", "patches", "library_xla", "library_patches", "library_auto",
                         "torch"}  # fmt: skip
    transposed = {r["formulation"] for r in rows if r["op"] == "convT"}
    assert transposed == {"library_auto", "library_shared", "library_phases", "library_dilated",
                          "auto", "torch"}  # fmt: skip
    strided = {r["formulation"] for r in rows if r["op"] == "strided"}
    assert strided == {"library_auto", "library_dilated_dx", "torch"}
    pool = {r["formulation"] for r in rows if r["op"] == "pool"}
    assert {"reduce_window", "reshape", "torch"} <= pool
    dwblock = {r["formulation"] for r in rows if r["op"] == "dwblock"}
    assert {"auto", "library_auto", "xla", "torch"} <= dwblock
    pointwise = {
        (r["shape"], r["formulation"]) for r in rows if r["op"] == "pointwise" and r["picked"]
    }
    assert pointwise == {("6x6x16->4", "library_auto"), ("6x6x4->16", "library_auto")}
    pointwise = {r["formulation"] for r in rows if r["op"] == "pointwise"}
    assert pointwise == {"library_auto", "library_xla", "library_patches", "torch"}
    lstm = {r["formulation"] for r in rows if r["op"] == "lstm"}
    assert {"per_step unroll 1", "library_auto", "torch"} <= lstm  # fit's compile too
    assert all(r["median_s"] > 0 and r["compile_s"] > 0 for r in rows)
    assert "bfloat16_hardware" in record["environment"]
    printed = capsys.readouterr().out
    assert "bfloat16 hardware:" in printed and "precision: bfloat16 train step" in printed


def _train_rows(**medians):
    return [
        {"peer": peer, "task": "train", "batch_size": 32, "median_s": s}
        for peer, s in medians.items()
    ]


def test_bfloat16_verdict_per_hardware_case():
    import _bfloat16 as B

    native = B.verdict(_train_rows(nnjax=2.0, nnjax_bf16=0.9), True, "AMX")
    assert "at least 2x faster" in native and native.endswith("0.45x (IQR 0.45-0.45): met")
    assert "NOT met" in B.verdict(_train_rows(nnjax=2.0, nnjax_bf16=1.2), True, "AMX")
    emulated = B.verdict(_train_rows(nnjax=2.0, nnjax_bf16=2.1), False, "none")
    assert "never slower" in emulated and "1.05x (IQR 1.05-1.05): NOT met" in emulated
    assert B.verdict(_train_rows(nnjax=2.0, nnjax_bf16=2.0), False, "none").endswith(": met")
    assert "not measured" in B.verdict(_train_rows(nnjax=2.0), False, "none")
    # per peer: fit's precision peer is read from its own rows
    rows = _train_rows(nnjax=2.0, nnjax_bf16=2.2, nnjax_precision=1.8)
    precision = B.verdict(rows, False, "none", peer="nnjax_precision")
    assert precision.startswith("bfloat16 (nnjax_precision)") and "0.90x" in precision
    assert precision.endswith(": met") and B.verdict(rows, False, "none").endswith("NOT met")


def test_bfloat16_verdict_reads_the_paired_ratios_and_their_spread():
    import _bfloat16 as B

    rows = _train_rows(nnjax=2.0, nnjax_bf16=2.0)  # medians equal: 1.00x by the medians
    rows[1]["paired_vs_nnjax"] = [0.97, 1.04, 1.10]
    noisy = B.verdict(rows, False, "none")
    assert "1.04x (IQR 0.97-1.10)" in noisy and "within this run's noise" in noisy
    rows[1]["paired_vs_nnjax"] = [1.02, 1.04, 1.10]
    assert B.verdict(rows, False, "none").endswith(": NOT met")
    rows[1]["paired_vs_nnjax"] = [0.9, 0.95, 1.10]
    assert B.verdict(rows, False, "none").endswith(": met")


def test_bfloat16_verdict_of_a_scan_peer_is_paired_with_the_float32_scan():
    import _bfloat16 as B

    rows = _train_rows(nnjax=1.0, nnjax_scan=2.0, nnjax_scan_bf16=0.9)
    rows[1]["samples_s"], rows[2]["samples_s"] = [2.0] * 5, [0.8, 0.88, 0.9, 0.92, 1.04]
    line = B.verdict(rows, True, "AMX", peer="nnjax_scan_bf16")
    assert line.startswith("bfloat16 (nnjax_scan_bf16, against nnjax_scan)")
    assert line.endswith("batch 32 0.45x (IQR 0.44-0.46): met")  # not 0.90x of nnjax
    del rows[2]["samples_s"]  # no samples: the ratio of the medians
    line = B.verdict(rows, True, "AMX", peer="nnjax_scan_bf16")
    assert line.endswith("batch 32 0.45x (IQR 0.45-0.45): met")
    assert "run the peers nnjax_scan and" in B.verdict(rows[:1], True, "AMX", "nnjax_scan_bf16")
    assert B.baseline("nnjax_precision") == "nnjax"


def test_format_rows_shows_the_paired_ratio_to_the_pick():
    import bench_ops

    common = {"op": "conv2d", "shape": "28x28x1", "batch_size": 4, "compile_s": 1.0}
    rows = [
        {**common, "formulation": "xla", "picked": True, "median_s": 0.002, "vs_torch": 0.5,
         "paired_vs_picked": [1.0, 1.0, 1.0]},
        {**common, "formulation": "patches", "picked": False, "median_s": 0.003,
         "vs_torch": None, "paired_vs_picked": [1.2, 1.5, 1.7]},
    ]  # fmt: skip
    lines = bench_ops.format_rows(rows).splitlines()
    assert "*xla" in lines[0] and lines[0].endswith("1.00 (1.00-1.00)")
    assert " patches" in lines[1] and lines[1].endswith("1.50 (1.20-1.70)")


def test_precision_verdict_is_slower_only_where_the_whole_iqr_is():
    import _bfloat16 as B

    row = {"op": "dense", "formulation": "bfloat16", "batch_size": 256, "vs_torch": 1.02}
    noisy = B.precision_verdict([{**row, "paired_vs_picked": [0.78, 0.96, 1.03]}])
    assert "batch 256: 0.96 (0.78-1.03)" in noisy and noisy.endswith("is not slower than float32")
    slower = B.precision_verdict([{**row, "paired_vs_picked": [1.01, 1.05, 1.10]}])
    assert slower.endswith("is SLOWER than float32")
    by_medians = B.precision_verdict([{**row, "paired_vs_picked": None}])  # no samples kept
    assert "1.02 (1.02-1.02)" in by_medians and by_medians.endswith("SLOWER than float32")
    assert "not measured" in B.precision_verdict([{**row, "op": "conv2d"}])


@pytest.mark.filterwarnings("ignore:precision='bfloat16' computes in float32:UserWarning")
def test_large_sizes_are_a_resnets_stages_and_a_compute_bound_mlp():
    import bench_ops

    shapes = bench_ops.conv_shapes(8, quick=False, sizes="large")
    assert shapes["56x56x64->64"] == ((8, 56, 56, 64), 64, 1)
    assert shapes["7x7x512->512"] == ((8, 7, 7, 512), 512, 1)
    assert shapes["56x56x64 depthwise"] == ((8, 56, 56, 64), 64, 64)
    assert "28x28x1->32" in bench_ops.conv_shapes(8, quick=False)  # the CNN benchmark's
    calls, picked = bench_ops.dense_calls(4, quick=False, sizes="large")
    assert picked == "float32" and set(calls) == {"float32", "bfloat16"}


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "attention"])
def test_every_peer_a_benchmark_lists_has_a_builder(name):
    """A listed peer without a builder ran as an error row (bench_lstm's scan peers did)."""
    import importlib

    bench = importlib.import_module(f"bench_{name}")
    assert set(bench.PEERS) <= set(bench.builders(bench.Config()))
    assert set(bench.DEFAULT_PEERS) <= set(bench.PEERS)
