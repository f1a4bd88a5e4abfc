"""A failed checkpoint read prints no "Event loop is closed" tracebacks, now or at exit.

Orbax closed its event loop as soon as the first read failed, with the other reads
still in flight: they then woke that closed loop (TensorStore printed each failure
through ``sys.unraisablehook``), and asyncio's logger reported the errors of those
that ended just before the close. Now the loops of nnjax's Orbax calls finish their
pending tasks before closing (``nnjax.io._loops``); nothing is filtered, so other
unraisable exceptions still print.
"""

import asyncio
import gc
import logging
import subprocess
import sys
import textwrap
import time

import pytest
from flax import nnx

import nnjax
from nnjax import nn

HIDDEN = (8,) * 6  # 14 arrays: many reads in flight when the damaged one fails

_CHILD = textwrap.dedent(
    f"""
    import asyncio, sys
    from flax import nnx
    import nnjax
    from nnjax import nn
    for folder in sys.argv[1:]:
        for _ in range(2):
            try:
                nnjax.load_state(nn.MLP(4, {HIDDEN}, 3, rngs=nnx.Rngs(1)), folder)
            except nnjax.io.CheckpointError as err:
                print("CheckpointError:", err)
    print("--- the user's own ---", file=sys.stderr, flush=True)

    class Real:  # an unraisable error of the user's: still printed
        def __del__(self):
            raise ValueError("a real error in __del__")

    Real()
    loop = asyncio.new_event_loop()
    loop.close()

    class Late:  # a closed loop woken from Python code: still printed
        def __del__(self):
            loop.call_soon_threadsafe(print)

    Late()
    """
)


def _damaged(tmp_path):
    """Checkpoints with a deleted, a truncated and a garbled array data file."""
    folders = []
    for how in ("delete", "truncate", "garble"):
        folder = nnjax.save(nn.MLP(4, HIDDEN, 3, rngs=nnx.Rngs(0)), tmp_path / how)
        data = sorted((folder / "state" / "d").iterdir())[0]
        if how == "delete":
            data.unlink()
        elif how == "truncate":
            data.write_bytes(data.read_bytes()[:10])
        else:
            data.write_bytes(b"\0garbage" * 16)
        folders.append(str(folder))
    return folders


@pytest.mark.slow  # a fresh interpreter (imports JAX, Flax, Orbax): ~30 s on a busy CI runner
def test_a_failed_read_prints_no_event_loop_tracebacks(tmp_path):
    folders = _damaged(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *folders], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("CheckpointError: ") == 6, done.stdout
    reads, users = done.stderr.split("--- the user's own ---\n")
    assert "Traceback" not in reads and "asyncio" not in reads, done.stderr
    # late ones too (at exit), and the other unraisable errors still print: the user's,
    # and a closed loop woken from Python code
    assert "ValueError: a real error in __del__" in users, done.stderr
    assert users.count("RuntimeError: Event loop is closed") == 1, done.stderr
    assert "<function Late.__del__" in users, done.stderr


def test_the_reads_a_failed_read_leaves_in_flight_print_nothing(tmp_path, monkeypatch, caplog):
    unraisable = []
    gc.collect()  # earlier tests' garbage is theirs: only this test's is looked at
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for folder in _damaged(tmp_path):
            for _ in range(2):
                with pytest.raises(nnjax.io.CheckpointError, match="damaged array file"):
                    nnjax.load_state(nn.MLP(4, HIDDEN, 3, rngs=nnx.Rngs(1)), folder)
        time.sleep(0.5)  # the reads left in flight end
        gc.collect()
    assert [str(u.exc_value) for u in unraisable] == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_only_the_loops_made_inside_the_guard_finish_their_tasks_on_close():
    from nnjax.io import _loops

    async def forever():
        await asyncio.Event().wait()

    with _loops.guard(), _loops.guard():  # nested (and from several threads): one patch
        inside = asyncio.new_event_loop()
    outside = asyncio.new_event_loop()
    assert "close" in vars(inside) and "close" not in vars(outside)
    assert "new_event_loop" not in vars(asyncio.get_event_loop_policy())  # undone
    tasks = [loop.create_task(forever()) for loop in (inside, outside)]
    for loop in (inside, outside):
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()  # as Orbax closes them: tasks still pending
    assert tasks[0].cancelled()
    assert inside.call_soon_threadsafe(print) is None  # a late wake-up: nothing to run
    assert not tasks[1].done()  # a loop made elsewhere closes as asyncio's own
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        outside.call_soon_threadsafe(print)
