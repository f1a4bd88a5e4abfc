"""Sweeps and ensembles: M models trained at once in one vmapped, compiled update step.

Each *member* has a seed and a value for every swept Optax hyperparameter. Members
are built separately (``model_fn(nnx.Rngs(seed))``), split with
:func:`~nnjax.train.step.split_model`, and their parameters, optimizer states and other
state are stacked on a new leading axis ``M``. The optimizer is wrapped in
``optax.inject_hyperparams``, so each member's learning rate (or any other numeric
hyperparameter) lives in its own optimizer state and one ``jax.vmap`` of the ordinary
:func:`~nnjax.train.step.make_train_step` trains all members; ``lax.scan`` runs
``steps_per_dispatch`` updates per dispatch.

Data-order rule: a member with seed ``s`` sees, in epoch ``e``, exactly the padded and
masked batches ``epoch_index(s, e, N, batch_size)`` (:mod:`nnjax.train.data`), the
same ones that ``fit(model, ..., seed=s)`` uses, through the same step and device loop.
So member ``i`` ends where training ``model_fn(nnx.Rngs(seed_i))`` alone with
``seed=seed_i`` and its hyperparameters ends (up to float32 reassociation: ``vmap``
batches the matrix products).

Example:
  >>> import numpy as np, optax
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
  >>> y = (x[:, 0] > 0).astype("int32")
  >>> result = sweep(lambda rngs: MLP(2, (8,), 2, rngs=rngs), (x, y),
  ...                loss="cross_entropy", optimizer=optax.sgd,
  ...                **grid(seeds=[0, 1], learning_rate=[0.1, 0.3]), epochs=2)
  >>> result.num_members, result.history["loss"].shape
  (4, (4, 2))
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nnjax import activations, losses
from nnjax.train import compiled
from nnjax.train import step as step_lib
from nnjax.train import validation as checks
from nnjax.train.compiled import cached, gathered, loop_steps
from nnjax.train.data import epoch_index
from nnjax.train.engine import epoch_logs
from nnjax.train.optimizers import get_optimizer

PyTree = Any
OptimizerFactory = Callable[..., optax.GradientTransformation]

#: Updates fused into one dispatch by ``lax.scan`` (as in ``fit``).
DEFAULT_STEPS_PER_DISPATCH = compiled.DEFAULT_STEPS_PER_DISPATCH


@dataclasses.dataclass
class SweepResult:
    """The trained members of a :func:`sweep`, stacked on a leading axis ``M``.

    Attributes:
      graphdef: the members' graph, in the mode ``model_fn`` built them in.
      params: stacked ``nnx.Param`` state, every leaf ``(M, ...)``.
      rest: stacked other state (batch statistics, RNG streams).
      opt_state: stacked ``optax.inject_hyperparams`` states.
      seeds: each member's seed, ``(M,)``.
      hyperparams: each swept hyperparameter's value per member, ``name -> (M,)``.
      history: per-epoch loss and exact metrics, ``name -> (M, epochs)``.
    """

    graphdef: nnx.GraphDef
    params: PyTree
    rest: PyTree
    opt_state: PyTree
    seeds: np.ndarray
    hyperparams: dict[str, np.ndarray]
    history: dict[str, np.ndarray]

    @property
    def num_members(self) -> int:
        """``M``, the number of members."""
        return len(self.seeds)

    def member(self, i: int) -> nnx.Module:
        """Member ``i`` as a standalone NNX model (a copy; training it leaves this intact)."""
        take = lambda a: jnp.array(a[i])
        return nnx.merge(
            self.graphdef, jax.tree.map(take, self.params), jax.tree.map(take, self.rest)
        )

    def best(self, metric: str = "loss", mode: str = "min") -> int:
        """The index of the member with the best final-epoch ``metric`` (NaN counts as worst)."""
        final = np.asarray(self.history[metric])[:, -1]
        if mode not in ("min", "max"):
            raise ValueError(f"SweepResult.best: `mode` must be 'min' or 'max', got {mode!r}")
        scores = np.where(np.isnan(final), np.inf, final if mode == "min" else -final)
        return int(np.argmin(scores))


def grid(seeds: Sequence[int] = (0,), **hyperparams: Sequence[float]) -> dict[str, Any]:
    """The Cartesian product of seeds and hyperparameter values, as :func:`sweep` arguments.

    Example:
      >>> g = grid(seeds=[0, 1], learning_rate=[1e-3, 1e-2])
      >>> g["seeds"], g["hyperparams"]["learning_rate"]
      ([0, 0, 1, 1], [0.001, 0.01, 0.001, 0.01])
    """
    names = list(hyperparams)
    combos = list(itertools.product(seeds, *(hyperparams[n] for n in names)))
    return {
        "seeds": [c[0] for c in combos],
        "hyperparams": {n: [c[j + 1] for c in combos] for j, n in enumerate(names)},
    }


def sweep(
    model_fn: Callable[[nnx.Rngs], nnx.Module],
    train: tuple[Any, Any],
    *,
    loss: str | losses.Loss,
    optimizer: str | OptimizerFactory = "adam",
    learning_rate: float = 1e-3,
    seeds: Sequence[int] = (0,),
    hyperparams: Mapping[str, Sequence[float]] | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    metrics: Any = ("accuracy",),
    steps_per_dispatch: int = DEFAULT_STEPS_PER_DISPATCH,
    shuffle: bool = True,
) -> SweepResult:
    """Trains ``M`` members (seeds x hyperparameters) together in one vmapped step.

    Members are zipped: member ``i`` has ``seeds[i]`` and ``hyperparams[name][i]``;
    any of these given with length 1 is broadcast to ``M`` (use :func:`grid` for a
    Cartesian product). Member ``i`` ends where training it alone does (see the module
    docstring for the data-order rule). A diverging member gets NaNs in ``history``
    and does not stop the others.

    Args:
      model_fn: builds one member from ``nnx.Rngs(seed)``; every member must have the
        same architecture.
      train: ``(x, y)`` arrays with the same leading length ``N``.
      loss: a name from :mod:`nnjax.losses` or a callable ``loss(logits, y)``.
      optimizer: an Optax optimizer factory (``optax.adam``, or a ``functools.partial``
        of one) or a name (``"adam"``, ``"sgd"``...). It is wrapped in
        ``optax.inject_hyperparams``; pass the same object to reuse the compiled step.
      learning_rate: used when ``hyperparams`` has no ``"learning_rate"``.
      seeds: each member's seed: its initialisation, dropout streams and data order.
      hyperparams: numeric keyword arguments of ``optimizer`` swept per member,
        e.g. ``{"learning_rate": [1e-3, 3e-3, 1e-2]}``.
      epochs: number of epochs.
      batch_size: examples per update (at most ``N``); the last batch is padded and masked.
      metrics: metric names or callables logged besides the loss.
      steps_per_dispatch: updates per compiled dispatch (``lax.scan``).
      shuffle: shuffle every epoch.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: bad data, member lists of different lengths, members with different
        architectures, or an unknown optimizer name.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> x = np.ones((16, 2), np.float32); y = np.zeros((16, 1), np.float32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 1, rngs=rngs), (x, y), loss="mse",
      ...           seeds=[0, 1, 2], batch_size=8, metrics=())
      >>> r.params["layers"][0]["kernel"].shape
      (3, 2, 4)
    """
    x, y = checks.check_dataset("train", train)
    if epochs < 0 or batch_size < 1 or steps_per_dispatch < 1:
        raise ValueError("sweep: epochs must be >= 0, batch_size and steps_per_dispatch >= 1")
    factory = _factory(optimizer)
    seed_list, hp = _members(seeds, {"learning_rate": [learning_rate], **(hyperparams or {})})
    metrics = tuple(metrics)
    step_lib.resolve_metrics(metrics)
    batch_size = min(batch_size, len(x))

    graphdef, model_graphdef, params, rest = _build_members(model_fn, seed_list)
    names = tuple(sorted(hp))
    opt_state = _stack(
        [
            optax.inject_hyperparams(factory)(**{n: hp[n][i] for n in names}).init(p)
            for i, p in enumerate(_unstack(params, len(seed_list)))
        ]
    )
    k = steps_per_dispatch
    run = _compiled_sweep(graphdef, losses.get(loss), factory, names, metrics, k)
    device_data = (jnp.asarray(x), jnp.asarray(y), jnp.ones(len(x), jnp.float32))
    metric_list = step_lib.resolve_metrics(metrics)
    logs: dict[str, list] = {}
    for epoch in range(epochs):
        order = [epoch_index(s, epoch, len(x), batch_size, shuffle=shuffle) for s in seed_list]
        idx, mask = np.stack([o[0] for o in order]), np.stack([o[1] for o in order])
        outs = []
        for start in range(0, idx.shape[1], k):
            n = min(k, idx.shape[1] - start)
            pad = ((0, 0), (0, k - n), (0, 0))
            chunk = np.pad(idx[:, start : start + n], pad), np.pad(mask[:, start : start + n], pad)
            params, opt_state, rest, out = run(params, opt_state, rest, device_data, *chunk, n)
            outs.append(out)
        for name, values in _member_logs(jax.device_get(outs), metric_list).items():
            logs.setdefault(name, []).append(values)
    history = {name: np.stack(v, axis=1) for name, v in logs.items()}
    return SweepResult(
        graphdef=model_graphdef,
        params=params,
        rest=rest,
        opt_state=opt_state,
        seeds=np.asarray(seed_list),
        hyperparams={n: np.asarray(hp[n]) for n in names},
        history=history,
    )


def _factory(optimizer: str | OptimizerFactory) -> OptimizerFactory:
    if callable(optimizer) and not isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if isinstance(optimizer, str):
        get_optimizer(optimizer)  # raises, listing the known names, if unknown
        return getattr(optax, optimizer.lower())
    raise ValueError(
        "sweep: `optimizer` must be an Optax optimizer factory such as optax.adam (its "
        f"hyperparameters are injected per member) or a name, got {optimizer!r}"
    )


def _members(seeds: Sequence[int], hp: Mapping[str, Sequence[float]]):
    lists = {"seeds": list(seeds), **{n: list(np.atleast_1d(v).tolist()) for n, v in hp.items()}}
    m = max(len(v) for v in lists.values())
    bad = {n: len(v) for n, v in lists.items() if len(v) not in (1, m)}
    if bad or min(len(v) for v in lists.values()) == 0:
        lengths = {n: len(v) for n, v in lists.items()}
        raise ValueError(
            f"sweep: seeds and swept hyperparameters must have the same length (or 1), got "
            f"lengths {lengths}"
        )
    full = {n: v * m if len(v) == 1 else v for n, v in lists.items()}
    return [int(s) for s in full.pop("seeds")], full


def _build_members(model_fn, seeds):
    cache: dict[int, tuple] = {}
    for s in dict.fromkeys(seeds):
        model = model_fn(nnx.Rngs(s))
        cache[s] = (*step_lib.split_model(model), nnx.graphdef(model))
    graphdefs = {cache[s][0] for s in cache}
    if len(graphdefs) != 1:
        raise ValueError(
            "sweep: `model_fn` built members with different architectures for seeds "
            f"{sorted(cache)}; every member must have the same structure"
        )
    first = cache[seeds[0]]
    params = _stack([cache[s][1] for s in seeds])
    rest = _stack([cache[s][2] for s in seeds])
    return first[0], first[3], params, rest


def _stack(trees: Sequence[PyTree]) -> PyTree:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _unstack(tree: PyTree, m: int) -> list[PyTree]:
    return [jax.tree.map(lambda a, i=i: a[i], tree) for i in range(m)]


def _member_logs(outs: list[dict], metric_list) -> dict[str, np.ndarray]:
    """Per-member epoch logs ``name -> (M,)`` from dispatch logs with leaves ``(M, K, ...)``."""
    members = len(outs[0]["loss"])
    per = [
        epoch_logs([jax.tree.map(lambda a, i=i: a[i], o) for o in outs], metric_list)
        for i in range(members)
    ]
    return {name: np.array([p[name] for p in per]) for name in per[0]}


@cached
def _compiled_sweep(graphdef, loss, factory, names: tuple[str, ...], metrics: tuple, k: int):
    """The compiled sweep step ``run(params, opt_state, rest, data, idx, mask, n)``.

    ``idx`` and ``mask`` are ``(M, K, B)``: up to K updates per member, each batch gathered
    from the device-resident ``data``.
    """
    # Placeholder values: inject_hyperparams reads every member's values from its state.
    tx = optax.inject_hyperparams(factory)(**dict.fromkeys(names, 0.0))
    steps = loop_steps(step_lib.make_train_step(graphdef, loss, tx, metrics), k)

    def run(params, opt_state, rest, data, idx, mask, n):
        def member(p, o, r, rows, m):
            return steps(p, o, r, lambda i: gathered(data, rows, m, i, None), n)

        return jax.vmap(member)(params, opt_state, rest, idx, mask)

    return jax.jit(run, donate_argnums=(0, 1, 2))


def ensemble_predict(
    result: SweepResult,
    x: jax.typing.ArrayLike,
    *,
    activation: str | activations.Activation | None = None,
) -> jax.Array:
    """The mean over members of ``activation(member(x))``, members in inference mode.

    Args:
      result: a :class:`SweepResult` (e.g. an ensemble of seeds).
      x: a batch of inputs.
      activation: applied to each member's output before averaging, e.g. ``"softmax"``
        to average class probabilities; ``None`` averages the raw outputs.

    Returns:
      Shaped like one member's output.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> x = np.ones((16, 2), np.float32); y = np.zeros(16, np.int32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 3, rngs=rngs), (x, y),
      ...           loss="cross_entropy", seeds=[0, 1], batch_size=8, epochs=0)
      >>> ensemble_predict(r, x[:5], activation="softmax").shape
      (5, 3)
    """
    template = result.member(0)
    eval_graphdef = step_lib.graphdef_for(template, training=False)
    fn = None if activation is None else activations.get(activation)
    predict = _compiled_ensemble(eval_graphdef, fn)
    return predict(result.params, result.rest, jnp.asarray(x))


def member_predictions(result: SweepResult, x: jax.typing.ArrayLike) -> jax.Array:
    """Every member's output on ``x`` (inference mode), stacked ``(M, *output_shape)``.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> x = np.ones((8, 2), np.float32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 1, rngs=rngs), (x, x[:, :1]), loss="mse",
      ...           seeds=[0, 1, 2], metrics=(), epochs=0)
      >>> member_predictions(r, x).shape
      (3, 8, 1)
    """
    eval_graphdef = step_lib.graphdef_for(result.member(0), training=False)
    return _compiled_members(eval_graphdef)(result.params, result.rest, jnp.asarray(x))


@cached
def _compiled_members(eval_graphdef: nnx.GraphDef) -> Callable:
    predict = step_lib.make_predict_step(eval_graphdef)
    return jax.jit(jax.vmap(predict, in_axes=(0, 0, None)))


@cached
def _compiled_ensemble(eval_graphdef: nnx.GraphDef, fn: Callable | None) -> Callable:
    members = jax.vmap(step_lib.make_predict_step(eval_graphdef), in_axes=(0, 0, None))

    def predict(params, rest, x):
        ys = members(params, rest, x)
        return jnp.mean(ys if fn is None else fn(ys), axis=0)

    return jax.jit(predict)
