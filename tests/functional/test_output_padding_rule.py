"""One ``output_padding`` rule (``< max(stride, dilation)`` per axis) for ops and layers.

The check was written twice, in ``F.conv_transpose`` and in the ``nnjax.nn`` layers,
with two messages; both now call ``_conv_transpose_pads.check_output_padding``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn
from nnjax.functional import _conv_transpose_pads

from ._torch_ref import torch

BAD = [  # (nd, stride, dilation, output_padding), each refused by PyTorch too
    (1, 2, 1, 2),
    (1, 1, 2, 2),
    (2, (2, 1), 1, (1, 1)),
    (3, 2, (1, 1, 3), (0, 0, 3)),
]
OPS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
INITS = {1: F.conv_transpose1d_init, 2: F.conv_transpose2d_init, 3: F.conv_transpose3d_init}
LAYERS = {1: nn.ConvTranspose1D, 2: nn.ConvTranspose2D, 3: nn.ConvTranspose3D}
TORCH = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}


@pytest.mark.parametrize(("nd", "stride", "dilation", "extra"), BAD)
def test_op_and_layer_refuse_alike_with_the_values_passed(nd, stride, dilation, extra):
    kw = {"stride": stride, "dilation": dilation, "output_padding": extra}
    params = INITS[nd](jax.random.key(0), 2, 3, 2)
    with pytest.raises(ValueError) as op_error:
        OPS[nd](params, jnp.ones((1, *(5,) * nd, 2)), **kw)
    with pytest.raises(ValueError) as layer_error:
        LAYERS[nd](2, 3, 2, **kw, rngs=nnx.Rngs(0))
    op, layer = str(op_error.value), str(layer_error.value)
    assert op.startswith(f"conv_transpose{nd}d: `output_padding`={extra!r} must be smaller")
    assert layer == op.replace(f"conv_transpose{nd}d", LAYERS[nd].__name__)
    assert f"the stride {stride!r} or the dilation {dilation!r}" in op
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        TORCH[nd](
            torch.ones(1, 2, *(5,) * nd), torch.ones(2, 3, *(2,) * nd),
            **{"stride": stride, "dilation": dilation, "output_padding": extra},
        )  # fmt: skip


@pytest.mark.parametrize(("nd", "stride", "dilation", "extra"), [
    (1, 1, 2, 1),  # smaller than the dilation (stride 1): allowed, as in PyTorch
    (2, (2, 1), (1, 3), (1, 2)),
])  # fmt: skip
def test_output_padding_below_stride_or_dilation_is_accepted_as_torch(nd, stride, dilation, extra):
    kw = {"stride": stride, "dilation": dilation, "output_padding": extra}
    params = INITS[nd](jax.random.key(0), 2, 3, 2)
    x = np.random.default_rng(0).standard_normal((1, *(5,) * nd, 2)).astype(np.float32)
    y = OPS[nd](params, x, **kw)
    kernel = np.moveaxis(np.asarray(params["kernel"]), (-2, -1), (0, 1))  # (in, out, *k)
    expected = TORCH[nd](
        torch.from_numpy(np.moveaxis(x, -1, 1).copy()), torch.from_numpy(kernel.copy()), **kw
    )
    np.testing.assert_allclose(y, np.moveaxis(expected.numpy(), 1, -1), rtol=1e-5, atol=1e-5)
    assert LAYERS[nd](2, 3, 2, **kw, rngs=nnx.Rngs(0))(x).shape == y.shape


def test_the_rule_returns_the_per_axis_tuples():
    check = _conv_transpose_pads.check_output_padding
    assert check("op", 3, (0, 1, 0), 2, (1, 1, 1)) == ((0, 1, 0), (2, 2, 2), (1, 1, 1))
    with pytest.raises(ValueError, match=r"op: `output_padding`"):
        check("op", 2, -1, 2, 1)  # negative: refused by the same call
