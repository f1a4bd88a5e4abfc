"""Command-line options shared by the benchmark scripts, and peer availability.

Example:
  >>> parser = make_parser("demo", ("nnjax", "torch"), ("nnjax",), (32,))
  >>> parser.parse_args(["--peers", "torch", "--batch-sizes", "8,16"]).batch_sizes
  [8, 16]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def make_parser(
    description: str,
    peers: Sequence[str],
    default_peers: Sequence[str],
    batch_sizes: Sequence[int],
) -> argparse.ArgumentParser:
    """The options every script shares (``--quick --batch-sizes --repeats --peers --out``,
    timing, threads, optimizer); scripts add their model's."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke)")
    parser.add_argument(
        "--batch-sizes",
        type=int_list,
        default=list(batch_sizes),
        help="comma-separated batch sizes (default %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed samples per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls after the first")
    parser.add_argument(
        "--target-s", type=float, default=0.05, help="approximate length of one sample (s)"
    )
    parser.add_argument(
        "--peers",
        type=lambda s: _peer_list(s, peers),
        default=list(default_peers),
        help=f"comma-separated subset of {','.join(peers)} (default: {','.join(default_peers)})",
    )
    parser.add_argument("--out", type=pathlib.Path, default=None, help="result JSON path")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or CPU time of the process (for shared, loaded machines)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for XLA and PyTorch (default: each framework's own choice)",
    )
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="JAX CPU devices in this process (jax_num_cpu_devices; default JAX's, one). "
        "The nnjax peers split each batch over them as fit does; the other JAX peers "
        "run on the first",
    )
    parser.add_argument(
        "--isolate",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="time each peer in a process of its own, ROUNDS rounds per batch size, the "
        "peers' order rotated each round (peers in one process slow one another down)",
    )
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (%(default)s)")
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, quick_batch_sizes=(8,)
) -> argparse.Namespace:
    """Parses ``argv``, caps the threads (``--threads``) and applies ``--quick``."""
    args = parser.parse_args(argv)
    if args.isolate < 0:
        parser.error(f"--isolate takes a number of rounds >= 0, got {args.isolate}")
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --isolate's children
    limit_threads(args.threads)
    set_cpu_devices(args.cpu_devices)
    if args.quick:
        apply_quick(args, parser, batch_sizes=quick_batch_sizes)
    return args


def limit_threads(threads: int | None) -> None:
    """Caps XLA:CPU and PyTorch intra-op threads; call before JAX first touches a device.

    On a shared, oversubscribed CPU, spinning thread pools (PyTorch's OpenMP above all)
    can run a hundred times slower than one thread; ``--threads 1`` makes the
    frameworks comparable there. ``None`` leaves every framework at its default.
    """
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false"
    os.environ["XLA_FLAGS"] = f"{flags} intra_op_parallelism_threads={threads}".strip()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)


def set_cpu_devices(count: int | None) -> None:
    """Gives JAX ``count`` CPU devices (``jax_num_cpu_devices``); call before JAX starts.

    Each CPU device runs its part of a program on its own thread: a program split over
    them (``fit``'s data parallelism) runs loops such as a recurrence's steps on
    several cores at once, where XLA:CPU runs one device's loop body on one thread.
    ``None`` leaves JAX's default (one device).
    """
    if count is None:
        return
    if count < 1:
        raise ValueError(f"--cpu-devices must be >= 1, got {count}")
    import jax

    jax.config.update("jax_num_cpu_devices", count)


QUICK = {"repeats": 3, "warmup": 1, "target_s": 0.002}


def apply_quick(
    args: argparse.Namespace, parser: argparse.ArgumentParser, *, batch_sizes: Sequence[int]
) -> None:
    """With ``--quick``: small batches and few, short samples, unless given explicitly."""
    for name, value in {**QUICK, "batch_sizes": list(batch_sizes)}.items():
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def timing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`time_call` chosen on the command line."""
    return {
        "repeats": args.repeats,
        "warmup": args.warmup,
        "target_s": args.target_s,
        "clock": CLOCKS[args.clock],
    }


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options of a run, for the result file."""
    names = ("quick", "batch_sizes", "repeats", "warmup", "target_s", "peers", "threads", "clock")
    return {name: getattr(args, name) for name in (*names, "cpu_devices", "isolate")}


def int_list(text: str) -> list[int]:
    """Parses ``"32,256"`` into ``[32, 256]`` (positive integers)."""
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from err
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _peer_list(text: str, known: Sequence[str]) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {unknown}; known: {list(known)}")
    return chosen


def missing_module(module: str) -> str | None:
    """``None`` if ``module`` imports, else a note saying why the peer is skipped."""
    if module == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        mod = importlib.import_module(module)
    except Exception as err:  # ImportError, or a broken install
        return f"{module} is not importable ({type(err).__name__}: {err})"
    if module == "keras" and mod.backend.backend() != "jax":
        return f"keras uses the {mod.backend.backend()!r} backend; set KERAS_BACKEND=jax"
    return None
