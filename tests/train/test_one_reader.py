"""Tests for nnjax.train.one_reader: a generator left mid-read by a stopped fit."""

import itertools
import threading
import time

import numpy as np
import pytest

from nnjax.train import one_reader
from nnjax.train.callbacks import Callback
from nnjax.train.loop import fit
from nnjax.train.one_reader import one_at_a_time
from tests.train._data import blobs, mlp


def test_two_threads_reading_one_generator_take_turns():
    def slow():
        for i in range(6):
            time.sleep(0.01)
            yield i

    gen, seen, errors = slow(), [], []

    def read():
        try:
            seen.extend(one_at_a_time(gen))
        except ValueError as err:  # "generator already executing" without the lock
            errors.append(err)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == [] and sorted(seen) == list(range(6))


def test_builtin_iterators_pass_through_and_nothing_is_kept_after():
    # Only this test's iterators are looked at: a wrapper another test's failed fit left
    # in a reference cycle (its traceback) stays registered until the collector runs.
    counter = itertools.islice(itertools.count(), 3)
    assert list(one_at_a_time(counter)) == [0, 1, 2]
    assert id(counter) not in one_reader._READERS
    gen = (i for i in range(5))
    first, second = one_at_a_time(gen), one_at_a_time(gen)
    assert (next(first), next(second)) == (0, 1)
    assert one_reader._READERS[id(gen)][2] == 2  # one entry, shared by both wrappers
    del first, second
    assert id(gen) not in one_reader._READERS


class _FailAfterFirstDispatch(Callback):
    raised_at = 0.0

    def on_dispatch_end(self, step, batch):
        self.raised_at = time.perf_counter()
        raise RuntimeError("stop here")


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_second_fit_reads_a_generator_a_stopped_fit_left_mid_read(wrapped):
    x, y = blobs(64)
    reads = []

    def endless():
        for i in itertools.count():
            if i == 3:
                time.sleep(5)  # the prefetch thread is inside this read when fit stops
            reads.append(i)
            j = (i % 4) * 16
            yield x[j : j + 16], y[j : j + 16]

    gen = map(tuple, endless()) if wrapped else endless()  # a built-in over a generator
    model, fail = mlp(), _FailAfterFirstDispatch()
    with pytest.raises(RuntimeError, match="stop here"):
        fit(
            model, gen, loss="cross_entropy", epochs=2, steps_per_epoch=8, verbose=0,
            steps_per_dispatch=1, callbacks=[fail],
        )  # fmt: skip
    assert time.perf_counter() - fail.raised_at < 2.5  # not held until the slow read ends
    history = fit(
        model, gen, loss="cross_entropy", epochs=1, steps_per_epoch=4, verbose=0,
        steps_per_dispatch=1,
    )  # fmt: skip
    assert np.isfinite(history.history["loss"][0])  # before: "generator already executing"
    assert 3 in reads  # the stopped run's slow read ended before this run's reads
