"""Timing of zero-argument calls: first call apart, then interleaved samples.

``time_calls`` takes, for every call, the first run (trace + compile + run) apart; then,
after warm-up, ``repeats`` samples, each of ``number`` back-to-back calls (chosen so a
sample lasts about ``target_s``), in interleaved rounds, so that load from other jobs
falls on every call alike.

Example:
  >>> import jax.numpy as jnp
  >>> t = time_call(lambda: jnp.ones(3) + 1, sync=sync_jax, repeats=3, warmup=1)
  >>> t.median_s > 0
  True
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import _order
from _paired import quartiles as _quartiles

K = TypeVar("K", bound=Hashable)
QUEUED = 8  # calls queued behind the one a sample waits for


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


def torch_device() -> tuple[str, Callable[[Any], None]]:
    """PyTorch's device and sync: ``("cuda", sync_torch_cuda)`` where JAX runs on a GPU
    and PyTorch sees one, else ``("cpu", sync_none)``, so peers share a kind of device.

    Example:
      >>> torch_device()[0]  # on the CPU test machines
      'cpu'
    """
    import jax

    if jax.default_backend() == "gpu":
        import torch

        if torch.cuda.is_available():
            return "cuda", sync_torch_cuda
    return "cpu", sync_none


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
    """Seconds per call of ``number`` back-to-back calls, waited for at the end.

    At most ``QUEUED`` calls stay queued behind the one waited for, as in
    ``nnjax.train.in_flight`` (32 queued all-reduces deadlock jax 0.10's CPU devices).
    """
    outs: collections.deque = collections.deque(maxlen=QUEUED + 1)
    start = clock()
    for _ in range(number):
        outs.append(fn())
        if len(outs) > QUEUED:
            sync(outs[0])
    sync(outs[-1])
    return (clock() - start) / number


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
