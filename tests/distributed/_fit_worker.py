"""One process of a 2-process training group (2 fake CPU devices each: 4 in all).

Usage: python _fit_worker.py OUT_DIR MODE, MODE one of
  train   fit on arrays, an iterable (each process yields its rows of each global
          batch), a memmap, and with param_sharding="fsdp"; evaluate and predict
          (arrays and an iterable); ModelCheckpoint and nnjax.save into OUT_DIR.
          Process i writes OUT_DIR/<i>.npz and its stdout to OUT_DIR/<i>.log.
  kill    fit 6 epochs with ModelCheckpoint(OUT_DIR/ckpt); process 1 dies (os._exit)
          at the end of epoch 2 (0-based 1); process 0 is left to fail on its own.
  resume  fit the same 6 epochs with resume_from=OUT_DIR/ckpt; writes <i>.npz.

The test imports this file for :func:`dataset`, :func:`make_model` and :data:`FIT`, so
the one-process reference run uses exactly the same data, model and settings.
"""

import os
import sys

import numpy as np

# 60 = 3 batches of 16 + 12 (padded): each process has real rows in every batch
N, N_VAL, FEATURES, CLASSES, BATCH = 60, 22, 6, 3, 16
FIT = {
    "loss": "cross_entropy",
    "optimizer": "adam",
    "learning_rate": 0.02,
    "epochs": 2,
    "batch_size": BATCH,
    "seed": 3,
}


def dataset():
    """``(x, y), (x_val, y_val)``: a fixed 3-class problem."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N + N_VAL, FEATURES)).astype(np.float32)
    y = (np.argmax(x[:, :CLASSES] + 0.5 * x[:, CLASSES:], axis=1)).astype(np.int32)
    return (x[:N], y[:N]), (x[N:], y[N:])


def make_model():
    from flax import nnx

    from nnjax.nn import MLP

    return MLP(FEATURES, (16,), CLASSES, rngs=nnx.Rngs(0))


def global_batches(x, y, size=BATCH):
    """Unshuffled global batches of ``size`` rows (the last one shorter)."""
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def local_blocks(batches, index, count):
    """Process ``index``'s block of rows of each global batch (the last may be shorter)."""
    per = len(batches[0][0]) // count
    return [tuple(a[index * per : (index + 1) * per] for a in batch) for batch in batches]


def leaves(model):
    import jax
    from flax import nnx

    from nnjax.distributed import arrays

    return [np.asarray(a) for a in arrays.to_host(jax.tree.leaves(nnx.state(model, nnx.Param)))]


def _train(out_dir):
    import nnjax
    from nnjax import distributed, train
    from nnjax.train.checkpoint import ModelCheckpoint

    index, count = distributed.process_index(), distributed.process_count()
    (x, y), val = dataset()
    results = {}

    model = make_model()
    hist = train.fit(model, (x, y), validation_data=val, verbose=2, shuffle=True, **FIT)
    results["arrays"] = leaves(model)
    results["arrays_loss"] = np.asarray(hist.history["loss"])
    results["arrays_val_loss"] = np.asarray(hist.history["val_loss"])
    results["arrays_val_accuracy"] = np.asarray(hist.history["val_accuracy"])
    ev = train.evaluate(model, val, loss="cross_entropy", batch_size=8)
    results["evaluate"] = np.asarray([ev["loss"], ev["accuracy"]])
    results["predict"] = train.predict(model, val[0], batch_size=8)
    blocks = local_blocks(global_batches(*val, size=8), index, count)
    results["predict_iterable"] = train.predict(model, blocks)

    model = make_model()
    blocks = local_blocks(global_batches(x, y), index, count)
    train.fit(model, blocks, verbose=0, **FIT)
    results["iterable"] = leaves(model)

    path = os.path.join(out_dir, "x.npy")
    model = make_model()
    train.fit(model, (np.load(path, mmap_mode="r"), y), verbose=0, **FIT)
    results["memmap"] = leaves(model)

    model = make_model()
    callbacks = [ModelCheckpoint(os.path.join(out_dir, "ckpt"))]
    train.fit(model, (x, y), param_sharding="fsdp", verbose=0, callbacks=callbacks, **FIT)
    results["fsdp"] = leaves(model)
    nnjax.save(model, os.path.join(out_dir, "saved"))
    np.savez(os.path.join(out_dir, f"{index}.npz"), **_flat(results))


def _flat(results):
    flat = {}
    for name, value in results.items():
        if isinstance(value, list):
            flat.update({f"{name}.{i}": v for i, v in enumerate(value)})
        else:
            flat[name] = value
    return flat


class _DieAt:
    """A callback that kills this process (as a crash would) after ``epoch``."""

    def __new__(cls, epoch):
        from nnjax.train.callbacks import Callback

        class Die(Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    sys.stdout.flush()
                    os._exit(9)

        return Die()


def _kill_or_resume(out_dir, mode):
    from nnjax import distributed, train
    from nnjax.train.checkpoint import ModelCheckpoint

    index = distributed.process_index()
    (x, y), _ = dataset()
    ckpt = os.path.join(out_dir, "ckpt")
    callbacks = [ModelCheckpoint(ckpt)]
    settings = {**FIT, "epochs": 6}
    model = make_model()
    if mode == "kill":
        if index == 1:
            callbacks.append(_DieAt(1))
        train.fit(model, (x, y), verbose=2, callbacks=callbacks, **settings)
        return
    hist = train.fit(model, (x, y), verbose=2, callbacks=callbacks, resume_from=ckpt, **settings)
    results = {"resumed": leaves(model), "epochs": np.asarray(hist.epoch)}
    np.savez(os.path.join(out_dir, f"{index}.npz"), **_flat(results))


def join_group(out_dir):
    """Joins the launched group (2 CPU devices per process, strict rank promotion).

    Returns the process index; the process's prints go to ``<out_dir>/<index>.log``.
    """
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_numpy_rank_promotion", "raise")
    from nnjax import distributed

    distributed.initialize(timeout_s=60, heartbeat_timeout_s=10)
    index = distributed.process_index()
    sys.stdout = open(os.path.join(out_dir, f"{index}.log"), "w", buffering=1)
    return index


def main(out_dir, mode):
    join_group(out_dir)
    if mode == "train":
        _train(out_dir)
    else:
        _kill_or_resume(out_dir, mode)
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
