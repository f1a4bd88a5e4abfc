"""``fit``: the epoch loop around the pure, jit-compiled update step.

Guarantees (CPU, same shapes and devices): the same ``seed`` gives bitwise the same
parameters; a run resumed with ``resume_from`` from the checkpoint of epoch ``k`` ends
bitwise where the uninterrupted run ends (each epoch's data order is a function of
``(seed, epoch)``, and the checkpoint carries optimizer state and dropout RNG state).
Sharded runs match unsharded ones up to floating-point reassociation (allclose).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from nnjax import losses
from nnjax.train import checkpoint, sharding, step
from nnjax.train import validation as checks
from nnjax.train.callbacks import Callback, CallbackList
from nnjax.train.evaluate import cached, evaluate_arrays
from nnjax.train.history import History
from nnjax.train.optimizers import get_optimizer
from nnjax.train.progress import EpochProgress, resolve_verbose
from nnjax.train.state import TrainState, epoch_batches

#: Updates fused into one compiled dispatch by ``lax.scan``. Small-batch CPU training is
#: dominated by per-dispatch overhead: for a 784-128-10 MLP at batch 32 on a 2-core CPU,
#: one step per dispatch measured about half the throughput of 4 to 32 (which were level
#: within noise). 8 amortises the overhead while the progress bar and callbacks still
#: run every few milliseconds and the host gathers only 8 batches ahead.
DEFAULT_STEPS_PER_DISPATCH = 8


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``epoch`` and ``step`` say where.

    Example:
      >>> err = NonFiniteLossError(2, 5, float("nan"))
      >>> err.epoch, err.step
      (2, 5)
    """

    def __init__(self, epoch: int, step: int, value: float) -> None:
        self.epoch, self.step, self.value = epoch, step, value
        super().__init__(
            f"non-finite training loss {value} at epoch {epoch}, step {step} of the epoch "
            "(0-based); training stopped. Checkpoints written by ModelCheckpoint before "
            "this epoch are intact; lower the learning rate or clip gradients"
        )


@cached
def compiled_train(graphdef: nnx.GraphDef, loss: Any, tx: Any, metrics: tuple) -> Callable:
    """The jitted, donating, scanned update step; memoised so repeated ``fit`` calls
    with the same graph, loss, optimizer and metrics reuse one compiled function."""
    return step.jit_train_step(graphdef, loss, tx, metrics, scan=True)


class Loop:
    """The running state of one ``fit`` call, as callbacks see it (``callback.loop``).

    Attributes:
      model: the model being trained (updated from ``state`` when training ends).
      state: the current :class:`TrainState` (device arrays, replicated on ``mesh``).
      mesh: the device mesh; batches are sharded along its ``'data'`` axis.
      history: the :class:`History` so far.
      epoch: the current epoch.
      global_step: updates done, counted from the start of the run (resumes included).
      seed: the data-order seed.
      stop_training: set to ``True`` to stop after the current epoch.
    """

    def __init__(self, model, state, mesh, history, seed, global_step):
        self.model, self.state, self.mesh, self.history = model, state, mesh, history
        self.seed, self.global_step = seed, global_step
        self.epoch, self.stop_training = 0, False

    def put_state(self, tree: Any) -> Any:
        """Places a pytree (e.g. host copies of params) on the mesh, replicated."""
        return sharding.put_replicated(tree, self.mesh)


def _check_model(model, graphdef, params, rest, loss, train, val):
    out = checks.output_shape(model, graphdef, params, rest, train[0])
    checks.check_labels(out, train[1], "train")
    checks.check_loss_accepts(loss, out, train[1], "train")
    if val is not None:
        out = checks.output_shape(model, graphdef, params, rest, val[0])
        checks.check_labels(out, val[1], "validation")
        checks.check_loss_accepts(loss, out, val[1], "validation")


def _resume(directory, state: TrainState, seed: int):
    parts, meta = checkpoint.restore_checkpoint(directory, state._asdict())
    if meta.get("seed") != seed:
        raise ValueError(
            f"checkpoint in {directory} was trained with seed={meta.get('seed')}, but fit got "
            f"seed={seed}; pass the same seed to resume the same data order"
        )
    history = History.from_dict(meta["history"])
    return TrainState(**parts), history, meta["epoch"] + 1, meta["global_step"]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The fixed inputs of one ``fit`` call's epoch loop."""

    train_fn: Callable
    x: np.ndarray
    y: np.ndarray
    val: tuple[np.ndarray, np.ndarray] | None
    epochs: int
    batch_size: int
    chunk: int
    shuffle: bool
    verbose: int
    eval_graphdef: nnx.GraphDef
    loss: Any
    metrics: tuple


def _run_epoch(loop: Loop, plan: _Plan, epoch: int, bar: EpochProgress, cbs: Callback):
    idx = epoch_batches(loop.seed, epoch, len(plan.x), plan.batch_size, shuffle=plan.shuffle)
    logs = []
    for start in range(0, len(idx), plan.chunk):
        rows = idx[start : start + plan.chunk]
        batch = sharding.put_batch((plan.x[rows], plan.y[rows]), loop.mesh)
        *state, out = plan.train_fn(*loop.state, *batch)
        loop.state = TrainState(*state)
        logs.append(out)
        loop.global_step += len(rows)
        bar.update(len(rows))
        cbs.on_dispatch_end(loop.global_step, batch)
    host = jax.device_get(logs)
    return {name: np.concatenate([out[name] for out in host]) for name in host[0]}


def _epochs(loop: Loop, plan: _Plan, cbs: Callback, initial_epoch: int) -> None:
    """The epoch loop of :func:`fit`; fills ``loop.history`` and ends with ``on_train_end``."""
    steps = len(plan.x) // plan.batch_size
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, plan.epochs):
        loop.epoch = epoch
        cbs.on_epoch_begin(epoch)
        bar = EpochProgress(epoch=epoch, epochs=plan.epochs, steps=steps, verbose=plan.verbose)
        per_step = _run_epoch(loop, plan, epoch, bar, cbs)
        bad = np.flatnonzero(~np.isfinite(per_step["loss"]))
        if bad.size:
            bar.close({})
            raise NonFiniteLossError(epoch, int(bad[0]), float(per_step["loss"][bad[0]]))
        logs = {name: float(np.mean(values)) for name, values in per_step.items()}
        if plan.val is not None:
            val_logs = evaluate_arrays(
                plan.eval_graphdef,
                loop.state.params,
                loop.state.rest,
                *plan.val,
                loss=plan.loss,
                metrics=plan.metrics,
                batch_size=plan.batch_size,
                mesh=loop.mesh,
            )
            logs.update({f"val_{name}": value for name, value in val_logs.items()})
        bar.close(logs)
        loop.history.append(epoch, logs)
        cbs.on_epoch_end(epoch, logs)
        if loop.stop_training:
            break
    cbs.on_train_end(logs)


def fit(
    model: nnx.Module,
    train: tuple[Any, Any],
    *,
    loss: str | losses.Loss,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float = 1e-3,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: tuple[Any, Any] | None = None,
    metrics: Sequence[step.MetricSpec] = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    verbose: int | str = "auto",
    initial_epoch: int = 0,
    resume_from: str | os.PathLike | None = None,
    steps_per_dispatch: int = DEFAULT_STEPS_PER_DISPATCH,
    devices: Sequence[jax.Device] | None = None,
    shuffle: bool = True,
    check_inputs: bool = True,
    validation: tuple[Any, Any] | None = None,
) -> History:
    """Trains ``model`` on ``train = (x, y)``; the trained weights land back in ``model``.

    Every update is one pure, jitted, donating step (:mod:`nnjax.train.step`);
    ``steps_per_dispatch`` of them run per dispatch under ``lax.scan``. Each epoch uses
    the full batches of a permutation fixed by ``(seed, epoch)`` (the remainder is
    dropped, so shapes never change and nothing recompiles). Inputs are checked before
    anything compiles. A NaN/inf training loss raises :class:`NonFiniteLossError`.

    Args:
      model: a Flax NNX model; its ``nnx.Param`` s are trained, its other state
        (batch statistics, RNG streams) is carried through every step.
      train: ``(x, y)`` NumPy/JAX arrays with the same leading length; ``x`` floating.
      loss: a name from :mod:`nnjax.losses` or a callable ``loss(logits, y)``.
      optimizer: an ``optax.GradientTransformation`` or a name (``"adam"``, ``"sgd"``...).
      learning_rate: for a named optimizer.
      epochs: train until this epoch count (counting ``initial_epoch``/resumed ones).
      batch_size: examples per update (at most the data set size).
      validation_data: ``(x, y)`` evaluated after every epoch (``val_*`` metrics).
      metrics: metric names or callables ``m(logits, y)`` logged besides the loss.
      callbacks: :class:`~nnjax.train.callbacks.Callback` instances.
      seed: fixes the data order of every epoch.
      verbose: ``"auto"`` (a progress bar on a terminal, silent otherwise), 0, 1, 2.
      initial_epoch: the epoch to start from (when not resuming from a checkpoint).
      resume_from: a :class:`~nnjax.train.checkpoint.ModelCheckpoint` folder; if it
        holds a checkpoint, training continues after its epoch with its parameters,
        optimizer state, model state and history (otherwise it starts afresh).
      steps_per_dispatch: updates per compiled dispatch.
      devices: devices to shard each batch over (default: all local devices when they
        divide ``batch_size``, else one); parameters are replicated.
      shuffle: shuffle every epoch.
      check_inputs: reject integer ``x`` (raw images); off for token-id models.
      validation: deprecated alias of ``validation_data``.

    Returns:
      The :class:`History` of per-epoch metrics (including resumed epochs).

    If a callback or the user (``KeyboardInterrupt``) stops training with an exception,
    ``model`` holds the weights of the last completed dispatch; after a
    :class:`NonFiniteLossError` it keeps the weights it had before ``fit``.

    Raises:
      ValueError, TypeError: bad data, labels out of range, wrong input shape.
      NonFiniteLossError: the loss became NaN or infinite.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (8,), 2, rngs=nnx.Rngs(0))
      >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> history = fit(model, (x, y), loss="cross_entropy", epochs=2, verbose=0)
      >>> len(history.history["loss"])
      2
    """
    if validation is not None:
        if validation_data is not None:
            raise ValueError("pass `validation_data` only (`validation` is its deprecated alias)")
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("nnjax."):
            # nnjax's own callers (the CLI) are migrating; users are told
            warnings.warn(
                "fit(validation=...) is deprecated; pass validation_data=...",
                DeprecationWarning,
                stacklevel=2,
            )
    val = validation if validation is not None else validation_data
    x, y = checks.check_dataset("train", train, check_inputs=check_inputs)
    val = (
        None if val is None else checks.check_dataset("validation", val, check_inputs=check_inputs)
    )
    if epochs < 0 or steps_per_dispatch < 1 or batch_size < 1:
        raise ValueError("epochs must be >= 0, batch_size and steps_per_dispatch >= 1")
    metrics = tuple(metrics)
    step.resolve_metrics(metrics)
    losses.get(loss)
    tx = get_optimizer(optimizer, learning_rate)
    batch_size = min(batch_size, len(x))
    graphdef, params, rest = step.split_model(model)
    eval_graphdef = step.graphdef_for(model, training=False)
    _check_model(model, graphdef, params, rest, loss, (x, y), val)
    mesh = sharding.make_mesh(sharding.choose_devices(batch_size, devices))

    state, history, global_step = TrainState(params, tx.init(params), rest), History(), 0
    if resume_from is not None and checkpoint.latest_epoch(resume_from) is not None:
        state, history, initial_epoch, global_step = _resume(resume_from, state, seed)
    loop = Loop(model, sharding.put_replicated(state, mesh), mesh, history, seed, global_step)
    cbs = CallbackList(callbacks)
    cbs.set_loop(loop)
    plan = _Plan(
        train_fn=compiled_train(graphdef, loss, tx, metrics),
        x=x,
        y=y,
        val=val,
        epochs=epochs,
        batch_size=batch_size,
        chunk=steps_per_dispatch,
        shuffle=shuffle,
        verbose=resolve_verbose(verbose),
        eval_graphdef=eval_graphdef,
        loss=loss,
        metrics=metrics,
    )
    cbs.on_train_begin()
    try:
        _epochs(loop, plan, cbs, initial_epoch)
    except NonFiniteLossError:
        raise  # the state holds NaNs: the model keeps the weights it had before fit
    except BaseException:
        nnx.update(model, loop.state.params, loop.state.rest)  # e.g. KeyboardInterrupt
        raise
    nnx.update(model, loop.state.params, loop.state.rest)
    return history


__all__ = ["DEFAULT_STEPS_PER_DISPATCH", "Loop", "NonFiniteLossError", "compiled_train", "fit"]
