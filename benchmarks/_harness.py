"""Shared machinery of the benchmark scripts: environment record, JSON, table.

Each ``bench_*.py`` script builds, for every peer framework, zero-argument callables
(one training step, one inference call) and times them with :func:`time_calls`
(``_timing``, re-exported here: the first call apart, then samples of all peers in
interleaved rounds, medians and inter-quartile ranges per call). This module records
the machine and package versions with each result, writes the JSON and prints the table.

Example:
  >>> default_out("cnn").name
  'cnn_cpu.json'
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import signal
import sys
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from _paired import format_paired, paired_ratio
from _timing import (
    Timing,
    counted,
    sync_jax,
    sync_none,
    sync_torch_cuda,
    time_call,
    time_calls,
    torch_device,
)

K = TypeVar("K", bound=Hashable)
BASELINE = "nnjax"
RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
VERSION_PACKAGES = (
    "nnjax",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "equinox",
    "keras",
    "torch",
    "numpy",
)


def ensure_nnjax_importable() -> None:
    """Puts the repository root on ``sys.path`` when nnjax is not installed."""
    try:
        importlib.import_module("nnjax")
    except ModuleNotFoundError:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


ensure_nnjax_importable()
# The machine description lives in the library (ops pick formulations from it).
from nnjax._hardware import SIMD_FLAGS, bfloat16_hardware, cpu_flags, cpu_vendor  # noqa: E402
from nnjax.train import host_memory  # noqa: E402

# ---------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_note(load: float | None, cores: int | None) -> str:
    """A line on the machine's load; HIGH when the 1-minute load exceeds half the cores.

    Example:
      >>> load_note(6.0, 2)
      'load average 6.00 on 2 cores: HIGH (timings inflated; compare ratios within this run)'
    """
    if load is None or not cores:
        return "load average unknown"
    high = load > 0.5 * cores
    note = ": HIGH (timings inflated; compare ratios within this run)" if high else ": quiet"
    return f"load average {load:.2f} on {cores} cores{note}"


def machine_summary(env: Mapping[str, Any]) -> str:
    """Two lines for the top of a benchmark's output: CPU, SIMD flags, bfloat16 and load."""
    flags = [name for name, present in env.get("cpu_flags", {}).items() if present]
    count = env.get("device_count", 1)
    return (
        f"{env['platform']} ({env['device_kind']}{f' x{count}' if count > 1 else ''}); "
        f"CPU {env['cpu_model']}, "
        f"flags {' '.join(flags) or 'none of ' + '/'.join(SIMD_FLAGS)}\n"
        f"bfloat16 hardware: {env.get('bfloat16_hardware')}; "
        f"{load_note(env.get('load_average_1m'), env.get('cpu_affinity') or env.get('cpu_count'))}"
    )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        module = sys.modules.get(package)
        return getattr(module, "__version__", None)


def environment() -> dict[str, Any]:
    """Device, CPU, core count, package versions and the date of this run."""
    import jax

    device = jax.devices()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": cores,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in VERSION_PACKAGES},
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpu_flags": cpu_flags(),
        "cpu_vendor": cpu_vendor(),
        "bfloat16_hardware": bfloat16_hardware(cpu_flags(), cpu_vendor()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "host_memory_retained": host_memory.retained(),
    }


def host_memory_note() -> str:
    """One line: whether nnjax tuned this process's ``malloc`` (it applies to every peer).

    Example:
      >>> host_memory_note().startswith("host malloc:")
      True
    """
    if host_memory.retained():
        return (
            "host malloc: freed memory retained (nnjax.train.retain_freed_memory, as in fit; "
            "process-wide, so every peer here ran with it)"
        )
    return "host malloc: the C library's defaults"


# ------------------------------------------------------------------------- results


def row(peer: str, task: str, batch_size: int, timing: Timing, **extra: Any) -> dict[str, Any]:
    """One result row; ``examples_per_s`` and ``calls_per_s`` derive from the median."""
    return {
        "peer": peer,
        "task": task,
        "batch_size": batch_size,
        "compile_s": timing.first_s,
        "median_s": timing.median_s,
        "iqr_s": timing.iqr_s,
        "calls_per_s": 1.0 / timing.median_s,
        "examples_per_s": batch_size / timing.median_s,
        "repeats": timing.repeats,
        "number": timing.number,
        "samples_s": list(timing.samples_s),
        **extra,
    }


def add_ratios(rows: list[dict[str, Any]], baseline: str = BASELINE) -> list[dict[str, Any]]:
    """Sets ``ratio_vs_nnjax = peer median / baseline median`` (same task and batch).

    A ratio above 1 means the peer is slower than nnjax. Rows without a baseline
    measurement get ``None``. Rows whose ``samples_s`` come from the same rounds as the
    baseline's also get ``paired_vs_nnjax``, the ``[q1, median, q3]`` of the per-round
    ratios (:func:`_paired.paired_ratio`); else ``None``.

    Example:
      >>> r = add_ratios([{"peer": "nnjax", "task": "t", "batch_size": 1, "median_s": 2.0},
      ...                 {"peer": "p", "task": "t", "batch_size": 1, "median_s": 3.0}])
      >>> r[1]["ratio_vs_nnjax"]
      1.5
    """
    base = {(r["task"], r["batch_size"]): r for r in rows if r["peer"] == baseline}
    for r in rows:
        ref = base.get((r["task"], r["batch_size"]))
        r["ratio_vs_nnjax"] = None if ref is None else r["median_s"] / ref["median_s"]
        paired = ref and paired_ratio(r.get("samples_s", ()), ref.get("samples_s", ()))
        r["paired_vs_nnjax"] = list(paired) if paired else None
    return rows


def default_out(name: str, quick: bool = False) -> pathlib.Path:
    """``benchmarks/results/<name>_<platform>.json``; ``results/quick/`` for ``--quick`` runs.

    A smoke run never overwrites the recorded results (``results/quick/`` is ignored by git).
    """
    import jax

    folder = RESULTS_DIR / "quick" if quick else RESULTS_DIR
    return folder / f"{name}_{jax.devices()[0].platform}.json"


def write_atomic(path: pathlib.Path, record: dict[str, Any]) -> None:
    """Writes ``record`` as JSON to ``path``: beside it first, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".tmp")
    part.write_text(json.dumps(record, indent=2) + "\n")
    part.replace(path)


class Stopped(KeyboardInterrupt):
    """SIGTERM, as ``timeout`` sends at a time limit, inside :func:`stop_on_sigterm`."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Stopped`, so a script can save what it has and exit.

    Only a script's main thread installs the handler (elsewhere nothing changes); the
    previous one is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped(err: KeyboardInterrupt, path: pathlib.Path | str) -> int:
    """Says where the rows of a stopped run are; returns the exit status, 128 + signal."""
    why = "SIGTERM" if isinstance(err, Stopped) else "interrupted"
    print(f"stopped ({why}): {path} keeps what ended (complete: false)", flush=True)
    return 128 + (signal.SIGTERM if isinstance(err, Stopped) else signal.SIGINT)


def write_json(
    path: pathlib.Path | str,
    *,
    name: str,
    config: dict[str, Any],
    rows: list[dict[str, Any]],
    skipped: dict[str, str],
    errors: dict[str, str],
    complete: bool = True,
) -> pathlib.Path:
    """Writes the result file (environment, config, rows, skipped peers, errors).

    ``complete=False`` marks the rows of a run still going (written after each batch
    size, so a run stopped by its time limit keeps what it measured); it prints
    nothing. The file is replaced atomically (written beside it, then renamed).
    """
    path = pathlib.Path(path)
    record: dict[str, Any] = {
        "benchmark": name,
        "complete": complete,
        "environment": environment(),
        "config": config,
        "results": rows,
        "skipped": skipped,
        "errors": errors,
    }
    write_atomic(path, record)
    if complete:
        print(machine_summary(record["environment"]))
    return path


def format_table(rows: Iterable[dict[str, Any]]) -> str:
    """A plain-text table of the rows: medians in ms, compile time, ratios vs nnjax.

    ``ratio`` divides the medians; ``paired (IQR)`` is the median per-round ratio and
    its inter-quartile range (:mod:`_paired`), the one to trust on a drifting machine.
    """
    header = (
        f"{'task':<10}{'batch':>6}  {'peer':<18}{'median ms':>11}{'IQR ms':>9}"
        f"{'examples/s':>12}{'compile s':>11}{'ratio':>8}  paired (IQR)"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["task"], r["batch_size"], r["median_s"])):
        ratio = "-" if r.get("ratio_vs_nnjax") is None else f"{r['ratio_vs_nnjax']:.2f}"
        lines.append(
            f"{r['task']:<10}{r['batch_size']:>6}  {r['peer']:<18}"
            f"{r['median_s'] * 1e3:>11.3f}{r['iqr_s'] * 1e3:>9.3f}"
            f"{r['examples_per_s']:>12.0f}{r['compile_s']:>11.3f}{ratio:>8}"
            f"  {format_paired(r.get('paired_vs_nnjax'))}"
        )
    return "\n".join(lines)


__all__ = [
    "BASELINE",
    "RESULTS_DIR",
    "VERSION_PACKAGES",
    "Stopped",
    "Timing",
    "add_ratios",
    "counted",
    "default_out",
    "ensure_nnjax_importable",
    "environment",
    "format_table",
    "host_memory_note",
    "load_note",
    "machine_summary",
    "row",
    "stop_on_sigterm",
    "stopped",
    "sync_jax",
    "sync_none",
    "sync_torch_cuda",
    "time_call",
    "time_calls",
    "torch_device",
    "write_atomic",
    "write_json",
]
