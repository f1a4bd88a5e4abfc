"""The fit scenario of the 2-process test group (2 fake CPU devices per process: 4 in all).

:func:`scenario` runs in each process of the group (``_worker.py``): fit on arrays
(with validation, printing), an iterable (each process yields its rows of each global
batch), a memmap (``<folder>/x.npy``, written by the test), and with
``param_sharding="fsdp"`` (ModelCheckpoint into ``<folder>/ckpt``, then nnjax.save into
``<folder>/saved``), and a dense layer per token with weights per token and a
weighted metric; evaluate and predict (arrays and an iterable).

The tests import this file for :func:`dataset`, :func:`make_model` and :data:`FIT`, so
the one-process reference runs use exactly the same data, model and settings.
"""

import os

import numpy as np

# 60 = 3 batches of 16 + 12 (padded), 26 = 16 + 10: each process has real rows in every
# batch (8 rows per process of a full batch)
N, N_VAL, FEATURES, CLASSES, BATCH = 60, 26, 6, 3, 16
# evaluate and predict use fit's batch size, so evaluate reuses the step fit compiled
EVAL_BATCH = BATCH
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


TOKEN_LOGS = ("loss", "weighted_accuracy", "val_loss", "val_weighted_accuracy")


def tokens():
    """``(x (N, 4, F), y (N, 4), w (N, 4))``: labels per token, weights 0 past a length."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 4, FEATURES)).astype(np.float32)
    y = np.argmax(x[..., :CLASSES], axis=-1).astype(np.int32)
    w = (np.arange(4) < rng.integers(1, 5, N)[:, None]) * rng.uniform(0.5, 2.0, (N, 4))
    return x, y, w.astype(np.float32)


def fit_tokens():
    """A dense layer per token, fit with weights per token and a weighted metric."""
    from flax import nnx

    from nnjax import train
    from nnjax.metrics import weighted
    from nnjax.nn import Dense

    model = Dense(FEATURES, CLASSES, rngs=nnx.Rngs(0))
    x, y, w = tokens()
    val = (x[:N_VAL], y[:N_VAL], w[:N_VAL])
    metrics = [weighted("accuracy")]
    hist = train.fit(model, (x, y, w), validation_data=val, metrics=metrics, verbose=0, **FIT)
    return model, np.asarray([hist.history[k] for k in TOKEN_LOGS])


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


def scenario(out_dir):
    """Every fit, evaluate and predict of the scenario; returns ``{name: array}``."""
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
    ev = train.evaluate(model, val, loss="cross_entropy", batch_size=EVAL_BATCH)
    results["evaluate"] = np.asarray([ev["loss"], ev["accuracy"]])
    results["predict"] = train.predict(model, val[0], batch_size=EVAL_BATCH)
    blocks = local_blocks(global_batches(*val, size=EVAL_BATCH), index, count)
    results["predict_iterable"] = train.predict(model, blocks)

    model = make_model()
    blocks = local_blocks(global_batches(x, y), index, count)
    train.fit(model, blocks, verbose=0, **FIT)
    results["iterable"] = leaves(model)

    path = os.path.join(out_dir, "x.npy")
    model = make_model()
    train.fit(model, (np.load(path, mmap_mode="r"), y), verbose=0, **FIT)
    results["memmap"] = leaves(model)

    model, results["tokens_logs"] = fit_tokens()
    results["tokens"] = leaves(model)

    model = make_model()
    callbacks = [ModelCheckpoint(os.path.join(out_dir, "ckpt"))]
    train.fit(model, (x, y), param_sharding="fsdp", verbose=0, callbacks=callbacks, **FIT)
    results["fsdp"] = leaves(model)
    nnjax.save(model, os.path.join(out_dir, "saved"))
    return flat(results)


def flat(results):
    """``results`` with each list of arrays spread into ``name.0``, ``name.1``, ..."""
    flat = {}
    for name, value in results.items():
        if isinstance(value, list):
            flat.update({f"{name}.{i}": v for i, v in enumerate(value)})
        else:
            flat[name] = value
    return flat
