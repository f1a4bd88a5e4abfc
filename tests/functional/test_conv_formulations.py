"""Every conv formulation (XLA's conv, im2col patches, canonical VJP) against PyTorch, the
picking rule, and the per-program XLA:CPU options of ``_conv_compiler``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _conv_compiler as compiler
from nnjax.functional import _conv_formulations as forms
from nnjax.functional.conv import conv_formulation

from ._backend import requires_library_programs
from ._torch_ref import rand, to_numpy, to_torch, torch, value_and_vjp
from ._transforms import assert_member_grads

FORMULATIONS = ("xla", "patches")
# "xla_canonical" and "taps" are reached through "auto" only; the tests run them in place
# of "xla" (taps for every channel count, although "auto" picks it for one only, and for
# depthwise convolutions: per-channel taps).
ALL_FORMULATIONS = (*FORMULATIONS, "xla_canonical", "taps", "depth_stacked")
# "depth_stacked" is 3-D and ungrouped (other cases run it as its fallback, patches)
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
    ((6, 7), (2, 3), (1, 1), ((1, 0), (2, 1)), (1, 1), 2, 2, 6),  # depthwise, multiplier 3
    ((11,), (5,), (2,), "SAME", (1,), 4, 4, 4),  # depthwise 1-D
    ((5, 4, 6), (3, 2, 3), (1, 1, 2), "VALID", (1, 2, 1), 3, 3, 6),  # depthwise 3-D
    ((5, 6, 5), (2, 3, 2), (1, 2, 1), "SAME", (1, 1, 2), 1, 2, 3),
    ((6, 5, 5), (3, 1, 2), (2, 1, 1), 1, (1, 1, 1), 2, 2, 4),
    ((7, 6, 5), (3, 2, 3), (2, 1, 2), ((2, 1), (0, 1), (1, 1)), (2, 1, 1), 1, 3, 2),
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


def _compare(case, formulation, dtype, rtol, atol, jit=jax.jit):
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
    if jit is jax.jit:
        y, (g_params, g_x) = value_and_vjp(conv, params, x, cotangent=cot)
    else:
        y, (g_params, g_x) = jit(_value_and_vjp(conv))((params, x), cot)
    close = lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol)
    close(y, np.moveaxis(to_numpy(ty), 1, -1))
    close(g_x, np.moveaxis(to_numpy(tx.grad), 1, -1))
    nd_axes = (*range(2, nd + 2), 1, 0)
    close(g_params["kernel"], np.transpose(to_numpy(tk.grad), nd_axes))
    close(g_params["bias"], to_numpy(tb.grad))


def _value_and_vjp(fn):
    def run(args, cotangent):
        y, pullback = jax.vjp(fn, *args)
        return y, pullback(cotangent)

    return run


def _use(formulation, monkeypatch):
    """The name to pass as ``formulation=``; ``"xla_canonical"``/``"taps"`` stand in for "xla"."""
    if formulation in FORMULATIONS or formulation == "auto":
        return formulation
    monkeypatch.setitem(forms.IMPLEMENTATIONS, "xla", forms.IMPLEMENTATIONS[formulation])
    return "xla"


# the default run keeps one case of each kind (1-D, 2-D SAME, grouped, depthwise, 3-D);
# `-m slow` runs every case (the whole grid took 23 s of the default run's 10 minutes)
_DEFAULT_CASES = {0, 2, 5, 6, 10}


def _grid(cases, keep):
    return [
        c if i in keep else pytest.param(c, marks=pytest.mark.slow) for i, c in enumerate(cases)
    ]


@pytest.mark.parametrize("formulation", ALL_FORMULATIONS)
@pytest.mark.parametrize("case", _grid(CASES, _DEFAULT_CASES))
def test_matches_torch_float64(case, formulation, monkeypatch):
    with jax.enable_x64(True):
        _compare(case, _use(formulation, monkeypatch), np.float64, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("formulation", ALL_FORMULATIONS)
@pytest.mark.parametrize("case", CASES[2:6])
def test_matches_torch_float32(case, formulation, monkeypatch):
    _compare(case, _use(formulation, monkeypatch), np.float32, rtol=1e-5, atol=1e-5)


ONE_CHANNEL = ((9, 8), (3, 3), (1, 1), "SAME", (1, 1), 1, 1, 4)  # "auto" picks "taps"


@pytest.mark.parametrize("formulation", ["auto", "xla_canonical", "taps", "depth_stacked"])
@pytest.mark.parametrize(
    "case",
    _grid(
        [CASES[0], CASES[2], CASES[4], CASES[6], CASES[7], CASES[10], CASES[12], ONE_CHANNEL],
        {1, 3, 5, 7},  # 2-D, depthwise, 3-D, one channel in the default run
    ),
)
def test_in_a_library_program_matches_torch(case, formulation, monkeypatch):
    """``F.conv*`` traced and compiled by ``_conv_compiler.jit`` (Eigen convolutions)."""
    name = _use(formulation, monkeypatch)
    _compare(case, name, np.float32, rtol=1e-5, atol=1e-5, jit=compiler.jit)
    with jax.enable_x64(True):
        _compare(case, name, np.float64, rtol=1e-10, atol=1e-10, jit=compiler.jit)


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


@requires_library_programs
@pytest.mark.slow
def test_depth_stacked_planes_under_vmap_in_a_library_program_without_recompiling(key):
    """A sweep's vmapped members: the stacked planes' reshapes under a batched trace."""
    members = jax.vmap(lambda k: F.conv3d_init(k, 2, 3, 3))(jax.random.split(key, 3))
    x = jax.random.normal(key, (2, 4, 5, 5, 2))
    loss = lambda q, x, **kw: 0.5 * jnp.sum(F.conv3d(q, x, stride=(2, 1, 1), **kw) ** 2)
    reference = lambda q, x: loss(q, x, formulation="xla")
    assert_member_grads(loss, reference, members, x, jit=compiler.jit)


@pytest.mark.parametrize("formulation", ["xla_canonical", "taps"])
def test_custom_vjp_formulations_check_grads_second_order_reverse(formulation):
    params = {"kernel": rand((2, 3, 2, 3), 1), "bias": rand((3,), 2)}
    x = rand((2, 5, 6, 2), 3)
    conv = lambda p, x: forms.IMPLEMENTATIONS[formulation](
        x, p["kernel"], (2, 1), [(1, 0), (0, 2)], (1, 2), 1
    )  # fmt: skip
    with jax.enable_x64(True):
        check_grads(jax.jit(conv), (params, x), order=2, modes=("rev",))


def _conv_grad_in_a_loop(batch=8):
    # At batch 8, 590 KB of patches: "auto" picks XLA's conv in a library program.
    params = {"kernel": jnp.asarray(rand((3, 3, 16, 4), 1), jnp.float32), "bias": jnp.zeros(4)}
    grad = jax.grad(lambda p, x: jnp.mean(F.conv2d(p, x, stride=(1, 2)) ** 2))
    sgd = lambda p, x: jax.tree.map(lambda a, g: a - 0.1 * g, p, grad(p, x))

    def run(p, x):
        return jax.lax.fori_loop(0, 2, lambda i, p: sgd(p, x), p)

    return run, (params, jnp.asarray(rand((batch, 16, 16, 16), 2), jnp.float32))


@requires_library_programs
def test_library_program_keeps_loop_convolutions_canonical():
    """Inside a loop body XLA:CPU does not canonicalise convolutions: it must not need to."""
    run, args = _conv_grad_in_a_loop()
    assert _conv_labels(compiler.jit(run), args) == {"b01f_01io->b01f"}
    run, args = _conv_grad_in_a_loop(batch=1)
    with conv_formulation("xla"):  # JAX's own transpose rules: not canonical
        assert _conv_labels(jax.jit(run), args) - {"b01f_01io->b01f"}


def _conv_labels(fn, args):
    hlo = fn.lower(*args).compile().as_text()
    return {line.split("dim_labels=")[1].split(",")[0] for line in hlo.splitlines()
            if " convolution(" in line}  # fmt: skip


@requires_library_programs
def test_library_jit_traces_once_and_matches_plain_jit():
    run, args = _conv_grad_in_a_loop()
    traces = []

    def counted(p, x):
        traces.append(compiler.in_library_program())
        return run(p, x)

    fn = compiler.jit(counted)
    out = fn(*args)
    fn(args[0], args[1] + 1.0)
    assert traces == [True]
    with conv_formulation("patches"):
        expected = jax.jit(run)(*args)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
                 out, expected)  # fmt: skip


@requires_library_programs
def test_library_jit_is_for_top_level_calls():
    """Like every ``jax.jit`` with compiler options: JAX refuses it under a transformation."""
    run, args = _conv_grad_in_a_loop()
    with pytest.raises(ValueError, match="compiler_options"):
        jax.grad(lambda p: jnp.sum(compiler.jit(run)(p, args[1])["kernel"]))(args[0])


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


@pytest.mark.parametrize("formulation", ["auto", "xla_canonical"])
def test_a_pointwise_down_projection_in_a_library_program_matches_torch(formulation, monkeypatch):
    case = ((6, 5), (1, 1), (1, 1), "VALID", (1, 1), 1, 16, 5)
    x_shape, kernel = (2, *case[0], case[6]), (1, 1, case[6], case[7])
    assert forms.choose(x_shape, kernel, case[0], 1, jnp.float32, "cpu", library=True) == (
        "patches"
    )
    name = _use(formulation, monkeypatch)
    _compare(case, name, np.float32, rtol=1e-5, atol=1e-5, jit=compiler.jit)


def test_bad_formulation_names_the_argument(key):
    params = F.conv2d_init(key, 1, 1, 3)
    with pytest.raises(ValueError, match=r"conv2d: `formulation` must be one of .*'fft'"):
        F.conv2d(params, jnp.ones((1, 5, 5, 1)), formulation="fft")
    with pytest.raises(ValueError, match=r"conv_formulation: `formulation` must be"):
        with conv_formulation("winograd"):
            pass


def test_taps_accumulates_bfloat16_in_float32_and_rounds_once():
    from nnjax.functional import _conv_taps

    x = jnp.asarray(rand((2, 9, 8, 1), 1), jnp.bfloat16)
    kernel = jnp.asarray(rand((3, 3, 1, 4), 2), jnp.bfloat16)
    pads = ((1, 1), (1, 1))
    y = _conv_taps.forward(x, kernel, (1, 1), pads, (1, 1))
    exact = forms.xla(x.astype(jnp.float32), kernel.astype(jnp.float32), (1, 1), pads, (1, 1), 1)
    assert y.dtype == jnp.bfloat16
    # one rounding of the float32 sum: within bfloat16's unit roundoff (2**-8 relative)
    np.testing.assert_allclose(np.float32(y), exact, rtol=2**-8, atol=1e-6)


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.slow
def test_depthwise_taps_check_grads_forward_and_reverse(multiplier):
    from nnjax.functional import _conv_taps

    conv = lambda x, k: _conv_taps.depthwise(x, k, (2, 1), ((1, 1), (0, 1)), (1, 2))
    with jax.enable_x64(True):
        x = jnp.asarray(rand((2, 5, 4, 3), 1), jnp.float64)
        kernel = jnp.asarray(rand((3, 2, 1, 3 * multiplier), 2), jnp.float64)
        check_grads(conv, (x, kernel), order=2, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
        expected = forms.xla(x, kernel, (2, 1), [(1, 1), (0, 1)], (1, 2), 3)
        np.testing.assert_allclose(conv(x, kernel), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_depthwise_auto_is_taps_in_a_jitted_step_and_traces_once():
    params = F.conv2d_init(jax.random.key(0), 4, 8, 3, feature_group_count=4)
    x = jnp.asarray(rand((2, 9, 9, 4), 1))
    traces = []

    @jax.jit
    def loss(p, x):
        traces.append(1)
        return jnp.sum(F.conv2d(p, x, feature_group_count=4) ** 2)

    grads = jax.grad(loss)(params, x)
    jax.grad(loss)(params, x + 1.0)
    assert len(traces) == 1
    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(params, x))
    if jax.default_backend() == "cpu":
        assert "conv_general_dilated" not in jaxpr
    ref = jax.grad(lambda p: jnp.sum(F.conv2d(p, x, feature_group_count=4, formulation="xla") ** 2))
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref(params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
