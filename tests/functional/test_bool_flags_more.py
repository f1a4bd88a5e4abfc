"""The recurrences' on/off arguments must be static bools: a string such as "no" is truthy.

Before these checks ``reverse="no"`` ran the sequence backwards, ``precompute_inputs="no"``
projected the inputs before the scan, and ``reverse=None`` ran it forwards, silently.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import sequence
from tests._lazy import made_once


class _Inputs(NamedTuple):
    xs: jax.Array
    lstm: dict
    gru: dict
    rnn: dict
    bi: dict


@made_once
def _inputs() -> _Inputs:
    """The sequence and the cells' parameters, made once when a test first needs them
    (at import, they compiled about 30 programs in every test process's collection)."""
    key = jax.random.key(0)
    return _Inputs(
        xs=jax.random.normal(jax.random.key(1), (2, 5, 3)),
        lstm=F.lstm_cell_init(key, 3, 4),
        gru=F.gru_cell_init(key, 3, 4),
        rnn=F.rnn_cell_init(key, 3, 4),
        bi=F.bidirectional_init(key, F.gru_cell_init, 3, 4),
    )


# op name -> fn(**flags) running the op on the sequence
OPS = {
    "rnn": lambda **kw: F.rnn(F.rnn_cell, _inputs().rnn, _inputs().xs, **kw),
    "lstm": lambda **kw: F.lstm(_inputs().lstm, _inputs().xs, **kw),
    "gru": lambda **kw: F.gru(_inputs().gru, _inputs().xs, **kw),
}
BIDIRECTIONAL = lambda **kw: F.bidirectional(F.gru_cell, _inputs().bi, _inputs().xs, **kw)

CASES = {
    **{
        f"{op}: `{flag}`": (fn, flag)
        for op, fn in OPS.items()
        for flag in ("reverse", "precompute_inputs")
    },
    "bidirectional: `precompute_inputs`": (BIDIRECTIONAL, "precompute_inputs"),
}


@pytest.mark.parametrize("where", list(CASES))
@pytest.mark.parametrize("value", ["no", 1, 0.0, jnp.array(True)])
def test_a_flag_that_is_not_a_bool_is_named(where, value):
    fn, flag = CASES[where]
    with pytest.raises(TypeError, match=rf"^{where} must be a Python bool \(True or False\)"):
        fn(**{flag: value})


@pytest.mark.parametrize("op", list(OPS))
def test_reverse_none_is_refused(op):
    """``None`` was falsy: it ran forwards; only ``precompute_inputs`` takes ``None``."""
    with pytest.raises(TypeError, match=rf"^{op}: `reverse` must be a Python bool .*, got None$"):
        OPS[op](reverse=None)


@pytest.mark.parametrize("where", list(CASES))
def test_python_and_numpy_bools_work_alike(where):
    fn, flag = CASES[where]
    for value in (False, True):
        a, b = fn(**{flag: value}), fn(**{flag: np.bool_(value)})
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("where", [w for w in CASES if "precompute" in w])
def test_precompute_inputs_none_picks_the_backend_default(where):
    fn, _ = CASES[where]
    for x, y in zip(
        jax.tree.leaves(fn(precompute_inputs=None)),
        jax.tree.leaves(fn(precompute_inputs=sequence._default_precompute())),
        strict=True,
    ):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.mark.parametrize("op", list(OPS))
def test_reverse_reads_the_sequence_backwards(op):
    """``reverse=True`` on ``xs`` equals a forward run on the time-flipped ``xs``."""
    inputs = _inputs()
    fn = {
        "rnn": functools.partial(F.rnn, F.rnn_cell, inputs.rnn),
        "lstm": functools.partial(F.lstm, inputs.lstm),
        "gru": functools.partial(F.gru, inputs.gru),
    }[op]
    _, ys = fn(inputs.xs, reverse=np.bool_(True))
    _, ys_flipped = fn(inputs.xs[:, ::-1])
    np.testing.assert_allclose(ys, ys_flipped[:, ::-1], atol=1e-5)


def test_static_flags_work_under_jit():
    fn = jax.jit(F.lstm, static_argnames=("reverse", "precompute_inputs"))
    lstm, xs = _inputs().lstm, _inputs().xs
    for reverse in (False, True):
        for precompute in (None, False, True):
            got = fn(lstm, xs, reverse=reverse, precompute_inputs=precompute)
            want = F.lstm(lstm, xs, reverse=reverse, precompute_inputs=precompute)
            for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.mark.parametrize("where", list(CASES))
def test_a_traced_flag_says_to_mark_it_static(where):
    fn, flag = CASES[where]
    jitted = jax.jit(lambda value: fn(**{flag: value}))
    with pytest.raises(TypeError, match=rf"^{where} must be .*traced.*static_argnames='{flag}'"):
        jitted(True)
