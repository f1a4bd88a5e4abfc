"""Ctrl-C inside ``fit`` at random instants: the model never holds deleted arrays."""

import _thread
import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax
import numpy as np
import pytest
from flax import nnx

from nnjax.train.callbacks import Callback
from nnjax.train.interrupts import deferred_interrupt, held_interrupts
from nnjax.train.loop import fit
from tests.train._data import blobs, leaves, mlp


@pytest.fixture(autouse=True)
def _python_s_own_handler():
    """Python's SIGINT handler, as in a terminal: a run started in the background (``&``)
    inherits SIGINT ignored, and a held Ctrl-C is then ignored too, as it should be."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_interrupt_inside_the_block_is_raised_at_its_end():
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            _thread.interrupt_main()
            time.sleep(0.05)  # the handler runs here, in the main thread: it must hold
            reached_end = True
    assert reached_end


def test_no_interrupt_means_no_effect_and_handler_restored():
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_the_blocks_own_error_wins_and_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError, match="boom"):
        with deferred_interrupt():
            _thread.interrupt_main()
            time.sleep(0.05)
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGINT) is before


def test_a_custom_handler_gets_the_deferred_signal():
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with deferred_interrupt():
            _thread.interrupt_main()
            time.sleep(0.05)
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_held_interrupt_waits_for_deliver_and_a_second_one_does_not():
    before = signal.getsignal(signal.SIGINT)
    with held_interrupts() as deliver:
        signal.raise_signal(signal.SIGINT)
        total = sum(range(100))  # the handler has run: nothing raised
        with pytest.raises(KeyboardInterrupt):
            deliver()
        deliver()  # nothing held any more
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # pressed again: at once
            sum(range(100))
    assert total == 4950 and signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            signal.raise_signal(signal.SIGINT)
            total = sum(range(10))  # held to the block's end
    assert total == 45 and signal.getsignal(signal.SIGINT) is before


def test_a_nested_held_block_shares_the_outer_holder():
    before = signal.getsignal(signal.SIGINT)
    with held_interrupts() as outer:
        signal.raise_signal(signal.SIGINT)  # held by the outer block
        sum(range(100))
        with held_interrupts() as inner:
            assert signal.getsignal(signal.SIGINT) is not before
            with pytest.raises(KeyboardInterrupt):
                inner()  # the outer block's signal, delivered at the inner safe point
        outer()  # nothing held any more
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_it_does_nothing():
    seen = []

    def body():
        with deferred_interrupt():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(10)
    assert seen == [signal.getsignal(signal.SIGINT)]


def _usable(model, x):
    for leaf in jax.tree.leaves(nnx.state(model)):
        if isinstance(leaf, jax.Array):
            assert not leaf.is_deleted()
    out = np.asarray(model(x[:4]))
    assert out.shape == (4, 3)


@pytest.mark.slow
def test_ctrl_c_at_random_instants_leaves_the_model_usable():
    """Many interrupts from a timer thread; after each, predict and fit still work."""
    x, y = blobs(n=512)
    model = mlp()
    kw = dict(loss="cross_entropy", batch_size=16, verbose=0, steps_per_dispatch=1)
    fit(model, (x, y), epochs=1, **kw)  # compiled once: later runs dispatch at once
    rng = random.Random(0)
    interrupted = 0
    for _ in range(25):
        timer = threading.Timer(rng.uniform(0.0, 0.15), _thread.interrupt_main)
        try:  # started inside: on a loaded machine the main thread can still be in
            timer.start()  # start() (waiting for the GIL) when the timer fires
            fit(model, (x, y), epochs=10_000, **kw)
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            timer.join()
        _usable(model, x)
    assert interrupted == 25
    history = fit(model, (x, y), epochs=1, **kw)
    assert np.isfinite(history.history["loss"][0])


_COMPILE_SCRIPT = textwrap.dedent(
    """
    import os, random, signal, sys, threading
    import numpy as np
    from flax import nnx
    from nnjax.nn import MLP
    from nnjax.train.loop import fit
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = MLP(4, (64, 64), 2, rngs=nnx.Rngs(0))
    delay = float(sys.argv[1])
    try:  # the timer started inside: a loaded machine may delay start()'s return
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
        fit(model, (x, y), loss="cross_entropy", epochs=100_000, verbose=0)
    except KeyboardInterrupt:
        print("interrupted", model(x[:2]).shape)
        sys.exit(3)
    """
)


@pytest.mark.slow  # several fresh processes, each compiling the step; runs in CI's slow step
def test_real_sigint_during_compilation_never_crashes(tmp_path):
    script = tmp_path / "compile_interrupt.py"
    script.write_text(_COMPILE_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    for delay in (0.2, 0.6, 1.0, 1.5):
        done = subprocess.run(
            [sys.executable, str(script), str(delay)],
            capture_output=True, text=True, timeout=240, env=env, cwd=root,
        )  # fmt: skip
        assert done.returncode == 3, (delay, done.returncode, done.stderr[-2000:])
        assert "interrupted (2, 2)" in done.stdout


def _ctrl_c_in_a_gc_callback(hook):
    """Trains 20 epochs with a callback whose ``hook`` runs a collection once; a ``gc``
    callback raises SIGINT inside it (its handler runs there). Asserts the run raised
    KeyboardInterrupt; returns the model and its parameters from before the run."""
    x, y = blobs(n=64)
    model = mlp()
    kw = dict(loss="cross_entropy", batch_size=16, verbose=0, steps_per_dispatch=1)
    fit(model, (x, y), epochs=1, **kw)
    before = leaves(model)
    fired, armed = [], []

    def in_gc(phase, info):
        if phase == "start" and armed and not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGINT)  # the handler runs in this callback

    def collect(self, *args, **kwargs):
        if not fired:
            armed.append(1)
            gc.collect()

    callback = type("Collect", (Callback,), {hook: collect})()
    gc.callbacks.append(in_gc)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(model, (x, y), epochs=20, callbacks=[callback], **kw)
    finally:
        gc.callbacks.remove(in_gc)
    assert fired
    _usable(model, x)
    return model, before


@pytest.mark.slow
def test_an_interrupt_inside_a_gc_callback_is_not_lost():
    """Python prints and ignores a KeyboardInterrupt raised in a ``gc`` callback (JAX has
    one, ``_xla_gc_callback``: jax-ml/jax#18246), so a Ctrl-C landing there was lost."""
    _ctrl_c_in_a_gc_callback("on_dispatch_end")  # inside the epoch loop


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_an_interrupt_inside_a_gc_callback_during_fits_setup_is_not_lost():
    """The same collection in ``fit``'s setup (a callback's ``on_train_begin``): the
    Ctrl-C is held and raised where the epoch loop starts, before any epoch trains."""
    model, before = _ctrl_c_in_a_gc_callback("on_train_begin")
    for a, b in zip(leaves(model), before, strict=True):
        np.testing.assert_array_equal(a, b)  # no epoch trained
