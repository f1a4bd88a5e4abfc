"""End-to-end training throughput of whole epochs: ``nnjax.train.fit`` against the bare step.

Cases, each over whole epochs of the same random data (compile time apart: the first
epoch of each case is a warm-up, then ``--epochs`` epochs are timed one by one and
their median is reported; ``fit`` runs once for all of them, its epochs timed by a
callback, and its set-up counts with the first epoch):

* ``bare_step``: the jitted, donating ``nnjax.train.make_train_step`` called once per
  batch on batches already on the device (the ceiling for ``fit``);
* ``fit_arrays``: ``fit(model, (x, y))`` (data put on the device once, batches gathered
  there);
* ``fit_iterator``: ``fit`` over a list of ``(x, y)`` batches (host batches, background
  prefetch);
* ``fit_memmap``: ``fit`` on a NumPy memmap of ``x`` (only each batch is read);
* ``keras_fit``: Keras 3 ``model.fit`` (JAX backend), when installed;
* ``torch_loader``: a plain PyTorch ``DataLoader`` loop (eager), when installed.

Models: the Fashion-MNIST MLP 784-500-300-100-10 (``mlp``) and the CNN of
``examples/fashion_mnist_cnn.py`` (``cnn``), Adam, softmax cross-entropy. ``ratio`` is
``bare_step epoch time / case epoch time`` (1.0: as fast as the bare step). Goals from
issue 9: ``fit`` >= 0.95x the bare step at batch 256, >= 0.9x at batch 32.

Usage::

    python benchmarks/bench_fit.py                       # MLP at 32 and 256, CNN at 128
    python benchmarks/bench_fit.py --quick               # tiny smoke run
    python benchmarks/bench_fit.py --models mlp --batch-sizes 256 --cases bare_step,fit_arrays

Writes ``benchmarks/results/fit_<platform>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import _harness as H

H.ensure_nnjax_importable()
os.environ.setdefault("KERAS_BACKEND", "jax")  # keras_fit: Keras 3 on JAX, as in _peers

import numpy as np  # noqa: E402

NAME = "fit"
CASES = ("bare_step", "fit_arrays", "fit_iterator", "fit_memmap", "keras_fit", "torch_loader")
DEFAULT_BATCHES = {"mlp": (32, 256), "cnn": (128,)}


def data(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images ``(n, 784)`` or ``(n, 28, 28, 1)`` and int32 labels."""
    rng = np.random.default_rng(seed)
    shape = (n, 784) if model == "mlp" else (n, 28, 28, 1)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)


def nnjax_model(model: str, quick: bool):
    """The nnjax model of the benchmark (smaller with ``quick``)."""
    from flax import nnx

    from nnjax import nn

    if model == "mlp":
        hidden = (32, 16) if quick else (500, 300, 100)
        return nn.MLP(784, hidden, 10, rngs=nnx.Rngs(0))
    conv, dense = ((4,), (16,)) if quick else ((32, 64), (128,))
    return nn.CNN((28, 28, 1), 10, conv_features=conv, dense=dense, rngs=nnx.Rngs(0))


def _epochs(run_epoch: Callable[[], None], epochs: int) -> tuple[float, float]:
    """``(first_s, median_s)``: the warm-up epoch (with the compile) and timed ones."""
    start = time.perf_counter()
    run_epoch()
    first = time.perf_counter() - start
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def bare_step(model: str, x, y, batch: int, quick: bool) -> Callable[[], None]:
    """One jitted, donating step per batch on device-resident batches."""
    import jax
    import optax

    from nnjax import train

    graphdef, params, rest = train.split_model(nnjax_model(model, quick))
    tx = optax.adam(1e-3)
    step = jax.jit(train.make_train_step(graphdef, "cross_entropy", tx), donate_argnums=(0, 1, 2))
    steps = len(x) // batch
    batches = [
        jax.device_put((x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]))
        for i in range(steps)
    ]
    state = [params, tx.init(params), rest]

    def epoch():
        for xb, yb in batches:
            state[0], state[1], state[2], _ = step(*state, xb, yb)
        jax.block_until_ready(state)

    return epoch


class EpochClock:
    """A callback that records the wall time of every epoch (logs are on the host at
    the end of an epoch, so each epoch's work is done when it ends)."""

    def __new__(cls):
        from nnjax import train

        class Clock(train.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        return Clock()


def fit_case(kind: str, model: str, x, y, batch: int, quick: bool, epochs: int):
    """``(first_s, median_s)`` of one ``fit`` call of ``1 + epochs`` epochs on arrays, a
    list of batches, or a memmap: the first epoch compiles, the others are timed."""
    from nnjax import train

    net = nnjax_model(model, quick)
    if kind == "fit_iterator":
        data_in = [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch)]
    elif kind == "fit_memmap":
        path = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
        np.save(path, x)
        data_in = (np.load(path, mmap_mode="r"), y)
    else:
        data_in = (x, y)

    clock = EpochClock()
    start = time.perf_counter()
    train.fit(net, data_in, loss="cross_entropy", batch_size=batch, epochs=1 + epochs,
              verbose=0, callbacks=[clock])  # fmt: skip
    setup = time.perf_counter() - start - sum(clock.times)
    return clock.times[0] + setup, statistics.median(clock.times[1:])


def keras_fit(model: str, x, y, batch: int, quick: bool) -> Callable[[], None]:
    """Keras 3 ``model.fit`` for one epoch (JAX backend)."""
    import keras

    if model == "mlp":
        hidden = (32, 16) if quick else (500, 300, 100)
        layers = [keras.layers.Dense(h, activation="relu") for h in hidden]
        net = keras.Sequential([keras.Input((784,)), *layers, keras.layers.Dense(10)])
    else:
        net = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Flatten(),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10),
            ]
        )
    net.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return lambda: net.fit(x, y, batch_size=batch, epochs=1, verbose=0)


def torch_loader(model: str, x, y, batch: int, quick: bool) -> Callable[[], None]:
    """A plain PyTorch ``DataLoader`` loop, eager (on CUDA where JAX runs on a GPU)."""
    import torch

    torch.manual_seed(0)
    if model == "mlp":
        hidden = (32, 16) if quick else (500, 300, 100)
        sizes = (784, *hidden)
        layers = []
        for a, b in itertools.pairwise(sizes):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], 10))
        xt = torch.from_numpy(x)
    else:
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
        )  # fmt: skip
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xt, torch.from_numpy(y).long()),
        batch_size=batch,
        shuffle=True,
    )
    device, sync = H.torch_device()
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()
        sync(None)

    return epoch


BUILDERS = {
    "bare_step": bare_step,
    "keras_fit": keras_fit,
    "torch_loader": torch_loader,
}
NEEDS = {"keras_fit": "keras", "torch_loader": "torch"}


def run(args: argparse.Namespace) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """Every (model, batch size, case); returns rows, the cases skipped (why) and errors.

    A case that raises is recorded under ``"model/case@batch"`` and the others still run.
    """
    rows, skipped, errors = [], {}, {}
    for model in args.models:
        n = args.examples or (512 if args.quick else 60_000 if model == "mlp" else 12_800)
        x, y = data(model, n)
        for batch in args.batch_sizes or DEFAULT_BATCHES[model]:
            for case in args.cases:
                if case in NEEDS and H._version(NEEDS[case]) is None:
                    skipped[case] = f"{NEEDS[case]} is not installed"
                    continue
                try:
                    first, median = _time_case(case, model, x, y, batch, args)
                except Exception as err:  # one broken case must not end the run
                    errors[f"{model}/{case}@{batch}"] = f"{type(err).__name__}: {err}"
                    print(f"error in {model} {case} at batch {batch}: {err}", file=sys.stderr)
                    continue
                rows.append(
                    {
                        "model": model,
                        "case": case,
                        "batch_size": batch,
                        "examples": n,
                        "first_epoch_s": first,
                        "epoch_s": median,
                        "examples_per_s": n / median,
                    }
                )
                print(f"{model} {case:13s} batch {batch:4d}: {median:.3f} s/epoch", flush=True)
    for r in rows:
        base = [b for b in rows if b["case"] == "bare_step" and b["model"] == r["model"]]
        base = [b for b in base if b["batch_size"] == r["batch_size"]]
        r["ratio_vs_bare_step"] = base[0]["epoch_s"] / r["epoch_s"] if base else None
    return rows, skipped, errors


def _time_case(case: str, model: str, x, y, batch: int, args) -> tuple[float, float]:
    """``(first epoch s, median epoch s)`` of one case."""
    if case.startswith("fit_"):
        return fit_case(case, model, x, y, batch, args.quick, args.epochs)
    return _epochs(BUILDERS[case](model, x, y, batch, args.quick), args.epochs)


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the cases, writes the JSON and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and data (smoke)")
    parser.add_argument("--models", type=lambda s: s.split(","), default=["mlp", "cnn"])
    parser.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--cases", type=lambda s: s.split(","), default=list(CASES))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case (3)")
    parser.add_argument("--examples", type=int, default=None, help="examples per epoch")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="result JSON path")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(CASES)) + sorted(set(args.models) - {"mlp", "cnn"})
    if unknown:
        parser.error(f"unknown cases or models {unknown}; cases: {','.join(CASES)}")
    if args.quick:
        args.epochs = min(args.epochs, 1)
    rows, skipped, errors = run(args)
    path = H.write_json(
        args.out or H.default_out(NAME, args.quick),
        name=NAME,
        config={k: v for k, v in vars(args).items() if k != "out"},
        rows=rows,
        skipped=skipped,
        errors=errors,
    )
    for r in rows:
        ratio = r["ratio_vs_bare_step"]
        print(
            f"{r['model']:4s} {r['batch_size']:5d} {r['case']:13s} {r['epoch_s']:9.3f} s "
            f"{r['examples_per_s']:10.0f} ex/s  ratio {'-' if ratio is None else f'{ratio:.2f}'}"
        )
    for case, why in skipped.items():
        print(f"skipped {case}: {why}")
    print(f"results written to {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
