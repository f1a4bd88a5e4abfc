"""``unroll`` of the sequence ops must be a positive Python int, or ``None`` (per backend).

It used to go straight to ``lax.scan``, which reads ``True`` as "unroll every step" and
``False`` as 1, and whose own errors (for 0, a float, a string) name neither the op nor
the argument.
"""

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import sequence
from tests._lazy import made_once

B, T, IN, H = 2, 5, 3, 4


class _Inputs(NamedTuple):
    key: jax.Array
    xs: jax.Array
    lstm: dict
    gru: dict
    elman: dict


@made_once
def _inputs() -> _Inputs:
    """The key, the sequence and the cells' parameters, made when a test first needs them
    (at import, they compiled about 30 programs in every test process's collection)."""
    key = jax.random.key(0)
    return _Inputs(
        key=key,
        xs=jax.random.normal(jax.random.key(1), (B, T, IN)),
        lstm=F.lstm_cell_init(key, IN, H),
        gru=F.gru_cell_init(key, IN, H),
        elman=F.rnn_cell_init(key, IN, H),
    )


# op name -> run(unroll); each returns (final state, ys)
OPS = {
    "rnn": lambda unroll: F.rnn(F.rnn_cell, _inputs().elman, _inputs().xs, unroll=unroll),
    "lstm": lambda unroll: F.lstm(_inputs().lstm, _inputs().xs, unroll=unroll),
    "gru": lambda unroll: F.gru(_inputs().gru, _inputs().xs, unroll=unroll),
    "bidirectional": lambda unroll: F.bidirectional(
        F.gru_cell,
        F.bidirectional_init(_inputs().key, F.gru_cell_init, IN, H),
        _inputs().xs,
        unroll=unroll,
    ),
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("unroll", [True, False, np.bool_(True), 0, -2, 2.0, "2"])
def test_a_bad_unroll_is_named(op, unroll):
    with pytest.raises(ValueError, match=rf"^{op}: `unroll` must be a positive int, got "):
        OPS[op](unroll)
    try:
        OPS[op](unroll)
    except ValueError as err:
        assert str(err).endswith(repr(unroll))


def test_rnn_with_a_custom_cell_checks_unroll_too():
    def cell(params, h, x):
        h = jnp.tanh(x @ params + h)
        return h, h

    with pytest.raises(ValueError, match=r"^rnn: `unroll` must be a positive int, got True$"):
        F.rnn(cell, jnp.ones((IN, H)), _inputs().xs, jnp.zeros((B, H)), unroll=True)


@pytest.mark.parametrize("op", list(OPS))
def test_a_traced_unroll_says_to_mark_it_static(op):
    with pytest.raises(ValueError, match=rf"^{op}: `unroll` .*traced.*static_argnames='unroll'"):
        jax.jit(OPS[op])(2)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("unroll", [2, np.int64(3), T, 2 * T])
def test_positive_ints_give_the_rolled_result(op, unroll):
    expected = OPS[op](1)
    got = OPS[op](unroll)
    for want, have in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(have, want, atol=1e-6)


def test_the_default_unroll_is_measured_per_backend():
    """4 on GPU (measured on an H200), 1 on CPU and TPU; ``None`` reads the current one."""
    assert sequence._default_unroll("gpu") == 4
    assert sequence._default_unroll("cpu") == sequence._default_unroll("tpu") == 1
    assert sequence._default_unroll() == sequence._default_unroll(jax.default_backend())


@pytest.mark.parametrize("op", list(OPS))
def test_none_unrolls_as_the_backend_default(op):
    """``unroll=None`` (the default) lowers to a scan unrolled by ``_default_unroll()``."""
    text = str(jax.make_jaxpr(lambda: OPS[op](None))())  # nested jaxprs included
    unrolls = {int(n) for n in re.findall(r"\bunroll=(\d+)", text)}
    assert unrolls == {sequence._default_unroll()}
    for want, have in zip(jax.tree.leaves(OPS[op](1)), jax.tree.leaves(OPS[op](None)), strict=True):
        np.testing.assert_allclose(have, want, atol=1e-6)
