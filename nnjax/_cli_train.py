"""`nnjax train`: the run folder, its recorded config, resuming and cleanup (private).

Split out of :mod:`nnjax.cli`, which dispatches to :func:`cmd_train`. Started by
``nnjax launch --processes N -- python -m nnjax.cli train ...``, every process joins
the group first (:func:`nnjax.distributed.process.initialize_if_launched`), trains
over every device of every process, and only process 0 prints and writes the run
folder's files (the checkpoints are written collectively, as ``fit`` writes them).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from nnjax._cli_setup import (
    CLIError,
    build_model,
    load_split,
    loss_and_metrics,
    plot_history,
    read_config,
)


def _config(args: argparse.Namespace) -> dict:
    return {
        "dataset": args.dataset,
        "model": args.model,
        "hidden": list(args.hidden or ((128,) if args.model != "mlp" else (256, 128))),
        "dropout": args.dropout,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": args.lr,
        "seed": args.seed,
        "limit": args.limit,
        "data_dir": args.data_dir,
    }


#: `nnjax train` options that a resumed run takes from its config.json, and their keys.
_RECORDED = {
    "--dataset": "dataset",
    "--model": "model",
    "--hidden": "hidden",
    "--dropout": "dropout",
    "--batch-size": "batch_size",
    "--optimizer": "optimizer",
    "--lr": "learning_rate",
    "--seed": "seed",
    "--limit": "limit",
    "--data-dir": "data_dir",
}


def given_options(argv: list[str]) -> set[str]:
    """The `nnjax train` options named in ``argv`` (argparse's unique prefixes included)."""
    given: set[str] = set()
    for token in argv:
        name = token.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2:
            matches = [o for o in _RECORDED if o.startswith(name)]
            given.update(matches if name in _RECORDED or len(matches) == 1 else ())
    return given


def _resumed_config(out: Path, args: argparse.Namespace) -> dict:
    """The run's recorded config with the new ``--epochs``; refuses changed settings."""
    saved = read_config(out / "config.json")
    asked = _config(args)
    for option in sorted(args.given):
        key = _RECORDED[option]
        if asked[key] != saved.get(key):
            raise CLIError(
                f"--resume continues {out} with its recorded settings, but {option} "
                f"{asked[key]} differs from the run's {key} {saved.get(key)}; drop {option}, "
                "or start a new run with another --out"
            )
    return {**saved, "epochs": args.epochs}


def _history_for_people(history) -> dict:
    """``History.to_dict()`` with 1-based epochs, as the console counts them."""
    data = history.to_dict()
    return {**data, "epoch": [int(e) + 1 for e in data["epoch"]]}


def _check_out(out: Path) -> None:
    """Refuses an ``--out`` that is a file, or a folder of checkpoints that is no run."""
    from nnjax.io import layout, steps

    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is an existing file, not a folder; choose another --out")
    if out.is_dir() and (steps.epochs(out) or (out / layout.META).is_file()):
        raise CLIError(
            f"--out {out} holds checkpoints of another kind (saved with nnjax.save or "
            "ModelCheckpoint), not a run of `nnjax train`; choose another --out"
        )


#: The files `nnjax train` writes into a run folder before the first checkpoint.
_RUN_FILES = ("config.json", "preprocessing.json", "history.csv")


def _new_paths(out: Path) -> list[Path]:
    """The folders and files of a run folder that do not exist yet (this run creates them)."""
    missing = [p for p in (out, out / "checkpoint") if not p.exists()]
    return missing + [out / name for name in _RUN_FILES if not (out / name).exists()]


def _say(line: str) -> None:
    """Prints ``line`` on process 0 only (every process runs the same command)."""
    from nnjax.distributed.process import is_main_process

    if is_main_process():
        print(line)


def _run_note(done: int) -> str:
    """`` (resuming after epoch 2; 2 processes, 4 devices)``, or the parts that apply."""
    import jax

    parts = [f"resuming after epoch {done}"] if done else []
    if jax.process_count() > 1:
        parts.append(f"{jax.process_count()} processes, {jax.device_count()} devices")
    return f" ({'; '.join(parts)})" if parts else ""


def _default_out(config: dict) -> Path:
    """``runs/<dataset>-<model>-<time>``, the time process 0's (one folder for every process)."""
    import jax
    import numpy as np

    now = int(time.time())
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        now = int(multihost_utils.broadcast_one_to_all(np.int32(now)))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(f"runs/{config['dataset']}-{config['model']}-{stamp}")


@contextlib.contextmanager
def _removed_unless_saved(out: Path, created: list[Path]) -> Iterator[None]:
    """On an error before the first checkpoint, removes what this run created (only that).

    So a run that fails before training (bad data, a diverging first epoch, Ctrl-C)
    leaves no empty run folder behind; anything that was there before stays.
    """
    from nnjax import train
    from nnjax.distributed.process import is_main_process

    try:
        yield
    except BaseException:
        if train.latest_epoch(out / "checkpoint") is None and is_main_process():
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()  # only when empty: never someone else's files
                    else:
                        path.unlink()
        raise


def _fit(args, config, out, model, train_set, test_set, loss, metrics):
    from nnjax import train

    return train.fit(
        model,
        train_set,
        loss=loss,
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        validation_data=test_set,
        metrics=metrics,
        seed=config["seed"],
        verbose=0
        if args.quiet
        else (args.verbose if args.verbose == "auto" else int(args.verbose)),
        resume_from=out / "checkpoint" if args.resume else None,
        callbacks=[
            train.ModelCheckpoint(out / "checkpoint", max_to_keep=1),
            train.CSVLogger(out / "history.csv", append=args.resume, first_epoch=1),
        ],
    )


def cmd_train(args: argparse.Namespace) -> int:
    """`nnjax train`: trains a model into a run folder; returns the exit status.

    ``--resume`` needs an ``--out`` that holds a checkpoint; otherwise it is an error
    before any data is loaded (nothing is trained and no folder is created).
    """
    from nnjax import nn, train
    from nnjax.distributed.process import initialize_if_launched, is_main_process
    from nnjax.io import layout, run

    initialize_if_launched()  # under `nnjax launch`: join the group before any JAX work
    config = _config(args)
    if args.resume and not args.out:
        raise CLIError("--resume continues the run in --out; name that run folder with --out")
    out = Path(args.out) if args.out else _default_out(config)
    _check_out(out)
    done = train.latest_epoch(out / "checkpoint")  # 0-based, None for a new run
    if done is not None and not args.resume:
        raise CLIError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if args.resume and (out / "config.json").is_file():
        config = _resumed_config(out, args)
    if args.resume and done is None:  # almost always a mistyped --out: train nothing
        raise CLIError(
            f"--resume: {out} holds no run to continue (no checkpoint in {out / 'checkpoint'}); "
            "check --out, or drop --resume to start a new run"
        )
    done = 0 if done is None or not args.resume else done + 1  # epochs already trained
    if done >= config["epochs"]:
        raise CLIError(f"{out} has trained {done} epochs already; ask for more with --epochs")
    train_set, test_set, prep = load_split(config)
    model = build_model(config)
    loss, metrics = loss_and_metrics(config)
    created = _new_paths(out)
    out.mkdir(parents=True, exist_ok=True)
    layout.write_json(out / "config.json", config)
    layout.write_json(out / run.FILE, prep.to_dict())
    _say(
        f"nnjax train: {config['model']} on {config['dataset']} "
        f"({len(train_set[0])} train / {len(test_set[0])} test), "
        f"{nn.count_params(model):,} parameters -> {out}{_run_note(done)}"
    )
    start = time.perf_counter()
    with _removed_unless_saved(out, created):
        history = _fit(args, config, out, model, train_set, test_set, loss, metrics)
    seconds = time.perf_counter() - start
    ran = len(history.epoch) - done  # this invocation's epochs, not the resumed ones
    layout.write_json(out / "history.json", _history_for_people(history))
    plotted = is_main_process() and plot_history(history.history, out / "learning_curves.png")
    final = {k: v[-1] for k, v in history.history.items()}
    result = {"seconds": round(seconds, 2), "epochs_run": ran, "epochs": len(history.epoch)}
    layout.write_json(out / "result.json", {**result, **final})
    metric = metrics[0]
    span = f"epochs {done + 1}-{done + ran}" if ran > 1 else f"epoch {done + 1}"
    _say(
        f"test {metric}: {final[f'val_{metric}']:.4f}  (test loss {final['val_loss']:.4f}, "
        f"{seconds:.1f} s for {span})"
    )
    _say(
        f"saved checkpoint/, {run.FILE}, history.csv, history.json"
        f"{', learning_curves.png' if plotted else ''} in {out}"
    )
    return 0
