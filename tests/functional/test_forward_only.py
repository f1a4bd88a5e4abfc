"""F.forward_only: "auto" picks XLA's convolution and reduce_window pooling, forward only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from tests._lazy import made_once


# the input and the convolution's parameters, made when a test first asks (at import,
# they compiled programs in every test process's collection)
@made_once
def _x() -> jax.Array:
    return jnp.asarray(np.random.default_rng(0).normal(size=(4, 12, 12, 3)), jnp.float32)


@made_once
def _params() -> dict[str, jax.Array]:
    return F.conv2d_init(jax.random.key(0), 3, 8, 3)


def _primitives(fn, *args):
    """The jaxpr's text (nested jaxprs included), to look for primitive names."""
    return str(jax.make_jaxpr(fn)(*args))


def _model(x):
    return F.max_pool2d(F.conv2d(_params(), x), 2)


def _forward_only(x):
    with F.forward_only():
        return _model(x)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU picks differ from it")
def test_auto_picks_the_training_formulations_outside_and_the_forward_ones_inside():
    outside = _primitives(_model, _x())
    inside = _primitives(_forward_only, _x())
    assert "conv_general_dilated" not in outside and "reduce_window" not in outside
    assert "conv_general_dilated" in inside and "reduce_window" in inside
    np.testing.assert_allclose(_forward_only(_x()), _model(_x()), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU picks differ from it")
def test_a_depthwise_convolution_keeps_its_taps_forward_only():
    params = F.conv2d_init(jax.random.key(1), 3, 6, 3, feature_group_count=3)

    def depthwise(x):
        with F.forward_only():
            return F.conv2d(params, x, feature_group_count=3)

    assert "conv_general_dilated" not in _primitives(depthwise, _x())
    expected = F.conv2d(params, _x(), feature_group_count=3, formulation="xla")
    np.testing.assert_allclose(depthwise(_x()), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU picks differ from it")
def test_an_ungrouped_3d_convolution_is_depth_stacked_planes_forward_only():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 5, 6, 6, 3)), jnp.float32)
    params = F.conv3d_init(jax.random.key(2), 3, 4, 3)

    def forward(x):
        with F.forward_only():
            return F.conv3d(params, x, stride=(2, 1, 1))

    prims = _primitives(forward, x)
    assert "conv_general_dilated" in prims and "concatenate" in prims  # 2-D, planes stacked
    expected = F.conv3d(params, x, stride=(2, 1, 1), formulation="xla")
    np.testing.assert_allclose(forward(x), expected, rtol=1e-5, atol=1e-5)
    assert "f32[3,3,9,4]" in prims  # the kernel seen as (kh, kw, kd * in, out)


def test_explicit_formulations_and_their_contexts_still_win():
    def explicit(x):
        with F.forward_only():
            return F.max_pool2d(F.conv2d(_params(), x, formulation="patches"), 2,
                                formulation="reshape")  # fmt: skip

    def by_context(x):
        with F.forward_only(), F.conv_formulation("patches"), F.pool_formulation("reshape"):
            return _model(x)

    for fn in (explicit, by_context):
        prims = _primitives(fn, _x())
        assert "conv_general_dilated" not in prims and "reduce_window" not in prims


@pytest.mark.slow
def test_the_forward_picks_are_still_differentiable_and_correct():
    def loss(p, with_context):
        y = F.conv2d(p, _x())
        if with_context:
            with F.forward_only():
                y = F.conv2d(p, _x())
        return jnp.sum(F.max_pool2d(y, 2) ** 2)

    a = jax.grad(loss)(_params(), False)
    b = jax.grad(loss)(_params(), True)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-4)
