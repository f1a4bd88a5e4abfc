"""Host memory on XLA:CPU: freed buffers kept for the next step instead of the OS.

Each call of a compiled XLA:CPU program allocates its temporary buffers (activations,
gradients) with the process's ``malloc`` and frees them when it returns. glibc's
``malloc`` serves a large block with a fresh ``mmap`` and gives it back with ``munmap``
when it is freed, so the next step faults every page of it in again, and zero-fills it.
For the CNN of ``benchmarks/bench_cnn.py`` at batch 128 that was about 10,500 page
faults, some 41 MB, on every training step, and a third of its time.

:func:`retaining` (around ``fit``, ``evaluate``, ``predict`` and ``sweep`` on the CPU
backend) sets three of glibc's ``mallopt`` parameters while they run:

* ``M_MMAP_MAX = 0``: large blocks come from the heap instead of their own ``mmap``;
* ``M_TOP_PAD = 64 MiB``: a thread's heap keeps that much free room instead of being
  unmapped as soon as it is empty (XLA's worker threads allocate from such heaps);
* ``M_TRIM_THRESHOLD = 1 GiB``: the main heap returns free memory at its top to the OS
  only beyond that much, so one step's temporaries stay for the next while a freed
  dataset still goes back.

Measured (train step of ``bench_cnn.py``'s CNN, batch 128, 2-core AMD EPYC, median of
interleaved samples): 96 -> 61 ms, page faults per step 10,507 -> 80; PyTorch, in the
same process, went from 0.81x to 1.24x nnjax's time.

The cost: the process keeps its peak heap (up to 1 GiB free at its top, 64 MiB per
thread heap) instead of shrinking after large temporaries are freed, and the setting is
process-wide (other libraries in the process, NumPy, PyTorch, allocate the same way).
So ``fit``, ``evaluate``, ``predict`` and ``sweep`` hold it only while they run
(:func:`retaining`): when the outermost of them returns, :data:`DEFAULTS` are set
(blocks of 32 MiB and more mapped again, so a dataset or array freed later goes back to
the system; the heap trimmed beyond 64 MiB free), so a long session (a notebook) does
not keep its peak heap between runs. :func:`retain_freed_memory` sets the settings for
the rest of the process.
Nothing is changed on other backends, other C libraries (musl, macOS), when the process
already chose (``MALLOC_*_`` or ``glibc.malloc`` tunables in the environment, a
``malloc`` replacement in ``LD_PRELOAD``), or when the environment variable
``NNJAX_RETAIN_HOST_MEMORY`` is ``0`` (read on the first call).

Example:
  >>> retain_freed_memory("gpu")
  False
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

import jax

ENV = "NNJAX_RETAIN_HOST_MEMORY"
"""The environment variable that turns the setting off (``0``, ``false``, ``no``, ``off``)."""

# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4

SETTINGS: tuple[tuple[int, int], ...] = (
    (M_MMAP_MAX, 0),
    (M_TOP_PAD, 64 << 20),
    (M_TRIM_THRESHOLD, 1 << 30),
)
"""``(mallopt parameter, value)`` pairs, in the order they are set."""

M_MMAP_THRESHOLD = -3

DEFAULTS: tuple[tuple[int, int], ...] = (
    (M_MMAP_MAX, 65536),
    (M_MMAP_THRESHOLD, 32 << 20),
    (M_TOP_PAD, 128 << 10),
    (M_TRIM_THRESHOLD, 64 << 20),
)
"""What a run leaves: blocks of 32 MiB and more mapped (given back when freed), and the
heap trimmed beyond 64 MiB free at its top.

glibc's own defaults cannot come back: setting any of these parameters turns off its
dynamic mmap threshold for good, which would leave it at 128 KiB and make every NumPy
temporary from 128 KiB up a fresh ``mmap`` (twice the time of a loop of them). These
are the values the dynamic threshold reaches at most on 64-bit Linux.
"""

_PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc", "hoard", "snmalloc")

_P = ParamSpec("_P")
_T = TypeVar("_T")
_LOCK = threading.Lock()
_runs = 0  # fit/evaluate/predict/sweep calls under way (nested or in threads)

Mallopt = Callable[[int, int], int]


def retain_freed_memory(backend: str | None = None) -> bool:
    """Keeps host memory that a compiled step frees for the next step (XLA:CPU, glibc).

    Sets glibc's ``mallopt`` parameters of :data:`SETTINGS` for the rest of the
    process (see the module docstring for why and what it costs): ``fit`` and the
    others then leave them set when they return. Later calls return the first call's
    result without changing anything. (``fit``, ``evaluate``, ``predict`` and ``sweep``
    set them only while they run, :func:`retaining`.)

    Args:
      backend: ``"cpu"``, ``"gpu"``, ...; ``None``: JAX's default backend. Only
        ``"cpu"`` is tuned: accelerators' buffers are not allocated with ``malloc``.

    Returns:
      Whether ``malloc`` is tuned: ``False`` on another backend or C library, when the
      process chose its allocator settings, or when :data:`ENV` is ``0``.

    Example:
      >>> isinstance(retain_freed_memory(), bool)
      True
    """
    if (backend or jax.default_backend()) != "cpu":
        return False
    return _tune_once()


def retaining(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """``fn`` (``fit``, ``evaluate``, ``predict``, ``sweep``) run with freed memory kept.

    On the CPU backend (or the platform of a ``devices=`` argument) the :data:`SETTINGS`
    hold from the first of such calls under way to the last one's return; then glibc's
    :data:`DEFAULTS` are set (large blocks mapped again, given back when freed),
    unless :func:`retain_freed_memory` set the settings for the process.

    Example:
      >>> retaining(retained)() in (True, False)
      True
    """

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        devices = kwargs.get("devices")
        platform = devices[0].platform if devices else jax.default_backend()  # type: ignore[index]
        if platform != "cpu":
            return fn(*args, **kwargs)
        _begin()
        try:
            return fn(*args, **kwargs)
        finally:
            _end()

    return run


def _begin() -> None:
    global _runs
    with _LOCK:
        if _runs == 0 and not _PERMANENT:
            _set(SETTINGS)
        _runs += 1


def _end() -> None:
    global _runs
    with _LOCK:
        _runs -= 1
        if _runs == 0 and not _PERMANENT:
            _set(DEFAULTS)


def _set(settings: tuple[tuple[int, int], ...]) -> bool:
    """Sets ``settings`` where nnjax may tune ``malloc`` (:func:`wanted`); whether it did."""
    mallopt = glibc_mallopt() if wanted(os.environ) else None
    return mallopt is not None and all(mallopt(param, value) == 1 for param, value in settings)


def retained() -> bool:
    """Whether ``malloc`` keeps freed memory now: set for the process, or a run under way.

    Example:
      >>> retained() in (True, False)
      True
    """
    return _PERMANENT or (_runs > 0 and glibc_mallopt() is not None and wanted(os.environ))


_PERMANENT = False  # retain_freed_memory set the settings for the rest of the process


@functools.cache
def _tune_once() -> bool:
    global _PERMANENT
    with _LOCK:
        _PERMANENT = _set(SETTINGS)
    return _PERMANENT


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether nnjax may tune ``malloc`` in a process with this environment.

    ``False`` when :data:`ENV` says no, or when the process already chose: glibc
    ``MALLOC_*_`` variables, ``glibc.malloc`` tunables, or a ``malloc`` replacement
    preloaded.

    Example:
      >>> wanted({}), wanted({"NNJAX_RETAIN_HOST_MEMORY": "0"})
      (True, False)
      >>> wanted({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
      False
    """
    if environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(name.startswith("MALLOC_") and name.endswith("_") for name in environ):
        return False
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    preload = environ.get("LD_PRELOAD", "").lower()
    return not any(name in preload for name in _PRELOADED_ALLOCATORS)


def glibc_mallopt() -> Mallopt | None:
    """The C library's ``mallopt(param, value) -> 1 on success``; ``None`` if not glibc.

    Example:
      >>> glibc_mallopt() is None or callable(glibc_mallopt())
      True
    """
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):  # not POSIX, or no such name
        return None
    if not libc_version.startswith("glibc"):
        return None
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


__all__ = [
    "DEFAULTS",
    "ENV",
    "SETTINGS",
    "glibc_mallopt",
    "retain_freed_memory",
    "retained",
    "retaining",
    "wanted",
]
