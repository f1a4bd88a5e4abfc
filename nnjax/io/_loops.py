"""Orbax's event loops finish their pending reads before they close (private).

The cause of the "Event loop is closed" tracebacks after a failed checkpoint read:
Orbax (0.12) runs each call on a fresh asyncio loop and closes that loop once the call
returns (``run_until_complete``, then ``close``), without cancelling what is still
pending, as ``asyncio.run`` would. When one read fails (a damaged, truncated or
missing array file), ``asyncio.gather`` returns that first error at once while the
other TensorStore reads are still in flight. As each of them later completes,
TensorStore wakes its asyncio future with ``loop.call_soon_threadsafe`` on the closed
loop, which raises ``RuntimeError: Event loop is closed``, printed through
``sys.unraisablehook`` (moments later, or at interpreter exit); the reads that ended
just before the close leave futures whose errors no task retrieved, which asyncio's
logger prints when they are collected. Orbax also fails such a call inside its own
``metadata()`` and swallows the error, so not every such loop reaches nnjax.

:func:`guard` (around every Orbax call of nnjax) makes each loop created meanwhile
do what ``asyncio.run`` does before closing: cancel its pending tasks and run until
they have finished. A cancelled TensorStore await cancels its TensorStore future,
which drops its callback, so nothing wakes the loop after it closed, and every task
ends with its exception retrieved. A read that was already complete when it was
cancelled may still deliver its result, from a TensorStore thread, after the close;
such a loop drops that wake-up (``call_soon_threadsafe`` on it returns ``None`` once it
is closed), as no task can run on it any more. Nothing else is filtered: loops made
outside :func:`guard` and every other error behave as before.

Example:
  >>> import asyncio
  >>> async def forever():
  ...     await asyncio.Event().wait()
  >>> with guard():
  ...     loop = asyncio.new_event_loop()
  >>> task = loop.create_task(forever())
  >>> loop.run_until_complete(asyncio.sleep(0))
  >>> loop.close()  # as Orbax does, with `task` still pending
  >>> task.cancelled()
  True
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: The longest a closing loop waits for its cancelled tasks to finish (they take
#: moments; a task that ignores its cancellation must not hang the close).
DRAIN_S = 30.0

_lock = threading.Lock()
_depth = 0
_patched: list[tuple[Any, Any]] = []  # (policy, its own `new_event_loop` before, if any)
_MISSING = object()


def _policy() -> Any:
    """The current event loop policy (without the deprecation warning of Python 3.14)."""
    get = getattr(asyncio.events, "_get_event_loop_policy", asyncio.get_event_loop_policy)
    return get()


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancels ``loop``'s pending tasks and runs it until they finish (or :data:`DRAIN_S`)."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()

    async def finished() -> None:
        if pending:
            await asyncio.wait(pending, timeout=DRAIN_S)
        for task in pending:  # mark their errors retrieved: the call already failed
            if task.done() and not task.cancelled():
                task.exception()

    loop.run_until_complete(finished())


def _finishing(loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    """``loop``: ``close`` first finishes its pending tasks; a later wake-up is dropped."""
    close, post = loop.close, loop.call_soon_threadsafe

    def finish_then_close() -> None:
        if not loop.is_closed() and not loop.is_running():
            with contextlib.suppress(Exception):  # closing must close
                _finish(loop)
        close()

    def post_unless_closed(callback: Callable[..., object], *args: Any, context: Any = None) -> Any:
        try:
            return post(callback, *args, context=context)
        except RuntimeError:
            if loop.is_closed():  # nothing can run on it any more: nothing to wake
                return None
            raise

    loop.close = finish_then_close  # type: ignore[method-assign]
    loop.call_soon_threadsafe = post_unless_closed  # type: ignore[method-assign,assignment]
    return loop


def _enter() -> None:
    """Makes the policy's new loops finish their tasks on close (first of nested guards)."""
    global _depth
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        policy = _policy()
        before = vars(policy).get("new_event_loop", _MISSING)
        make: Callable[[], asyncio.AbstractEventLoop] = policy.new_event_loop
        try:
            policy.new_event_loop = lambda: _finishing(make())
        except AttributeError:  # a policy with __slots__: its loops close as before
            return
        _patched.append((policy, before))


def _leave() -> None:
    """Undoes :func:`_enter` once the last guard ends."""
    global _depth
    with _lock:
        _depth -= 1
        if _depth > 0 or not _patched:
            return
        policy, before = _patched.pop()
        if before is _MISSING:
            del policy.new_event_loop
        else:
            policy.new_event_loop = before


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Around Orbax calls: the loops they create finish their pending reads on close."""
    _enter()
    try:
        yield
    finally:
        _leave()
