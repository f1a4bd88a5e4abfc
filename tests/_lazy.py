"""Test values made on first use, not at import (test helper, private).

A module-level array, parameter dict or PRNG key costs every test process a
compilation or more while pytest collects (imports) the test modules, whether or not
any of the module's tests is selected. :func:`made_once` builds such a value when a
test first asks for it and keeps it for the rest of the process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import jax

T = TypeVar("T")


def made_once(make: Callable[[], T]) -> Callable[[], T]:
    """``make``, run on the first call and its value returned by every call after.

    It runs under ``jax.ensure_compile_time_eval()``: a first call from inside a traced
    function (``jax.jit``, ``jax.make_jaxpr``) still makes concrete arrays, never
    tracers that would leak into the later calls.
    """

    @functools.cache
    def once() -> T:
        with jax.ensure_compile_time_eval():
            return make()

    return functools.wraps(make)(once)
