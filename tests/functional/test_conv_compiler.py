"""XLA:CPU's compiler options for ``fit``'s programs (``_conv_compiler.compiler_options``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import _hardware
from nnjax.functional import _conv_compiler as compiler


@pytest.mark.parametrize("wide", [False, True])
def test_compiler_options_only_on_cpu_and_when_not_set_by_the_process(wide, monkeypatch):
    monkeypatch.setattr(_hardware, "wide_vectors", lambda: wide)
    known = compiler._accepted(compiler.VECTOR_WIDTH_OPTION, compiler.WIDE_VECTORS)
    vectors = {compiler.VECTOR_WIDTH_OPTION: compiler.WIDE_VECTORS} if wide and known else {}
    expected = {compiler.YNN_FUSION_OPTION: compiler.YNN_WITHOUT_CONVOLUTIONS, **vectors}
    assert compiler.compiler_options("cpu") == expected
    eigen_dots = {compiler.YNN_FUSION_OPTION: compiler.YNN_WITHOUT_DOTS, **vectors}
    assert compiler.compiler_options("cpu", eigen_dots=True) == eigen_dots
    assert compiler.compiler_options("gpu") == {}
    assert compiler.compiler_options("gpu", eigen_dots=True) == {}
    assert not compiler._accepted(compiler.YNN_FUSION_OPTION, "LIBRARY_FUSION_TYPE_NONE")
    flags = f"--{compiler.YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_DOT"
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert compiler.compiler_options("cpu") == {}


def test_the_process_vector_width_is_left_alone(monkeypatch):
    monkeypatch.setattr(_hardware, "wide_vectors", lambda: True)
    monkeypatch.setenv("XLA_FLAGS", f"--{compiler.VECTOR_WIDTH_OPTION}=256")
    expected = {compiler.YNN_FUSION_OPTION: compiler.YNN_WITHOUT_CONVOLUTIONS}
    assert compiler.compiler_options("cpu") == expected


def test_a_program_with_wide_vectors_matches_plain_jit():
    """The 512-bit option changes the kernels' code, not the program's values."""
    x = jax.random.normal(jax.random.key(0), (64, 300))
    fn = lambda x: jnp.tanh(x) * jax.nn.sigmoid(2.0 * x) + jnp.exp(-x * x)
    options = {compiler.VECTOR_WIDTH_OPTION: compiler.WIDE_VECTORS}
    if jax.default_backend() != "cpu" or not compiler._accepted(*options.popitem()):
        pytest.skip("XLA:CPU's option, where this jaxlib has it")
    options = {compiler.VECTOR_WIDTH_OPTION: compiler.WIDE_VECTORS}
    wide = jax.jit(fn, compiler_options=options)(x)
    np.testing.assert_allclose(wide, jax.jit(fn)(x), rtol=1e-6, atol=1e-6)


def test_library_jit_without_options_is_plain_jit(monkeypatch):
    monkeypatch.setattr(compiler, "compiler_options", lambda backend=None, eigen_dots=False: {})
    seen = []
    compiler.jit(lambda x: seen.append(compiler.in_library_program()) or x)(jnp.ones(2))
    assert seen == [False]
    fn = compiler.jit(lambda x: x * 2, compiler_options={"xla_cpu_enable_fast_math": False})
    np.testing.assert_allclose(fn(jnp.ones(2)), 2.0)


@pytest.mark.devices(2)
def test_the_option_probe_ignores_the_callers_mesh():
    """Probed first inside sweep's mesh of several devices, the one-device probe failed and
    its cached False dropped the options from every later fit program of the process."""
    expected = compiler.compiler_options()
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:2]), ("data",))
    compiler._accepted.cache_clear()
    try:
        with jax.set_mesh(mesh):
            assert compiler.compiler_options() == expected
    finally:
        compiler._accepted.cache_clear()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("--xla_force_host_platform_device_count=4", False),  # nnjax's options move them
        (f"--{compiler.YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_DOT", False),
        (f"--{compiler.YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION", True),
        (f"--{compiler.YNN_FUSION_OPTION}=library_fusion_type_individual_convolution", True),
        (f"--{compiler.YNN_FUSION_OPTION}", True),  # no value: cannot tell, assume kept
    ],
)
def test_ynn_convolutions_reads_the_process_flags(flags, expected, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert compiler.ynn_convolutions("cpu") is expected
    assert compiler.ynn_convolutions("gpu") is False


def test_ynn_convolutions_where_the_jaxlib_refuses_the_option(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(compiler, "_accepted", lambda option, value: False)
    assert compiler.ynn_convolutions("cpu") is True
