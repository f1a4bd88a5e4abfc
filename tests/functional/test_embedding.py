"""Tests for nnjax.functional embedding and attend: PyTorch reference, ids, transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms

IDS = np.array([[3, 0, 3], [4, 1, 2]])


def test_embedding_matches_torch_values_and_grads():
    """Repeated ids accumulate their gradients, as in torch.nn.functional.embedding."""
    fn = lambda p: F.embedding(p, IDS)
    torch_fn = lambda p: torch.nn.functional.embedding(torch.from_numpy(IDS), p["embedding"])
    assert_matches_torch(fn, torch_fn, ({"embedding": rand((5, 4), 0)},))


def test_attend_matches_torch_linear_with_tied_weight():
    fn = F.attend
    torch_fn = lambda p, x: torch.nn.functional.linear(x, p["embedding"])
    assert_matches_torch(fn, torch_fn, ({"embedding": rand((5, 4), 0)}, rand((2, 3, 4), 1)))


def test_init_scale_and_dtype(key):
    params = F.embedding_init(key, 1000, 64)
    assert params["embedding"].shape == (1000, 64)
    np.testing.assert_allclose(np.std(params["embedding"]), 1 / 8, rtol=0.05, atol=1e-3)
    params = F.embedding_init(key, 10, 4, dtype=jnp.bfloat16, embedding_init="zeros")
    assert params["embedding"].dtype == jnp.bfloat16 and not params["embedding"].any()


def test_out_of_range_ids_raise_outside_jit_and_give_nan_inside():
    params = {"embedding": jnp.ones((3, 2))}
    with pytest.raises(ValueError, match=r"embedding: argument `ids` has values outside \[0, 3\)"):
        F.embedding(params, jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"\[-1\]"):
        F.embedding(params, np.array([-1, 2]))
    out = jax.jit(F.embedding)(params, jnp.array([-1, 3, 2]))
    assert np.isnan(out[:2]).all() and (out[2] == 1).all()  # negative ids never wrap


@pytest.mark.parametrize(("dtype", "vocab"), [(jnp.int8, 256), (jnp.int8, 300), (jnp.int16, 65536)])
def test_negative_narrow_ids_give_nan_inside_jit(dtype, vocab):
    # the vocabulary size does not fit the ids' dtype (256 is 0 in int8, 300 is 44)
    params = {"embedding": jnp.arange(float(vocab))[:, None]}
    out = jax.jit(F.embedding)(params, jnp.array([-1, 5], dtype))
    assert np.isnan(out[0]).all() and out[1, 0] == 5


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_check_grads_and_transforms(key):
    params = {"embedding": rand((5, 3), 0)}
    x = rand((2, 3), 1)
    with jax.enable_x64(True):
        check_grads(jax.jit(F.attend), (params, x), order=2)
        check_grads(jax.jit(lambda p: F.embedding(p, IDS)), (params,), order=2)
    table = jax.random.normal(key, (5, 3))
    assert_transforms(lambda p, x: F.attend(p, x), {"embedding": table}, jnp.ones((2, 3)))
    assert_transforms(lambda p: F.embedding(p, jnp.asarray(IDS)), {"embedding": table})


def test_errors_name_argument():
    params = {"embedding": jnp.ones((3, 2))}
    with pytest.raises(TypeError, match="embedding: argument `ids` has dtype float32"):
        F.embedding(params, jnp.array([0.0]))
    with pytest.raises(AssertionError, match=r"attend: argument `x` has shape \(2, 3\)"):
        F.attend(params, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="embedding_init: `features` must be a positive int"):
        F.embedding_init(jax.random.key(0), 3, 0)


def test_an_empty_list_is_no_ids_not_floats():
    params = {"embedding": jnp.ones((3, 2))}
    assert F.embedding(params, []).shape == (0, 2)  # NumPy reads [] as float64
    assert F.embedding(params, [[], []]).shape == (2, 0, 2)
    assert F.embedding(params, ()).dtype == jnp.float32
    with pytest.raises(TypeError, match="embedding: argument `ids` has dtype float32"):
        F.embedding(params, np.zeros(0, np.float32))  # an explicit float dtype still is one


def test_non_numeric_ids_are_named_with_an_integer_conversion():
    params = {"embedding": jnp.ones((3, 2))}
    with pytest.raises(TypeError, match=r"^embedding: `ids` must be a numeric array, got a Num"):
        F.embedding(params, np.array([0, 1], dtype=object))
    with pytest.raises(TypeError, match=r"strings, dtype <U1 \(convert it, e\.g\. np\.asarray\("):
        F.embedding(params, ["0", "1"])
    assert F.embedding(params, np.array([0, 1], dtype=object).astype(np.int32)).shape == (2, 2)


@pytest.mark.parametrize("op", [F.embedding, F.attend])
def test_misspelt_or_missing_table_key_is_named(op):
    table = jnp.ones((3, 2))
    arg = jnp.array([0]) if op is F.embedding else jnp.ones((1, 2))
    name = op.__name__
    with pytest.raises(ValueError, match=rf"{name}: `params` has an unexpected key 'embeddings'"):
        op({"embeddings": table}, arg)
    with pytest.raises(KeyError, match=rf"{name}: `params` has no key 'embedding'"):
        op({}, arg)


@pytest.mark.parametrize("sizes", [(0, 4), (3, 0), (3.0, 4), (3, False)])
def test_init_rejects_non_positive_sizes(sizes):
    with pytest.raises(ValueError, match=r"embedding_init: `\w+` must be a positive int, got"):
        F.embedding_init(jax.random.key(0), *sizes)


@pytest.mark.parametrize("bad", [0, None])
def test_init_names_a_key_that_is_not_a_key(bad):
    with pytest.raises(TypeError, match=r"embedding_init: `key` must be a PRNG key"):
        F.embedding_init(bad, 3, 2)


@pytest.mark.parametrize("padding_idx", [0, 3, -1])
def test_padding_idx_matches_torch_values_and_grads(padding_idx):
    """The padding row's lookups return it and give it no gradient, as in PyTorch."""
    fn = lambda p: F.embedding(p, IDS, padding_idx=padding_idx)
    torch_fn = lambda p: torch.nn.functional.embedding(
        torch.from_numpy(IDS), p["embedding"], padding_idx=padding_idx
    )
    assert_matches_torch(fn, torch_fn, ({"embedding": rand((5, 4), 0)},))
    grad = jax.grad(lambda p: fn(p).sum())({"embedding": jnp.ones((5, 4))})["embedding"]
    np.testing.assert_array_equal(grad[padding_idx % 5], 0.0)  # the row is used in IDS


def test_padding_idx_initialises_its_row_to_zeros_as_torch(key):
    table = F.embedding_init(key, 6, 3, padding_idx=-2)["embedding"]
    reference = torch.nn.Embedding(6, 3, padding_idx=-2).weight.detach().numpy()
    np.testing.assert_array_equal(table[4], 0.0)
    np.testing.assert_array_equal(reference[4], 0.0)  # PyTorch's row too
    assert np.all(np.delete(np.asarray(table), 4, axis=0) != 0)
    with pytest.raises(ValueError, match=r"embedding_init: `padding_idx`=6 is outside \[-6, 6\)"):
        F.embedding_init(key, 6, 3, padding_idx=6)
    with pytest.raises(TypeError, match=r"embedding: `padding_idx` must be an int or None"):
        F.embedding({"embedding": table}, jnp.array([1]), padding_idx=True)
    with pytest.raises(ValueError, match=r"embedding: `padding_idx`=-7 is outside"):
        F.embedding({"embedding": table}, jnp.array([1]), padding_idx=-7)
