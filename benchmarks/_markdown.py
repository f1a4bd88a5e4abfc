"""Markdown tables of a result file, as in ``benchmarks/README.md``.

Usage::

    python benchmarks/_markdown.py benchmarks/results/cnn_cpu.json

prints, per task, one table: a row per peer (in the order of the run), and per batch
size the median ± IQR in ms, examples/s, the ratio to nnjax (of the medians, and the
median per-round ratio with its IQR where the samples were kept: :mod:`_paired`) and
the first-call (trace + compile + run) seconds.

Example:
  >>> rows = [{"peer": "nnjax", "task": "train", "batch_size": 8, "median_s": 0.002,
  ...          "iqr_s": 0.0001, "examples_per_s": 4000.0, "ratio_vs_nnjax": 1.0,
  ...          "compile_s": 1.5, "paired_vs_nnjax": [1.0, 1.0, 1.0]}]
  >>> print(markdown_tables(rows))
  **train**
  <BLANKLINE>
  | peer | batch 8: ms | ex/s | ratio | paired (IQR) | compile s |
  |---|---:|---:|---:|---:|---:|
  | nnjax | 2.00 ± 0.10 | 4,000 | 1.00 | 1.00 (1.00-1.00) | 1.50 |
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from _paired import format_paired


def _cells(r: dict[str, Any] | None) -> list[str]:
    if r is None:
        return ["-"] * 5
    ratio = "-" if r.get("ratio_vs_nnjax") is None else f"{r['ratio_vs_nnjax']:.2f}"
    return [
        f"{r['median_s'] * 1e3:.2f} ± {r['iqr_s'] * 1e3:.2f}",
        f"{r['examples_per_s']:,.0f}",
        ratio,
        format_paired(r.get("paired_vs_nnjax")),
        f"{r['compile_s']:.2f}",
    ]


def markdown_tables(rows: Iterable[dict[str, Any]]) -> str:
    """One Markdown table per task (train first), peers as rows, batch sizes as columns."""
    rows = list(rows)
    out = []
    for task in sorted({r["task"] for r in rows}, key=lambda t: (t != "train", t)):
        mine = {(r["peer"], r["batch_size"]): r for r in rows if r["task"] == task}
        batches = sorted({b for _, b in mine})
        peers = list(dict.fromkeys(p for p, _ in mine))
        header = ["peer"]
        for b in batches:
            header += [f"batch {b}: ms", "ex/s", "ratio", "paired (IQR)", "compile s"]
        lines = [f"**{task}**", "", "| " + " | ".join(header) + " |"]
        lines.append("|---|" + "---:|" * (len(header) - 1))
        for p in peers:
            cells = [p] + [c for b in batches for c in _cells(mine.get((p, b)))]
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def main(paths: list[str]) -> int:
    """Prints the tables of every result file given."""
    for path in paths:
        with open(path) as f:
            record = json.load(f)
        print(f"<!-- {path}: {record['environment']['date_utc']} -->")
        print(markdown_tables(record["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
