"""Tests for nnjax.functional.conv2d: worked example, PyTorch reference, transforms, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax import _hardware
from nnjax.functional import _eager

from ._torch_ref import (
    assert_close,
    hwio_to_oihw,
    nchw_to_nhwc,
    nhwc_to_nchw,
    oihw_to_hwio,
    rand,
    to_numpy,
    to_torch,
    torch,
    value_and_vjp,
)
from ._transforms import assert_transforms

IMAGE = [
    [1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1],
    [0, 0, 1, 1, 0],
    [0, 1, 1, 0, 0],
]
KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_course_worked_example():
    x = jnp.asarray(IMAGE, jnp.float32)[None, :, :, None]
    params = {"kernel": jnp.asarray(KERNEL, jnp.float32)[:, :, None, None]}
    y = F.conv2d(params, x, padding="VALID")
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def _tf_same_pads(size, k, stride, dilation):
    """TensorFlow's SAME rule, written out: out = ceil(size / stride), extra pad at the end."""
    span = (k - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _torch_conv(x, kernel, bias, *, stride, padding, dilation):
    """Reference: zero-pad explicitly with F.pad, then an unpadded torch conv2d."""
    (kh, kw), (sh, sw), (dh, dw) = kernel.shape[2:], stride, dilation
    if padding == "VALID":
        pads = ((0, 0), (0, 0))
    elif padding == "SAME":
        h, w = x.shape[2:]
        pads = (_tf_same_pads(h, kh, sh, dh), _tf_same_pads(w, kw, sw, dw))
    elif isinstance(padding, int) or isinstance(padding[0], int):  # torch's own padding=
        return torch.nn.functional.conv2d(
            x, kernel, bias, stride=stride, padding=padding, dilation=dilation
        )
    else:
        pads = padding
    (top, bottom), (left, right) = pads
    x = torch.nn.functional.pad(x, (left, right, top, bottom))
    return torch.nn.functional.conv2d(x, kernel, bias, stride=stride, dilation=dilation)


CASES = [
    # (H, W, kernel, stride, padding, dilation)
    (7, 7, (3, 3), (1, 1), "VALID", (1, 1)),
    (7, 7, (3, 3), (1, 1), "SAME", (1, 1)),
    (7, 6, (3, 2), (2, 2), "SAME", (1, 1)),  # asymmetric SAME padding
    (8, 8, (2, 2), (2, 1), "SAME", (1, 1)),
    (7, 7, (3, 3), (1, 1), 1, (1, 1)),
    (7, 6, (3, 3), (2, 1), (2, 1), (1, 1)),  # one int per axis, PyTorch's padding=(ph, pw)
    (6, 7, (3, 3), (1, 2), ((1, 2), (0, 1)), (1, 1)),
    (9, 9, (3, 3), (2, 2), "VALID", (1, 1)),
    (9, 8, (3, 3), (1, 1), "VALID", (2, 2)),
    (9, 8, (3, 2), (2, 1), "SAME", (2, 3)),
]


@pytest.mark.parametrize(("h", "w", "k", "stride", "padding", "dilation"), CASES)
def test_matches_torch_outputs_and_grads(key, h, w, k, stride, padding, dilation):
    x = rand((2, h, w, 3), 1)
    params = {"kernel": rand((*k, 3, 4), 2), "bias": rand((4,), 3)}

    tx = to_torch(nhwc_to_nchw(x), requires_grad=True)
    tk = to_torch(hwio_to_oihw(params["kernel"]), requires_grad=True)
    tb = to_torch(params["bias"], requires_grad=True)
    ty = _torch_conv(tx, tk, tb, stride=stride, padding=padding, dilation=dilation)
    cot = rand(nchw_to_nhwc(ty).shape, 4)
    (ty * to_torch(nhwc_to_nchw(cot))).sum().backward()

    conv = lambda p, x: F.conv2d(p, x, stride=stride, padding=padding, dilation=dilation)
    with jax.enable_x64(True):
        y, (g_params, g_x) = value_and_vjp(conv, params, x, cotangent=cot)

    assert_close(y, nchw_to_nhwc(to_numpy(ty)))
    assert_close(g_x, nchw_to_nhwc(to_numpy(tx.grad)))
    assert_close(g_params["kernel"], oihw_to_hwio(to_numpy(tk.grad)))
    assert_close(g_params["bias"], tb.grad)


@pytest.mark.parametrize(("size", "stride"), [(7, 2), (8, 2), (9, 3), (5, 1)])
def test_same_output_is_ceil_of_size_over_stride(key, size, stride):
    params = F.conv2d_init(key, 1, 2, 3)
    y = F.conv2d(params, jnp.ones((1, size, size, 1)), stride=stride, padding="SAME")
    assert y.shape == (1, math.ceil(size / stride), math.ceil(size / stride), 2)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_init_shapes_and_no_bias(key):
    params = F.conv2d_init(key, 3, 8, (5, 3), dtype=jnp.bfloat16)
    assert params["kernel"].shape == (5, 3, 3, 8) and params["bias"].shape == (8,)
    assert params["kernel"].dtype == jnp.bfloat16
    assert set(F.conv2d_init(key, 3, 8, 3, use_bias=False)) == {"kernel"}
    # Glorot uniform over the receptive field: fan_in = 5*3*3, fan_out = 5*3*8.
    kernel = np.abs(np.asarray(params["kernel"], np.float32))
    limit = np.sqrt(6.0 / (45 + 120))
    assert kernel.max() <= limit * 1.01 and kernel.max() > 0.8 * limit


def test_check_grads():
    params = {"kernel": rand((2, 2, 2, 3), 1), "bias": rand((3,), 2)}
    x = rand((1, 4, 4, 2), 3)
    conv = lambda p, x: F.conv2d(p, x, stride=2, padding="SAME")
    with jax.enable_x64(True):
        check_grads(jax.jit(conv), (params, x), order=2, modes=("fwd", "rev"))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_jit_vmap_grad_float32_bfloat16(key):
    params = F.conv2d_init(key, 2, 3, 3)
    params["bias"] = jnp.ones(3)
    x = jax.random.normal(key, (2, 5, 5, 2))
    assert_transforms(lambda p, x: F.conv2d(p, x, stride=2, dilation=1), params, x)


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_conv_with_and_without_native_bfloat16(key, native, monkeypatch):
    """Emulated bfloat16 convolves in float32 and rounds once; native stays bfloat16."""
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)
    params = {"kernel": rand((3, 3, 2, 4), 1), "bias": rand((4,), 2)}
    x = jnp.asarray(rand((2, 6, 6, 2), 3), jnp.bfloat16)
    conv = lambda p, x: F.conv2d(p, x, stride=2, padding="SAME")
    y = conv(params, x)
    y32 = conv(params, x.astype(jnp.float32))  # the same values in float32
    assert y.dtype == jnp.bfloat16
    if native:  # bfloat16 arithmetic: within its rounding
        np.testing.assert_allclose(np.asarray(y, np.float32), y32, rtol=2e-2, atol=2e-2)
    else:  # float32 arithmetic rounded once: bitwise
        np.testing.assert_array_equal(np.asarray(y), np.asarray(y32.astype(jnp.bfloat16)))
    dx = jax.grad(lambda x: jnp.sum(conv(params, x).astype(jnp.float32)))(x)
    assert dx.dtype == jnp.bfloat16


def test_wrong_channels_names_op_argument_and_shapes(key):
    params = F.conv2d_init(key, 3, 4, 3)
    with pytest.raises(
        AssertionError,
        match=r"conv2d: argument `x` has shape \(2, 5, 5, 2\), expected \(\*, \*, \*, 3\)",
    ):
        jax.jit(F.conv2d)(params, jnp.ones((2, 5, 5, 2)))


def test_wrong_rank_names_op_argument_and_shapes(key):
    params = F.conv2d_init(key, 3, 4, 3)
    with pytest.raises(
        AssertionError,
        match=r"conv2d: argument `x` has shape \(5, 5, 3\) \(rank 3\), expected rank 4",
    ):
        F.conv2d(params, jnp.ones((5, 5, 3)))
    with pytest.raises(AssertionError, match=r"conv2d: argument `params\['kernel'\]`"):
        F.conv2d({"kernel": jnp.ones((3, 3, 3))}, jnp.ones((1, 5, 5, 3)))


def test_bad_bias_shape(key):
    params = {**F.conv2d_init(key, 3, 4, 3), "bias": jnp.ones(3)}
    with pytest.raises(
        AssertionError, match=r"conv2d: argument `params\['bias'\]` has shape \(3,\)"
    ):
        F.conv2d(params, jnp.ones((1, 5, 5, 3)))


def test_image_smaller_than_kernel(key):
    params = F.conv2d_init(key, 1, 1, 3)
    with pytest.raises(
        ValueError, match=r"conv2d: argument `x` has shape \(1, 2, 5, 1\).*window \(3, 3\)"
    ):
        F.conv2d(params, jnp.ones((1, 2, 5, 1)), padding="VALID")
    with pytest.raises(ValueError, match=r"window \(5, 5\)"):  # dilation 2 spans 5
        F.conv2d(params, jnp.ones((1, 4, 4, 1)), padding=((0, 0), (0, 0)), dilation=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"padding": "FULL"}, "conv2d: `padding` must be 'SAME', 'VALID'"),
        ({"padding": -1}, "conv2d: `padding` must be"),
        ({"padding": ((1, 1),)}, "conv2d: `padding` must be"),
        ({"padding": ((1, 1), (1, -1))}, "conv2d: `padding` must be"),
        ({"stride": 0}, "conv2d: `stride` must be a positive int"),
        ({"dilation": (1, 2, 3)}, "conv2d: `dilation` must be a positive int"),
        ({"padding": ((1, 1), (True, 1))}, r"conv2d: `padding` must be.*\(True, 1\)"),
        ({"padding": False}, "conv2d: `padding` must be"),
        ({"stride": (True, 1)}, "conv2d: `stride` must be a positive int"),
    ],
)
def test_bad_static_arguments(key, kwargs, match):
    params = F.conv2d_init(key, 1, 1, 3)
    with pytest.raises(ValueError, match=match):
        F.conv2d(params, jnp.ones((1, 5, 5, 1)), **kwargs)


def test_integer_input_raises_type_error(key):
    params = F.conv2d_init(key, 1, 1, 3)
    with pytest.raises(TypeError, match="conv2d: argument `x` has dtype int32"):
        F.conv2d(params, jnp.ones((1, 5, 5, 1), jnp.int32))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 8, 3), r"conv2d_init: `in_channels` must be a positive int, got 0"),
        ((3, -8, 3), r"conv2d_init: `out_channels` must be a positive int, got -8"),
        ((3.0, 8, 3), r"conv2d_init: `in_channels` must be a positive int, got 3.0"),
        ((3, 8, 0), r"conv2d_init: `kernel_size` must be a positive int"),
    ],
)
def test_init_checks_channel_counts(key, args, match):
    with pytest.raises(ValueError, match=match):
        F.conv2d_init(key, *args)


@pytest.mark.parametrize("bad", [0, None, jnp.zeros(2)])
def test_init_names_a_key_that_is_not_a_key(bad):
    with pytest.raises(TypeError, match=r"conv2d_init: `key` must be a PRNG key such as jax"):
        F.conv2d_init(bad, 3, 8, 3)


def test_numpy_ints_are_ints(key):
    params = F.conv2d_init(key, np.int64(2), np.int32(4), np.int64(3))
    x = jax.random.normal(key, (1, 7, 7, 2))
    want = F.conv2d(params, x, stride=2, padding=((1, 1), (1, 1)))
    got = F.conv2d(params, x, stride=np.int64(2), padding=((np.int64(1), 1), (1, np.int8(1))))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        F.conv2d(params, x, padding=np.int64(1)), F.conv2d(params, x, padding=1)
    )


def test_traced_static_argument_says_to_mark_it_static(key):
    params = F.conv2d_init(key, 1, 2, 3)
    x = jnp.ones((1, 6, 6, 1))
    with pytest.raises(ValueError, match=r"conv2d: `stride`.*traced.*static_argnames='stride'"):
        jax.jit(F.conv2d)(params, x, stride=2)
    fn = jax.jit(F.conv2d, static_argnames=("stride", "padding"))
    np.testing.assert_allclose(
        fn(params, x, stride=2, padding=1), F.conv2d(params, x, stride=2, padding=1), rtol=1e-6
    )


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.slow
def test_an_eager_call_is_one_program_per_geometry_and_context(nd):
    """Eagerly, one cached program (not its ops one by one), keyed by ``"auto"``'s context."""
    _eager._program.cache_clear()
    conv = {2: F.conv2d, 3: F.conv3d}[nd]
    params = {"kernel": jnp.asarray(rand((3,) * nd + (2, 4), 1)), "bias": jnp.ones(4)}
    x = jnp.asarray(rand((2,) + (6,) * nd + (2,), 2))
    first, again = conv(params, x), conv(params, x + 1.0)
    assert _eager._program.cache_info()[:2] == (1, 1)  # hits, misses
    strided = conv(params, x, stride=2)
    with F.forward_only():
        forward = conv(params, x)
    assert _eager._program.cache_info().misses == 3  # another geometry, another context
    jitted = jax.jit(conv, static_argnames="stride")
    for got, arg, stride in ((first, x, 1), (again, x + 1.0, 1), (strided, x, 2), (forward, x, 1)):
        np.testing.assert_allclose(got, jitted(params, arg, stride=stride), rtol=1e-5, atol=1e-5)
    # traced calls run the formulation's ops: gradients as jitted, no new program
    grad = lambda p: jax.grad(lambda p: jnp.sum(conv(p, x) ** 2))(p)["kernel"]
    np.testing.assert_allclose(grad(params), jax.jit(grad)(params), rtol=1e-5, atol=1e-5)
    assert _eager._program.cache_info().misses == 3


def test_padding_as_a_numpy_array_or_pairs_of_arrays(key):
    params = F.conv2d_init(key, 3, 2, 3)
    x = jax.random.normal(key, (1, 7, 8, 3))
    expected = F.conv2d(params, x, padding=((1, 1), (2, 2)))
    for padding in (np.array([[1, 1], [2, 2]]), ((1, 1), np.array([2, 2])), np.array([1, 2])):
        np.testing.assert_allclose(F.conv2d(params, x, padding=padding), expected, atol=1e-6)
