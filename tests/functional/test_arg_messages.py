"""Argument errors of the ops state the accepted forms (one spatial axis, self attention)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import nnjax
import nnjax.functional as F

KEY = jax.random.key(0)


def test_one_axis_padding_and_sizes_state_their_forms():
    params = F.conv1d_init(KEY, 2, 1, 3)
    x = jnp.ones((1, 10, 2))
    match = (
        r"^conv1d: `padding` must be 'SAME', 'VALID', a non-negative int, a 1-tuple of them "
        r"or \(\(lo, hi\),\) "
        r"of non-negative ints, got \(1, 2\); for 1 before and 2 after the sequence, pass "
        r"\(\(1, 2\),\)$"
    )
    with pytest.raises(ValueError, match=match):
        F.conv1d(params, x, padding=(1, 2))
    assert F.conv1d(params, x, padding=((1, 2),)).shape == (1, 11, 1)
    assert F.conv1d(params, x, padding=(1,)).shape == (1, 10, 1)  # one int per axis
    for two_pairs in (((1, 2), (3, 4)), [[1, 1], [0, 2]], (1, (0, 2))):  # no flat (lo, hi)
        with pytest.raises(ValueError, match=r"^conv1d: `padding` must be .*non-negative ints, "):
            F.conv1d(params, x, padding=two_pairs)
    with pytest.raises(ValueError, match=r"`padding` must be .*, got \(1, -2\)$"):
        F.conv1d(params, x, padding=(1, -2))  # no hint for what is no (lo, hi)
    with pytest.raises(ValueError, match=r"^conv1d: `stride` must be a positive int or a 1-tuple"):
        F.conv1d(params, x, stride=(1, 1))
    with pytest.raises(ValueError, match=r"^conv1d_init: `kernel_size` must be a positive int "
                                         r"or a 1-tuple of them, got \(3, 3\)$"):  # fmt: skip
        F.conv1d_init(KEY, 2, 1, (3, 3))
    with pytest.raises(ValueError, match=r"^conv2d: `padding` .*\(\(top, bottom\), \(left, "):
        F.conv2d(F.conv2d_init(KEY, 1, 1, 3), jnp.ones((1, 4, 4, 1)), padding=(1, 2, 3))


def test_self_attention_with_cross_attention_parameters_says_to_pass_context():
    params = F.multi_head_attention_init(KEY, 4, num_heads=2, kv_features=6)
    x = jnp.ones((2, 3, 4))
    match = (
        r"^multi_head_attention: `context` is None \(self attention over `x`\), but "
        r"params\['key'\]\['kernel'\] has shape \(6, 2, 2\): the parameters were built for "
        r"cross attention with kv_features=6 \(!= 4, the features of `x`\); pass `context` of "
        r"shape \(B, S, 6\)$"
    )
    with pytest.raises(nnjax.ShapeError, match=match):
        F.multi_head_attention(params, x)
    # an `x` that the query projection does not take is named as before
    with pytest.raises(nnjax.ShapeError, match=r"argument `x` has shape \(2, 3, 5\)"):
        F.multi_head_attention(params, jnp.ones((2, 3, 5)))
