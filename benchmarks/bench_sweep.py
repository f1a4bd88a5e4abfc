"""Sweep throughput: one ``nnjax.train.sweep`` of M members against M sequential ``fit`` calls.

Cases, for each model and member count ``M`` (members differ by learning rate, an
injected hyperparameter, so every case reuses one compiled program per ``M``):

* ``sweep``: one program for all ``M`` members, the default formulation
  (``members_per_step="auto"``);
* ``sweep_vmap``: one program, all members vmapped (``members_per_step=None``);
* ``sweep_loop``: one program whose device loop runs the members one after another
  (``members_per_step=1``: unbatched matrix products, as ``fit``'s);
* ``sweep_sequential``: the same call with ``members_per_program=1``: the members run
  one after another through one compiled single-member program, each its own group;
* ``fit_sequential``: ``M`` separate ``fit`` calls (the baseline).

Each case first runs one epoch (compile included: ``compile_s`` is that time minus a
steady epoch), then ``--epochs`` timed epochs; ``examples_x_members_per_s`` is
``N * M * epochs / seconds``. Models: the digits MLP 64-64-10 (``digits``, 1,437
training images), the Fashion-MNIST MLP 784-500-300-100-10 (``fashion``, a
``--examples`` subset of the training set) and, on request, the Fashion-MNIST CNN of
``bench_cnn.py`` (``cnn``: conv 3x3 32 and 64, each with a 2x2 max pool, dense 128;
the same subset), Adam, batch 32, inputs scaled to [0, 1].
Data come from ``$NNJAX_DATA_DIR`` (never downloaded here).

Usage::

    python benchmarks/bench_sweep.py                  # M = 1, 4, 16, 64, both models
    python benchmarks/bench_sweep.py --quick          # tiny smoke run

Writes ``benchmarks/results/sweep_<platform>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import _harness as H

H.ensure_nnjax_importable()

import numpy as np  # noqa: E402

NAME = "sweep"
CASES = ("sweep", "sweep_vmap", "sweep_loop", "sweep_sequential", "fit_sequential")
SIZES = {"digits": (64, (64,), 10), "fashion": (784, (500, 300, 100), 10)}


def load(model: str, examples: int, quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """Training inputs ``(N, features)`` float32 in [0, 1] and int32 labels."""
    from nnjax import data

    if model == "digits":
        (x, y), _ = data.load_digits()
        x = x.reshape(len(x), -1).astype(np.float32) / 16
    else:
        folder = os.environ.get("NNJAX_DATA_DIR")
        (x, y), _ = data.load_fashion_mnist(folder, download=False)
        image = (28, 28, 1) if model == "cnn" else (-1,)
        x = x.reshape(len(x), *image).astype(np.float32) / 255
    n = min(len(x), examples if model != "digits" or quick else len(x))
    return x[:n], y[:n].astype(np.int32)


def model_fn(model: str, quick: bool):
    """``model_fn(rngs)`` of the benchmark's MLP or CNN (smaller with ``quick``)."""
    from nnjax import nn

    if model == "cnn":
        convs, dense = ((4,), (8,)) if quick else ((32, 64), (128,))
        return lambda rngs: nn.CNN((28, 28, 1), 10, conv_features=convs, dense=dense, rngs=rngs)
    features, hidden, out = SIZES[model]
    hidden = (16,) if quick else hidden
    return lambda rngs: nn.MLP(features, hidden, out, rngs=rngs)


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def case_times(case: str, model: str, m: int, xy, epochs: int, quick: bool) -> tuple[float, float]:
    """``(first_epoch_s, timed_s)`` of one case: one warm-up epoch, then ``epochs``."""
    import optax
    from flax import nnx

    from nnjax.train.loop import fit
    from nnjax.train.sweep import sweep

    build = model_fn(model, quick)
    lrs = list(np.geomspace(1e-4, 1e-2, m)) if m > 1 else [1e-3]
    if case == "fit_sequential":

        def run(n_epochs: int, count: int) -> None:
            for lr in lrs[:count]:
                fit(build(nnx.Rngs(0)), xy, loss="cross_entropy", optimizer=optax.adam,
                    learning_rate=float(lr), epochs=n_epochs, batch_size=32, verbose=0)  # fmt: skip

        first = _timed(lambda: run(1, 1))  # compile + one member-epoch
        return first, _timed(lambda: run(epochs, m))
    per_program = 1 if case == "sweep_sequential" else None
    per_step = {"sweep_loop": 1, "sweep_vmap": None}.get(case, "auto")

    def run_sweep(n_epochs: int) -> None:
        sweep(build, xy, loss="cross_entropy", optimizer=optax.adam,
              hyperparams={"learning_rate": lrs}, epochs=n_epochs, batch_size=32,
              members_per_program=per_program, members_per_step=per_step)  # fmt: skip

    first = _timed(lambda: run_sweep(1))
    return first, _timed(lambda: run_sweep(epochs))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and data, M = 1, 4")
    parser.add_argument("--models", default="digits,fashion", help="digits, fashion, cnn")
    parser.add_argument("--members", default=None, help="comma-separated M (default 1,4,16,64)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs (default 2)")
    parser.add_argument("--examples", type=int, default=None, help="Fashion-MNIST subset")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    members = [int(m) for m in (args.members or ("1,4" if args.quick else "1,4,16,64")).split(",")]
    epochs = args.epochs or (1 if args.quick else 2)
    examples = args.examples or (256 if args.quick else 6000)
    rows, errors = [], {}
    for model in args.models.split(","):
        xy = load(model, examples, args.quick)
        for m in members:
            for case in args.cases.split(","):
                try:
                    first, total = case_times(case, model, m, xy, epochs, args.quick)
                except Exception as err:  # recorded, the other cases go on
                    errors[f"{model}/{m}/{case}"] = f"{type(err).__name__}: {err}"
                    continue
                # the warm-up holds one epoch of all members (sweeps) or of one (fit)
                steady = total / epochs / (m if case == "fit_sequential" else 1)
                rows.append({
                    "model": model, "members": m, "case": case, "examples": len(xy[0]),
                    "epochs": epochs, "seconds": round(total, 3),
                    "examples_x_members_per_s": round(len(xy[0]) * m * epochs / total, 1),
                    "compile_s": round(max(first - steady, 0.0), 2),
                })  # fmt: skip
                print(_line(rows[-1]), flush=True)
    _ratios(rows)
    out = args.out or H.default_out(NAME, args.quick)
    config = {"quick": args.quick, "members": members, "epochs": epochs, "batch_size": 32,
              "examples_fashion": examples, "machine": "2 CPU cores shared"}  # fmt: skip
    H.write_json(out, name=NAME, config=config, rows=rows, skipped={}, errors=errors)
    print(f"wrote {out}")
    return rows


def _ratios(rows: list[dict]) -> None:
    """``speedup_vs_fit``: examples x members per second over ``fit_sequential``'s."""
    base = {
        (r["model"], r["members"]): r["examples_x_members_per_s"]
        for r in rows
        if r["case"] == "fit_sequential"
    }
    for r in rows:
        ref = base.get((r["model"], r["members"]))
        r["speedup_vs_fit"] = round(r["examples_x_members_per_s"] / ref, 2) if ref else None


def _line(r: dict) -> str:
    return (
        f"{r['model']:<8} M={r['members']:<3} {r['case']:<17} "
        f"{r['examples_x_members_per_s']:>10.0f} ex*members/s  compile {r['compile_s']:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
