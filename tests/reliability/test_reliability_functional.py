"""Bad inputs to the functional ops: each a clear error naming the argument and the value.

Each case asserts the error type and the words that name the culprit (the argument and
what the user passed). Cases whose fix lies in a file of another area are strict xfails
naming the fix.
"""

import jax.numpy as jnp
import pytest

import nnjax.functional as F
from nnjax.errors import ShapeError
from tests.reliability import _inputs as I
from tests.reliability import test_reliability_sequence_ops
from tests.reliability._corpus import case, check, params

CASES = [
    # --- dense
    case(
        "dense-int-x",
        lambda: F.dense(I.DENSE, jnp.ones((2, 3), jnp.int32)),
        TypeError,
        "x",
        "int32",
    ),
    case("dense-features", lambda: F.dense(I.DENSE, jnp.ones((2, 5))), ShapeError, "x", "(2, 5)"),
    case(
        "dense-kernel-rank",
        lambda: F.dense({"kernel": jnp.ones(3)}, I.X2),
        ShapeError,
        "kernel",
        "(3,)",
    ),
    case(
        "dense-bias-shape",
        lambda: F.dense({**I.DENSE, "bias": jnp.ones(5)}, I.X2),
        ShapeError,
        "bias",
        "(5,)",
    ),
    case("dense-no-kernel", lambda: F.dense({"bias": jnp.zeros(4)}, I.X2), KeyError, "kernel"),
    case(
        "dense-misspelt-bias",
        lambda: F.dense({"kernel": I.DENSE["kernel"], "bais": jnp.zeros(4)}, I.X2),
        ValueError,
        "'bais'",
        "'bias'",
    ),
    case(
        "dense-init-zero",
        lambda: F.dense_init(I.K, 0, 4),
        ValueError,
        "in_features",
        "0",
    ),
    case(
        "dense-init-negative",
        lambda: F.dense_init(I.K, 3, -2),
        ValueError,
        "out_features",
        "-2",
    ),
    case(
        "dense-init-float",
        lambda: F.dense_init(I.K, 2.5, 4),
        (TypeError, ValueError),
        "in_features",
        "2.5",
    ),
    case(
        "dense-init-initializer",
        lambda: F.dense_init(I.K, 3, 4, kernel_init="nope"),
        ValueError,
        "nope",
    ),
    # --- conv
    case("conv-rank", lambda: F.conv2d(I.CONV, jnp.ones((6, 6, 2))), ShapeError, "x", "(6, 6, 2)"),
    case(
        "conv-channels",
        lambda: F.conv2d(I.CONV, jnp.ones((1, 6, 6, 3))),
        ShapeError,
        "x",
        "(1, 6, 6, 3)",
    ),
    case("conv-stride-zero", lambda: F.conv2d(I.CONV, I.IMG, stride=0), ValueError, "stride", "0"),
    case(
        "conv-stride-negative",
        lambda: F.conv2d(I.CONV, I.IMG, stride=(1, -1)),
        ValueError,
        "stride",
        "(1, -1)",
    ),
    case("conv-dilation", lambda: F.conv2d(I.CONV, I.IMG, dilation=0), ValueError, "dilation", "0"),
    case(
        "conv-padding-name",
        lambda: F.conv2d(I.CONV, I.IMG, padding="FULL"),
        ValueError,
        "padding",
        "FULL",
    ),
    case(
        "conv-window-too-big",
        lambda: F.conv2d(I.CONV, jnp.ones((1, 2, 2, 2)), padding="VALID"),
        ValueError,
        "x",
        "(1, 2, 2, 2)",
    ),
    case("conv-int-x", lambda: F.conv2d(I.CONV, I.IMG.astype(jnp.int32)), TypeError, "x", "int32"),
    case(
        "conv-groups",
        lambda: F.conv2d(I.CONV, I.IMG, feature_group_count=3),
        ValueError,
        "feature_group_count",
        "3",
    ),
    case(
        "conv-misspelt-bias",
        lambda: F.conv2d({"kernel": I.CONV["kernel"], "bais": I.CONV["bias"]}, I.IMG),
        ValueError,
        "'bais'",
        "'bias'",
    ),
    case(
        "conv-init-kernel-size", lambda: F.conv2d_init(I.K, 2, 4, 0), ValueError, "kernel_size", "0"
    ),
    case(
        "conv-init-kernel-triple",
        lambda: F.conv2d_init(I.K, 2, 4, (3, 3, 3)),
        ValueError,
        "kernel_size",
        "(3, 3, 3)",
    ),
    # --- pooling
    case("pool-window-zero", lambda: F.max_pool2d(I.IMG, 0), ValueError, "`window`", "0"),
    case("pool-window-single", lambda: F.max_pool2d(I.IMG, (2,)), ValueError, "`window`", "(2,)"),
    case(
        "pool-stride-negative",
        lambda: F.avg_pool2d(I.IMG, 2, stride=-1),
        ValueError,
        "stride",
        "-1",
    ),
    case(
        "pool-padding",
        lambda: F.max_pool2d(I.IMG, 2, padding="REFLECT"),
        ValueError,
        "padding",
        "REFLECT",
    ),
    case("pool-rank", lambda: F.max_pool2d(jnp.ones((6, 6)), 2), ShapeError, "x", "(6, 6)"),
    case("pool-too-big", lambda: F.max_pool2d(I.IMG, 7), ValueError, "x", "(1, 6, 6, 2)"),
    case("pool1d-window-float", lambda: F.max_pool1d(I.SEQ, 1.5), ValueError, "`window`", "1.5"),
    case(
        "global-pool-rank", lambda: F.global_avg_pool(jnp.ones((2, 3))), ShapeError, "x", "(2, 3)"
    ),
    # --- layer norm, rms norm, group norm
    case(
        "ln-misspelt-bias",
        lambda: F.layer_norm({"scale": I.LN["scale"], "bais": I.LN["bias"]}, I.X2),
        ValueError,
        "'bais'",
        "did you mean 'bias'",
    ),
    case(
        "ln-missing-scale",
        lambda: F.layer_norm({"bias": I.LN["bias"]}, I.X2),
        KeyError,
        "'scale'",
        "layer_norm",
    ),
    case(
        "ln-extra-key",
        lambda: F.layer_norm({**I.LN, "mean": I.LN["bias"]}, I.X2),
        ValueError,
        "'mean'",
        "layer_norm",
    ),
    case(
        "ln-not-a-dict",
        lambda: F.layer_norm([I.LN["scale"], I.LN["bias"]], I.X2),
        TypeError,
        "params",
        "list",
    ),
    case(
        "ln-scale-shape",
        lambda: F.layer_norm({**I.LN, "scale": jnp.ones(4)}, I.X2),
        ShapeError,
        "scale",
        "(4,)",
    ),
    case(
        "ln-int-x", lambda: F.layer_norm(I.LN, jnp.ones((2, 3), jnp.int32)), TypeError, "x", "int32"
    ),
    case("ln-scalar-x", lambda: F.layer_norm(I.LN, jnp.float32(1.0)), ShapeError, "x", "()"),
    case(
        "rms-bias-key",
        lambda: F.rms_norm({"scale": jnp.ones(3), "bias": jnp.ones(3)}, I.X2),
        ValueError,
        "'bias'",
        "rms_norm",
    ),
    case(
        "rms-misspelt",
        lambda: F.rms_norm({"scael": jnp.ones(3)}, I.X2),
        ValueError,
        "'scael'",
        "did you mean 'scale'",
    ),
    case(
        "gn-groups",
        lambda: F.group_norm(F.group_norm_init(I.K, 6), jnp.ones((1, 4, 6)), num_groups=4),
        ValueError,
        "num_groups",
        "4",
    ),
    case(
        "gn-misspelt",
        lambda: F.group_norm(
            {"scale": jnp.ones(6), "bais": jnp.ones(6)}, jnp.ones((1, 4, 6)), num_groups=2
        ),
        ValueError,
        "'bais'",
        "group_norm",
    ),
    case(
        "in-misspelt",
        lambda: F.instance_norm({"scale": jnp.ones(6), "bias_": jnp.ones(6)}, jnp.ones((1, 4, 6))),
        ValueError,
        "'bias_'",
        "instance_norm",
    ),
    # --- batch norm
    case(
        "bn-empty-batch",
        lambda: F.batch_norm(I.BN_P, I.BN_S, jnp.ones((0, 3)), training=True),
        ValueError,
        "x",
        "(0, 3)",
        "empty",
    ),
    case(
        "bn-empty-image-batch",
        lambda: F.batch_norm(I.BN_P, I.BN_S, jnp.ones((0, 4, 4, 3)), training=True),
        ValueError,
        "x",
        "(0, 4, 4, 3)",
    ),
    case(
        "bn-misspelt-stats",
        lambda: F.batch_norm(
            I.BN_P, {"mena": I.BN_S["mean"], "var": I.BN_S["var"]}, I.X2, training=True
        ),
        ValueError,
        "stats",
        "'mena'",
        "'mean'",
    ),
    case(
        "bn-missing-var",
        lambda: F.batch_norm(I.BN_P, {"mean": I.BN_S["mean"]}, I.X2, training=False),
        KeyError,
        "stats",
        "'var'",
    ),
    case(
        "bn-misspelt-params",
        lambda: F.batch_norm(
            {"scale": I.BN_P["scale"], "bais": I.BN_P["bias"]}, I.BN_S, I.X2, training=True
        ),
        ValueError,
        "'bais'",
    ),
    case(
        "bn-stats-shape",
        lambda: F.batch_norm(I.BN_P, {**I.BN_S, "var": jnp.ones(4)}, I.X2, training=True),
        ShapeError,
        "var",
        "(4,)",
    ),
    case(
        "bn-rank-1",
        lambda: F.batch_norm(I.BN_P, I.BN_S, jnp.ones(3), training=True),
        ShapeError,
        "x",
        "(3,)",
    ),
    case(
        "bn-stats-not-dict",
        lambda: F.batch_norm(I.BN_P, (I.BN_S["mean"], I.BN_S["var"]), I.X2, training=True),
        TypeError,
        "stats",
        "tuple",
    ),
]


@pytest.mark.parametrize("c", params(CASES))
def test_bad_functional_input(c):
    check(c)


def test_the_corpus_is_large():
    assert len(CASES) + len(test_reliability_sequence_ops.CASES) >= 60
