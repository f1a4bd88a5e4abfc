"""The ready models need a leading batch axis, take empty batches, and floating dtypes.

Like :class:`~nnjax.nn.CNN` (``(B, H, W[, C])``) and the sequence models
(``(B, T, F)``), :class:`~nnjax.nn.MLP`, the autoencoders and
:class:`~nnjax.nn.WideAndDeep` refuse one example without its batch axis, naming the
model and the argument, instead of returning an output without one (``MLP``,
``Autoencoder``) or failing inside a reshape (``ConvAutoencoder.decode``).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax.nn import CNN, MLP, Autoencoder, ConvAutoencoder, WideAndDeep


@pytest.fixture(scope="module")
def mlp():
    return MLP(6, (4,), 3, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def ae():
    return Autoencoder(6, (4,), 2, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def cae():
    return ConvAutoencoder((4, 4), (2,), 2, rngs=nnx.Rngs(0))


def _flat_rows_match(owner, name, shape, features, single):
    hint = f"; one example needs a batch axis: {name}[None]" if single else ""
    message = (
        f"{owner}: argument `{name}` has shape {shape}, expected (B, {features}) or "
        f"(B, d1, d2, ...) with d1 * d2 * ... == {features}: a leading batch axis, then "
        f"{features} features per example{hint}"
    )
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("shape", "single"),
    [
        ((6,), True),  # was accepted: an output (3,) without a batch axis
        ((2, 3), True),  # one (2, 3) example, or 2 of 3 features: the hint covers both
        ((), False),  # was named as dense's
        ((5,), False),
        ((2, 2, 2), False),  # was "dense: argument `x` has shape (2, 4)"
    ],
)
def test_mlp_needs_a_batch_axis_and_names_itself(mlp, shape, single):
    with pytest.raises(nnjax.ShapeError, match=_flat_rows_match("MLP", "x", shape, 6, single)):
        mlp(jnp.ones(shape))


def test_mlp_one_example_with_batch_axis_matches(mlp):
    x = jax.random.normal(jax.random.key(1), (6,))
    np.testing.assert_allclose(mlp(x[None])[0], mlp(jnp.stack([x, x]))[1], rtol=1e-6, atol=1e-6)


def test_mlp_check_holds_under_jit(mlp):
    call = nnx.jit(lambda m, x: m(x))
    with pytest.raises(nnjax.ShapeError, match=r"MLP: argument `x` has shape \(6,\)"):
        call(mlp, jnp.ones(6))


@pytest.mark.parametrize("method", ["__call__", "encode"])
def test_autoencoder_needs_a_batch_axis(ae, method):
    match = _flat_rows_match("Autoencoder", "x", (6,), 6, True)
    with pytest.raises(nnjax.ShapeError, match=match):
        getattr(ae, method)(jnp.ones(6))


@pytest.mark.parametrize("model", ["ae", "cae"])
@pytest.mark.parametrize("shape", [(2,), (1, 1, 2), (3, 5)])
def test_decode_needs_codes_with_a_batch_axis(request, model, shape):
    m = request.getfixturevalue(model)
    owner = type(m).__name__
    hint = "; one code needs a batch axis: z[None]" if shape == (2,) else ""
    message = (
        f"{owner}: argument `z` has shape {shape}, expected (B, 2): a batch of codes of the "
        f"model's latent size 2{hint}"
    )
    match = f"^{re.escape(message)}$"
    with pytest.raises(nnjax.ShapeError, match=match):
        m.decode(jnp.ones(shape))


def test_conv_autoencoder_decode_of_one_code(cae):
    z = jnp.array([0.5, -0.5])
    assert cae.decode(z[None]).shape == (1, 4, 4, 1)


def test_wide_and_deep_one_example_hint():
    model = WideAndDeep(5, (4,), 1, rngs=nnx.Rngs(0))
    with pytest.raises(nnjax.ShapeError, match=r"`x_wide` has shape \(5,\).*x_wide\[None\]"):
        model(jnp.ones(5))


@pytest.mark.parametrize(
    ("make", "shape", "out"),
    [
        (lambda: MLP(6, (4,), 3, rngs=nnx.Rngs(0)), (0, 2, 3), (0, 3)),  # ZeroDivisionError
        (lambda: Autoencoder(6, (4,), 2, rngs=nnx.Rngs(0)), (0, 2, 3), (0, 2, 3)),
        (
            lambda: CNN((4, 4), 3, conv_features=(2,), dense=(4,), rngs=nnx.Rngs(0)),
            (0, 4, 4),
            (0, 3),
        ),
        (
            lambda: WideAndDeep(5, (4,), 1, deep_features=3, rngs=nnx.Rngs(0)),
            ((0, 5), (0, 3, 1)),
            (0, 1),
        ),
    ],
)
def test_empty_batches(make, shape, out):
    model = make()
    args = [jnp.ones(s) for s in shape] if isinstance(shape[0], tuple) else [jnp.ones(shape)]
    assert model(*args).shape == out


def _build(cls, **kw):
    if cls is MLP:
        return MLP(4, (3,), 2, rngs=nnx.Rngs(0), **kw)
    if cls is CNN:
        return CNN((4, 4), 2, conv_features=(2,), dense=(), rngs=nnx.Rngs(0), **kw)
    if cls is Autoencoder:
        return Autoencoder(4, (3,), 2, rngs=nnx.Rngs(0), **kw)
    if cls is ConvAutoencoder:
        return ConvAutoencoder((4, 4), (2,), 2, rngs=nnx.Rngs(0), **kw)
    return WideAndDeep(4, (3,), 1, rngs=nnx.Rngs(0), **kw)


MODELS = [MLP, CNN, Autoencoder, ConvAutoencoder, WideAndDeep]


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"param_dtype": jnp.int32}, r"`param_dtype` must be a floating dtype .*, got int32$"),
        ({"param_dtype": None}, r"`param_dtype` must be a floating dtype .*, got None$"),
        ({"dtype": jnp.int8}, r"`dtype` must be a floating dtype .* or None, got int8$"),
        ({"dtype": "nope"}, r"`dtype` must be a floating dtype .* or None, got 'nope'$"),
    ],
)
def test_non_floating_dtypes_are_refused_by_name(cls, kw, match):
    # param_dtype=int32 built integer parameters; dtype=int8 computed in integers.
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: {match}"):
        _build(cls, **kw)


@pytest.mark.parametrize("cls", MODELS)
def test_bfloat16_dtypes_build(cls):
    model = _build(cls, param_dtype=jnp.bfloat16, dtype="bfloat16")
    params = nnx.state(model, nnx.Param)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ConvAutoencoder((4, 4), (2,), 2, kernel_size=0, rngs=nnx.Rngs(0)),
            r"^ConvAutoencoder: `kernel_size\[0\]` must be a positive int, got 0",
        ),
        (
            lambda: ConvAutoencoder((4, 4), (2,), 2, activation="nope", rngs=nnx.Rngs(0)),
            r"^ConvAutoencoder: `activation`: unknown activation 'nope'",
        ),
        (
            lambda: Autoencoder(4, (3,), 2, output_activation="nope", rngs=nnx.Rngs(0)),
            r"^Autoencoder: `output_activation`: unknown activation 'nope'",
        ),
        (
            lambda: WideAndDeep(4, (3,), 1, activation="nope", rngs=nnx.Rngs(0)),
            r"^WideAndDeep: `activation`: unknown activation 'nope'",
        ),
        (
            lambda: CNN((4, 4), 2, dense=(-1,), rngs=nnx.Rngs(0)),
            r"^CNN: `dense\[0\]` must be a positive int, got -1",
        ),
    ],
)
def test_arguments_are_named_as_the_models(make, match):
    # These named the inner layer (Conv2D, MLP) instead of the model the user built.
    with pytest.raises(ValueError, match=match):
        make()
