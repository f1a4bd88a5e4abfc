"""The run loop of the benchmark scripts: time every peer at every batch size, report.

A script builds its peers (:mod:`_peers`), then calls :func:`run_and_report`: every
peer's ``train`` and ``predict`` case is timed at each batch size, samples interleaved
across peers (:func:`_harness.time_calls`), or each peer in processes of its own with
``--isolate`` (:mod:`_isolated`); the rows go to a JSON file and a printed table.

Example:
  >>> import _harness as H
  >>> t = H.Timing(1.0, 0.8, 0.4, 1.2, repeats=3, number=1, samples_s=(0.4, 0.8, 1.2))
  >>> per_step(t, 4).median_s
  0.2
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

import _cli as C
import _harness as H
import _isolated
from _peers import MODULES, Builder


def per_step(timing: H.Timing, k: int) -> H.Timing:
    """Steady-state statistics per step for a call that runs ``k`` steps."""
    if k == 1:
        return timing
    return dataclasses.replace(
        timing,
        median_s=timing.median_s / k,
        q1_s=timing.q1_s / k,
        q3_s=timing.q3_s / k,
        samples_s=tuple(v / k for v in timing.samples_s),
    )


def run(
    args,
    builders: Mapping[str, Builder],
    on_batch: Callable[[list, dict, dict], None] | None = None,
) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """Times every requested peer at every batch size; returns rows, skips and errors.

    At each batch size every peer's case is built, then all of them are timed together
    (:func:`_harness.time_calls`: samples interleaved across peers and tasks); then
    ``on_batch(rows so far, skipped, errors)`` is called, when given.
    """
    if os.environ.get(_isolated.RETAIN_ENV) == "1":  # an --isolate child, as its siblings
        from nnjax.train import host_memory

        host_memory.retain_freed_memory()
    rows, skipped, errors = [], {}, {}
    for peer in args.peers:
        module = MODULES.get(peer)
        note = module and C.missing_module(module)
        if note:
            skipped[peer] = note
            print(f"skipping {peer}: {note}", file=sys.stderr)
    for batch in args.batch_sizes:
        cases, failed = {}, {}
        for peer in (p for p in args.peers if p not in skipped):
            try:
                cases[peer] = builders[peer](batch)
            except Exception as err:  # one broken peer must not end the run
                failed[(peer, "build")] = err
        calls = {
            (peer, task): (getattr(case, task), case.sync)
            for peer, case in cases.items()
            for task in ("train", "predict")
        }
        timings, timing_errors = H.time_calls(calls, **C.timing_options(args))
        for (peer, task), timing in timings.items():
            case = cases[peer]
            k = case.steps_per_call if task == "train" else 1
            extra = {"steps_per_call": k}
            if case.traces is not None:
                extra["traces"] = case.traces.get(task, 0)
            rows.append(H.row(peer, task, batch, per_step(timing, k), **extra))
        for (peer, task), err in {**failed, **timing_errors}.items():
            note = f"{task}: {type(err).__name__}: {err}"
            key = f"{peer}@{batch}"
            errors[key] = f"{errors[key]}; {note}" if key in errors else note
            print(f"error in {peer} ({task}) at batch {batch}: {err}", file=sys.stderr)
        if on_batch is not None:
            on_batch(H.add_ratios(rows), skipped, errors)
    return H.add_ratios(rows), skipped, errors


def run_and_report(
    name: str, args, builders: Mapping[str, Builder], config: Mapping[str, Any]
) -> int:
    """Runs, writes the JSON (``config`` plus the shared options), prints the table.

    Each batch size's rows are printed and saved (``"complete": false``) as it ends; a
    SIGTERM (a time limit) or Ctrl-C saves and prints what ended, then stops the run.

    Returns the exit status: 1 if any peer failed, 128 + the signal if stopped, else 0.
    """
    path = args.out or H.default_out(name, args.quick)
    config = {**config, **C.run_config(args)}
    so_far: tuple[list, dict, dict] = ([], {}, {})

    def save(rows: list, skipped: dict, errors: dict, complete: bool = False) -> pathlib.Path:
        """Writes the JSON file: every row so far, ``complete`` once the run ends."""
        return H.write_json(path, name=name, config=config, rows=rows, skipped=skipped,
                            errors=errors, complete=complete)  # fmt: skip

    def progress(rows: list, skipped: dict, errors: dict) -> None:
        """Prints the batch size just timed and saves every row so far."""
        nonlocal so_far
        so_far = (rows, skipped, errors)
        if rows:
            print(H.format_table([r for r in rows if r["batch_size"] == rows[-1]["batch_size"]]))
            sys.stdout.flush()
        save(rows, skipped, errors)

    with H.stop_on_sigterm():
        try:
            if getattr(args, "isolate", 0):  # each peer in processes of its own (_isolated)
                rows, skipped, errors = _isolated.run(args)
            else:
                rows, skipped, errors = run(args, builders, on_batch=progress)
        except KeyboardInterrupt as err:  # Stopped (SIGTERM) too
            save(*so_far)
            print(H.format_table(so_far[0]))
            return H.stopped(err, path)
    out = save(rows, skipped, errors, complete=True)
    print(H.format_table(rows))
    print(H.host_memory_note())
    for peer, note in skipped.items():
        print(f"skipped {peer}: {note}")
    print(f"wrote {out}")
    return 1 if errors else 0
