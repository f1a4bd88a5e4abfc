"""Compile time of random draws: shaped (JAX's) against flat and reshaped (nnjax's).

XLA:CPU's compile time of a ``jax.random`` draw grows with the rank of its shape. nnjax
draws its initial weights (``nnjax.initializers``) and its dropout masks
(``F.dropout``) flat and reshapes them: the same values (the bits of a shape are those
of its size, reshaped). This script compiles, per shape, both forms of

* ``init``: ``glorot_uniform()(key, shape)`` (``jax.nn.initializers``' against
  ``nnjax.initializers``'), as a model's construction runs it, one program per shape;
* ``dropout``: ``jax.jit`` of a dropout at rate 0.25 of an input of that shape,
  ``jax.random.bernoulli`` of the shape against ``F.dropout``;

``--rounds`` rounds, the two forms back to back in each (their order alternating),
caches cleared before each compile. It reports the median compile time of each form and
the quartiles of the per-round ratios shaped / flat (``_paired``).

Usage::

    python benchmarks/bench_draws.py --out /tmp/draws.json
    python benchmarks/bench_draws.py --quick --out /tmp/d.json   # tiny smoke run
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

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.nn import initializers as jinit  # noqa: E402

import nnjax.functional as F  # noqa: E402
from nnjax import initializers  # noqa: E402

NAME = "draws"
SHAPES = ((128, 10), (32, 64, 128), (3, 3, 32, 64), (32, 14, 14, 32), (3, 3, 3, 16, 32))
QUICK_SHAPES = ((4, 3), (2, 3, 4, 5))


def _shaped_dropout(key: jax.Array, x: jax.Array) -> jax.Array:
    keep = jax.random.bernoulli(key, 0.75, x.shape)
    return jnp.where(keep, x / 0.75, 0.0)


def compile_s(what: str, form: str, shape: tuple[int, ...]) -> float:
    """Seconds to compile (and, for ``init``, run) one form of ``what`` for ``shape``."""
    jax.clear_caches()
    key = jax.random.key(0)
    start = time.perf_counter()
    if what == "init":
        factory = jinit.glorot_uniform if form == "shaped" else initializers.glorot_uniform
        jax.block_until_ready(factory()(key, shape))  # eager: compiled at this call
    else:
        op: Callable = _shaped_dropout if form == "shaped" else lambda k, x: F.dropout(k, x, 0.25)
        jax.jit(op).lower(key, jnp.zeros(shape)).compile()
    return time.perf_counter() - start


def measure(what: str, shape: tuple[int, ...], rounds: int) -> dict:
    """One row: both forms' compile times over ``rounds`` paired rounds."""
    samples: dict[str, list[float]] = {"shaped": [], "flat": []}
    for r in range(rounds):
        for form in ("shaped", "flat") if r % 2 == 0 else ("flat", "shaped"):
            samples[form].append(compile_s(what, form, shape))
    return {
        "what": what,
        "shape": list(shape),
        "shaped_s": statistics.median(samples["shaped"]),
        "flat_s": statistics.median(samples["flat"]),
        "paired_shaped_vs_flat": _paired.paired_ratio(samples["shaped"], samples["flat"]),
    }


def _line(r: dict) -> str:
    shape = "x".join(map(str, r["shape"]))
    paired = _paired.format_paired(r["paired_shaped_vs_flat"])
    return (
        f"{r['what']:<8} {shape:<16} shaped {r['shaped_s']:6.3f} s  flat {r['flat_s']:6.3f} s"
        f"  shaped / flat {paired}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small shapes, two rounds")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (5)")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="result JSON path")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.quick:
        args.rounds = min(args.rounds, 2)
    return args


def main(argv: list[str] | None = None) -> int:
    """Times every (draw, shape), writes the JSON as each ends, prints the lines."""
    args = parse_args(argv)
    out = args.out or H.default_out(NAME, args.quick)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    config = {"quick": args.quick, "rounds": args.rounds, "shapes": [list(s) for s in shapes]}
    rows: list[dict] = []
    try:
        with H.stop_on_sigterm():
            for what in ("init", "dropout"):
                for shape in shapes:
                    rows.append(measure(what, shape, args.rounds))
                    print(_line(rows[-1]), flush=True)
                    H.write_json(out, name=NAME, config=config, rows=rows, skipped={},
                                 errors={}, complete=False)  # fmt: skip
    except KeyboardInterrupt as err:
        return H.stopped(err, out)
    H.write_json(out, name=NAME, config=config, rows=rows, skipped={}, errors={})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
