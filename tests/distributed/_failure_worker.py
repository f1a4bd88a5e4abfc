"""One process of a 2-process group that fails on purpose (1 CPU device per process).

Usage: python _failure_worker.py OUT_DIR MODE

raise: process 1 raises ``RuntimeError("deliberate failure")`` from a callback in the
  middle of ``fit``; process 0 keeps training. Each process prints ``started`` when it
  joins and, should ``fit`` ever return, ``fit returned``.
mismatch: the two processes call ``fit`` with one setting different, for each setting
  in turn (:data:`CASES`), catching each ``ValueError``; then the same ``fit`` in both
  (no error); then process 1 skips ``fit`` and process 0 waits for it (a bounded wait:
  ``agreement.WAIT_S`` is 3 s here). Process ``i`` writes ``OUT_DIR/<i>.json``: ``{case:
  the error message, or "ok"}`` and the keys left in the coordination service's store.
"""

import json
import os
import sys
import time

START = time.monotonic()
CASES = ("len", "batch", "epochs", "steps", "seed", "lr", "optimizer", "modelseed", "val")
CASES += ("ckpt", "dtype")


def join():
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.pop("XLA_FLAGS", None)  # one device per process
    from nnjax import distributed

    distributed.initialize(timeout_s=60, heartbeat_timeout_s=10)
    print(f"process {distributed.process_index()}: started", file=sys.stderr, flush=True)
    return distributed.process_index()


def dataset(n=64, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, np.argmax(x[:, :3] + 0.5 * x[:, 3:], axis=1).astype(np.int32)


def model(seed=0):
    from flax import nnx

    from nnjax.nn import MLP

    return MLP(6, (16,), 3, rngs=nnx.Rngs(seed))


FIT = {"loss": "cross_entropy", "learning_rate": 0.02, "epochs": 1, "batch_size": 16}
FIT |= {"seed": 3, "verbose": 0}


def raise_in_fit(index):
    from nnjax import train
    from nnjax.train.callbacks import Callback

    class Fail(Callback):
        dispatches = 0

        def on_dispatch_end(self, *args, **kwargs):
            Fail.dispatches += 1
            if index == 1 and Fail.dispatches == 3:
                raise RuntimeError("deliberate failure")

    x, y = dataset(4096)
    train.fit(model(), (x, y), callbacks=[Fail()], **{**FIT, "epochs": 50})
    print(f"process {index}: fit returned", file=sys.stderr, flush=True)


def case(name, index, out_dir):
    """``(model, data, fit keywords)`` of ``name``: process 1 differs from process 0."""
    from nnjax.train.checkpoint import ModelCheckpoint

    other = index == 1
    kw, n, seed = dict(FIT), 64, 0
    if name == "len" and other:
        n = 80
    if name == "batch" and other:
        kw["batch_size"] = 32
    if name == "epochs" and other:
        kw["epochs"] = 2
    if name == "steps":
        kw["steps_per_epoch"] = 2 if other else 3
    if name == "seed" and other:
        kw["seed"] = 4
    if name == "lr" and other:
        kw["learning_rate"] = 0.05
    if name == "optimizer" and other:
        kw["optimizer"] = "sgd"
    if name == "modelseed" and other:
        seed = 1
    if name == "val" and not other:
        kw["validation_data"] = dataset(32, seed=1)
    if name == "ckpt" and not other:
        kw["callbacks"] = [ModelCheckpoint(os.path.join(out_dir, "ckpt"))]
    data = dataset(n)
    if name in ("steps", "dtype"):  # an endless iterable of this process's rows of each batch
        x, y = data
        if name == "dtype" and other:
            x = x.astype("float16")
        kw["steps_per_epoch"] = kw.get("steps_per_epoch", 2)
        data = ((x[i : i + 8], y[i : i + 8]) for i in iter(lambda: 0, 1))
    return model(seed), data, kw


def mismatch(index, out_dir):
    from jax._src import distributed as jax_distributed

    from nnjax import train
    from nnjax.train import agreement

    seen = {}
    for name in (*CASES, "same"):
        m, data, kw = case(name, index, out_dir)
        try:
            train.fit(m, data, **kw)
            seen[name] = "ok"
        except ValueError as err:
            seen[name] = str(err)
    agreement.WAIT_S = 3
    start = time.monotonic()
    if index == 0:
        try:
            train.fit(model(), dataset(), **FIT)
            seen["missing"] = "ok"
        except TimeoutError as err:
            seen["missing"] = str(err)
    seen["missing_seconds"] = time.monotonic() - start
    client = jax_distributed.global_state.client
    seen["keys"] = sorted(k for k, _ in client.key_value_dir_get(agreement.ROOT))
    with open(os.path.join(out_dir, f"{index}.json"), "w") as f:
        json.dump(seen, f)


def main(out_dir, mode):
    index = join()
    if mode == "raise":
        raise_in_fit(index)
    elif mode == "mismatch":
        mismatch(index, out_dir)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
