"""Per-block defaults of the ops' choices (private): checked values and scoped settings.

A :func:`scoped` setting changes how the ops trace (a formulation, bfloat16 operands, a
library program), so it must also change JAX's cache keys: a ``jax.jit`` function traced
inside such a block and called again outside it (a user's jitted helper inside a model
that ``fit(precision="bfloat16")`` trains) must not reuse the block's program. Each
block therefore also sets a JAX config state (:data:`TRACE_CONTEXT`) to the settings in
force; it is part of JAX's trace context and jit key, which the caches of ``jax.jit``
(top-level calls and calls inside another trace) and ``jax.make_jaxpr`` key on. Where
this JAX lacks that state (a private API: ``jax._src.config.State`` with
``include_in_jit_key`` and ``include_in_trace_context``, in jax 0.8.1 to 0.10.2 at
least), the settings are still scoped; only the keying is lost.

Example:
  >>> import contextvars
  >>> var = contextvars.ContextVar("demo", default="auto")
  >>> with scoped(var, check_choice("demo", "fast", ("auto", "fast"))):
  ...     var.get()
  'fast'
  >>> var.get()
  'auto'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def check_choice(op: str, formulation: str, allowed: Sequence[str]) -> str:
    """Returns ``formulation`` if it is one of ``allowed``, else raises ValueError naming it."""
    if formulation not in allowed:
        choices = tuple(allowed)
        raise ValueError(f"{op}: `formulation` must be one of {choices}, got {formulation!r}")
    return formulation


def _trace_context_state() -> Any:
    """A JAX config state in JAX's trace context (cache keys), or ``None`` where unsupported."""
    try:
        from jax._src import config as jax_config

        help_text = "nnjax's scoped op settings (private; part of JAX's trace context)"
        return jax_config.State[str](
            "nnjax_scoped_settings",
            "",
            help_text,
            include_in_jit_key=True,
            include_in_trace_context=True,
        )
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other JAX versions
        return None


TRACE_CONTEXT = _trace_context_state()
"""The JAX trace-context state that :func:`scoped` sets (``None`` where JAX lacks it)."""


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar[T], value: T) -> Iterator[None]:
    """Sets ``var`` to ``value`` within the block (restored after it, also on errors).

    Also records the setting in :data:`TRACE_CONTEXT`, so that JAX's caches tell a
    function traced inside the block from the same function traced outside it.
    """
    token = var.set(value)
    try:
        if TRACE_CONTEXT is None:
            yield
        else:
            with TRACE_CONTEXT(f"{TRACE_CONTEXT.value};{var.name}={value!r}"):
                yield
    finally:
        var.reset(token)


__all__ = ["TRACE_CONTEXT", "check_choice", "scoped"]
