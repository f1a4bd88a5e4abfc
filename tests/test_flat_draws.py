"""nnjax.initializers draws flat: JAX's own arrays for every factory and shape.

Bitwise on jax 0.10.2 (every case here); where XLA compiles a flat and a shaped
``erf_inv`` or ``log`` differently (jax 0.8.1: 13 of 392,000 normal draws), one unit in
the last place.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.nn import initializers as jinit

from nnjax import _flat_draws, initializers

SCALED = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform"]
SCALED += ["lecun_normal", "xavier_uniform", "xavier_normal"]
SHAPES = [(4, 3), (3, 3, 2, 5), (1, 1), (2, 0, 3)]  # JAX's own draws compile slowly: few
DTYPES = [None, jnp.bfloat16]


def _same(ours, theirs):
    """Of one shape and dtype, equal to the last bit (within one unit in the last place)."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    wide = np.complex128 if jnp.issubdtype(ours.dtype, jnp.complexfloating) else np.float64
    ulp = float(jnp.finfo(ours.dtype).eps)  # one unit in the last place of |x| <= eps |x|
    np.testing.assert_allclose(np.asarray(ours).astype(wide), np.asarray(theirs).astype(wide),
                               rtol=ulp, atol=0)  # fmt: skip


def _both(factory_name, *args, **kwargs):
    return getattr(initializers, factory_name)(*args, **kwargs), getattr(jinit, factory_name)(
        *args, **kwargs
    )


def _slow_but_first(values):
    """``values`` as parameters, all but the first in the slow step (JAX's own draws of
    three axes and more compile in 0.3-2.7 s each)."""
    return [v if i == 0 else _slow(v) for i, v in enumerate(values)]


def _slow(value):
    values = value if isinstance(value, tuple) else (value,)
    return pytest.param(*values, marks=pytest.mark.slow)


@pytest.mark.parametrize("name", _slow_but_first(SCALED))
def test_the_variance_scaling_factories_draw_jaxs_arrays(name):
    ours, theirs = _both(name)
    for shape in SHAPES[:2]:
        for dtype in DTYPES if name != SCALED[0] else DTYPES[:1]:  # the default run: one
            args = (jax.random.key(7), shape) + (() if dtype is None else (dtype,))
            _same(ours(*args), theirs(*args))


@pytest.mark.parametrize(
    ("name", "args"),
    _slow_but_first([("uniform", (2.0,)), ("normal", (0.3,)), ("truncated_normal", (0.3,))]),
)
def test_the_standard_factories_draw_jaxs_arrays(name, args):
    ours, theirs = _both(name, *args)
    for shape in SHAPES if name != "uniform" else SHAPES[1:2]:  # the default run: one
        for dtype in DTYPES[: 2 if len(shape) == 4 else 1]:
            extra = () if dtype is None else (dtype,)
            _same(ours(jax.random.key(3), shape, *extra), theirs(jax.random.key(3), shape, *extra))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_every_argument_of_jaxs_factories_is_honoured():
    key, shape = jax.random.key(5), (3, 4, 5)
    modes = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
    for mode, distribution in zip(modes, ("uniform", "normal", "truncated_normal", "uniform")):
        args = (0.5, mode, distribution, (0, 1), 2, ())
        ours = _flat_draws.variance_scaling(*args)
        _same(ours(key, shape), jinit.variance_scaling(*args)(key, shape))
    cut = dict(lower=-1.0, upper=0.5)
    _same(
        *(
            f(1.5, **cut)(key, shape)
            for f in (initializers.truncated_normal, jinit.truncated_normal)
        )
    )
    ours, theirs = _both("he_normal", in_axis=0, out_axis=1, dtype=jnp.float16)
    _same(ours(key, (3, 5, 2)), theirs(key, (3, 5, 2)))  # the factory's dtype by default


@pytest.mark.slow  # JAX's own draw compiles in 2-3 s
def test_a_five_axis_kernel_in_float32():
    ours, theirs = _both("glorot_uniform")
    args = (jax.random.key(7), (3, 3, 3, 4, 6), jnp.float32)
    _same(ours(*args), theirs(*args))


@pytest.mark.parametrize("impl", _slow_but_first(["threefry2x32", "rbg", "unsafe_rbg"]))
def test_every_prng_and_a_raw_key_give_jaxs_arrays(impl):
    ours, theirs = _both("glorot_normal")
    for key in (jax.random.key(1, impl=impl), jax.random.PRNGKey(1)):
        _same(ours(key, (3, 2, 4)), theirs(key, (3, 2, 4)))


def test_without_partitionable_threefry_and_under_x64_too(x64):
    ours, theirs = _both("lecun_uniform")
    key = jax.random.key(2)
    _same(ours(key, (3, 2, 4)), theirs(key, (3, 2, 4)))  # float64 by default under x64
    assert ours(key, (3, 2, 4)).dtype == jnp.float64
    with jax.threefry_partitionable(False):
        _same(ours(key, (3, 2, 4)), theirs(key, (3, 2, 4)))


def test_complex_one_axis_sharded_and_traced_draws_are_jaxs_too():
    ours, theirs = _both("he_uniform")
    key = jax.random.key(4)
    _same(ours(key, (4, 3), jnp.complex64), theirs(key, (4, 3), jnp.complex64))
    _same(*(f(0.1)(key, (6,)) for f in (initializers.normal, jinit.normal)))
    mesh = jax.sharding.Mesh(jax.devices()[:1], ("x",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    _same(ours(key, (4, 3), out_sharding=sharding), theirs(key, (4, 3)))
    traced = jax.jit(lambda k: ours(k, (2, 3, 4)))(key)
    _same(traced, theirs(key, (2, 3, 4)))


def test_jaxs_errors_for_shapes_it_cannot_scale():
    for shape, error in (((4,), ValueError), ((3, 0), ZeroDivisionError)):
        for factory in (initializers.glorot_uniform, jinit.glorot_uniform):
            with pytest.raises(error):
                factory()(jax.random.key(0), shape)
    with pytest.raises(ValueError, match="invalid mode"):
        _flat_draws.variance_scaling(1.0, "fan_sum", "uniform")(jax.random.key(0), (2, 3))


def test_a_kernel_of_many_axes_is_drawn_flat_and_not_recompiled(logged_compiles):
    init, shape = initializers.he_uniform(), (3, 1, 3, 1, 3, 1, 41)
    jaxpr = str(jax.make_jaxpr(lambda key: init(key, shape))(jax.random.key(0)))
    assert "random_bits[bit_width=32 shape=(1107,)]" in jaxpr, jaxpr  # JAX's: shape=(3, 1, ...)
    init(jax.random.key(0), shape)
    with logged_compiles() as again:
        init(jax.random.key(1), shape)
    assert again == []


def test_shapes_and_dtypes_jax_refuses_or_warns_about_get_jaxs_own_answer():
    ours, theirs = _both("glorot_normal")
    for shape in ((3.0, 4), (-1, 4)):
        errors = []
        for init in (ours, theirs):
            with pytest.raises(TypeError) as raised:
                init(jax.random.key(0), shape)
            errors.append(str(raised.value))
        assert errors[0] == errors[1], errors
    if not jax.config.jax_enable_x64:  # float64 without x64: JAX's warning, float32 arrays
        for init in (ours, theirs):
            with pytest.warns(UserWarning, match="Explicitly requested dtype float64"):
                assert init(jax.random.key(0), (3, 4), jnp.float64).dtype == jnp.float32
