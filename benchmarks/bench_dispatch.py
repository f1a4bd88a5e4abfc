"""Updates per dispatch: whole ``fit`` epochs at each ``steps_per_dispatch``, interleaved.

``fit`` fuses ``steps_per_dispatch`` updates into one compiled call (a rolled device
loop, ``nnjax.train.compiled.loop_steps``); its default is
``nnjax.train.steps_per_dispatch_for(model)``. This script measures that choice per
model kind: for each model and batch size, one ``fit`` call of one epoch per value of
``--steps`` per round, the values' calls back to back, ``--rounds`` rounds after a
warm-up call each (which holds the compile). It reports each value's median ms per
update and, against the first value, the median and quartiles of the per-round ratios
(``_paired``: a drift of the machine's speed reaches both calls of a round alike).

Models (random data, Adam, softmax cross-entropy):

* ``mlp``: 784-500-300-100-10;
* ``cnn``: the Fashion-MNIST CNN of ``bench_cnn.py`` (conv 32, 64, dense 128);
* ``cifar_cnn``: 32x32x3, conv 64, 128, 256, dense 128;
* ``lstm``, ``gru``: the sequence classifier of ``bench_lstm.py`` (T 64, 16 -> 128);
* ``attention``: a transformer encoder block (T 128, D 256, 4 heads) of
  ``bench_attention.py``, mean-pooled, one dense layer.

Usage::

    python benchmarks/bench_dispatch.py --out /tmp/dispatch.json
    python benchmarks/bench_dispatch.py --models cnn,lstm --batch-sizes 32,128 --steps 1,8
    python benchmarks/bench_dispatch.py --quick --out /tmp/d.json   # tiny smoke run
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import _harness as H
import _paired

H.ensure_nnjax_importable()

import numpy as np  # noqa: E402

NAME = "dispatch"
MODELS = ("mlp", "cnn", "cifar_cnn", "lstm", "gru", "attention")


def inputs(model: str, n: int, quick: bool) -> np.ndarray:
    """``(n, ...)`` float32 random inputs of the model's shape."""
    rng = np.random.default_rng(0)
    shape = {
        "mlp": (784,),
        "cnn": (28, 28, 1),
        "cifar_cnn": (32, 32, 3),
        "lstm": (64, 16),
        "gru": (64, 16),
        "attention": (128, 256),
    }[model]
    if quick:
        shape = {"lstm": (8, 4), "gru": (8, 4), "attention": (8, 16)}.get(model, shape)
    return rng.standard_normal((n, *shape), dtype=np.float32)


def build(model: str, quick: bool) -> Callable[[], object]:
    """A function building a fresh model (its own weights, its own compile cache key)."""
    from flax import nnx

    from nnjax import nn

    def make() -> object:
        rngs = nnx.Rngs(0)
        if model == "mlp":
            return nn.MLP(784, (16,) if quick else (500, 300, 100), 10, rngs=rngs)
        if model in ("cnn", "cifar_cnn"):
            image = (28, 28, 1) if model == "cnn" else (32, 32, 3)
            convs = {"cnn": (32, 64), "cifar_cnn": (64, 128, 256)}[model]
            convs, dense = ((4,), (8,)) if quick else (convs, (128,))
            return nn.CNN(image, 10, conv_features=convs, dense=dense, rngs=rngs)
        if model in ("lstm", "gru"):
            features, hidden = (4, 8) if quick else (16, 128)
            return nn.SequenceClassifier(features, hidden, 10, cell=model, rngs=rngs)
        dim = 16 if quick else 256
        return nn.Sequential(
            nn.TransformerEncoderBlock(dim, 4, mlp_features=4 * dim, rngs=rngs),
            nn.GlobalAvgPool(),
            nn.Dense(dim, 10, rngs=rngs),
        )

    return make


def fit_epoch(model, x: np.ndarray, y: np.ndarray, batch: int, k: int) -> None:
    """One ``fit`` epoch of ``model`` at ``steps_per_dispatch=k`` (in order, no output)."""
    from nnjax import train

    train.fit(model, (x, y), loss="cross_entropy", batch_size=batch, epochs=1,
              steps_per_dispatch=k, shuffle=False, verbose=0)  # fmt: skip


def measure(model: str, batch: int, steps: list[int], args: argparse.Namespace) -> list[dict]:
    """One row per value of ``steps``: median ms per update, paired ratio to the first."""
    updates = args.updates
    x = inputs(model, batch * updates, args.quick)
    y = np.random.default_rng(1).integers(0, 10, len(x)).astype(np.int32)
    nets = {k: build(model, args.quick)() for k in steps}
    first = {}
    for k in steps:  # the warm-up call: the compile and one epoch
        start = time.perf_counter()
        fit_epoch(nets[k], x, y, batch, k)
        first[k] = time.perf_counter() - start
    samples: dict[int, list[float]] = {k: [] for k in steps}
    for r in range(args.rounds):
        for k in steps if r % 2 == 0 else steps[::-1]:
            start = time.perf_counter()
            fit_epoch(nets[k], x, y, batch, k)
            samples[k].append((time.perf_counter() - start) / updates)
    rows = []
    for k in steps:
        median = statistics.median(samples[k])
        rows.append({
            "model": model, "batch_size": batch, "steps_per_dispatch": k,
            "default": k == _default(nets[k]), "updates_per_epoch": updates,
            "ms_per_update": round(median * 1e3, 3), "first_epoch_s": round(first[k], 2),
            "paired_vs_first": _paired.paired_ratio(samples[k], samples[steps[0]]),
        })  # fmt: skip
    return rows


def _default(net) -> int:
    from nnjax import train

    return train.steps_per_dispatch_for(net)


def _line(r: dict) -> str:
    paired = _paired.format_paired(r["paired_vs_first"])
    mark = " (default)" if r["default"] else ""
    return (
        f"{r['model']:<10} batch {r['batch_size']:>4}  "
        f"steps_per_dispatch {r['steps_per_dispatch']:>2}"
        f"{mark:<10} {r['ms_per_update']:>9.3f} ms/update  first epoch {r['first_epoch_s']:>5.1f} s"
        f"  vs first {paired}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, few updates")
    parser.add_argument("--models", default="cnn,lstm,attention", help=", ".join(MODELS))
    parser.add_argument("--batch-sizes", default="32", help="comma-separated (default 32)")
    parser.add_argument("--steps", default="1,8", help="steps_per_dispatch values (1,8)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (7)")
    parser.add_argument("--updates", type=int, default=None, help="updates per epoch (48)")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="result JSON path")
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {', '.join(MODELS)}")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.steps = [int(k) for k in args.steps.split(",")]
    args.updates = args.updates or (8 if args.quick else 48)
    if args.quick:
        args.rounds = min(args.rounds, 2)
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs every (model, batch size), writes the JSON as each ends, prints the lines."""
    args = parse_args(argv)
    out = args.out or H.default_out(NAME, args.quick)
    config = {k: getattr(args, k) for k in ("quick", "models", "batch_sizes", "steps",
                                            "rounds", "updates")}  # fmt: skip
    rows: list[dict] = []
    errors: dict[str, str] = {}
    try:
        with H.stop_on_sigterm():
            for model in args.models:
                for batch in args.batch_sizes:
                    try:
                        new = measure(model, batch, args.steps, args)
                    except Exception as err:  # recorded, the others go on
                        errors[f"{model}@{batch}"] = f"{type(err).__name__}: {err}"
                        print(f"error in {model} at batch {batch}: {err}", file=sys.stderr)
                        continue
                    rows += new
                    print("\n".join(_line(r) for r in new), flush=True)
                    H.write_json(out, name=NAME, config=config, rows=rows, skipped={},
                                 errors=errors, complete=False)  # fmt: skip
    except KeyboardInterrupt as err:
        return H.stopped(err, out)
    H.write_json(out, name=NAME, config=config, rows=rows, skipped={}, errors=errors)
    print(f"wrote {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
