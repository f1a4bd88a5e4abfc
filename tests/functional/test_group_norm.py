"""Tests for group_norm, instance_norm and rms_norm: PyTorch reference, transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms

TF = torch.nn.functional
EPS = 1e-3


def _first(t):
    """Channels-last ``(B, ..., C)`` -> channels-first ``(B, C, ...)``."""
    return t.movedim(-1, 1)


def _last(t):
    return t.movedim(1, -1)


def _params(c, seed=1):
    return {"scale": rand((c,), seed), "bias": rand((c,), seed + 1)}


@pytest.mark.parametrize(
    ("shape", "groups"), [((3, 5, 6), 3), ((2, 3, 4, 6), 2), ((2, 2, 3, 2, 4), 4), ((4, 6), 1)]
)
def test_group_norm_matches_torch(shape, groups):
    x = 2.0 + 3.0 * rand(shape, 0)

    def torch_fn(p, x):
        y = TF.group_norm(_first(x), groups, p["scale"], p["bias"], eps=EPS)
        return _last(y)

    fn = lambda p, x: F.group_norm(p, x, num_groups=groups, epsilon=EPS)
    assert_matches_torch(fn, torch_fn, (_params(shape[-1]), x))


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 4, 2), (2, 2, 3, 2, 3)])
def test_instance_norm_matches_torch(shape):
    x = 1.0 + 2.0 * rand(shape, 0)

    def torch_fn(p, x):
        y = TF.instance_norm(_first(x), weight=p["scale"], bias=p["bias"], eps=EPS)
        return _last(y)

    fn = lambda p, x: F.instance_norm(p, x, epsilon=EPS)
    assert_matches_torch(fn, torch_fn, (_params(shape[-1]), x))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_rms_norm_matches_torch(shape):
    x = 0.5 + rand(shape, 0)
    torch_fn = lambda p, x: TF.rms_norm(x, (shape[-1],), p["scale"], eps=EPS)
    fn = lambda p, x: F.rms_norm(p, x, epsilon=EPS)
    assert_matches_torch(fn, torch_fn, ({"scale": rand((shape[-1],), 1)}, x))


def test_init_structures(key):
    assert jax.tree.map(jnp.shape, F.group_norm_init(key, 4)) == {"scale": (4,), "bias": (4,)}
    assert jax.tree.map(jnp.shape, F.instance_norm_init(key, 3)) == {"scale": (3,), "bias": (3,)}
    params = F.rms_norm_init(key, 5, dtype=jnp.bfloat16)
    assert set(params) == {"scale"} and params["scale"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(params["scale"], np.ones(5))


def test_one_group_normalises_each_example_over_everything():
    x = rand((2, 3, 4), 0)
    y = F.group_norm(F.group_norm_init(None, 4), x, num_groups=1, epsilon=1e-12)
    np.testing.assert_allclose(y.reshape(2, -1).mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.reshape(2, -1).std(axis=1), 1.0, rtol=1e-4, atol=1e-4)


def test_check_grads():
    x = rand((2, 3, 4), 0)
    p = _params(4)
    with jax.enable_x64(True):
        check_grads(jax.jit(lambda p, x: F.group_norm(p, x, num_groups=2)), (p, x), order=1)
        check_grads(jax.jit(F.instance_norm), (p, x), order=1)
        check_grads(jax.jit(F.rms_norm), ({"scale": p["scale"]}, x), order=1)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("op", ["group_norm", "instance_norm", "rms_norm"])
def test_jit_vmap_grad_float32_bfloat16(key, op):
    x = jax.random.normal(key, (2, 3, 4))
    p = {"scale": jnp.linspace(0.5, 1.5, 4), "bias": jnp.linspace(-1.0, 1.0, 4)}
    if op == "rms_norm":
        p = {"scale": p["scale"]}
    kwargs = {"num_groups": 2} if op == "group_norm" else {}
    assert_transforms(lambda p, x: getattr(F, op)(p, x, **kwargs), p, x)


def test_bfloat16_statistics_are_accurate():
    xb = jnp.asarray(100.0 + 4.0 * rand((2, 64, 4), 0), jnp.bfloat16)
    p = F.group_norm_init(None, 4)
    y = F.group_norm(p, xb, num_groups=2)
    ref = F.group_norm(p, xb.astype(jnp.float32), num_groups=2)  # same rounded input
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, atol=0.1)


def test_errors_name_op_and_argument():
    p = F.group_norm_init(None, 6)
    with pytest.raises(ValueError, match=r"group_norm: `num_groups`=4 does not divide the 6"):
        F.group_norm(p, jnp.ones((2, 3, 6)), num_groups=4)
    with pytest.raises(ValueError, match=r"group_norm: `num_groups` must be a positive int"):
        F.group_norm(p, jnp.ones((2, 3, 6)), num_groups=0)
    with pytest.raises(
        AssertionError,
        match=r"group_norm: argument `x` has shape \(2, 3, 4\), expected \(\.\.\., 6\)",
    ):
        F.group_norm(p, jnp.ones((2, 3, 4)), num_groups=2)
    with pytest.raises(AssertionError, match=r"group_norm: argument `params\['bias'\]`"):
        F.group_norm({**p, "bias": jnp.ones(4)}, jnp.ones((2, 3, 6)), num_groups=2)
    with pytest.raises(AssertionError, match=r"instance_norm: argument `x` has shape \(2, 6\)"):
        F.instance_norm(p, jnp.ones((2, 6)))
    with pytest.raises(
        AssertionError,
        match=r"rms_norm: argument `x` has shape \(2, 4\), expected \(\.\.\., 3\)",
    ):
        F.rms_norm({"scale": jnp.ones(3)}, jnp.ones((2, 4)))
    with pytest.raises(TypeError, match="rms_norm: argument `x` has dtype int32"):
        F.rms_norm({"scale": jnp.ones(3)}, jnp.ones((2, 3), jnp.int32))


def test_channels_first_input_blames_x_also_under_jit():
    p = F.group_norm_init(None, 6)
    fn = jax.jit(F.group_norm, static_argnames="num_groups")
    with pytest.raises(AssertionError, match=r"group_norm: argument `x` has shape \(2, 6, 4, 4\)"):
        fn(p, jnp.ones((2, 6, 4, 4)), num_groups=2)
    x = rand((2, 4, 4, 6), 0)
    np.testing.assert_allclose(
        fn(p, x, num_groups=2), F.group_norm(p, x, num_groups=2), rtol=1e-6, atol=1e-6
    )


def test_traced_num_groups_says_to_mark_it_static():
    p = F.group_norm_init(None, 4)
    with pytest.raises(ValueError, match=r"group_norm: `num_groups`.*traced.*static_argnames="):
        jax.jit(F.group_norm)(p, jnp.ones((2, 3, 4)), num_groups=2)
    y = F.group_norm(p, rand((2, 3, 4), 0), num_groups=np.int64(2))  # a NumPy int is an int
    assert y.shape == (2, 3, 4)


@pytest.mark.parametrize("op", ["group_norm", "instance_norm", "rms_norm"])
@pytest.mark.parametrize("epsilon", [0.0, -1.0])
def test_epsilon_must_be_positive(op, epsilon):
    params = getattr(F, f"{op}_init")(None, 4)
    kw = {"num_groups": 2} if op == "group_norm" else {}
    with pytest.raises(ValueError, match=rf"{op}: `epsilon` must be > 0, got {epsilon}"):
        getattr(F, op)(params, jnp.ones((2, 3, 4)), epsilon=epsilon, **kw)


@pytest.mark.parametrize("op", ["group_norm_init", "instance_norm_init", "rms_norm_init"])
@pytest.mark.parametrize("bad", [0, -3, 4.0, False])
def test_inits_check_num_features(op, bad):
    with pytest.raises(ValueError, match=rf"{op}: `num_features` must be a positive int"):
        getattr(F, op)(None, bad)
    assert getattr(F, op)(None, np.int64(2))["scale"].shape == (2,)
