import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Conv2D

from ._helpers import assert_jit_traces_once, assert_params_match


@pytest.mark.parametrize(
    "options",
    [{}, {"stride": 2, "padding": "VALID"}, {"dilation": 2, "padding": 1}],
)
def test_params_are_conv2d_init_and_call_is_conv2d(options):
    layer = Conv2D(2, 3, (3, 2), activation="relu", rngs=nnx.Rngs(0), **options)
    expected = F.conv2d_init(nnx.Rngs(0).params(), 2, 3, (3, 2))
    assert_params_match(layer, expected)
    x = jax.random.normal(jax.random.key(1), (2, 7, 6, 2))
    np.testing.assert_allclose(
        layer(x), jax.nn.relu(F.conv2d(expected, x, **options)), rtol=1e-6, atol=1e-6
    )


def test_mixed_precision():
    layer = Conv2D(1, 2, 3, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert layer(jnp.ones((1, 5, 5, 1))).dtype == jnp.bfloat16
    assert layer.kernel[...].dtype == jnp.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"kernel_size": -3}, "kernel_size"),
        ({"padding": "FULL"}, r"Conv2D: `padding` must be .*got 'FULL'"),  # at construction
        ({"padding": ((1, 1),)}, r"Conv2D: `padding` must be .*\(\(1, 1\),\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"in_channels": 1, "out_channels": 2, "kernel_size": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        Conv2D(**args, rngs=nnx.Rngs(0))


def test_numpy_int_sizes_are_ints():
    layer = Conv2D(np.int64(3), np.int64(8), np.int64(3), rngs=nnx.Rngs(0))
    assert type(layer.in_channels) is int and layer.kernel_size == (3,)
    assert layer(jnp.ones((1, 5, 5, 3))).shape == (1, 5, 5, 8)


def test_old_argument_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning) as record:
        old = Conv2D(in_features=1, out_features=2, kernel_size=3, rngs=nnx.Rngs(0))
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "`in_features` is deprecated" in messages[0] and "use `in_channels`" in messages[0]
    assert "`out_features` is deprecated" in messages[1] and "use `out_channels`" in messages[1]
    assert {w.filename for w in record} == {__file__}  # points at the caller's line
    new = Conv2D(in_channels=1, out_channels=2, kernel_size=3, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(old.kernel[...], new.kernel[...])
    with pytest.raises(TypeError, match=r"both `in_features`.*and `in_channels`"):
        Conv2D(1, 2, in_features=1, in_channels=1, rngs=nnx.Rngs(0))


def test_rngs_is_required():
    with pytest.raises(TypeError, match="rngs"):
        Conv2D(1, 2, 3)


def test_wrong_channels_names_op():
    with pytest.raises(AssertionError, match="conv2d"):
        Conv2D(3, 2, 3, rngs=nnx.Rngs(0))(jnp.ones((1, 5, 5, 2)))


def test_channels_first_images_are_named_with_the_transpose():
    x = jnp.ones((2, 1, 8, 8))  # NCHW, as PyTorch's Conv2d takes it
    with pytest.raises(AssertionError, match=r"\(\*, \*, \*, 1\); nnjax is channels-last") as err:
        Conv2D(1, 4, 3, rngs=nnx.Rngs(0))(x)
    assert str(err.value).endswith("x.transpose(0, 2, 3, 1)")
    assert Conv2D(1, 4, 3, rngs=nnx.Rngs(0))(x.transpose(0, 2, 3, 1)).shape == (2, 8, 8, 4)


def test_jit_does_not_retrace():
    assert_jit_traces_once(Conv2D(1, 2, 3, rngs=nnx.Rngs(0)), jnp.ones((1, 5, 5, 1)))


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
@pytest.mark.parametrize(("groups", "out"), [(2, 6), (4, 4)])  # grouped, depthwise
def test_grouped_and_depthwise_conv2d(groups, out):
    """Conv2D is the N-d layer: it gains ``feature_group_count`` (F.conv2d's groups)."""
    layer = Conv2D(4, out, 3, feature_group_count=groups, rngs=nnx.Rngs(0))
    expected = F.conv2d_init(nnx.Rngs(0).params(), 4, out, 3, feature_group_count=groups)
    assert_params_match(layer, expected)
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 4))
    np.testing.assert_allclose(
        layer(x), F.conv2d(expected, x, feature_group_count=groups), rtol=1e-6, atol=1e-6
    )


def test_parameter_paths_and_recorded_arguments_are_unchanged():
    """What checkpoints and ``nnjax.load`` rely on: ``kernel``/``bias``, the call's args."""
    from nnjax.nn._config import module_call
    from nnjax.nn.conv_nd import _ConvND

    layer = Conv2D(2, 3, 3, stride=2, rngs=nnx.Rngs(0))
    assert isinstance(layer, _ConvND)
    assert set(nnx.to_pure_dict(nnx.state(layer, nnx.Param))) == {"kernel", "bias"}
    call = module_call(layer)
    assert call["class"] == "Conv2D" and call["args"] == []
    assert call["kwargs"] == {
        "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2,
        "rngs": {"$rngs": ["default"]},
    }  # fmt: skip
    assert (layer.stride, layer.padding, layer.dilation, layer.feature_group_count) == (
        2, "SAME", 1, 1,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "op", "shape"),
    [
        ("ConvTranspose1D", F.conv_transpose1d, (2, 5, 4)),
        pytest.param(
            "ConvTranspose2D", F.conv_transpose2d, (2, 4, 5, 4), marks=pytest.mark.slow
        ),  # 16 s on 2 busy cores; the 1-D case runs by default
    ],
)
def test_grouped_same_conv_transpose_layers(cls, op, shape):
    from nnjax import nn

    layer = getattr(nn, cls)(4, 6, 3, stride=2, padding="SAME", feature_group_count=2,
                             rngs=nnx.Rngs(0))  # fmt: skip
    init = getattr(F, f"conv_transpose{len(shape) - 2}d_init")
    expected = init(nnx.Rngs(0).params(), 4, 6, 3, feature_group_count=2)
    assert_params_match(layer, expected)
    x = jax.random.normal(jax.random.key(1), shape)
    y = layer(x)
    assert y.shape == (2, *(2 * n for n in shape[1:-1]), 6)
    np.testing.assert_allclose(
        y, op(expected, x, stride=2, padding="SAME", feature_group_count=2), rtol=1e-6, atol=1e-6
    )


def test_padding_takes_one_int_per_axis_as_pytorch_and_saves_it(tmp_path):
    import nnjax

    layer = Conv2D(2, 3, 3, padding=(1, 0), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 5, 6, 2))
    expected = F.conv2d(layer.params(), x, padding=((1, 1), (0, 0)))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert layer(x).shape == (2, 5, 4, 3)
    loaded = nnjax.load(nnjax.save(layer, tmp_path / "conv"))  # the padding from JSON lists
    np.testing.assert_allclose(loaded(x), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"Conv2D: `padding` must be .* a pair of them or"):
        Conv2D(2, 3, 3, padding=(1, 0, 1), rngs=nnx.Rngs(0))
