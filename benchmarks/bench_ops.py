"""Times each formulation of nnjax's ops per shape, against PyTorch, and records nnjax's pick.

Ops (forward + backward, jitted, float32, medians over interleaved samples; the first
call, trace + compile + run, apart):

* ``conv2d``: 3x3 SAME convolutions at the CNN benchmark's shapes (``(B, 28, 28, 1) ->
  32`` and ``(B, 14, 14, 32) -> 64``) plus one depthwise ``(B, 14, 14, 32)``, for each
  formulation of ``F.conv2d`` (``"xla"``, ``"patches"``; ``"taps"``, reached through
  ``"auto"``, where the library picks it: depthwise on the CPU), ``"auto"`` in a program
  compiled by ``nnjax.functional._conv_compiler.jit`` (row ``library_auto``: XLA:CPU's
  convolutions on Eigen, as in ``fit``'s step once wired), on a CPU with native
  bfloat16 the same traced as ``fit(precision="bfloat16")`` traces it (row
  ``library_precision``: matmul operands rounded to bfloat16; with AMX, im2col on its
  bfloat16 tiles where ``nnjax.functional._conv_bfloat16.faster`` says so) and
  ``torch.nn.functional.conv2d``. The convolution's loss is ``sum(y ** 2) / 2``, so
  its backward pass starts from a cotangent computed from ``y``, as in a network; until
  session 21 it was ``sum(y)``, whose constant cotangent XLA simplifies in ways no
  training step allows (also a cotangent given as an argument misled: the bfloat16
  patches of ``library_precision`` took 1.3x Eigen's time at 28x28x128 -> 128, batch
  8, that way, 0.65-0.93x with a ReLU, a batch norm, a residual, a squared or a pooled
  loss after the convolution);
* ``conv1d`` / ``conv3d``: SAME convolutions of sequences (128x64 -> 64 k3, a text CNN's
  64x300 -> 100 k5, an audio front end's 1024x16 -> 32 k9) and volumes (3x3x3: 8x16x16x3
  -> 16, 8x16x16x32 -> 64, 4x8x8x64 -> 64): ``"xla"`` and ``"patches"`` under plain
  ``jit`` and as ``fit`` compiles them (``library_*``), ``library_auto`` (``fit``'s
  pick: for 3-D, depth-stacked planes and one 2-D convolution) and PyTorch;
* ``conv_transpose``: transposed convolutions (1-D, 2-D, 3-D; a DCGAN generator's, a
  U-Net decoder's), as ``fit`` compiles them: the pick (one stride-1 convolution and a
  pixel shuffle, ``_conv_subpixel.py``), its shared-kernel and per-phase variants,
  ``lax``'s stride-dilated convolution (nnjax's before) and PyTorch (rows ``convT``);
* ``strided``: stride-2 convolutions (a ResNet's stem and downsampling layers), whose
  input gradient is a transposed convolution: the pick, the same with ``lax``'s
  stride-dilated input gradient, PyTorch;
* ``pool``: 2x2 max and average pooling (stride 2) at the CNN benchmark's shapes (after
  a ReLU, so max windows hold ties) for each formulation of ``F.max_pool2d`` /
  ``F.avg_pool2d`` (``"reduce_window"``, ``"reshape"``) and torch's ``max_pool2d`` /
  ``avg_pool2d``;
* ``lstm`` / ``gru``: the LSTM benchmark's sizes (T 64, features 16, hidden 128) with
  inputs projected before the scan or per step, scan unroll 1 or 4 (plain
  ``jax.jit``), the library's default as ``fit`` compiles it (row ``library_auto``: an
  LSTM's matmuls on Eigen on the CPU) and ``torch.nn.LSTM`` / ``GRU``;
* ``dense``: an MLP training step (784-500-300-100-10, Adam) in ``float32`` and with
  ``precision="bfloat16"`` (what ``fit(precision=...)`` uses), on the bfloat16 case of
  this CPU (native AMX / AVX512-BF16 or emulated), printed with the result.

* ``dwblock``: a depthwise-separable block (3x3 depthwise conv, ReLU, 1x1 conv) at a
  MobileNet's stages (56x56x64 to 7x7x512): ``"auto"``, ``library_auto`` (``fit``'s
  compile), ``"xla"`` and PyTorch.
* ``pointwise``: ReLU then a 1x1 convolution at a ResNet-50's bottleneck sizes (four
  down-projections, 56x56x256 -> 64 to 7x7x2048 -> 512, and one up, 56x56x64 -> 256),
  compiled as ``fit`` compiles: ``library_auto`` (the pick), ``library_xla`` (Eigen's
  convolution), ``library_patches`` (one matmul) and PyTorch.

``--sizes large`` times ``conv2d`` at a ResNet's 3x3 stages (56x56x64 to 7x7x512, and a
56x56x64 depthwise) and ``dense`` on a 1024-4096-4096-1024 MLP, where compute, not
launches, sets an accelerator's time.

The rows of one op and shape are timed together (samples interleaved), so their ratios
hold on a loaded machine; ``vs_torch`` is ``median / torch median`` (below 1: faster
than PyTorch) and ``picked`` marks the formulation nnjax uses by default.
``paired_vs_picked`` is ``[q1, median, q3]`` of each row's per-round ratio to the
picked formulation's sample of the same round (``_paired.py``): a row whose IQR lies
below 1 beat the pick despite the machine's drift.

Usage::

    python benchmarks/bench_ops.py              # full run (a few minutes)
    python benchmarks/bench_ops.py --quick      # tiny sizes (smoke test)
    python benchmarks/bench_ops.py --ops conv2d --batch-sizes 32
    python benchmarks/bench_ops.py --ops conv2d,dense --sizes large   # ResNet's convs

Writes ``benchmarks/results/ops_<platform>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

import _bfloat16
import _cli as C
import _harness as H
import _paired

H.ensure_nnjax_importable()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _op_convs import (  # noqa: E402
    Calls,
    conv_calls,
    conv_shapes,
    convnd_calls,
    convnd_shapes,
    dwblock_calls,
    dwblock_shapes,
    jax_fwd_bwd,
    pointwise_calls,
    pointwise_shapes,
    pool_calls,
    pool_shapes,
    rand,
    torch_fwd_bwd,
    torch_leaves,
)
from _op_upsample import strided_calls, strided_shapes, transpose_calls, transpose_shapes  # noqa: E402

OPS = (
    "conv2d",
    "conv1d",
    "conv3d",
    "conv_transpose",
    "strided",
    "dwblock",
    "pointwise",
    "pool",
    "lstm",
    "gru",
    "dense",
)


# ------------------------------------------------------------------- recurrences


def rnn_sizes(quick: bool) -> tuple[int, int, int]:
    """(T, features, hidden): the LSTM benchmark's, or tiny."""
    return (8, 4, 16) if quick else (64, 16, 128)


def _fit_jit(cell: str) -> Callable:
    """``jit`` as ``fit`` compiles a model holding this cell (its matmul library too)."""
    from flax import nnx

    from nnjax import nn
    from nnjax.functional import _conv_compiler
    from nnjax.train import compiled

    module = getattr(nn, cell.upper())(2, 2, rngs=nnx.Rngs(0))
    eigen = compiled.eigen_dots_for(nnx.graphdef(module))
    return functools.partial(_conv_compiler.jit, eigen_dots=eigen)


def rnn_calls(cell: str, batch: int, quick: bool) -> tuple[Calls, str]:
    """Formulations of ``F.lstm``/``F.gru`` fwd + bwd (and torch's), and the default.

    Each formulation under plain ``jax.jit``, and the default as ``fit`` compiles it
    (``library_auto``: an LSTM's matmuls on Eigen on the CPU, where plain ``jax.jit``
    leaves them on YNNPACK).
    """
    import nnjax.functional as F
    from nnjax.functional import sequence

    steps, features, hidden = rnn_sizes(quick)
    init, op = (F.lstm_cell_init, F.lstm) if cell == "lstm" else (F.gru_cell_init, F.gru)
    params = init(jax.random.key(0), features, hidden)
    xs = jnp.asarray(rand((batch, steps, features), 2))
    calls: Calls = {}
    variants = [(True, 1), (False, 1)] if quick else [(True, 1), (False, 1), (True, 4), (False, 4)]
    default = (sequence._default_precompute(), sequence._default_unroll())  # what F.lstm picks
    variants += [default] if default not in variants else []
    for pre, unroll in variants:
        fn = lambda p, xs, pre=pre, unroll=unroll: op(p, xs, precompute_inputs=pre, unroll=unroll)[
            1
        ]
        calls[f"{'precompute' if pre else 'per_step'} unroll {unroll}"] = (
            jax_fwd_bwd(fn, params, xs),
            H.sync_jax,
        )
    picked = f"{'precompute' if default[0] else 'per_step'} unroll {default[1]}"
    auto = lambda p, xs: op(p, xs)[1]
    calls["library_auto"] = (jax_fwd_bwd(auto, params, xs, jit=_fit_jit(cell)), H.sync_jax)
    if C.missing_module("torch") is None:
        import torch

        torch.manual_seed(0)
        device, sync = H.torch_device()
        module = getattr(torch.nn, cell.upper())(features, hidden, batch_first=True).to(device)
        (tx,) = torch_leaves(np.array(xs))
        calls["torch"] = (torch_fwd_bwd(lambda x: module(x)[0], [tx]), sync)
    return calls, picked


# ------------------------------------------------------------------ precision


def dense_calls(batch: int, quick: bool, sizes: str = "benchmark") -> tuple[Calls, str]:
    """An MLP train step in float32 and ``precision="bfloat16"`` (``fit``'s option).

    The MLP benchmark's model, or with ``sizes="large"`` 1024-4096-4096-1024: at a large
    batch its matmuls, not the launches, set the time (an accelerator's bfloat16 case).
    """
    import optax
    from flax import nnx

    from nnjax import nn, train

    widths = {"benchmark": (784, (500, 300, 100), 10), "large": (1024, (4096, 4096), 1024)}
    model = (16, (32,), 4) if quick else widths[sizes]
    graphdef, params, rest = train.split_model(nn.MLP(*model, rngs=nnx.Rngs(0)))
    tx = optax.adam(1e-3)
    x = jnp.asarray(rand((batch, model[0]), 3))
    y = jnp.asarray(np.arange(batch) % model[-1])
    calls: Calls = {}
    for precision in ("float32", "bfloat16"):
        option = None if precision == "float32" else precision
        step = train.make_train_step(graphdef, "cross_entropy", tx, precision=option)
        step = jax.jit(step)
        state = (params, tx.init(params), rest)
        calls[precision] = (functools.partial(step, *state, x, y), H.sync_jax)
    return calls, "float32"


# ------------------------------------------------------------------------ run


#: ``(--ops name, row label, shapes(batch, quick), calls(*spec))`` of the groups built alike.
_SHAPED = (
    ("conv_transpose", "convT", transpose_shapes, transpose_calls),
    ("strided", "strided", strided_shapes, strided_calls),
    ("pointwise", "pointwise", pointwise_shapes, pointwise_calls),
    ("pool", "pool", pool_shapes, pool_calls),
)


def groups(args: argparse.Namespace):
    """Yields ``(op, shape name, batch, builder)`` for every timed group."""
    for batch in args.batch_sizes:
        if "conv2d" in args.ops:
            for name, spec in conv_shapes(batch, args.quick, args.sizes).items():
                yield "conv2d", name, batch, functools.partial(conv_calls, *spec)
        for nd in (1, 3):
            if f"conv{nd}d" in args.ops:
                for name, spec in convnd_shapes(nd, batch, args.quick).items():
                    yield f"conv{nd}d", name, batch, functools.partial(convnd_calls, *spec)
        if "dwblock" in args.ops:
            for name, shape in dwblock_shapes(batch, args.quick).items():
                yield "dwblock", name, batch, functools.partial(dwblock_calls, shape)
        for op, label, shapes, calls in _SHAPED:
            if op in args.ops:
                for name, spec in shapes(batch, args.quick).items():
                    yield label, name, batch, functools.partial(calls, *spec)
        for cell in ("lstm", "gru"):
            if cell in args.ops:
                steps, features, hidden = rnn_sizes(args.quick)
                shape = f"T{steps} F{features} H{hidden}"
                yield cell, shape, batch, functools.partial(rnn_calls, cell, batch, args.quick)
        if "dense" in args.ops:
            shape = "MLP train step" if args.sizes == "benchmark" else "MLP 1024-4096x2-1024"
            yield (
                "dense",
                shape,
                batch,
                functools.partial(dense_calls, batch, args.quick, args.sizes),
            )


def run(
    args: argparse.Namespace, on_group: Callable[[list, dict], None] | None = None
) -> tuple[list[dict], dict[str, str]]:
    """Times every group; returns the rows and the errors.

    After each group ``on_group(rows so far, errors)`` is called, when given.
    """
    rows, errors = [], {}
    for op, shape, batch, build in groups(args):
        calls, picked = build()
        timings, failed = H.time_calls(calls, **C.timing_options(args))
        base = timings.get("torch") or timings.get("float32")
        pick = timings.get(picked)
        for name, timing in timings.items():
            paired = pick and _paired.paired_ratio(timing.samples_s, pick.samples_s)
            extra = {
                "op": op,
                "shape": shape,
                "formulation": name,
                "picked": name == picked,
                "vs_torch": None if base is None else timing.median_s / base.median_s,
                "paired_vs_picked": list(paired) if paired else None,
            }
            rows.append(H.row("nnjax" if name != "torch" else "torch", op, batch, timing, **extra))
        for name, err in failed.items():
            errors[f"{op} {shape} {batch} {name}"] = f"{type(err).__name__}: {err}"
        print(format_rows([r for r in rows if r["op"] == op and r["shape"] == shape
                           and r["batch_size"] == batch]), flush=True)  # fmt: skip
        if on_group is not None:
            on_group(rows, errors)
    return rows, errors


def format_rows(rows: list[dict]) -> str:
    """One line per row: op, shape, batch, formulation, median, compile, ratios.

    The ratios: ``vs_torch`` (of the medians) and the paired ratio to the picked
    formulation with its IQR (``_paired.format_paired``).
    """
    lines = []
    for r in sorted(rows, key=lambda r: r["median_s"]):
        ratio = "-" if r["vs_torch"] is None else f"{r['vs_torch']:.2f}"
        mark = "*" if r["picked"] else " "
        lines.append(
            f"{r['op']:<8}{r['shape']:<20}{r['batch_size']:>5}  {mark}{r['formulation']:<22}"
            f"{r['median_s'] * 1e3:>10.2f} ms{r['compile_s']:>9.2f} s{ratio:>7}"
            f"  {_paired.format_paired(r.get('paired_vs_picked'))}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs, writes the JSON and prints the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke)")
    parser.add_argument("--ops", type=lambda s: s.split(","), default=list(OPS))
    parser.add_argument("--batch-sizes", type=C.int_list, default=[32, 128])
    parser.add_argument(
        "--sizes",
        choices=("benchmark", "large"),
        default="benchmark",
        help="conv2d and dense at the benchmarks' sizes or large (ResNet's)",
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--target-s", type=float, default=0.05)
    parser.add_argument("--clock", choices=sorted(C.CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="result JSON path")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.ops) - set(OPS))
    if unknown:
        parser.error(f"--ops: unknown {unknown}; known {list(OPS)}")
    C.limit_threads(args.threads)
    if args.quick:
        C.apply_quick(args, parser, batch_sizes=(4,))
    print(H.machine_summary(H.environment()), flush=True)
    print(f"{'op':<8}{'shape':<20}{'batch':>5}  {'formulation (*: picked)':<23}"
          f"{'median':>13}{'compile':>11}{'vs torch':>9}  vs pick (IQR)")  # fmt: skip
    config = {k: getattr(args, k) for k in ("quick", "ops", "sizes", "batch_sizes", "repeats")}
    save = functools.partial(
        H.write_json, args.out or H.default_out("ops", args.quick), name="ops", config=config,
        skipped={} if C.missing_module("torch") is None else {"torch": "not importable"},
    )  # fmt: skip
    so_far: dict = {"rows": [], "errors": {}}

    def progress(rows: list, errors: dict) -> None:
        """Saves every group so far: a run stopped by its time limit keeps what it measured."""
        so_far.update(rows=list(rows), errors=dict(errors))
        save(**so_far, complete=False)

    with H.stop_on_sigterm():
        try:
            rows, errors = run(args, progress)
        except KeyboardInterrupt as err:  # Stopped (SIGTERM) too
            save(**so_far, complete=False)
            return H.stopped(err, args.out or H.default_out("ops", args.quick))
    out = save(rows=rows, errors=errors)
    print(_bfloat16.precision_verdict(rows))
    print(f"wrote {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
