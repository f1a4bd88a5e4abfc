"""Shared machinery of the benchmark scripts: timing, environment record, JSON, table.

Each ``bench_*.py`` script builds, for every peer framework, zero-argument callables
(one training step, one inference call) and hands them to :func:`time_calls`. The first
call (trace + compile + run) is timed apart; then, after warm-up, ``repeats`` samples are
taken, each of ``number`` back-to-back calls (chosen so a sample lasts about
``target_s``), and the median and inter-quartile range per call are reported. The
samples of all peers are taken in interleaved rounds, so that load from other jobs
falls on every peer alike.

Example:
  >>> import jax.numpy as jnp
  >>> t = time_call(lambda: jnp.ones(3) + 1, sync=sync_jax, repeats=3, warmup=1)
  >>> t.median_s > 0
  True
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

import _order
from _paired import format_paired, paired_ratio
from _paired import quartiles as _quartiles

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
from nnjax._hardware import SIMD_FLAGS, bfloat16_hardware, cpu_flags  # noqa: E402
from nnjax.train import host_memory  # noqa: E402

# --------------------------------------------------------------------------- timing


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call: ``first_s`` (compile + first run) and steady-state statistics.

    ``samples_s`` holds the samples themselves, one per round in round order (for
    :func:`_paired.paired_ratio`); empty where they were not kept.
    """

    first_s: float
    median_s: float
    q1_s: float
    q3_s: float
    repeats: int
    number: int
    samples_s: tuple[float, ...] = ()

    @property
    def iqr_s(self) -> float:
        """Inter-quartile range of the per-call samples."""
        return self.q3_s - self.q1_s


def sync_jax(out: Any) -> None:
    """Waits for every JAX array in ``out``."""
    import jax

    jax.block_until_ready(out)


def sync_none(out: Any) -> None:
    """No-op: eager PyTorch on CPU (and Keras' numpy results) are already done."""
    del out


def sync_torch_cuda(out: Any) -> None:
    """Waits for the CUDA stream (PyTorch on a GPU)."""
    del out
    import torch

    torch.cuda.synchronize()


def time_call(
    fn: Callable[[], Any],
    *,
    sync: Callable[[Any], None],
    repeats: int = 20,
    warmup: int = 3,
    target_s: float = 0.05,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Times ``fn()``: first call apart, then ``repeats`` samples after ``warmup`` calls.

    Args:
      fn: a zero-argument callable; it may carry state across calls (a training step).
      sync: waits until the result of ``fn()`` has been computed.
      repeats: number of timed samples (the median and quartiles are over these).
      warmup: untimed calls after the first one.
      target_s: each sample runs ``fn`` back-to-back enough times to last about this
        long, and is divided by that number, so sub-millisecond calls are resolved.
      clock: ``time.perf_counter`` (wall time) or ``time.process_time`` (CPU time of
        this process, all threads: robust to other processes on a shared machine).

    Returns:
      A :class:`Timing` in seconds per call.

    Example:
      >>> t = time_call(lambda: sum(range(100)), sync=sync_none, repeats=3, warmup=0)
      >>> t.repeats
      3
    """
    timings, errors = time_calls(
        {"": (fn, sync)}, repeats=repeats, warmup=warmup, target_s=target_s, clock=clock
    )
    if errors:
        raise errors[""]
    return timings[""]


def time_calls(
    calls: Mapping[K, tuple[Callable[[], Any], Callable[[Any], None]]],
    *,
    repeats: int = 20,
    warmup: int = 3,
    target_s: float = 0.05,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[K, Timing], dict[K, Exception]]:
    """Times several ``(fn, sync)`` pairs as :func:`time_call` does, samples interleaved.

    Each call's first run and warm-up happen in turn; then every round takes one sample
    of each call, so a change in the machine's load during the run (other jobs on a
    shared CPU) reaches every call alike instead of whichever was timed at that moment.
    The rounds cycle through the orders of :func:`_order.carryover_balanced`, so that
    each call follows each other one equally often (a PyTorch peer's threads spin for a
    while after it returns, slowing whatever runs next).
    A call that raises is dropped and its exception returned; the others go on.

    Example:
      >>> t, err = time_calls({"a": (lambda: 1, sync_none), "b": (lambda: 1 / 0, sync_none)},
      ...                     repeats=3, warmup=0)
      >>> sorted(t), type(err["b"]).__name__
      (['a'], 'ZeroDivisionError')
    """
    if repeats < 1:
        raise ValueError(f"time_call: `repeats` must be >= 1, got {repeats}")
    first, number, errors = {}, {}, {}
    for name, (fn, sync) in calls.items():
        try:
            first[name] = _sample(fn, sync, 1, clock)
            single = first[name]
            for _ in range(max(warmup, 1)):
                single = _sample(fn, sync, 1, clock)
            number[name] = max(1, int(target_s / max(single, 1e-9)))
        except Exception as err:  # reported to the caller, the other calls go on
            errors[name] = err
    samples: dict[K, list[float]] = {name: [] for name in number}
    names = list(samples)
    orders = _order.carryover_balanced(len(names)) if names else [[]]
    for round_ in range(repeats):
        order = [names[i] for i in orders[round_ % len(orders)]]
        for name in [n for n in order if n not in errors]:
            fn, sync = calls[name]
            try:
                samples[name].append(_sample(fn, sync, number[name], clock))
            except Exception as err:
                errors[name] = err
    timings = {}
    for name, values in samples.items():
        if name not in errors:
            q1, median, q3 = _quartiles(values)
            timings[name] = Timing(
                first[name], median, q1, q3, repeats, number[name], samples_s=tuple(values)
            )
    return timings, errors


def _sample(
    fn: Callable[[], Any], sync: Callable[[Any], None], number: int, clock: Callable[[], float]
) -> float:
    """Seconds per call of ``number`` back-to-back calls, waited for at the end."""
    start = clock()
    for _ in range(number):
        out = fn()
    sync(out)
    return (clock() - start) / number


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


def counted(fn: Callable, counter: dict[str, int], name: str) -> Callable:
    """Wraps ``fn`` so each call (under jit: each trace) adds 1 to ``counter[name]``.

    Example:
      >>> c = {}
      >>> counted(lambda v: v + 1, c, "f")(1), c
      (2, {'f': 1})
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counter[name] = counter.get(name, 0) + 1
        return fn(*args, **kwargs)

    return wrapper


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
        "bfloat16_hardware": bfloat16_hardware(cpu_flags()),
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


def default_out(name: str) -> pathlib.Path:
    """``benchmarks/results/<name>_<platform>.json``."""
    import jax

    return RESULTS_DIR / f"{name}_{jax.devices()[0].platform}.json"


def write_json(
    path: pathlib.Path | str,
    *,
    name: str,
    config: dict[str, Any],
    rows: list[dict[str, Any]],
    skipped: dict[str, str],
    errors: dict[str, str],
) -> pathlib.Path:
    """Writes the result file (environment, config, rows, skipped peers, errors)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "environment": environment(),
        "config": config,
        "results": rows,
        "skipped": skipped,
        "errors": errors,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
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
