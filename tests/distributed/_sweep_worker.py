"""The sweep scenario of the 2-process test group (2 fake CPU devices each: 4 in all).

:func:`scenario` runs :func:`run_sweeps` over every device of both processes: the whole
sweep (per-member early stopping, ModelCheckpoint into ``<folder>/whole``), then the
same sweep cut by an exception after epoch 2 (both processes) and resumed from its
checkpoints. It returns the histories, every member's parameters, the table and the
ensemble predictions, and writes the CSV to ``<folder>/result<i>.csv`` (only process 0
writes one).

The test imports this file for :func:`run_sweeps` and :func:`summary`, so the
one-process reference runs exactly the same sweeps.
"""

import importlib.util
import os

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "_fit_worker", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_fit_worker.py")
)
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)

# the fit scenario's data and model (so its eager compiles, e.g. the initializers', serve)
N, N_VAL, FEATURES, CLASSES, BATCH, EPOCHS = W.N, W.N_VAL, W.FEATURES, W.CLASSES, W.BATCH, 4
MEMBERS = {"seeds": [0, 1, 2], "hyperparams": {"learning_rate": [0.05, 0.02, 0.3]}}
dataset = W.dataset


def model_fn(rngs):
    from nnjax.nn import MLP

    return MLP(FEATURES, (16,), CLASSES, rngs=rngs)


class _Cut:
    """A callback raising after ``epoch`` (in every process: a clean, common stop)."""

    def __new__(cls, epoch):
        from nnjax.train.callbacks import Callback

        class Cut(Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise RuntimeError("cut")

        return Cut()


def run_sweeps(out_dir):
    """``(whole, resumed)``: the sweep, and the same sweep cut after epoch 2 and resumed."""
    from nnjax.train.callbacks import EarlyStopping
    from nnjax.train.checkpoint import ModelCheckpoint
    from nnjax.train.sweep import sweep

    (x, y), val = dataset()

    def run(folder, extra=(), resume_from=None):
        stop = EarlyStopping("val_loss", patience=1, min_delta=0.02, restore_best_weights=True)
        return sweep(
            model_fn, (x, y), loss="cross_entropy", optimizer="adam", members=MEMBERS,
            epochs=EPOCHS, batch_size=BATCH, validation_data=val, steps_per_dispatch=4,
            callbacks=[stop, ModelCheckpoint(folder), *extra], resume_from=resume_from,
        )  # fmt: skip

    whole = run(os.path.join(out_dir, "whole"))
    cut = os.path.join(out_dir, "cut")
    try:
        run(cut, extra=[_Cut(1)])
    except RuntimeError as err:
        assert str(err) == "cut", err
    resumed = run(cut, resume_from=cut)
    return whole, resumed


def summary(result, x):
    """The result's arrays (every member's parameters from host copies), by name."""
    import jax
    from flax import nnx

    from nnjax.distributed import arrays
    from nnjax.train.sweep import ensemble_predict

    out = {f"history.{k}": np.asarray(v) for k, v in result.history.items()}
    out["stopped_epoch"] = np.asarray(result.stopped_epoch)
    out["weights_epoch"] = np.asarray(result.weights_epoch)
    out["best_index"] = np.asarray(result.best_index())
    for i in range(result.num_members):
        leaves = jax.tree.leaves(nnx.state(result.member(i), nnx.Param))
        for j, leaf in enumerate(arrays.to_host(leaves)):
            out[f"member{i}.{j}"] = np.asarray(leaf)
    out["ensemble"] = np.asarray(arrays.to_host(ensemble_predict(result, x, activation="softmax")))
    return out


def scenario(out_dir):
    """The whole and the cut-and-resumed sweep; returns ``{name: array}``."""
    import jax

    from nnjax import distributed

    whole, resumed = run_sweeps(out_dir)
    whole.to_csv(os.path.join(out_dir, f"result{distributed.process_index()}.csv"))
    (_, _), (x_val, _) = dataset()
    results = {f"whole.{k}": v for k, v in summary(whole, x_val).items()}
    results.update({f"resumed.{k}": v for k, v in summary(resumed, x_val).items()})
    results["table"] = np.asarray(whole.table())
    results["devices"] = np.asarray(jax.device_count())
    return results
