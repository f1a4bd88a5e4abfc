"""Times training and inference of one small CNN in nnjax and in its peers, in one run.

The model is the same everywhere, a Fashion-MNIST-sized classifier: per block
``conv 3x3 (SAME) -> ReLU -> max-pool 2x2``, with ``32`` then ``64`` filters
(``--conv-features``), then a dense head ``128 -> 10`` (``--dense``), float32,
softmax cross-entropy on random ``28x28x1`` images (``--input-shape``), trained with
Adam (or SGD). The JAX-side peers take NHWC ``(B, 28, 28, 1)`` batches; PyTorch and Equinox take the
same data transposed to NCHW on the host (their convolutions' layout). For each batch
size and peer it times one training step and one forward pass, the first call
(trace + compile + run) apart from the steady-state median.

Peers: ``nnjax`` (``nnjax.nn.CNN``; ``nnjax.train`` pure step under ``jax.jit`` with
donation), ``nnjax_no_donate`` (the same step without buffer donation), ``flax_nnx``
(``nnx.Conv`` + ``nnx.max_pool``, ``nnx.jit``), ``flax_nnx_partial``
(``nnx.jit_partial``), ``equinox`` (``eqx.nn.Conv2d``, ``eqx.filter_jit``), ``keras``
(``Conv2D``/``MaxPooling2D``, JAX backend), ``torch`` (eager; ``torch_compile`` on
request), ``nnjax_bf16`` (``nnjax`` with the model built with ``dtype=jnp.bfloat16``) and
``nnjax_precision`` (``nnjax`` stepped as ``fit(precision="bfloat16")`` steps it); a
``bfloat16:`` line per such peer after the table says which hardware case applies and
whether its goal is met, as in ``bench_mlp.py``. On request too, the diagnostic
``nnjax_reduce_window_pool``: the ``nnjax`` peer with its max pools traced under
``pool_formulation("reduce_window")`` (the formulation before the ``"reshape"`` one),
for a before/after ratio in one run; and ``nnjax_ynn_conv``: the ``nnjax`` peer with its
train step compiled by plain ``jax.jit`` (XLA:CPU's default, YNNPACK convolutions, the
rule before ``nnjax.functional._conv_compiler``), where ``nnjax`` and ``fit`` compile it
with ``_conv_compiler.jit`` (convolutions on Eigen). A peer that is not installed is skipped.

Usage::

    python benchmarks/bench_cnn.py                      # full run
    python benchmarks/bench_cnn.py --quick              # tiny sizes (smoke test)
    python benchmarks/bench_cnn.py --threads 1 --clock cpu   # on a shared machine

Writes ``benchmarks/results/cnn_<platform>.json`` and prints a table; ``ratio`` is
``peer median / nnjax median`` (above 1: the peer is slower).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import _bfloat16 as B
import _cli as C
import _models as M
import _peers as P
import _runner as R
import jax
import jax.numpy as jnp

NAME = "cnn"
DEFAULT_PEERS = (*P.STANDARD, "nnjax_bf16", "nnjax_precision")
DIAGNOSTIC = ("nnjax_reduce_window_pool", "nnjax_ynn_conv")
PEERS = (*DEFAULT_PEERS, *P.ON_REQUEST, *DIAGNOSTIC)


@dataclasses.dataclass(frozen=True)
class Config:
    """What is benchmarked: image shape, conv filters, dense head, optimizer."""

    input_shape: tuple[int, int, int] = (28, 28, 1)
    conv_features: tuple[int, ...] = (32, 64)
    dense: tuple[int, ...] = (128,)
    num_classes: int = 10
    kernel_size: int = 3
    pool: int = 2
    optimizer: str = "adam"
    lr: float = 1e-3

    @property
    def flat_features(self) -> int:
        """Features after the last block (VALID pooling floors each spatial size)."""
        h, w, _ = self.input_shape
        n = len(self.conv_features)
        return (h // self.pool**n) * (w // self.pool**n) * self.conv_features[-1]

    @property
    def head(self) -> tuple[int, ...]:
        """Sizes of the dense head, from the flattened features to the logits."""
        return (self.flat_features, *self.dense, self.num_classes)

    @property
    def channels(self) -> tuple[int, ...]:
        """Input channels of every conv block, then the last block's output channels."""
        return (self.input_shape[-1], *self.conv_features)


# The same CNN in every framework: [conv -> ReLU -> max-pool] per block, flatten, head.


def _nnjax_model(cfg: Config, dtype: Any = None):
    from flax import nnx

    from nnjax import nn

    return nn.CNN(
        cfg.input_shape,
        cfg.num_classes,
        conv_features=cfg.conv_features,
        kernel_size=cfg.kernel_size,
        pool_window=cfg.pool,
        dense=cfg.dense,
        dtype=dtype,
        rngs=nnx.Rngs(0),
    )


def _flax_model(cfg: Config):
    from flax import nnx

    class FlaxCNN(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            k, pairs = cfg.kernel_size, zip(cfg.channels, cfg.channels[1:])
            self.convs = nnx.List([nnx.Conv(a, b, (k, k), rngs=rngs) for a, b in pairs])
            self.head = M.flax_mlp(cfg.head, rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            window = (cfg.pool, cfg.pool)
            for conv in self.convs:
                x = nnx.max_pool(jax.nn.relu(conv(x)), window, strides=window)
            return self.head(x.reshape(x.shape[0], -1))

    return FlaxCNN(nnx.Rngs(0))


def _equinox_model(cfg: Config, key: jax.Array):
    import equinox as eqx

    class EqxCNN(eqx.Module):
        convs: list
        pool: eqx.nn.MaxPool2d
        head: eqx.Module

        def __init__(self, key: jax.Array):
            keys = jax.random.split(key, len(cfg.conv_features) + 1)
            pairs = zip(cfg.channels, cfg.channels[1:], keys)
            self.convs = [
                eqx.nn.Conv2d(a, b, cfg.kernel_size, padding="SAME", key=k) for a, b, k in pairs
            ]
            self.pool = eqx.nn.MaxPool2d(cfg.pool, cfg.pool)
            self.head = M.equinox_mlp(cfg.head, keys[-1])

        def __call__(self, x: jax.Array) -> jax.Array:  # one image, (C, H, W)
            for conv in self.convs:
                x = self.pool(jax.nn.relu(conv(x)))
            return self.head(x.reshape(-1))

    return EqxCNN(key)


def _keras_model(cfg: Config):
    import keras

    layers = [keras.Input(cfg.input_shape)]
    for features in cfg.conv_features:
        conv = keras.layers.Conv2D(features, cfg.kernel_size, padding="same", activation="relu")
        layers += [conv, keras.layers.MaxPooling2D(cfg.pool)]
    return keras.Sequential([*layers, keras.layers.Flatten(), *M.keras_dense(cfg.head)])


def _torch_model(cfg: Config):
    import torch

    layers: list[torch.nn.Module] = []
    for a, b in zip(cfg.channels, cfg.channels[1:]):
        conv = torch.nn.Conv2d(a, b, cfg.kernel_size, padding="same")
        layers += [conv, torch.nn.ReLU(), torch.nn.MaxPool2d(cfg.pool)]
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), *M.torch_dense(cfg.head))


def _traced_within(context: Callable[[], ContextManager], builder: P.Builder) -> P.Builder:
    """``builder`` whose ``train`` and ``predict`` run (so are traced) inside ``context()``."""

    def inside(fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with context():
                return fn()

        return call

    def build(batch: int) -> P.Case:
        case = builder(batch)
        return dataclasses.replace(case, train=inside(case.train), predict=inside(case.predict))

    return build


def builders(cfg: Config) -> dict[str, P.Builder]:
    """Every peer's builder (batch size -> ``Case``) for the CNN of ``cfg``."""
    from nnjax.functional.pooling import pool_formulation

    layouts = {"equinox": P.channels_first, "torch": P.channels_first}
    spec = P.Spec(cfg.input_shape, cfg.num_classes, cfg.optimizer, cfg.lr, layouts)
    p = functools.partial
    nnjax_before = p(P.nnjax, spec, p(_nnjax_model, cfg))
    extra = {
        "nnjax_reduce_window_pool": _traced_within(
            p(pool_formulation, "reduce_window"), nnjax_before
        ),
        "nnjax_ynn_conv": p(P.nnjax, spec, p(_nnjax_model, cfg), library_conv=False),
        "nnjax_bf16": p(P.nnjax, spec, p(_nnjax_model, cfg, jnp.bfloat16)),
        "nnjax_precision": p(P.nnjax, spec, p(_nnjax_model, cfg), precision="bfloat16"),
    }
    return extra | P.standard_peers(
        spec,
        nnjax_model=p(_nnjax_model, cfg),
        flax_model=p(_flax_model, cfg),
        equinox_model=p(_equinox_model, cfg),
        keras_model=p(_keras_model, cfg),
        torch_model=p(_torch_model, cfg),
    )


QUICK = Config(input_shape=(12, 12, 1), conv_features=(4, 8), dense=(16,))


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the benchmark, writes the JSON and prints the table."""
    parser = C.make_parser(__doc__.splitlines()[0], PEERS, DEFAULT_PEERS, (32, 128))
    parser.add_argument("--conv-features", type=C.int_list, default=None, help="e.g. 32,64")
    parser.add_argument("--dense", type=C.int_list, default=None, help="hidden head sizes")
    parser.add_argument(
        "--input-shape", type=C.int_list, default=None, help="H,W,C images, e.g. 32,32,3"
    )
    args = C.parse(parser, argv)
    base = QUICK if args.quick else Config()
    if args.input_shape is not None and len(args.input_shape) != 3:
        parser.error(f"--input-shape takes H,W,C, got {args.input_shape}")
    cfg = dataclasses.replace(
        base,
        input_shape=tuple(args.input_shape or base.input_shape),
        conv_features=tuple(args.conv_features or base.conv_features),
        dense=tuple(args.dense or base.dense),
        optimizer=args.optimizer,
        lr=args.lr,
    )
    if cfg.flat_features < 1:
        parser.error(f"--conv-features: {len(cfg.conv_features)} pooled blocks is too many")
    status = R.run_and_report(NAME, args, builders(cfg), dataclasses.asdict(cfg))
    B.print_verdict(NAME, args.out, args.quick)
    return status


if __name__ == "__main__":
    sys.exit(main())
