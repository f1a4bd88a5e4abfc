"""``_eager.one_program``: eager calls as one cached program, traced calls as they are."""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.functional import _eager

TRACES: list[tuple] = []


def _scaled_sum(x, y, scale):
    TRACES.append((x.shape, scale))
    return jnp.sum(x * y) * scale + jnp.max(x)


def test_eager_calls_trace_once_per_shape_static_arguments_and_context():
    _eager._program.cache_clear()
    TRACES.clear()
    x, y = jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 3))
    expected = float(jnp.sum(x * y) * 2.0 + jnp.max(x))
    assert float(_eager.one_program(_scaled_sum, (2.0,), "a", x, y)) == expected
    _eager.one_program(_scaled_sum, (2.0,), "a", x + 1.0, y)  # same program, no new trace
    assert TRACES == [((2, 3), 2.0)]
    _eager.one_program(_scaled_sum, (2.0,), "b", x, y)  # another context: another program
    _eager.one_program(_scaled_sum, (3.0,), "a", x, y)  # other static arguments
    _eager.one_program(_scaled_sum, (2.0,), "a", x[:1], y[:1])  # another shape: retraced
    assert len(TRACES) == 4 and _eager._program.cache_info().currsize == 3


def test_traced_calls_run_the_function_itself():
    _eager._program.cache_clear()
    x, y = jnp.arange(6.0).reshape(2, 3), jnp.full((2, 3), 0.5)
    call = lambda x: _eager.one_program(_scaled_sum, (2.0,), "a", x, y)
    grad = jax.jit(jax.grad(call))(x)
    np.testing.assert_allclose(grad, 2.0 * y + jax.nn.one_hot(5, 6).reshape(2, 3), atol=1e-6)
    assert _eager._program.cache_info().currsize == 0


def test_pytree_arguments_and_none_leaves():
    _eager._program.cache_clear()
    pair = lambda tree, none, scale: (tree["a"] * scale + tree["b"], none)
    tree = {"a": jnp.ones(3), "b": jnp.arange(3.0)}
    out, none = _eager.one_program(pair, (2.0,), None, tree, None)
    np.testing.assert_allclose(out, [2.0, 3.0, 4.0])
    assert none is None and _eager._program.cache_info().misses == 1
    # a tracer among the leaves (not the top-level arguments) runs the function itself
    total = lambda a: jnp.sum(_eager.one_program(pair, (2.0,), None, {**tree, "a": a}, None)[0])
    np.testing.assert_allclose(jax.grad(total)(tree["a"]), [2.0, 2.0, 2.0])
    assert _eager._program.cache_info().misses == 1


def test_the_cache_is_bounded():
    assert _eager._program.cache_info().maxsize is not None
