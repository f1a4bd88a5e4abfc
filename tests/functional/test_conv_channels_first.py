"""Channels-first (PyTorch's NCHW) inputs to the channels-last convolutions are named so.

The audit's beginner passed ``(B, 1, 28, 28)`` to ``F.conv2d`` and read only
``expected (*, *, *, 1)``; the message now says nnjax is channels-last and gives the
transpose, for 1-D, 2-D and 3-D alike.
"""

import functools
import re

import jax
import jax.numpy as jnp
import pytest

import nnjax
import nnjax.functional as F
from nnjax.functional._conv_args import looks_channels_first

HINT = "nnjax is channels-last (NHWC for 2-D; (B, *spatial, C) in general): "


def _raises(op, params, x, message):
    for call in (op, jax.jit(op)):  # the shape is static: the same message under jit
        with pytest.raises(nnjax.ShapeError, match=re.escape(message)):
            call(params, x)


@pytest.mark.parametrize(
    "op, init, x_shape, order",
    [
        (F.conv1d, F.conv1d_init, (2, 3, 10), "(0, 2, 1)"),
        (F.conv2d, F.conv2d_init, (2, 1, 28, 28), "(0, 2, 3, 1)"),
        (F.conv3d, F.conv3d_init, (2, 3, 6, 7, 8), "(0, 2, 3, 4, 1)"),
    ],
)
def test_axis_one_holding_the_kernels_channels_gets_the_hint(key, op, init, x_shape, order):
    nd = len(x_shape) - 2
    params = init(key, x_shape[1], 8, 3)
    expected = f"expected ({'*, ' * (nd + 1)}{x_shape[1]}); "
    message = f"{op.__name__}: argument `x` has shape {x_shape}, {expected}{HINT}x.transpose{order}"
    _raises(op, params, jnp.zeros(x_shape), message)


def test_grouped_kernels_count_all_input_channels(key):
    params = F.conv2d_init(key, 6, 8, 3, feature_group_count=2)  # kernel (3, 3, 3, 8)
    op = functools.partial(F.conv2d, feature_group_count=2)
    _raises(op, params, jnp.zeros((2, 6, 9, 9)), "expected (*, *, *, 6); " + HINT)


def test_an_image_that_looks_channels_first_gets_the_hint(key):
    params = F.conv2d_init(key, 16, 8, 3)  # RGB images of 32x32, channels-first
    _raises(F.conv2d, params, jnp.zeros((2, 3, 32, 32)), "(*, *, *, 16); " + HINT)


@pytest.mark.parametrize(
    "x_shape",
    [(2, 5, 5, 2), (2, 3, 32, 31), (2, 5, 32, 32)],  # channels-last, not square, C of 5
)
def test_a_plain_channel_mismatch_gets_no_hint(key, x_shape):
    params = F.conv2d_init(key, 16, 8, 3)
    with pytest.raises(nnjax.ShapeError, match=r"expected \(\*, \*, \*, 16\)$"):
        F.conv2d(params, jnp.zeros(x_shape))


def test_a_short_sequence_does_not_look_channels_first(key):
    params = F.conv1d_init(key, 16, 8, 3)  # (B, T=3, C=100): as likely as channels-first
    with pytest.raises(nnjax.ShapeError, match=r"expected \(\*, \*, 16\)$"):
        F.conv1d(params, jnp.zeros((2, 3, 100)))


def test_the_rule_is_the_cnn_warnings():
    assert looks_channels_first((1, 28, 28)) and looks_channels_first((4, 8, 8, 8))
    assert not looks_channels_first((28, 28, 1))
    assert not looks_channels_first((2, 28, 28))  # C of 1, 3 or 4 only
    assert not looks_channels_first((3, 4, 4))  # sizes above 4 only
    assert not looks_channels_first((3, 28))  # one spatial axis: never
