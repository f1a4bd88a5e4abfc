import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import WideAndDeep

from ._helpers import assert_jit_traces_once, param_dict


def test_input_skips_past_the_deep_path():
    model = WideAndDeep(3, (4, 5), 2, rngs=nnx.Rngs(0))
    p = param_dict(model)
    x = jax.random.normal(jax.random.key(1), (6, 3))
    deep = jax.nn.relu(
        F.dense(p["deep"]["layers"][1], jax.nn.relu(F.dense(p["deep"]["layers"][0], x)))
    )
    ref = F.dense(p["head"], jnp.concatenate([x, deep], axis=-1))
    np.testing.assert_allclose(model(x), ref, rtol=1e-5, atol=1e-5)


def test_two_inputs():
    model = WideAndDeep(2, (4,), 1, deep_features=3, rngs=nnx.Rngs(0))
    x_wide, x_deep = jnp.ones((5, 2)), jnp.ones((5, 3))
    deep = model.deep(x_deep)
    ref = F.dense(model.head.params(), jnp.concatenate([x_wide, deep], axis=-1))
    np.testing.assert_allclose(model(x_wide, x_deep), ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="x_deep"):
        model(x_wide)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"WideAndDeep: `out_features` must be a positive int"):
        WideAndDeep(4, (8,), 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"WideAndDeep: `deep_features` must be a positive int"):
        WideAndDeep(4, (8,), 1, deep_features=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="hidden"):
        WideAndDeep(3, (), rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(
        WideAndDeep(3, (4,), 1, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)), jnp.ones((2, 3))
    )
