"""``--isolate R``: every peer timed in a process of its own, round by round.

In one process the peers slow one another down: PyTorch's LSTM step ran 10-30% slower
beside JAX's second CPU device thread (``README.md``, Session 13). With ``--isolate R``
a script runs itself again once per batch size, round and peer (``R`` rounds, the
peers' order rotated each round), each child timing one peer alone with the run's own
options (``--repeats`` samples and the rest), and reports for each peer the median of
its rounds' medians. When an nnjax peer is among them, every child tunes the host
``malloc`` as ``fit`` does (:data:`RETAIN_ENV`), as every peer of a one-process run shares
the nnjax peers' tuning. The rounds play the part of the interleaved samples: a row's
``samples_s`` holds one median per round, so ``paired_vs_nnjax`` is the quartiles of
the per-round ratios to nnjax (:func:`_harness.add_ratios`).

Example:
  >>> child_args(["--quick", "--peers", "nnjax,torch"], "torch", 8, "t.json")[-8:]
  ['--peers', 'torch', '--batch-sizes', '8', '--out', 't.json', '--isolate', '0']
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import _harness as H
from _paired import quartiles

#: Seconds a child may run (compile and time one peer at one batch size).
CHILD_TIMEOUT_S = 1800

#: Set to ``"1"`` in a child's environment: ``_runner.run`` then calls
#: ``nnjax.train.retain_freed_memory()`` before building any peer.
RETAIN_ENV = "NNJAX_BENCH_RETAIN_FREED_MEMORY"


def child_args(argv: Sequence[str], peer: str, batch: int, out: str) -> list[str]:
    """The run's arguments for a child timing ``peer`` at ``batch`` into ``out``.

    The child's options are appended (argparse keeps the last value of an option), so
    every other option of the run reaches the child as given.
    """
    own = ["--peers", peer, "--batch-sizes", str(batch), "--out", str(out), "--isolate", "0"]
    return [*argv, *own]


def rotated(peers: Sequence[str], round_: int) -> list[str]:
    """``peers`` rotated by ``round_`` (each peer goes first equally often).

    Example:
      >>> rotated(["a", "b", "c"], 1)
      ['b', 'c', 'a']
    """
    k = round_ % len(peers)
    return [*peers[k:], *peers[:k]]


def _child(script: str, args: Any, peer: str, batch: int, env: Any) -> tuple[Any, str]:
    """Runs the script for one peer and batch size; its result record (or None), output tail."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "peer.json"
        command = [sys.executable, script, *child_args(args.argv, peer, batch, str(out))]
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired:
            return None, f"timed out after {CHILD_TIMEOUT_S} s"
        tail = (proc.stdout + proc.stderr)[-2000:]
        return (json.loads(out.read_text()) if out.exists() else None), tail


def combined(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from a peer's rows of every round: the median of the rounds' medians.

    Example:
      >>> r = [{"peer": "p", "task": "train", "batch_size": 8, "median_s": m,
      ...       "compile_s": 1.0, "repeats": 5, "number": 1} for m in (3.0, 1.0, 2.0)]
      >>> row = combined(r)
      >>> row["median_s"], row["samples_s"], row["rounds"]
      (2.0, [3.0, 1.0, 2.0], 3)
    """
    medians = [r["median_s"] for r in rounds]
    q1, median, q3 = quartiles(medians)
    compile_s = quartiles([r["compile_s"] for r in rounds])[1]
    first = rounds[0]
    timing = H.Timing(compile_s, median, q1, q3, first["repeats"], first["number"], tuple(medians))
    row = H.row(first["peer"], first["task"], first["batch_size"], timing)
    dropped = {*row, "ratio_vs_nnjax", "paired_vs_nnjax"}  # recomputed over the rounds
    return {**row, **{k: v for k, v in first.items() if k not in dropped}, "rounds": len(rounds)}


def run(args: Any) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """Times each of ``args.peers`` in its own processes, ``args.isolate`` rounds.

    Returns rows, skipped peers and errors, as :func:`_runner.run`.
    """
    script = pathlib.Path(sys.argv[0])
    if script.suffix != ".py" or not script.exists():
        raise SystemExit(f"--isolate runs the benchmark script again; run it as one, not {script}")
    env = None
    if any(p.startswith("nnjax") for p in args.peers):  # the children, and this process so
        from nnjax.train import host_memory  # that the record says so

        host_memory.retain_freed_memory()
        env = {**os.environ, RETAIN_ENV: "1"}
    rounds: dict[tuple, list[dict]] = defaultdict(list)
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    for batch in args.batch_sizes:
        for round_ in range(args.isolate):
            for peer in rotated(args.peers, round_):
                record, tail = _child(str(script), args, peer, batch, env)
                if record is None:
                    key, note = f"{peer}@{batch}", f"round {round_}: no result; {tail}"
                    errors[key] = f"{errors[key]}; {note}" if key in errors else note
                    continue
                skipped.update(record["skipped"])
                errors.update(record["errors"])
                for row in record["results"]:
                    rounds[(row["peer"], row["task"], row["batch_size"])].append(row)
                print(f"round {round_ + 1}/{args.isolate}, batch {batch}: {peer}", file=sys.stderr)
    rows = [combined(rs) for rs in rounds.values()]
    return H.add_ratios(rows), skipped, errors


__all__ = ["CHILD_TIMEOUT_S", "RETAIN_ENV", "child_args", "combined", "rotated", "run"]
