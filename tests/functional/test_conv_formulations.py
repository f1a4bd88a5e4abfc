"""Every conv formulation (XLA's conv, im2col patches) against PyTorch, and the picking rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _conv_formulations as forms
from nnjax.functional.conv import conv_formulation

from ._torch_ref import rand, to_numpy, to_torch, torch, value_and_vjp

FORMULATIONS = ("xla", "patches")
OPS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_OPS = {1: "conv1d", 2: "conv2d", 3: "conv3d"}

CASES = [
    # (spatial size, kernel, stride, padding, dilation, groups, in, out)
    ((9,), (3,), (1,), "SAME", (1,), 1, 3, 4),
    ((10,), (4,), (3,), "VALID", (2,), 1, 2, 3),
    ((7, 6), (3, 2), (2, 2), "SAME", (1, 1), 1, 3, 4),  # asymmetric SAME padding
    ((6, 7), (3, 3), (1, 2), ((1, 2), (0, 1)), (1, 1), 1, 2, 3),
    ((9, 8), (3, 2), (2, 1), "SAME", (2, 3), 1, 3, 2),
    ((8, 8), (3, 3), (1, 1), 1, (1, 1), 2, 4, 6),  # grouped
    ((7, 7), (3, 3), (2, 1), "SAME", (1, 2), 3, 3, 3),  # depthwise
    ((5, 6, 5), (2, 3, 2), (1, 2, 1), "SAME", (1, 1, 2), 1, 2, 3),
    ((6, 5, 5), (3, 1, 2), (2, 1, 1), 1, (1, 1, 1), 2, 2, 4),
]


def _explicit_pads(padding, size, kernel, stride, dilation):
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if isinstance(padding, str):
        pairs = jax.lax.padtype_to_pads(size, span, stride, padding)  # TF's SAME rule
        return [tuple(int(v) for v in p) for p in pairs]
    if isinstance(padding, int):
        return [(padding, padding)] * len(size)
    return list(padding)


def _torch_conv(x, kernel, bias, *, stride, pads, dilation, groups):
    """Zero-pad with F.pad (last axis first), then an unpadded torch conv."""
    flat = [v for lo_hi in reversed(pads) for v in lo_hi]
    x = torch.nn.functional.pad(x, flat)
    op = getattr(torch.nn.functional, TORCH_OPS[len(pads)])
    return op(x, kernel, bias, stride=stride, dilation=dilation, groups=groups)


def _channels_first(a):
    return np.moveaxis(np.asarray(a), -1, 1)


def _kernel_to_torch(kernel):
    nd = kernel.ndim - 2
    return np.transpose(np.asarray(kernel), (nd + 1, nd, *range(nd)))


def _compare(case, formulation, dtype, rtol, atol):
    size, kernel, stride, padding, dilation, groups, c_in, c_out = case
    nd = len(size)
    x = rand((2, *size, c_in), 1).astype(dtype)
    params = {
        "kernel": rand((*kernel, c_in // groups, c_out), 2).astype(dtype),
        "bias": rand((c_out,), 3).astype(dtype),
    }
    pads = _explicit_pads(padding, size, kernel, stride, dilation)
    torch_dtype = np.float64 if dtype == np.float64 else np.float32
    tx = to_torch(_channels_first(x), requires_grad=True, dtype=torch_dtype)
    tk = to_torch(_kernel_to_torch(params["kernel"]), requires_grad=True, dtype=torch_dtype)
    tb = to_torch(params["bias"], requires_grad=True, dtype=torch_dtype)
    ty = _torch_conv(tx, tk, tb, stride=stride, pads=pads, dilation=dilation, groups=groups)
    cot = np.moveaxis(rand(tuple(ty.shape), 4), 1, -1).astype(dtype)
    (ty * to_torch(_channels_first(cot), dtype=torch_dtype)).sum().backward()

    conv = lambda p, x: OPS[nd](
        p, x, stride=stride, padding=padding, dilation=dilation,
        feature_group_count=groups, formulation=formulation,
    )  # fmt: skip
    y, (g_params, g_x) = value_and_vjp(conv, params, x, cotangent=cot)
    close = lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol)
    close(y, np.moveaxis(to_numpy(ty), 1, -1))
    close(g_x, np.moveaxis(to_numpy(tx.grad), 1, -1))
    nd_axes = (*range(2, nd + 2), 1, 0)
    close(g_params["kernel"], np.transpose(to_numpy(tk.grad), nd_axes))
    close(g_params["bias"], to_numpy(tb.grad))


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("case", CASES)
def test_matches_torch_float64(case, formulation):
    with jax.enable_x64(True):
        _compare(case, formulation, np.float64, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("case", CASES[2:6])
def test_matches_torch_float32(case, formulation):
    _compare(case, formulation, np.float32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "groups",
    [1, pytest.param(2, marks=pytest.mark.slow)],  # 2: >10 s on a loaded 2-core CPU
)
def test_patches_check_grads(groups):
    params = {"kernel": rand((2, 2, 2 // groups, 2), 1), "bias": rand((2,), 2)}
    x = rand((1, 4, 3, 2), 3)
    conv = lambda p, x: F.conv2d(
        p, x, stride=(2, 1), padding="SAME", dilation=(1, 2), feature_group_count=groups,
        formulation="patches",
    )  # fmt: skip
    with jax.enable_x64(True):
        check_grads(jax.jit(conv), (params, x), order=2, modes=("fwd", "rev"))


@pytest.mark.slow  # >10 s on a loaded 2-core CPU (second order vmap of both formulations)
def test_formulations_agree_under_jit_vmap_without_recompiling(key):
    params = F.conv2d_init(key, 2, 3, 3)
    x = jax.random.normal(key, (2, 2, 5, 5, 2))
    traces = []

    def run(p, x):
        traces.append(1)
        return jax.vmap(lambda xb: F.conv2d(p, xb, stride=2, formulation="patches"))(x)

    fn = jax.jit(run)
    y = fn(params, x)
    fn(params, x + 1.0)
    assert len(traces) == 1
    expected = jax.vmap(lambda xb: F.conv2d(params, xb, stride=2, formulation="xla"))(x)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_context_sets_the_auto_default(key, monkeypatch):
    params = F.conv2d_init(key, 1, 2, 3)
    used = []
    for name in FORMULATIONS:
        real = forms.IMPLEMENTATIONS[name]
        spy = lambda *a, _name=name, _real=real: used.append(_name) or _real(*a)
        monkeypatch.setitem(forms.IMPLEMENTATIONS, name, spy)
    x = jnp.ones((1, 6, 6, 1))
    with conv_formulation("xla"):
        F.conv2d(params, x)
        F.conv2d(params, x, formulation="patches")  # an explicit argument wins
    with conv_formulation("patches"):
        F.conv1d(F.conv1d_init(key, 1, 2, 3), jnp.ones((1, 6, 1)))
    assert used == ["xla", "patches", "patches"]


def test_rule_picks_patches_on_cpu_for_small_patch_matrices():
    deep = ((32, 14, 14, 32), (3, 3, 32, 64), (14, 14))  # 7.2 MB of patches
    assert forms.choose(*deep, 1, jnp.float32, "cpu") == "patches"
    depthwise = ((32, 14, 14, 32), (3, 3, 1, 32), (14, 14))
    assert forms.choose(*depthwise, 32, jnp.float32, "cpu") == "patches"
    big = ((128, 14, 14, 32), (3, 3, 32, 64), (14, 14))  # 29 MB > PATCHES_MAX_BYTES
    assert forms.choose(*big, 1, jnp.float32, "cpu") == "xla"
    big_depthwise = ((128, 14, 14, 32), (3, 3, 1, 32), (14, 14))
    assert forms.choose(*big_depthwise, 32, jnp.float32, "cpu") == "xla"
    assert forms.choose(*deep, 1, jnp.float32, "gpu") == "xla"


def test_bad_formulation_names_the_argument(key):
    params = F.conv2d_init(key, 1, 1, 3)
    with pytest.raises(ValueError, match=r"conv2d: `formulation` must be one of .*'fft'"):
        F.conv2d(params, jnp.ones((1, 5, 5, 1)), formulation="fft")
    with pytest.raises(ValueError, match=r"conv_formulation: `formulation` must be"):
        with conv_formulation("winograd"):
            pass
