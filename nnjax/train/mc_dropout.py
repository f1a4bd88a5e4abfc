"""Monte Carlo dropout: predictive mean and spread from stochastic forward passes.

Gal & Ghahramani (2016): keep dropout on at prediction time, run ``N`` passes with
independent masks and report the mean and standard deviation of the outputs.

How the randomness is handled (Flax 0.12): ``nnx.Dropout`` draws its masks from an
``RngStream`` stored in the model as ``nnx.RngKey``/``nnx.RngCount`` state. The model
is split once into ``(graphdef, params, rng_state, rest)`` with
``nnx.split(view, nnx.Param, nnx.RngState, ...)``; for sample ``s`` every ``RngKey``
leaf is replaced by a fresh key derived from ``split(key(seed), N)[s]`` (one per leaf,
so different dropout layers get different masks) and the model is merged and called
inside :func:`jax.vmap` over the ``N`` sample keys. We replace the keys by type rather
than with ``nnx.reseed``, which matches streams by *tag*: a ``Dropout`` built from
``nnx.Rngs(0)`` (no ``dropout`` stream) carries the tag ``"default"``, so reseeding
``dropout=`` would silently miss it. The results therefore depend only on ``seed``,
not on how far the model's own streams have advanced, and the model is not modified.
Batch normalisation stays in inference mode (running averages). ``precision`` runs the
passes as ``predict(precision=...)`` runs its one (:func:`nnjax.train.precision.make_forward`,
compiled as ``predict``'s program is: :func:`nnjax.train.eval_blocks.library_jit`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks
from nnjax.nn._modes import view_in_mode
from nnjax.train.compiled import cached
from nnjax.train.eval_blocks import library_jit
from nnjax.train.precision import canonical_precision, make_forward

PyTree = object


def mc_dropout_predict(
    model: nnx.Module,
    x: object,
    n_samples: int,
    seed: int | jax.Array = 0,
    *,
    precision: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Mean and standard deviation of ``n_samples`` forward passes with dropout on.

    Args:
      model: a Flax NNX model with dropout layers (``deterministic`` is overridden to
        ``False`` on a view; the model itself is not changed).
      x: a batch of inputs: an array, or a pytree of ``(B, ...)`` arrays passed as
        ``fit`` and ``predict`` pass them (a tuple as positional inputs, a dict as
        keyword inputs).
      n_samples: number of stochastic passes ``N`` (>= 1), vmapped, in one compiled call.
      seed: an int (Python or NumPy) or a PRNG key; the same seed gives the same result.
      precision: ``None`` (or ``"float32"``), ``"bfloat16"`` or ``"float16"``: each pass
        computed as ``predict(model, x, precision=...)`` computes (``"bfloat16"``: on
        GPUs and TPUs the model in bfloat16, on CPUs with native bfloat16 the float32
        model's matmuls on bfloat16 operands, elsewhere float32 with a warning).

    Returns:
      ``(mean, std)``, each shaped like ``model(x)``, float32 (or wider if the model's
      output is); ``std`` is the population standard deviation over the ``N`` samples.

    Raises:
      TypeError: if ``n_samples`` is not an int (a float, a bool).
      ValueError: if ``n_samples < 1``, or ``precision`` is none of those (before
        anything compiles).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(3, (16,), 2, dropout=0.5, rngs=nnx.Rngs(0))
      >>> mean, std = mc_dropout_predict(model, jnp.ones((4, 3)), n_samples=20, seed=0)
      >>> mean.shape, bool(jnp.all(std > 0))
      ((4, 2), True)
    """
    prepared = _prepare("mc_dropout_predict", model, x, n_samples, seed, precision)
    graphdef, n, precision, *arrays = prepared
    return _compiled(graphdef, n, precision, True)(*arrays)


def mc_dropout_samples(
    model: nnx.Module,
    x: object,
    n_samples: int,
    seed: int | jax.Array = 0,
    *,
    precision: str | None = None,
) -> jax.Array:
    """The ``N`` stochastic outputs themselves, stacked ``(N, *model(x).shape)``.

    Same randomness as :func:`mc_dropout_predict` (whose mean and std they give), for
    other summaries (quantiles, predictive entropy).

    Args:
      model: a Flax NNX model with dropout layers (``deterministic`` is overridden to
        ``False`` on a view; the model itself is not changed).
      x: a batch of inputs (e.g. ``(B, features)`` floats), or a pytree of them, as
        for :func:`mc_dropout_predict`.
      n_samples: number of stochastic passes ``N`` (>= 1), vmapped, in one compiled call.
      seed: an int (Python or NumPy) or a PRNG key; the same seed gives the same samples.
      precision: as for :func:`mc_dropout_predict`.

    Returns:
      ``(N, *model(x).shape)``: sample ``s`` is the output of pass ``s``, float32 (or
      wider if the model's output is).

    Raises:
      TypeError: if ``n_samples`` is not an int (a float, a bool).
      ValueError: if ``n_samples < 1``, or ``precision`` is unknown.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(3, (16,), 2, dropout=0.5, rngs=nnx.Rngs(0))
      >>> ys = mc_dropout_samples(model, jnp.ones((4, 3)), n_samples=5)
      >>> ys.shape, ys.dtype
      ((5, 4, 2), dtype('float32'))
      >>> mean, _ = mc_dropout_predict(model, jnp.ones((4, 3)), n_samples=5)
      >>> bool(jnp.allclose(ys.mean(axis=0), mean, atol=1e-6))
      True
    """
    prepared = _prepare("mc_dropout_samples", model, x, n_samples, seed, precision)
    graphdef, n, precision, *arrays = prepared
    return _compiled(graphdef, n, precision, False)(*arrays)


def fresh_keys(rng_state: PyTree, key: jax.Array) -> PyTree:
    """Reseeds RNG state: every key leaf gets a fresh key from ``key``, every count is zeroed.

    Key leaf ``i`` gets ``split(key, L)[i]`` (split further to the leaf's shape, for
    vmapped streams), so every stream in a model draws different masks; counts (the
    ``nnx.RngCount`` leaves) restart at zero, so the result depends on ``key`` only.

    Args:
      rng_state: a pytree of PRNG keys and integer counts, e.g. ``nnx.state(m, nnx.RngState)``.
      key: a PRNG key.

    Example:
      >>> keys = {"a": jax.random.key(1), "b": jax.random.key(2), "count": jnp.uint32(5)}
      >>> new = fresh_keys(keys, jax.random.key(0))
      >>> bool(jnp.all(jax.random.key_data(new["a"]) == jax.random.key_data(new["b"])))
      False
      >>> int(new["count"])
      0
    """
    leaves, treedef = jax.tree.flatten(rng_state)
    subkeys = jax.random.split(key, max(len(leaves), 1))
    new = [
        jax.random.split(k, jnp.shape(leaf)) if _is_key(leaf) else jnp.zeros_like(leaf)
        for k, leaf in zip(subkeys, leaves)
    ]
    return jax.tree.unflatten(treedef, new)


def _is_key(leaf) -> bool:
    return jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key)


def _prepare(op: str, model: nnx.Module, x, n_samples: int, seed, precision) -> tuple:
    """Checks the arguments and splits a dropout-on view of ``model`` for the jitted core.

    Returns ``(graphdef, n_samples, precision, params, rng_state, rest, x, key)``.
    """
    if not _checks.is_int(n_samples):
        raise TypeError(_checks.static_arg_message(op, "n_samples", n_samples, "an int >= 1"))
    n_samples = _checks.positive_int(op, "n_samples", n_samples)
    precision = canonical_precision(precision)
    key = jax.random.key(int(seed)) if _checks.is_int(seed) else seed
    view = view_in_mode(model, deterministic=False, use_running_average=True)
    # nnx.split's return type ends in a variadic tuple that mypy cannot unpack.
    graphdef, params, rng_state, rest = nnx.split(  # type: ignore[misc]
        view, nnx.Param, nnx.RngState, ...
    )
    x = jax.tree.map(jnp.asarray, x)
    return graphdef, n_samples, precision, params, rng_state, rest, x, key


@cached
def _compiled(graphdef: nnx.GraphDef, n_samples: int, precision, summary: bool):
    """The jitted ``(params, rng_state, rest, x, key) ->`` samples, or their mean and std."""
    forward = make_forward(graphdef, precision)

    # Everything the model is merged from enters the vmap as an argument: NNX refuses to
    # mutate (advance) an RngCount captured from an outer trace.
    def one(sample_key, params, rng_state, rest, x) -> jax.Array:
        y = forward(params, rest, x, fresh_keys(rng_state, sample_key))
        return y.astype(jnp.promote_types(y.dtype, jnp.float32))

    def samples(params, rng_state, rest, x, key) -> jax.Array:
        keys = jax.random.split(key, n_samples)
        return jax.vmap(one, (0, None, None, None, None))(keys, params, rng_state, rest, x)

    def mean_std(*args) -> tuple[jax.Array, jax.Array]:
        ys = samples(*args)
        return jnp.mean(ys, axis=0), jnp.std(ys, axis=0)

    return library_jit(graphdef, precision)(mean_std if summary else samples)
