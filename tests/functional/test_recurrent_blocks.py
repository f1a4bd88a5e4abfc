"""The LSTM's per-step matmul in gate-aligned column blocks on Eigen's matmuls.

In a program of ``_conv_compiler.jit`` with ``eigen_dots`` (``fit``'s float32 LSTM step
on the CPU), a forward per-step matmul of at most 4x ``EIGEN_ONE_THREAD_MACS``
multiply-adds (per device) runs as 2 or 4 column blocks; the results are the whole
matmul's.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType

import nnjax.functional as F
from nnjax.functional import _conv_compiler, _lstm_scan
from nnjax.functional.recurrent import lstm_cell_init

from ._backend import requires_library_programs


def _blocks(rows: int) -> int:
    """``column_blocks`` of the benchmark classifier's matmul (in 16, H 128) on Eigen."""
    with _conv_compiler.library_convolutions(), _conv_compiler.eigen_matmuls():
        return _lstm_scan.column_blocks(rows, 144, 512, 4)


def test_column_blocks_follow_the_size_of_the_matmul():
    assert [_blocks(rows) for rows in (8, 16, 17, 32, 33, 48, 64, 65, 66, 128)] == [
        1, 1, 2, 2, 4, 4, 4, 4, 1, 1,
    ]  # fmt: skip
    assert _lstm_scan.column_blocks(32, 144, 512, 4) == 1  # outside Eigen's programs
    with _conv_compiler.library_convolutions():  # YNNPACK's matmuls: synchronous
        assert _lstm_scan.column_blocks(32, 144, 512, 4) == 1


@pytest.mark.devices(2)
def test_column_blocks_count_the_rows_of_one_device():
    mesh = jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Auto,))
    with jax.set_mesh(mesh):  # fit's context: the batch split over the mesh
        assert [_blocks(rows) for rows in (32, 64, 128, 256)] == [1, 2, 4, 1]


@requires_library_programs
@pytest.mark.parametrize("reverse", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_lstm_in_blocks_computes_what_the_whole_matmul_does(key, monkeypatch, reverse):
    params = lstm_cell_init(key, 16, 128)
    xs = jax.random.normal(jax.random.key(1), (32, 5, 16))
    lengths = jnp.array([5, 2, 4, 5] * 8)

    def loss(p, xs):
        last, ys = F.lstm(p, xs, lengths=lengths, reverse=reverse)
        return jnp.sum(ys**2) + jnp.sum(last.h * last.c)

    def program():
        step = _conv_compiler.jit(jax.value_and_grad(loss, argnums=(0, 1)), eigen_dots=True)
        dots = re.findall(
            r"= f32\[32,(\d+)\]\{1,0\} dot\(", step.lower(params, xs).compile().as_text()
        )
        return step(params, xs), dots

    got, dots = program()
    assert dots.count("256") == 2 and "512" not in dots  # the forward's two blocks
    monkeypatch.setattr(_lstm_scan, "EIGEN_ONE_THREAD_MACS", 0)  # the whole matmul
    want, dots = program()
    assert "256" not in dots and "512" in dots
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        # float32 sums in another order (the blocks run on one thread, the whole on two)
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5 * scale)
