"""Eager calls of many-op formulations as one compiled program (private).

Outside ``jit`` JAX runs a function op by op, compiling each op at each new shape. A
formulation of dozens of small ops (the sub-pixel transposed convolution of
``_conv_subpixel.py``, the patches and depth-stacked convolutions of
``_conv_formulations.py``) then took 0.3-1.2 s at the first call of each shape, against
0.1-0.36 s as one program (the normalizations and attention: 0.27-0.9 s against
0.07-0.17 s). And a function that scans a closure made at each call (``sequence.py``'s
recurrences) compiled its scan again at every call. :func:`one_program`
runs such a function eagerly as one ``jax.jit`` program, cached per function, static
arguments and context key; traced calls (inside ``jit``, ``grad``, ``vmap``) run the
function itself.

The context key must name everything the function reads at trace time besides its
arguments (for ``"auto"`` formulations: ``_conv_formulations.auto_context()``), so that
a program traced in one context is never reused in another.

Example:
  >>> fn = lambda x, scale: x * scale
  >>> float(one_program(fn, (2.0,), None, jnp.ones(()))), _program.cache_info().currsize > 0
  (2.0, True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any

import jax


def one_program(fn: Callable[..., Any], static: tuple, context: Hashable, *arrays: Any) -> Any:
    """``fn(*arrays, *static)``; called eagerly, as one program cached per its key.

    Args:
      fn: a function of the arrays and then the static arguments; module-level (its
        identity is part of the key).
      static: hashable arguments after the arrays (shapes, strides, paddings).
      context: hashable: what ``fn`` reads from the context while it is traced.
      *arrays: the array arguments (arrays or pytrees of arrays, ``None`` leaves too);
        any tracer among their leaves runs ``fn`` directly.

    Returns:
      ``fn(*arrays, *static)``.
    """
    if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(arrays)):
        return fn(*arrays, *static)
    return _program(fn, static, context)(*arrays)


@functools.lru_cache(maxsize=256)
def _program(fn: Callable[..., Any], static: tuple, context: Hashable) -> Callable:
    """``fn`` with ``static`` bound, jitted; ``context`` only keys the cache (see above)."""
    del context  # the trace is made in the caller's context, which the key names
    return jax.jit(lambda *arrays: fn(*arrays, *static))


__all__ = ["one_program"]
