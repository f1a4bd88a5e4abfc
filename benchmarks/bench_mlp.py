"""Times training and inference of one MLP in nnjax and in its peers, in one run.

The model is the same everywhere: ``784-500-300-100-10`` (configurable with
``--sizes``), ReLU, float32, softmax cross-entropy on random data, trained with Adam
(or SGD). For each batch size and peer it times

* ``train``: one optimizer step on one (device-resident) batch, and
* ``predict``: one forward pass,

recording the first call (trace + compile + run) apart from the steady-state median.

Peers: ``nnjax`` (``nnjax.train`` pure step under ``jax.jit`` with donation),
``nnjax_scan`` (the same, K steps fused per dispatch with ``lax.scan``; reported per
step), ``flax_nnx`` (idiomatic ``nnx.jit`` + ``nnx.Optimizer``), ``flax_nnx_partial``
(``nnx.jit_partial``, Flax's low-overhead path), ``equinox`` (``eqx.filter_jit``),
``keras`` (Keras 3, JAX backend, ``train_on_batch``/``predict_on_batch``), ``torch``
(eager; ``torch_compile`` on request). A peer that is not installed is skipped with a
note.

Usage::

    python benchmarks/bench_mlp.py                      # full run, a few minutes on CPU
    python benchmarks/bench_mlp.py --quick              # tiny sizes (smoke test)
    python benchmarks/bench_mlp.py --peers nnjax,torch --batch-sizes 32,256

Writes ``benchmarks/results/mlp_<platform>.json`` and prints a table; ``ratio`` is
``peer median / nnjax median`` (above 1: the peer is slower).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
from collections.abc import Callable
from typing import Any

import _cli as C
import _harness as H

H.ensure_nnjax_importable()
os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

NAME = "mlp"
PEERS = (
    "nnjax",
    "nnjax_scan",
    "flax_nnx",
    "flax_nnx_partial",
    "equinox",
    "keras",
    "torch",
    "torch_compile",
)
DEFAULT_PEERS = PEERS[:-1]
PEER_MODULES = {"equinox": "equinox", "keras": "keras", "torch": "torch", "torch_compile": "torch"}


@dataclasses.dataclass(frozen=True)
class Config:
    """What is benchmarked: layer sizes, optimizer, learning rate, K for ``nnjax_scan``."""

    sizes: tuple[int, ...] = (784, 500, 300, 100, 10)
    optimizer: str = "adam"
    lr: float = 1e-3
    scan_steps: int = 8


@dataclasses.dataclass
class Case:
    """One peer at one batch size: zero-argument ``train`` and ``predict`` callables."""

    train: Callable[[], Any]
    predict: Callable[[], Any]
    sync: Callable[[Any], None]
    steps_per_call: int = 1
    traces: dict[str, int] | None = None


def _data(cfg: Config, batch: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((k, batch, cfg.sizes[0]), dtype=np.float32)
    y = rng.integers(0, cfg.sizes[-1], size=(k, batch)).astype(np.int32)
    return (x[0], y[0]) if k == 1 else (x, y)


def _optax(cfg: Config) -> optax.GradientTransformation:
    return {"adam": optax.adam, "sgd": optax.sgd}[cfg.optimizer](cfg.lr)


def _xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# ---------------------------------------------------------------------------- nnjax


def _nnjax(cfg: Config, batch: int, *, scan: bool = False) -> Case:
    from flax import nnx

    from nnjax import nn, train

    model = nn.MLP(cfg.sizes[0], cfg.sizes[1:-1], cfg.sizes[-1], rngs=nnx.Rngs(0))
    graphdef, params, rest = train.split_model(model)
    tx = _optax(cfg)
    traces: dict[str, int] = {}
    step = train.make_train_step(graphdef, "cross_entropy", tx, metrics=())
    step = train.scan_steps(step) if scan else step
    step = jax.jit(H.counted(step, traces, "train"), donate_argnums=(0, 1, 2))
    predict = train.make_predict_step(train.graphdef_for(model, training=False))
    predict = jax.jit(H.counted(predict, traces, "predict"))
    x, y = map(jax.device_put, _data(cfg, batch, cfg.scan_steps if scan else 1))
    state = [params, tx.init(params), rest]

    def run_train():
        *state[:], logs = step(*state, x, y)
        return logs["loss"]

    x_pred = x[0] if scan else x
    return Case(
        run_train,
        lambda: predict(state[0], state[2], x_pred),
        H.sync_jax,
        steps_per_call=cfg.scan_steps if scan else 1,
        traces=traces,
    )


# ------------------------------------------------------------------------ Flax NNX


def _flax_model(cfg: Config):
    from flax import nnx

    class FlaxMLP(nnx.Module):
        def __init__(self, sizes: tuple[int, ...], rngs: nnx.Rngs):
            self.layers = nnx.List(
                [nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)]
            )

        def __call__(self, x: jax.Array) -> jax.Array:
            for layer in self.layers[:-1]:
                x = jax.nn.relu(layer(x))
            return self.layers[-1](x)

    return FlaxMLP(cfg.sizes, nnx.Rngs(0))


def _flax_train_step(traces: dict[str, int]) -> Callable:
    from flax import nnx

    def train_step(model, optimizer, x, y):
        traces["train"] = traces.get("train", 0) + 1
        loss, grads = nnx.value_and_grad(lambda m: _xent(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    return train_step


def _flax_nnx(cfg: Config, batch: int, *, partial: bool = False) -> Case:
    from flax import nnx

    model = _flax_model(cfg)
    optimizer = nnx.Optimizer(model, _optax(cfg), wrt=nnx.Param)
    traces: dict[str, int] = {}
    train_step = _flax_train_step(traces)
    forward = H.counted(lambda m, x: m(x), traces, "predict")
    x, y = map(jax.device_put, _data(cfg, batch))
    if partial:
        step = nnx.jit_partial(train_step, model, optimizer, graph=False)
        predict = nnx.jit_partial(forward, model, graph=False)
        return Case(lambda: step(x, y), lambda: predict(x), H.sync_jax, traces=traces)
    step, predict = nnx.jit(train_step), nnx.jit(forward)
    return Case(
        lambda: step(model, optimizer, x, y), lambda: predict(model, x), H.sync_jax, traces=traces
    )


# ------------------------------------------------------------------------- Equinox


def _equinox(cfg: Config, batch: int) -> Case:
    import equinox as eqx

    class EqxMLP(eqx.Module):
        layers: list

        def __init__(self, sizes: tuple[int, ...], key: jax.Array):
            keys = jax.random.split(key, len(sizes) - 1)
            self.layers = [
                eqx.nn.Linear(a, b, key=k) for (a, b), k in zip(itertools.pairwise(sizes), keys)
            ]

        def __call__(self, x: jax.Array) -> jax.Array:
            for layer in self.layers[:-1]:
                x = jax.nn.relu(layer(x))
            return self.layers[-1](x)

    tx = _optax(cfg)
    model = EqxMLP(cfg.sizes, jax.random.key(0))
    traces: dict[str, int] = {}

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        traces["train"] = traces.get("train", 0) + 1
        loss, grads = eqx.filter_value_and_grad(lambda m: _xent(jax.vmap(m)(x), y))(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    predict = eqx.filter_jit(H.counted(lambda m, x: jax.vmap(m)(x), traces, "predict"))
    x, y = map(jax.device_put, _data(cfg, batch))
    state = [model, tx.init(eqx.filter(model, eqx.is_array))]

    def run_train():
        *state[:], loss = step(*state, x, y)
        return loss

    return Case(run_train, lambda: predict(state[0], x), H.sync_jax, traces=traces)


# --------------------------------------------------------------------------- Keras


def _keras(cfg: Config, batch: int) -> Case:
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((cfg.sizes[0],))]
    layers += [keras.layers.Dense(n, activation="relu") for n in cfg.sizes[1:-1]]
    model = keras.Sequential([*layers, keras.layers.Dense(cfg.sizes[-1])])
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[cfg.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate=cfg.lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    x, y = _data(cfg, batch)
    return Case(
        lambda: model.train_on_batch(x, y),
        lambda: model.predict_on_batch(x),
        H.sync_jax,
    )


# ------------------------------------------------------------------------- PyTorch


def _torch(cfg: Config, batch: int, *, compile: bool = False) -> Case:
    import torch

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(cfg.sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(device)
    optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[cfg.optimizer]
    optimizer = optimizer(model.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(model) if compile else model
    x, y = (torch.from_numpy(a).to(device) for a in _data(cfg, batch))
    y = y.long()

    def run_train():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def run_predict():
        with torch.inference_mode():
            return forward(x)

    sync = H.sync_torch_cuda if device == "cuda" else H.sync_none
    return Case(run_train, run_predict, sync)


BUILDERS: dict[str, Callable[[Config, int], Case]] = {
    "nnjax": _nnjax,
    "nnjax_scan": lambda cfg, b: _nnjax(cfg, b, scan=True),
    "flax_nnx": _flax_nnx,
    "flax_nnx_partial": lambda cfg, b: _flax_nnx(cfg, b, partial=True),
    "equinox": _equinox,
    "keras": _keras,
    "torch": _torch,
    "torch_compile": lambda cfg, b: _torch(cfg, b, compile=True),
}


def _per_step(timing: H.Timing, k: int) -> H.Timing:
    """Steady-state statistics per step for a call that runs ``k`` steps."""
    if k == 1:
        return timing
    return dataclasses.replace(
        timing, median_s=timing.median_s / k, q1_s=timing.q1_s / k, q3_s=timing.q3_s / k
    )


def run(args, cfg: Config) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """Benchmarks every requested peer at every batch size; returns rows, skips, errors."""
    rows, skipped, errors = [], {}, {}
    for peer in args.peers:
        module = PEER_MODULES.get(peer)
        note = module and C.missing_module(module)
        if note:
            skipped[peer] = note
            print(f"skipping {peer}: {note}", file=sys.stderr)
    timing_kw = C.timing_options(args)
    for batch in args.batch_sizes:
        for peer in (p for p in args.peers if p not in skipped):
            try:
                case = BUILDERS[peer](cfg, batch)
                for task, fn in (("train", case.train), ("predict", case.predict)):
                    timing = H.time_call(fn, sync=case.sync, **timing_kw)
                    k = case.steps_per_call if task == "train" else 1
                    extra = {"steps_per_call": k}
                    if case.traces is not None:
                        extra["traces"] = case.traces.get(task, 0)
                    rows.append(H.row(peer, task, batch, _per_step(timing, k), **extra))
            except Exception as err:  # one broken peer must not end the run
                errors[f"{peer}@{batch}"] = f"{type(err).__name__}: {err}"
                print(f"error in {peer} at batch {batch}: {err}", file=sys.stderr)
    return H.add_ratios(rows), skipped, errors


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the benchmark, writes the JSON and prints the table."""
    parser = C.make_parser(__doc__.splitlines()[0], PEERS, DEFAULT_PEERS, (32, 256))
    parser.add_argument(
        "--sizes", type=C.int_list, default=None, help="layer sizes, e.g. 784,500,10"
    )
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--scan-steps", type=int, default=8, help="K for nnjax_scan")
    args = parser.parse_args(argv)
    C.limit_threads(args.threads)
    if args.quick:
        C.apply_quick(args, parser, batch_sizes=[8])
    sizes = tuple(args.sizes or ((64, 32, 16, 10) if args.quick else Config.sizes))
    if len(sizes) < 2:
        parser.error(f"--sizes needs at least an input and an output size, got {sizes}")
    cfg = Config(sizes, args.optimizer, args.lr, args.scan_steps)
    rows, skipped, errors = run(args, cfg)
    out = H.write_json(
        args.out or H.default_out(NAME),
        name=NAME,
        config={**dataclasses.asdict(cfg), **C.run_config(args)},
        rows=rows,
        skipped=skipped,
        errors=errors,
    )
    print(H.format_table(rows))
    for peer, note in skipped.items():
        print(f"skipped {peer}: {note}")
    print(f"wrote {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
