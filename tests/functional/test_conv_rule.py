"""The rule that picks a convolution's formulation (``_conv_formulations.choose``), per
backend, shape and program: which formulation each kind of convolution gets.

The formulations themselves are compared with PyTorch in ``test_conv_formulations.py``.
"""

import jax.numpy as jnp

from nnjax.functional import _conv_formulations as forms


def test_rule_picks_patches_on_cpu_for_small_patch_matrices():
    deep = ((32, 14, 14, 32), (3, 3, 32, 64), (14, 14))  # 7.2 MB of patches
    assert forms.choose(*deep, 1, jnp.float32, "cpu") == "patches"
    grouped = ((32, 14, 14, 32), (3, 3, 16, 64), (14, 14))  # 2 groups: not depthwise
    assert forms.choose(*grouped, 2, jnp.float32, "cpu") == "patches"
    big = ((128, 14, 14, 32), (3, 3, 32, 64), (14, 14))  # 29 MB > PATCHES_MAX_BYTES
    assert forms.choose(*big, 1, jnp.float32, "cpu") == "xla"
    assert forms.choose(*deep, 1, jnp.float32, "gpu") == "xla"


def test_rule_picks_taps_for_depthwise_convolutions_on_cpu_only():
    for batch in (1, 32, 512):
        for shape, kernel in [((batch, 14, 14, 32), (3, 3, 1, 32)),  # multiplier 1
                              ((batch, 14, 14, 16), (5, 5, 1, 32)),  # multiplier 2
                              ((batch, 64, 8), (7, 1, 8))]:  # 1-D  # fmt: skip
            for library in (False, True):
                pick = forms.choose(shape, kernel, shape[1:-1], shape[-1], jnp.float32,
                                    "cpu", library=library)  # fmt: skip
                assert pick == "taps"
            assert forms.choose(shape, kernel, shape[1:-1], shape[-1], jnp.float32, "gpu") == "xla"
    # in == groups but more than one input channel per group is impossible; one group
    # per input channel with a single input channel is an ungrouped convolution.
    assert not forms._conv_taps.is_depthwise(1, (3, 3, 1, 8), 1)
    assert not forms._conv_taps.is_depthwise(32, (3, 3, 2, 32), 16)


def test_rule_in_a_library_program():
    pick = lambda *case, groups=1, backend="cpu": forms.choose(
        *case, groups, jnp.float32, backend, library=True
    )  # fmt: skip
    small = ((32, 28, 28, 2), (3, 3, 2, 32), (28, 28))  # 1.8 MB of patches
    big = ((128, 14, 14, 32), (3, 3, 32, 64), (14, 14))  # 29 MB
    assert pick(*small) == pick(*big) == "xla_canonical"
    assert pick(*small, backend="gpu") == "xla"
    tiny = ((8, 28, 28, 2), (3, 3, 2, 32), (28, 28))  # 0.4 MB: Eigen's fixed cost loses
    assert pick(*tiny) == "patches"
    for batch in (1, 8, 32, 128):  # one input channel, 3x3: shifted multiply-adds
        assert pick((batch, 28, 28, 1), (3, 3, 1, 32), (28, 28)) == "taps"
    assert pick((128, 28, 28, 1), (5, 5, 1, 32), (28, 28)) == "xla_canonical"  # 25 taps
    assert pick((8, 28, 28, 1), (3, 3, 1, 32), (28, 28), backend="gpu") == "xla"
    assert forms.choose((8, 28, 28, 1), (3, 3, 1, 32), (28, 28), 1, jnp.float32, "cpu") == (
        "patches"  # outside a library program the rule is unchanged
    )
    grouped = ((128, 14, 14, 32), (3, 3, 16, 32), (14, 14))  # 2 groups, 29 MB of patches
    assert pick(*grouped, groups=2) == "patches"
    huge_grouped = ((512, 14, 14, 32), (3, 3, 16, 32), (14, 14))  # 116 MB
    assert pick(*huge_grouped, groups=2) == "xla"
    one_d = ((32, 64, 8), (3, 8, 16), (64,))  # 196 KB of patches
    assert pick(*one_d) == forms.choose(*one_d, 1, jnp.float32, "cpu") == "patches"
    mid_one_d = ((32, 128, 64), (3, 64, 64), (128,))  # 3 MB: Eigen in a library program
    assert pick(*mid_one_d) == "xla_canonical"
    assert forms.choose(*mid_one_d, 1, jnp.float32, "cpu") == "patches"
    big_one_d = ((4096, 512, 8), (3, 8, 16), (512,))
    assert pick(*big_one_d) == "xla_canonical"
    for three_d in [((2, 8, 8, 8, 1), (3, 3, 3, 1, 8), (8, 8, 8)),  # 0.1 MB of patches
                    ((4, 16, 32, 32, 3), (3, 3, 3, 3, 32), (16, 32, 32))]:  # 20 MB  # fmt: skip
        assert pick(*three_d) == "depth_stacked"
        assert pick(*three_d, backend="gpu") == "xla"
    grouped_3d = ((2, 8, 8, 8, 4), (3, 3, 3, 2, 8), (8, 8, 8))
    assert pick(*grouped_3d, groups=2) == "patches"


def test_pointwise_down_projections_are_one_matmul_in_a_library_program():
    pick = lambda x, kernel, out, backend="cpu": forms.choose(
        x, kernel, out, 1, jnp.float32, backend, library=True
    )  # fmt: skip
    down = ((32, 56, 56, 256), (1, 1, 256, 64), (56, 56))  # 103 MB: past every size cap
    assert pick(*down) == "patches"
    assert pick((8, 7, 7, 2048), (1, 1, 2048, 512), (7, 7)) == "patches"
    assert pick(*down, backend="gpu") == "xla"
    assert forms.choose(*down, 1, jnp.float32, "cpu") == "xla"  # outside: the size rule
    for kernel in ((1, 1, 64, 256), (1, 1, 64, 64)):  # up or level: Eigen measured faster
        assert pick((32, 56, 56, 64), kernel, (56, 56)) == "xla_canonical"
    assert pick((32, 56, 56, 256), (1, 1, 256, 64), (28, 28)) == "xla_canonical"  # strided
    assert pick((32, 56, 56, 256), (3, 3, 256, 64), (56, 56)) == "xla_canonical"  # 3x3
    one_d = ((4096, 512, 64), (1, 64, 16), (512,))  # measured in 2-D only
    assert pick(*one_d) == "xla_canonical"
