"""Times the formulations of ``F.lstm`` (and ``F.gru``) on the current backend.

Compares computing ``xs @ w_x`` for all steps before the scan (``precompute_inputs=True``)
with the per-step formulation (``False``: for the LSTM, the custom VJP of
``nnjax/functional/_lstm_scan.py``) and, with ``--autodiff``, autodiff of the scanned
cell (``F.rnn(cell, ...)``, the per-step formulation before the custom VJP), each with a
few ``lax.scan`` unroll factors, for the jitted forward pass and the jitted forward +
backward pass. ``--torch`` adds PyTorch's ``nn.LSTM``/``nn.GRU`` (eager) to the same
interleaved rounds. Compile time is measured apart (first call); the steady state is
the median of ``--repeats`` calls after warm-up.

Usage::

    pip install -e .   # or run with PYTHONPATH=.
    python benchmarks/bench_lstm_formulation.py            # full sizes
    python benchmarks/bench_lstm_formulation.py --quick    # small, a few seconds
    # the LSTM benchmark's sizes, against autodiff and PyTorch, one thread, CPU time:
    python benchmarks/bench_lstm_formulation.py --sizes bench --unrolls 1 2 --autodiff \
        --torch --threads 1 --clock cpu --cells lstm
    # the same with glibc keeping freed memory (no page faults on XLA's large temps):
    python benchmarks/bench_lstm_formulation.py --sizes bench --keep-freed-memory ...

Every row records ``page_faults_per_call`` (minor faults of the timed calls, divided by
their count): at batch 128 XLA:CPU allocates its 40-50 MB temporary buffer with
``mmap`` on every call and the kernel zero-fills each page on first touch.

Writes ``benchmarks/results/lstm_formulation_<backend>.json`` (device, versions,
results) and prints a table.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import pathlib
import platform
import resource
import statistics
import sys
import time

import _harness as H
import jax
import jax.numpy as jnp

import nnjax.functional as F
from nnjax.functional import sequence

SIZES = {  # name: (B, T, F, H)
    "small": (32, 100, 32, 128),
    "large": (256, 50, 64, 256),
}
BENCH_SIZES = {"bench32": (32, 64, 16, 128), "bench128": (128, 64, 16, 128)}  # bench_lstm.py
QUICK_SIZES = {"tiny": (8, 20, 8, 32)}


def _sequence_op(cell: str):
    if cell == "lstm":
        return F.lstm_cell_init, sequence.lstm
    return F.gru_cell_init, sequence.gru


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]  # --clock cpu: this process's CPU time (robust on a shared machine)


def keep_freed_memory() -> bool:
    """Makes glibc serve large allocations from its heap and keep freed memory (1 GiB).

    Process-wide (``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``), so
    every framework in the run gains alike; returns False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _call(fn, args) -> float:
    start = _clock()
    jax.block_until_ready(fn(*args))
    return _clock() - start


def _variant_fns(cell, formulation, unroll):
    """The jitted forward and forward+backward (w.r.t. params and xs) of one variant.

    ``formulation``: ``"precompute"``, ``"per_step"`` (``F.lstm``/``F.gru``) or
    ``"autodiff"`` (``F.rnn`` of the cell, differentiated by JAX).
    """
    _, op = _sequence_op(cell)
    cell_fn = F.lstm_cell if cell == "lstm" else F.gru_cell

    def forward(params, xs):
        if formulation == "autodiff":
            return F.rnn(cell_fn, params, xs, precompute_inputs=False, unroll=unroll)[1]
        pre = formulation == "precompute"
        return op(params, xs, precompute_inputs=pre, unroll=unroll)[1]

    def loss(params, xs):
        return jnp.mean(forward(params, xs).astype(jnp.float32) ** 2)

    return {"forward": jax.jit(forward), "forward_backward": jax.jit(jax.grad(loss, (0, 1)))}


def _torch_fns(cell, size, dtype):
    """PyTorch's eager forward and forward+backward (w.r.t. weights and xs), or ``{}``.

    On CUDA when JAX runs on a GPU and PyTorch sees one (each call then waits for the
    GPU, as ``jax.block_until_ready`` does for JAX), else on the CPU.
    """
    try:
        import torch
    except ImportError:
        return {}
    b, t, f, h = size
    device, sync = H.torch_device()
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(f, h, batch_first=True)
    module = module.to(device=device, dtype=getattr(torch, dtype.name))
    xs = torch.randn(b, t, f, dtype=module.weight_hh_l0.dtype, device=device, requires_grad=True)

    def forward(*_):
        with torch.no_grad():
            out = module(xs)[0]
        sync(None)
        return out

    def forward_backward(*_):
        for q in (*module.parameters(), xs):
            q.grad = None
        loss = (module(xs)[0].float() ** 2).mean()
        loss.backward()
        sync(None)
        return loss

    return {"forward": forward, "forward_backward": forward_backward}


def bench_size(cell, size, variants, repeats, warmup, dtype, torch_peer=False) -> list[dict]:
    """Times every ``(formulation, unroll)`` variant at one size, interleaved.

    Each round calls every variant once (rotating the order), so load that changes
    during the run (a shared machine) hits all variants alike; the reported time is
    the median over rounds. Compile time is the first call minus that median.
    """
    b, t, f, h = size
    init, _ = _sequence_op(cell)
    k_p, k_x = jax.random.split(jax.random.key(0))
    args = (init(k_p, f, h, dtype=dtype), jax.random.normal(k_x, (b, t, f), dtype))
    fns = {(v, kind): fn for v in variants for kind, fn in _variant_fns(cell, *v).items()}
    if torch_peer and (torch_fns := _torch_fns(cell, size, dtype)):
        variants = [*variants, ("torch", 1)]
        fns |= {(("torch", 1), kind): fn for kind, fn in torch_fns.items()}
    first = {name: _call(fn, args) for name, fn in fns.items()}
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            _call(fns[name], args)
    times: dict = {name: [] for name in names}
    faults = dict.fromkeys(names, 0)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            before = _faults()
            times[name].append(_call(fns[name], args))
            faults[name] += _faults() - before
    results = []
    for formulation, unroll in variants:
        row = {"cell": cell, "B": b, "T": t, "F": f, "H": h}
        row |= {"formulation": formulation, "unroll": unroll}
        row["precompute_inputs"] = formulation == "precompute"  # the key of earlier records
        for kind in ("forward", "forward_backward"):
            median = statistics.median(times[((formulation, unroll), kind)])
            row[f"{kind}_ms"] = median * 1e3
            row[f"{kind}_compile_s"] = first[((formulation, unroll), kind)] - median
            row[f"{kind}_page_faults_per_call"] = faults[((formulation, unroll), kind)] / repeats
        results.append(row)
    return results


def _table(results: list[dict]) -> str:
    head = f"{'cell':5} {'B':>4} {'T':>4} {'F':>4} {'H':>4} {'formulation':>11} {'unr':>3}"
    head += f" {'fwd ms':>9} {'fwd+bwd ms':>11} {'compile s':>10} {'faults/call':>11}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r['cell']:5} {r['B']:>4} {r['T']:>4} {r['F']:>4} {r['H']:>4} "
            f"{r['formulation']:>11} {r['unroll']:>3} {r['forward_ms']:>9.2f} "
            f"{r['forward_backward_ms']:>11.2f} "
            f"{r['forward_compile_s'] + r['forward_backward_compile_s']:>10.2f} "
            f"{r['forward_backward_page_faults_per_call']:>11.0f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tiny size, few repeats")
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    parser.add_argument("--unrolls", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--sizes",
        default="default",
        choices=["default", "bench"],
        help="bench: bench_lstm.py's T 64, F 16, H 128 at batch 32 and 128",
    )
    parser.add_argument("--autodiff", action="store_true", help="add F.rnn(cell) (autodiff)")
    parser.add_argument("--torch", action="store_true", help="add PyTorch (eager)")
    parser.add_argument("--threads", type=int, default=None, help="cap XLA/PyTorch threads")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS))
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc: large allocations from the heap, freed memory kept (see keep_freed_memory)",
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="JSON file (default benchmarks/results/lstm_formulation_<backend>.json)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        import _cli  # benchmarks/_cli.py: caps XLA:CPU and PyTorch threads

        _cli.limit_threads(args.threads)
    global _clock
    _clock = CLOCKS[args.clock]
    kept = args.keep_freed_memory and keep_freed_memory()
    sizes = QUICK_SIZES if args.quick else BENCH_SIZES if args.sizes == "bench" else SIZES
    repeats = 3 if args.quick else args.repeats
    dtype = jnp.dtype(args.dtype)

    kinds = ("precompute", "per_step", *(("autodiff",) if args.autodiff else ()))
    variants = list(itertools.product(kinds, args.unrolls))
    backend = jax.default_backend()
    out = args.out or pathlib.Path(__file__).parent / "results" / f"lstm_formulation_{backend}.json"
    results: list[dict] = []
    with H.stop_on_sigterm():
        try:
            for cell, size in itertools.product(args.cells, sizes.values()):
                rows = bench_size(cell, size, variants, repeats, args.warmup, dtype, args.torch)
                print(_table(rows), flush=True)
                results.extend(rows)
                # saved as each size ends: a run stopped by its time limit keeps what it measured
                H.write_atomic(out, _record(args, kept, repeats, results, complete=False))
        except KeyboardInterrupt as err:  # Stopped (SIGTERM) too: the sizes that ended
            H.write_atomic(out, _record(args, kept, repeats, results, complete=False))
            sys.exit(H.stopped(err, out))

    print()
    print(_table(results))
    H.write_atomic(out, _record(args, kept, repeats, results, complete=True))
    print(f"\nwrote {out}")
    return results


def _record(args, kept: bool, repeats: int, results: list[dict], *, complete: bool) -> dict:
    """The result file: the machine, the options and the rows (``complete``: all sizes)."""
    backend = jax.default_backend()
    device = jax.devices()[0]
    return {
        "complete": complete,
        "backend": backend,
        "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],  # a shared machine inflates absolute times
        "dtype": args.dtype,
        "threads": args.threads,
        "clock": args.clock,
        "keep_freed_memory": kept,
        "quick": args.quick,
        "repeats": repeats,
        "results": results,
    }


if __name__ == "__main__":
    main()
