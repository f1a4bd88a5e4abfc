"""The ``bfloat16:`` line of a benchmark: the hardware's case, its goal, the measurement.

Issue 15's goal depends on the hardware: bfloat16 at least 2x faster than float32 where
matmuls run natively in bfloat16 (GPU, TPU, AMX, AVX512-BF16 but Intel's without AMX),
never slower where they are emulated or slower than float32's. A script with an
``nnjax_bf16`` peer (``nnjax`` with the model built with ``dtype=jnp.bfloat16``) prints
:func:`verdict` of its rows after its table, one line per bfloat16 peer that ran
(:data:`PEERS`); ``bench_ops.py`` prints :func:`precision_verdict` of its ``dense``
rows.
"""

from __future__ import annotations

import json
import pathlib

import _harness as H
import _paired


def case() -> tuple[bool, str]:
    """Whether JAX's default backend multiplies bfloat16 natively, and which case it is."""
    import jax

    from nnjax import _hardware

    backend = jax.default_backend()
    native = _hardware.native_bfloat16(backend)
    if backend != "cpu":
        return native, f"{backend.upper()} (native bfloat16 matmuls)"
    return native, _hardware.bfloat16_hardware(_hardware.cpu_flags(), _hardware.cpu_vendor())


STEP_PEERS = ("nnjax_bf16", "nnjax_precision")
"""The bfloat16 peers stepped once per call: a model built with ``dtype=jnp.bfloat16``,
and ``fit``'s ``precision="bfloat16"`` on a float32 model (every model benchmark has them)."""
PEERS = (*STEP_PEERS, "nnjax_scan_bf16", "nnjax_scan_precision")
"""Every bfloat16 peer: :data:`STEP_PEERS`, and (the ``nnjax_scan_`` ones, ``bench_mlp.py``
only) the same K steps per call, as ``fit`` dispatches them."""


def baseline(peer: str) -> str:
    """The float32 peer that a bfloat16 ``peer`` is timed against: the same dispatch.

    Example:
      >>> baseline("nnjax_bf16"), baseline("nnjax_scan_precision")
      ('nnjax', 'nnjax_scan')
    """
    return "nnjax_scan" if peer.startswith("nnjax_scan_") else "nnjax"


def _ratio(row: dict, base: dict) -> list[float]:
    """``(q1, median, q3)`` of ``row``'s time over ``base``'s: paired where both have samples."""
    if base["peer"] == "nnjax" and row.get("paired_vs_nnjax"):
        return list(row["paired_vs_nnjax"])
    paired = _paired.paired_ratio(row.get("samples_s") or [], base.get("samples_s") or [])
    return list(paired) if paired else [row["median_s"] / base["median_s"]] * 3


def verdict(rows: list[dict], native: bool, case: str, peer: str = "nnjax_bf16") -> str:
    """The ``bfloat16:`` line: the hardware case, its goal, ``peer`` / float32 train times.

    The float32 time is :func:`baseline`'s (``nnjax``, or ``nnjax_scan`` for a peer
    stepped K times per call). The ratio is the median per-round ratio where the rows
    kept their samples (``paired_vs_nnjax``, or their ``samples_s``: :mod:`_paired`),
    with its inter-quartile range; else the ratio of the medians. A median that misses
    the goal while the IQR reaches it is reported as within the run's noise, not as met.

    Example:
      >>> rows = [{"peer": "nnjax", "task": "train", "batch_size": 32, "median_s": 2.0},
      ...         {"peer": "nnjax_bf16", "task": "train", "batch_size": 32, "median_s": 1.0}]
      >>> verdict(rows, True, "AMX").split("; ")[-1]
      'bf16 / f32 train time: batch 32 0.50x (IQR 0.50-0.50): met'
      >>> verdict(rows[:1], False, "none", peer="nnjax_precision").split("; ")[1]
      'goal: bfloat16 never slower than float32'
    """
    goal, limit = ("at least 2x faster than", 0.5) if native else ("never slower than", 1.0)
    base = baseline(peer)
    train = {(r["peer"], r["batch_size"]): r for r in rows if r["task"] == "train"}
    ratios = {
        b: _ratio(r, train[(base, b)])
        for (name, b), r in sorted(train.items())
        if name == peer and (base, b) in train
    }
    against = "" if base == "nnjax" else f", against {base}"
    head = f"bfloat16 ({peer}{against}): {case}; goal: bfloat16 {goal} float32"
    if not ratios:
        return f"{head}; not measured (run the peers {base} and {peer})"
    listed = ", ".join(
        f"batch {b} {m:.2f}x (IQR {q1:.2f}-{q3:.2f})" for b, (q1, m, q3) in ratios.items()
    )
    if all(m <= limit for _, m, _ in ratios.values()):
        verdict = "met"
    elif all(q1 <= limit for q1, _, _ in ratios.values()):
        verdict = "not met by the median, within this run's noise (the IQR reaches the goal)"
    else:
        verdict = "NOT met"
    return f"{head}; bf16 / f32 train time: {listed}: {verdict}"


def print_verdict(name: str, out: str | None, quick: bool = False) -> None:
    """Prints :func:`verdict` of the rows that a script named ``name`` wrote to ``out``."""
    rows = json.loads(pathlib.Path(out or H.default_out(name, quick)).read_text())["results"]
    ran = [peer for peer in PEERS if any(r["peer"] == peer for r in rows)]
    for peer in ran or PEERS[:1]:
        print(verdict(rows, *case(), peer=peer))


def precision_verdict(rows: list[dict]) -> str:
    """bench_ops' ``precision:`` line: was ``precision="bfloat16"`` slower than float32?

    Per batch size: the bfloat16 row's paired ratio to float32 (median, IQR). Slower
    only where the whole IQR lies above 1, so one noisy median does not decide.

    Example:
      >>> row = {"op": "dense", "formulation": "bfloat16", "batch_size": 256}
      >>> precision_verdict([row | {"paired_vs_picked": [0.78, 0.96, 1.03]}])[-35:]
      'bfloat16 is not slower than float32'
    """
    dense = [r for r in rows if r["op"] == "dense" and r["formulation"] == "bfloat16"]
    if not dense:
        return "precision: not measured (--ops without dense)"
    ratios = {r["batch_size"]: r["paired_vs_picked"] or [r["vs_torch"]] * 3 for r in dense}
    slower = any(q1 > 1.0 for q1, _, _ in ratios.values())
    listed = ", ".join(f"batch {b}: {_paired.format_paired(r)}" for b, r in sorted(ratios.items()))
    verdict = "SLOWER than float32" if slower else "not slower than float32"
    return f"precision: bfloat16 train step / float32 (IQR) = {listed}: bfloat16 is {verdict}"
