"""The epoch loop of ``fit``: dispatches from the feeder, logs, callbacks, validation.

Example:
  >>> import numpy as np
  >>> epoch_logs([{"loss": np.array([1.0, 3.0]), "count": np.array([2.0, 2.0]),
  ...              "logs": {}, "metrics": {}}], ())
  {'loss': 2.0}
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx

from nnjax import metrics as metrics_lib
from nnjax._deprecation import user_stacklevel
from nnjax.train import (
    compiled,
    in_flight,
    loss_scale,
    nonfinite_causes,
    optax_checks,
    optimizers,
)
from nnjax.train.driver import CallbackDriver, Run
from nnjax.train.feeder import DeviceFeeder
from nnjax.train.interrupts import deferred_interrupt, held_interrupts
from nnjax.train.progress import EpochProgress
from nnjax.train.state import TrainState


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``epoch`` and ``step`` say where.

    The message counts both from 1, as the progress bar and the CLI print epochs.

    Args:
      epoch: the epoch, 0-based.
      step: the step within the epoch, 0-based.
      value: the loss value (NaN or ±inf).
      cause: what to try, ending the message (default: lower the learning rate or clip
        gradients).

    Attributes:
      epoch: as given.
      step: as given.
      value: as given.
      cause: as given, or ``None``.

    Example:
      >>> err = NonFiniteLossError(2, 5, float("nan"))
      >>> err.epoch, err.step
      (2, 5)
    """

    def __init__(self, epoch: int, step: int, value: float, cause: str | None = None) -> None:
        self.epoch, self.step, self.value, self.cause = epoch, step, value, cause
        super().__init__(
            f"non-finite training loss {value} in epoch {epoch + 1}, update {step + 1} of "
            "the epoch (counted from 1, as the progress bar); training stopped. Checkpoints "
            "written by ModelCheckpoint before this epoch are intact; "
            f"{cause or 'lower the learning rate or clip gradients'}"
        )


@dataclasses.dataclass(frozen=True)
class Plan:
    """The fixed parts of one ``fit`` call's epoch loop.

    Attributes:
      train_fn: the compiled dispatch (:func:`nnjax.train.compiled.compiled_train`):
        ``train_fn(treedef, leaves, *chunk.args) -> (leaves, out)`` over the state's
        flat arrays (:func:`nnjax.train.flat_dispatch.on_leaves`).
      feeder: the training :class:`~nnjax.train.feeder.DeviceFeeder` (or anything with
        its ``epoch(seed, epoch, shuffle=...)``; an optional ``depth`` bounds the
        dispatches queued, default :data:`nnjax.train.in_flight.DEPTH`).
      validate: ``validate(state) -> logs`` or None.
      metrics: the resolved training metrics.
      epochs: the final epoch count.
      steps: updates per epoch (None when unknown).
      shuffle: shuffle array data every epoch.
      verbose: 0, 1 or 2.
      logs_fn: ``logs_fn(state, host_outs, epoch) -> logs``: the epoch's logs from the
        state after the epoch and the host copies of every dispatch's output. ``None``
        (``fit``): :func:`fit_logs` (a NaN loss raises, then the loss, the exact
        metrics, ``val_*`` from ``validate`` and the learning rate). A sweep passes its
        own (per-member arrays).
    """

    train_fn: Callable
    feeder: DeviceFeeder | Any  # anything with epoch(seed, epoch, shuffle=...) -> Chunks
    validate: Callable[[TrainState], dict[str, float]] | None
    metrics: Sequence[metrics_lib.Metric]
    epochs: int
    steps: int | None
    shuffle: bool
    verbose: int
    logs_fn: Callable[[Any, list[dict], int], dict[str, Any]] | None = None


def count_weighted_mean(values: Sequence[Any], counts: Sequence[Any]) -> float:
    """``sum(value * count) / max(sum(count), 1)`` in float64 over batches' host arrays.

    How an epoch's loss and a ``loss_fn``'s logs are averaged over batches (each value
    weighted by its batch's real rows), in training and validation alike.

    Example:
      >>> count_weighted_mean([np.array([1.0, 4.0])], [np.array([4.0, 2.0])])
      2.0
    """
    count = np.concatenate([np.ravel(c) for c in counts]).astype(np.float64)
    return float(
        np.dot(np.concatenate([np.ravel(v) for v in values]), count) / max(count.sum(), 1.0)
    )


def epoch_logs(outs: list[dict], metrics: Sequence[metrics_lib.Metric]) -> dict[str, float]:
    """The epoch's loss (example-weighted), ``loss_fn`` logs and exact metrics.

    Computed from the host logs of every dispatch (leaves stacked ``(K, ...)``).
    """
    mean = functools.partial(count_weighted_mean, counts=[o["count"] for o in outs])
    logs = {"loss": mean([o["loss"] for o in outs])}
    for name in outs[0]["logs"]:
        logs[name] = mean([o["logs"][name] for o in outs])
    for metric in metrics:
        parts = [o["metrics"][metric.name] for o in outs]
        stats = metrics_lib.accumulate(metric, parts, stacked=True)
        logs[metric.name] = metric.result(stats)
    return logs


def _check_finite(
    outs: list[dict], epoch: int, *, skipped: bool = False, additive: Sequence[str] = ()
) -> list[dict]:
    """``outs``; a :class:`NonFiniteLossError` at the first non-finite loss.

    With ``skipped`` (``optax.apply_if_finite`` skips those updates) only an epoch
    without one finite loss raises; the others are returned with the non-finite
    updates weighted zero in the loss, ``loss_fn`` logs and the ``additive`` metrics
    (statistics summed over batches), with a warning.
    """
    losses = np.concatenate([np.ravel(o["loss"]) for o in outs])
    bad = np.flatnonzero(~np.isfinite(losses))
    if not bad.size:
        return outs
    counts = np.concatenate([np.ravel(o["count"]) for o in outs])
    updates = int(np.sum((counts > 0) | ~np.isfinite(losses)))  # not a dispatch's unused slots
    if not skipped or bad.size == updates:
        cause = None
        if skipped:
            cause = "optax.apply_if_finite skipped every update of the epoch: clean the data"
        raise NonFiniteLossError(epoch, int(bad[0]), float(losses[bad[0]]), cause)
    warnings.warn(
        f"epoch {epoch + 1}: {bad.size} of {updates} updates had a non-finite loss; "
        "optax.apply_if_finite skipped them; the epoch's loss and summed metrics leave them "
        "out (metrics over all predictions, AUC and r2, do not)",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )
    return [_finite_only(o, additive) for o in outs]


def _finite_only(out: dict, additive: Sequence[str]) -> dict:
    """One dispatch's host logs with its non-finite updates weighted zero."""
    finite = np.isfinite(out["loss"])
    zeroed = lambda a: np.where(finite.reshape(finite.shape + (1,) * (a.ndim - finite.ndim)), a, 0)
    stats = {k: jax.tree.map(zeroed, v) if k in additive else v for k, v in out["metrics"].items()}
    return {
        **out,
        "loss": np.where(finite, out["loss"], 0),
        "count": np.where(finite, out["count"], 0),
        "logs": jax.tree.map(zeroed, out["logs"]),
        "metrics": stats,
    }


def fit_logs(plan: Plan, state: TrainState, host: list[dict], epoch: int) -> dict[str, float]:
    """``fit``'s epoch logs: loss and metrics, ``val_*``, the learning rate and loss scale.

    Raises :class:`NonFiniteLossError` first if any update's loss was NaN or infinite,
    unless the optimizer skips such updates (``optax.apply_if_finite``): the epoch's
    logs then leave them out, with a warning (every update non-finite still raises).
    """
    skipped = optax_checks.skips_nonfinite(state.opt_state)
    additive = [m.name for m in plan.metrics if not m.concat and m.merge is None]
    host = _check_finite(host, epoch, skipped=skipped, additive=additive)
    logs = epoch_logs(host, plan.metrics)
    if plan.validate is not None:
        logs.update({f"val_{k}": v for k, v in plan.validate(state).items()})
    hyper = optimizers.hyperparameters(state.opt_state)
    if "learning_rate" in hyper:
        logs["learning_rate"] = float(str(np.float32(jax.device_get(hyper["learning_rate"]))))
    scale = loss_scale.logged(state.opt_state)
    if scale is not None:
        logs["loss_scale"] = float(scale)
    return logs


def _dispatch(run: Run, plan: Plan, chunk: Any, bar: EpochProgress) -> Any:
    """One compiled dispatch; reports a compile when this call traced the step."""
    traces = compiled.TRACES.count
    start = time.perf_counter()
    if plan.verbose:
        compiled.TRACES.listener = bar.compiling
    # the step donates run.state: a Ctrl-C between the dispatch and the assignment
    # would leave the model on deleted buffers (and one during compilation can crash XLA)
    with deferred_interrupt():
        try:
            leaves, out = plan.train_fn(run.treedef, run.leaves, *chunk.args)
        finally:
            compiled.TRACES.listener = None
        run.set_leaves(leaves)  # of a TrainState, or of a sweep's state
    if compiled.TRACES.count != traces:
        jax.block_until_ready(out)
        bar.compiled(time.perf_counter() - start)
    return out


def _marking_bad_batches(run: Run, chunks: Iterable) -> Iterator:
    """``chunks``; a ``ValueError``/``TypeError`` while reading them sets ``run.bad_batch``.

    (A bad batch of the data, as opposed to a callback's error: ``fit`` then gives the
    model back the weights it had before.)
    """
    try:
        yield from chunks
    except (ValueError, TypeError):
        run.bad_batch = True
        raise


def _none() -> None:
    return None


def run_epoch(
    run: Run, plan: Plan, driver: CallbackDriver, epoch: int, deliver: Callable[[], None] = _none
) -> dict[str, float]:
    """Trains one epoch; returns its logs (train and validation metrics, learning rate).

    ``deliver()`` (:func:`~nnjax.train.interrupts.held_interrupts`) runs after every
    dispatch: a held Ctrl-C is raised there.
    """
    start = time.perf_counter()
    bar = EpochProgress(epoch=epoch, epochs=plan.epochs, steps=plan.steps, verbose=plan.verbose)
    outs: list[dict] = []
    try:
        for chunk in _marking_bad_batches(
            run, plan.feeder.epoch(run.seed, epoch, shuffle=plan.shuffle)
        ):
            outs.append(_dispatch(run, plan, chunk, bar))
            in_flight.throttle(outs, getattr(plan.feeder, "depth", in_flight.DEPTH))
            run.global_step += chunk.steps
            loss = None
            if len(outs) > 1 and bar.wants_loss():
                prev = jax.device_get({k: outs[-2][k] for k in ("loss", "count")})
                loss = float(np.dot(prev["loss"], prev["count"]) / max(prev["count"].sum(), 1))
            bar.update(chunk.steps, loss)
            driver.dispatch_end(chunk.args)
            deliver()
        host = jax.device_get(outs)
        logs_fn = plan.logs_fn or functools.partial(fit_logs, plan)
        logs = logs_fn(run.state, host, epoch)
    except BaseException:
        if bar.bar is not None:
            bar.bar.close()
        raise
    bar.close(logs, time.perf_counter() - start)
    return logs


def run_epochs(run: Run, plan: Plan, driver: CallbackDriver, initial_epoch: int) -> None:
    """The epoch loop: fills ``run.history``; ends with ``on_train_end``.

    ``run.state`` is any pytree (``TrainState`` for ``fit``; a sweep adds its members'
    active mask); the dispatch takes and returns it flat:
    ``train_fn(treedef, leaves, *chunk.args) -> (leaves, out)``
    (:func:`nnjax.train.flat_dispatch.on_leaves`). ``run.history`` is anything with
    ``append(epoch, logs)``: it is appended before ``on_epoch_end`` (callbacks see the
    epoch in it); one with ``amend(epoch, logs)``
    (:meth:`nnjax.train.history.History.amend`) then records what the callbacks added
    to the shared ``logs`` dict. When it returns or fails, the callbacks' view lets go
    of the run's arrays (:meth:`CallbackDriver.close`).
    """
    try:
        _epochs(run, plan, driver, initial_epoch)
    finally:
        driver.close()  # a callback the user keeps holds no arrays of the run


def _epochs(run: Run, plan: Plan, driver: CallbackDriver, initial_epoch: int) -> None:
    logs: dict[str, float] = {}
    with held_interrupts() as deliver:  # a Ctrl-C is raised at the next safe point
        deliver()  # one held during fit's or sweep's setup (holding_interrupts)
        for epoch in range(initial_epoch, plan.epochs):
            if run.stop and epoch == initial_epoch > 0:  # a resumed run that had ended
                break  # (EarlyStopping's replay); otherwise one epoch runs, as before
            driver.epoch_begin(epoch)
            logs = run_epoch(run, plan, driver, epoch, deliver)
            run.history.append(epoch, logs)  # callbacks see this epoch in the history
            driver.epoch_end(epoch, logs)
            amend = getattr(run.history, "amend", None)
            if amend is not None:  # what callbacks added to logs (Keras records it)
                amend(epoch, logs)
            deliver()
            if run.stop:
                break
        driver.train_end(logs)


def train_into(
    model: nnx.Module, run: Run, plan: Plan, driver: CallbackDriver, initial_epoch: int, source: Any
) -> None:
    """``fit``'s epochs (:func:`run_epochs`); the trained state lands in ``model``.

    A non-finite loss (:class:`NonFiniteLossError`, naming the inputs when ``source`` holds
    NaN or inf, or ids outside the model's embedding table) or a bad batch leaves ``model``
    with the weights it had before ``fit``; any other failure (a callback's error,
    KeyboardInterrupt) keeps what was trained, then raises. A failure inside a compiled
    update (a host callback's error, memory exhausted) has consumed the donated state:
    ``model`` then keeps the weights it had before ``fit``, and the error says so in a note.
    """
    try:
        run_epochs(run, plan, driver, initial_epoch)
    except NonFiniteLossError as err:  # the model keeps the weights it had before fit
        raise _diagnosed(err, model, source) from None
    except (ValueError, TypeError) as err:
        if not run.bad_batch:  # a callback's, say: keep what was trained
            _land_after_failure(model, run, err)
        raise  # a bad batch: the model keeps the weights it had before fit
    except BaseException as err:  # e.g. KeyboardInterrupt
        _land_after_failure(model, run, err)
        raise
    nnx.update(model, run.state.params, run.state.rest)


def _consumed(tree: Any) -> bool:
    """Whether an array of ``tree`` was deleted (donated) or holds a failed computation."""
    leaves = [leaf for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]
    if any(leaf.is_deleted() for leaf in leaves):
        return True
    try:
        jax.block_until_ready(leaves)
    except Exception:  # the computation that made them failed
        return True
    return False


def _land_after_failure(model: nnx.Module, run: Run, err: BaseException) -> None:
    """What was trained lands in ``model``, unless the failed update consumed it."""
    if not _consumed((run.state.params, run.state.rest)):
        nnx.update(model, run.state.params, run.state.rest)
        return
    err.add_note(
        "nnjax.fit: the update that failed had consumed the training state (its buffers "
        "are donated), so the model keeps the weights it had before fit; checkpoints "
        "already saved are intact (resume_from= continues from the newest)"
    )


def _diagnosed(err: NonFiniteLossError, model: nnx.Module, source: Any) -> NonFiniteLossError:
    """``err``, naming the inputs when they caused it (:mod:`nonfinite_causes`)."""
    cause = nonfinite_causes.input_cause(model, source)
    if cause is None:
        return err
    return NonFiniteLossError(err.epoch, err.step, err.value, cause=cause)


__all__ = [
    "NonFiniteLossError",
    "Plan",
    "count_weighted_mean",
    "epoch_logs",
    "fit_logs",
    "run_epoch",
    "run_epochs",
    "train_into",
]
