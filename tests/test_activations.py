"""nnjax.activations: values against PyTorch, derivatives against finite differences."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax import activations

torch = pytest.importorskip("torch")
TF = torch.nn.functional

X = np.linspace(-4.0, 4.0, 41)

# name -> the PyTorch function it must equal.
TORCH_REFS = {
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": TF.relu,
    "leaky_relu": lambda t: TF.leaky_relu(t, 0.01),
    "elu": TF.elu,
    "gelu": lambda t: TF.gelu(t, approximate="tanh"),
    "swish": TF.silu,
    "softplus": TF.softplus,
    "softmax": lambda t: TF.softmax(t, dim=-1),
    "log_softmax": lambda t: TF.log_softmax(t, dim=-1),
    "heaviside": lambda t: torch.heaviside(t, torch.zeros_like(t)),
    "sign": lambda t: torch.where(t >= 0, 1.0, -1.0).to(t.dtype),
}


@pytest.mark.parametrize("name", sorted(TORCH_REFS))
def test_matches_torch(name):
    with jax.enable_x64(True):
        ours = np.asarray(activations.get(name)(jnp.asarray(X)))
    ref = TORCH_REFS[name](torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(
    "name", ["sigmoid", "tanh", "elu", "gelu", "swish", "softplus", "softmax", "log_softmax"]
)
def test_smooth_activations_pass_check_grads(name):
    # Points away from kinks; float64 for the finite differences.
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-2.3, 2.1, 7))
        check_grads(jax.jit(activations.get(name)), (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("approximate", [True, False])
def test_gelu_in_float16_matches_torch_with_finite_gradients(approximate):
    """The tanh form's ``x**3`` overflows float16: its gradient was NaN from |x| ~ 300."""
    x = np.array([-6e4, -300.0, -2.5, -0.5, 0.0, 0.7, 3.0, 300.0, 1000.0, 6e4], np.float16)
    f = lambda v: activations.gelu(v, approximate)
    y, grads = f(jnp.asarray(x)), jax.vmap(jax.grad(f))(jnp.asarray(x))
    t = torch.from_numpy(x.astype(np.float32)).requires_grad_()
    ref = TF.gelu(t, approximate="tanh" if approximate else "none")
    ref.sum().backward()
    assert y.dtype == grads.dtype == jnp.float16
    np.testing.assert_allclose(
        np.asarray(y, np.float32), ref.detach().half().float(), rtol=1e-3, atol=1e-3
    )
    np.testing.assert_allclose(np.asarray(grads, np.float32), t.grad.half().float(), atol=1e-3)


def test_step_functions_at_zero():
    x = jnp.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(activations.heaviside(x), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(activations.sign(x), [-1.0, 1.0, 1.0])


def test_step_functions_keep_dtype():
    x = jnp.array([-1.0, 2.0], jnp.bfloat16)
    assert activations.heaviside(x).dtype == jnp.bfloat16
    assert activations.sign(x).dtype == jnp.bfloat16


def test_get_accepts_callables_none_and_case():
    f = lambda x: 2 * x
    assert activations.get(f) is f
    assert activations.get(None) is activations.identity
    assert activations.get("ReLU") is activations.relu


def test_get_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'relux'.*relu.*sigmoid"):
        activations.get("relux")


def test_get_rejects_other_types():
    with pytest.raises(TypeError, match="activation must be"):
        activations.get(3)


def test_every_design_name_is_registered():
    design = (
        "identity sigmoid tanh relu leaky_relu elu gelu swish softplus softmax log_softmax "
        "heaviside sign mish selu celu glu hard_sigmoid hard_tanh log_sigmoid"
    ).split()
    assert set(design) <= set(activations.names())
    for name in design:
        assert callable(getattr(activations, name))


NEW_REFS = {
    "mish": TF.mish,
    "selu": TF.selu,
    "celu": TF.celu,
    "hard_sigmoid": TF.hardsigmoid,
    "hard_tanh": TF.hardtanh,
    "log_sigmoid": TF.logsigmoid,
}


@pytest.mark.parametrize("name", sorted(NEW_REFS))
def test_new_activations_match_torch_values_and_grads(name):
    x = X + 0.05  # off the kinks of hard_sigmoid / hard_tanh
    cot = np.cos(3.0 * x)
    fn = activations.get(name)
    with jax.enable_x64(True):
        y, pullback = jax.vjp(fn, jnp.asarray(x))
        (grad,) = pullback(jnp.asarray(cot))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = NEW_REFS[name](tx)
    (ty * torch.from_numpy(cot)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    # PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6 (relative error
    # 3e-8); JAX's derivative is the exact 1/6.
    tol = 1e-7 if name == "hard_sigmoid" else 1e-10
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=tol, atol=1e-12)
    np.testing.assert_allclose(
        fn(jnp.asarray(x, jnp.float32)), ty.detach().numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("name", ["mish", "selu", "celu", "log_sigmoid"])
def test_new_smooth_activations_pass_check_grads(name):
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-2.3, 2.1, 7))
        check_grads(jax.jit(activations.get(name)), (x,), order=2, modes=("fwd", "rev"))


def test_prelu_matches_torch_per_channel_and_shared():
    x = np.random.default_rng(0).standard_normal((4, 3))
    for slope in (np.array([0.25]), np.array([0.1, -0.3, 2.0])):
        tx = torch.from_numpy(x).requires_grad_(True)
        tw = torch.from_numpy(slope).requires_grad_(True)
        ty = TF.prelu(tx, tw)
        ty.sum().backward()
        with jax.enable_x64(True):
            _, (gx, gw) = jax.value_and_grad(
                lambda x, w: jnp.sum(activations.prelu(x, w)), argnums=(0, 1)
            )(jnp.asarray(x), jnp.asarray(slope))
            out = activations.prelu(jnp.asarray(x), jnp.asarray(slope))
        np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_prelu_bad_slope_names_argument():
    with pytest.raises(ValueError, match=r"prelu: `negative_slope` has shape \(2,\)"):
        activations.prelu(jnp.ones((4, 3)), jnp.ones(2))
    assert activations.prelu(jnp.array([-2.0, 1.0], jnp.bfloat16), 0.5).dtype == jnp.bfloat16


def test_glu_halves_the_last_axis_like_torch():
    x = np.random.default_rng(0).standard_normal((3, 8))
    with jax.enable_x64(True):
        ours = activations.glu(jnp.asarray(x))
    np.testing.assert_allclose(ours, TF.glu(torch.from_numpy(x), dim=-1).numpy(), atol=1e-12)
    assert ours.shape == (3, 4)


# ----------------------------------------------------- inputs that are not JAX arrays
VALUES = [1.5, -2.0, 0.25, 3.0]  # an even count: glu halves the last axis


@pytest.mark.parametrize("name", activations.names())
def test_lists_tuples_and_numpy_arrays_give_the_arrays_result(name):
    fn = activations.get(name)
    want = fn(jnp.asarray(VALUES))
    # jax.nn's functions refused lists ("relu requires ndarray or scalar arguments");
    # hard_sigmoid failed in Python ("can only concatenate list (not "float") to list")
    for value in (VALUES, tuple(VALUES), np.asarray(VALUES, np.float32)):
        got = fn(value)
        assert isinstance(got, jax.Array) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", activations.names())
@pytest.mark.parametrize(
    "value",
    ["1.0 2.0", np.array(VALUES, object), [[1.0, 2.0], [3.0]], None],
    ids=["str", "object", "ragged", "none"],
)
def test_values_that_hold_no_numbers_fail_as_in_identity(name, value):
    # jax.nn's failed inside JAX ("Error interpreting argument to custom_jvp_call as a
    # JAX value", "relu requires ndarray or scalar arguments"), each its own way
    with pytest.raises(Exception) as want:
        activations.identity(value)
    with pytest.raises(want.type) as got:
        activations.get(name)(value)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("name", ["sigmoid", "swish", "silu", "glu"])
def test_integer_inputs_are_promoted_where_jax_refused_them(name):
    fn = activations.get(name)
    ints = [1, -2, 0, 3]
    want = fn(jnp.asarray(ints, jnp.float32))
    # was "logistic does not accept dtype int32"
    for value in (ints, np.asarray(ints), jnp.asarray(ints, jnp.int8), jnp.asarray(ints) > 0):
        got = fn(value)
        assert got.dtype == jnp.float32
        np.testing.assert_array_equal(got, fn(jnp.asarray(value, jnp.float32)))
    np.testing.assert_array_equal(fn(ints), want)
    assert fn(jnp.asarray(ints, jnp.bfloat16)).dtype == jnp.bfloat16  # floats kept


@pytest.mark.parametrize("name", ["relu", "hard_tanh", "leaky_relu", "elu", "tanh", "softplus"])
def test_integer_arrays_give_what_jax_gives(name):
    ints = np.array([1, -2, 0, 3], np.int32)
    want = getattr(jax.nn, name)(jnp.asarray(ints))  # valid before: unchanged
    got = activations.get(name)(ints.tolist())
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", activations.names())
def test_torch_tensors_are_read_detached(name):
    fn = activations.get(name)
    want = fn(jnp.asarray(VALUES))
    np.testing.assert_array_equal(fn(torch.tensor(VALUES, requires_grad=True)), want)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "tanh", "glu", "gelu"])
def test_jax_arrays_trace_to_jaxs_own_program(name):
    ours, theirs = activations.get(name), getattr(jax.nn, name)
    x = jnp.linspace(-2.0, 2.0, 6)
    assert str(jax.make_jaxpr(ours)(x)) == str(jax.make_jaxpr(theirs)(x))  # no added ops
    assert jax.jit(ours)(x).dtype == x.dtype


def test_prelu_reads_lists_and_torch_tensors():
    np.testing.assert_array_equal(activations.prelu([-2.0, 1.0], [0.5]), [-1.0, 1.0])
    slope = torch.tensor([0.5], requires_grad=True)  # numpy() refused it
    np.testing.assert_array_equal(activations.prelu(jnp.array([-2.0, 1.0]), slope), [-1.0, 1.0])


def test_the_activations_keep_their_names_for_save_and_pickle():
    from nnjax.nn import _config

    for name in activations.names():
        fn = activations.get(name)
        assert pickle.loads(pickle.dumps(fn)) is fn
        assert _config.function_name(fn) == f"nnjax.activations.{fn.__name__}"
    assert activations.swish.__name__ == "swish" and activations.get("silu") is activations.swish
