"""Times the formulations of ``F.lstm`` (and ``F.gru``) on the current backend.

Compares computing ``xs @ w_x`` for all steps before the scan (``precompute_inputs=True``)
with the per-step cell (``False``), each with a few ``lax.scan`` unroll factors, for the
jitted forward pass and the jitted forward + backward pass. Compile time is measured
apart (first call); the steady state is the median of ``--repeats`` calls after warm-up.

Usage::

    pip install -e .   # or run with PYTHONPATH=.
    python benchmarks/bench_lstm_formulation.py            # full sizes
    python benchmarks/bench_lstm_formulation.py --quick    # small, a few seconds

Writes ``benchmarks/results/lstm_formulation_<backend>.json`` (device, versions,
results) and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import nnjax.functional as F
from nnjax.functional import sequence

SIZES = {  # name: (B, T, F, H)
    "small": (32, 100, 32, 128),
    "large": (256, 50, 64, 256),
}
QUICK_SIZES = {"tiny": (8, 20, 8, 32)}


def _sequence_op(cell: str):
    if cell == "lstm":
        return F.lstm_cell_init, sequence.lstm
    return F.gru_cell_init, sequence.gru


def _time(fn, args, repeats: int, warmup: int) -> tuple[float, float]:
    """Returns ``(compile_plus_first_call_s, median_steady_s)`` for a jitted ``fn``."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def bench_one(cell, size, precompute, unroll, repeats, warmup, dtype) -> dict:
    """Times forward and forward+backward of one formulation at one size."""
    b, t, f, h = size
    init, op = _sequence_op(cell)
    k_p, k_x = jax.random.split(jax.random.key(0))
    params = init(k_p, f, h, dtype=dtype)
    xs = jax.random.normal(k_x, (b, t, f), dtype)

    def forward(params, xs):
        return op(params, xs, precompute_inputs=precompute, unroll=unroll)[1]

    def loss(params, xs):
        return jnp.mean(forward(params, xs).astype(jnp.float32) ** 2)

    fwd = jax.jit(forward)
    bwd = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    fwd_first, fwd_s = _time(fwd, (params, xs), repeats, warmup)
    bwd_first, bwd_s = _time(bwd, (params, xs), repeats, warmup)
    return {
        "cell": cell,
        "B": b,
        "T": t,
        "F": f,
        "H": h,
        "precompute_inputs": precompute,
        "unroll": unroll,
        "forward_ms": fwd_s * 1e3,
        "forward_backward_ms": bwd_s * 1e3,
        "forward_compile_s": fwd_first - fwd_s,
        "forward_backward_compile_s": bwd_first - bwd_s,
    }


def _table(results: list[dict]) -> str:
    head = f"{'cell':5} {'B':>4} {'T':>4} {'F':>4} {'H':>4} {'pre':>5} {'unr':>3}"
    head += f" {'fwd ms':>9} {'fwd+bwd ms':>11} {'compile s':>10}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r['cell']:5} {r['B']:>4} {r['T']:>4} {r['F']:>4} {r['H']:>4} "
            f"{r['precompute_inputs']!s:>5} {r['unroll']:>3} {r['forward_ms']:>9.2f} "
            f"{r['forward_backward_ms']:>11.2f} "
            f"{r['forward_compile_s'] + r['forward_backward_compile_s']:>10.2f}"
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
        "--out",
        type=pathlib.Path,
        default=None,
        help="JSON file (default benchmarks/results/lstm_formulation_<backend>.json)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    repeats = 3 if args.quick else args.repeats
    dtype = jnp.dtype(args.dtype)

    results = []
    for cell, size, precompute, unroll in itertools.product(
        args.cells, sizes.values(), (True, False), args.unrolls
    ):
        results.append(bench_one(cell, size, precompute, unroll, repeats, args.warmup, dtype))
        print(_table(results[-1:]).splitlines()[-1], flush=True)

    print()
    print(_table(results))
    backend = jax.default_backend()
    out = args.out or pathlib.Path(__file__).parent / "results" / f"lstm_formulation_{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    record = {
        "backend": backend,
        "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "dtype": args.dtype,
        "quick": args.quick,
        "repeats": repeats,
        "results": results,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
