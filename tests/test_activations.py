"""nnjax.activations: values against PyTorch, derivatives against finite differences."""

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


@pytest.mark.parametrize(
    "name", ["sigmoid", "tanh", "elu", "gelu", "swish", "softplus", "softmax", "log_softmax"]
)
def test_smooth_activations_pass_check_grads(name):
    # Points away from kinks; float64 for the finite differences.
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-2.3, 2.1, 7))
        check_grads(activations.get(name), (x,), order=2, modes=("fwd", "rev"))


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
        "heaviside sign"
    ).split()
    assert set(design) <= set(activations.names())
    for name in design:
        assert callable(getattr(activations, name))
