"""``_scoped``: scoped op settings, and JAX's caches keyed on them.

A function traced inside a :func:`scoped` block and called again outside it must be
traced again: JAX's ``jit`` and ``make_jaxpr`` caches key on the block's settings
(``_scoped.TRACE_CONTEXT``), so a user's jitted helper that ``fit(precision=
"bfloat16")`` traced with rounded matmul operands stays exact when called on its own.
"""

import contextvars

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import _bfloat16_dot, _conv_compiler, _scoped

_SETTING: contextvars.ContextVar[int] = contextvars.ContextVar("test_setting", default=1)


def test_the_trace_context_state_exists_on_the_supported_jax_versions():
    assert _scoped.TRACE_CONTEXT is not None


def test_a_jitted_function_is_traced_again_outside_the_block():
    traces = []

    @jax.jit
    def f(x):
        traces.append(_SETTING.get())
        return x * _SETTING.get()

    with _scoped.scoped(_SETTING, 3):
        assert float(f(jnp.float32(2.0))) == 6.0
    assert float(f(jnp.float32(2.0))) == 2.0  # traced again, not the block's program
    with _scoped.scoped(_SETTING, 3):
        assert float(f(jnp.float32(2.0))) == 6.0  # the block's program, from the cache
    assert traces == [3, 1]


def test_make_jaxpr_is_traced_again_outside_the_block():
    def f(x):
        return x * _SETTING.get()

    jaxpr = jax.make_jaxpr(f)
    with _scoped.scoped(_SETTING, 5):
        inside = str(jaxpr(1.0))
    assert "5" in inside and "5" not in str(jaxpr(1.0))


def test_nested_blocks_restore_the_outer_setting_and_key():
    key = lambda: _scoped.TRACE_CONTEXT.value
    outer = key()
    with _scoped.scoped(_SETTING, 2):
        middle = key()
        with _scoped.scoped(_SETTING, 3):
            assert _SETTING.get() == 3 and key() != middle
        assert _SETTING.get() == 2 and key() == middle
    assert _SETTING.get() == 1 and key() == outer


def test_the_setting_is_restored_after_an_error():
    with pytest.raises(RuntimeError), _scoped.scoped(_SETTING, 7):
        raise RuntimeError("inside")
    assert _SETTING.get() == 1


@pytest.mark.parametrize("inside_first", [True, False])
def test_a_helper_traced_under_bfloat16_operands_stays_exact_outside(inside_first):
    """The helper of a model ``fit(precision="bfloat16")`` trains, called on its own too."""
    params = F.dense_init(jax.random.key(0), 8, 4)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 8)), jnp.float32) * 1.2345
    exact = np.asarray(x, np.float64) @ np.asarray(params["kernel"], np.float64)
    exact = exact + np.asarray(params["bias"], np.float64)
    helper = jax.jit(F.dense)  # a fresh function: its caches start empty

    def inside():
        with _bfloat16_dot.bfloat16_operands():
            return _conv_compiler.jit(lambda p, x: helper(p, x))(params, x)

    first = inside() if inside_first else helper(params, x)
    second = helper(params, x) if inside_first else inside()
    rounded, plain = (first, second) if inside_first else (second, first)
    np.testing.assert_allclose(plain, exact, rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(rounded) - exact).max() > 1e-4  # bfloat16 operands
