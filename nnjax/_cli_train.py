"""`nnjax train`: its recorded config, resuming, and the files after the last epoch (private).

Split out of :mod:`nnjax.cli`, which dispatches to :func:`cmd_train`; the run folder
itself (checks, the default name, cleanup after an early failure) is
:mod:`nnjax._cli_folder`'s. Started by
``nnjax launch --processes N -- python -m nnjax.cli train ...``, every process joins
the group first (:func:`nnjax.distributed.process.initialize_if_launched`), trains
over every device of every process, and only process 0 prints and writes the run
folder's files (the checkpoints are written collectively, as ``fit`` writes them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnjax._cli_folder import (
    check_out,
    has_final_files,
    made_folder,
    removed_unless_saved,
)
from nnjax._cli_setup import (
    CLIError,
    build_model,
    load_split,
    loss_and_metrics,
    plot_history,
    precision,
    read_config,
)

#: The epochs of a new run without ``--epochs`` (a resumed run keeps its recorded ones).
DEFAULT_EPOCHS = 10


def _config(args: argparse.Namespace) -> dict:
    return {
        "dataset": args.dataset,
        "model": args.model,
        "hidden": list(args.hidden or ((128,) if args.model != "mlp" else (256, 128))),
        "dropout": args.dropout,
        "epochs": DEFAULT_EPOCHS if args.epochs is None else args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": args.lr,
        "precision": args.precision,
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
    "--precision": "precision",
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
    """The run's recorded config, with ``--epochs`` if given; refuses changed settings."""
    saved = {"precision": "float32", **read_config(out / "config.json")}  # runs before it
    asked = _config(args)
    for option in sorted(args.given):
        key = _RECORDED[option]
        if asked[key] != saved.get(key):
            raise CLIError(
                f"--resume continues {out} with its recorded settings, but {option} "
                f"{asked[key]} differs from the run's {key} {saved.get(key)}; drop {option}, "
                "or start a new run with another --out"
            )
    if args.epochs is not None:
        return {**saved, "epochs": args.epochs}
    return {**saved, "epochs": saved.get("epochs", DEFAULT_EPOCHS)}


def _history_for_people(history) -> dict:
    """``History.to_dict()`` with 1-based epochs, as the console counts them."""
    data = history.to_dict()
    return {**data, "epoch": [int(e) + 1 for e in data["epoch"]]}


def _say(line: str) -> None:
    """Prints ``line`` on process 0 only (every process runs the same command)."""
    from nnjax.distributed.process import is_main_process

    if is_main_process():
        print(line)


def _run_note(done: int, epochs: int) -> str:
    """`` (resuming after epoch 2; 2 processes, 4 devices)``, or the parts that apply."""
    import jax

    parts = [f"resuming after epoch {done}"] if done else []
    if done == epochs:  # an interrupted end: only its files are left to write
        parts = [f"all {done} epochs trained; writing the files its end left out"]
    if jax.process_count() > 1:
        parts.append(f"{jax.process_count()} processes, {jax.device_count()} devices")
    return f" ({'; '.join(parts)})" if parts else ""


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
        precision=precision(config),
        verbose=0
        if args.quiet
        else (args.verbose if args.verbose == "auto" else int(args.verbose)),
        resume_from=out / "checkpoint" if args.resume else None,
        callbacks=[
            train.ModelCheckpoint(out / "checkpoint", max_to_keep=1),
            train.CSVLogger(out / "history.csv", append=args.resume, first_epoch=1),
        ],
    )


def _plan(args: argparse.Namespace, out: Path | None) -> tuple[dict, int]:
    """``(config, done)``: the run's settings and the epochs it has trained already.

    ``done`` equals the run's epochs only for a run interrupted after its last
    checkpoint, before the files written after the last epoch: those are left to write.

    Raises:
      CLIError: what cannot run: a run in ``out`` without ``--resume``, ``--resume``
        without a run, or a complete run with no more epochs asked for.
    """
    from nnjax import train

    config = _config(args)
    if out is None:  # the default folder: a new one
        return config, 0
    check_out(out)
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
    done = 0 if done is None else done + 1  # epochs already trained
    # interrupted after the last checkpoint, before the final files: write them now
    finishing = done == config["epochs"] and not has_final_files(out, done)
    if done >= config["epochs"] and not finishing:
        raise CLIError(f"{out} has trained {done} epochs already; ask for more with --epochs")
    return config, done


def cmd_train(args: argparse.Namespace) -> int:
    """`nnjax train`: trains a model into a run folder; returns the exit status.

    ``--resume`` needs an ``--out`` that holds a checkpoint; otherwise it is an error
    before any data is loaded (nothing is trained and no folder is created). A resumed
    run trains to its recorded epochs unless ``--epochs`` says otherwise; one that has
    trained them all but lacks its final files (interrupted after the last checkpoint)
    gets those files written, and nothing is trained.
    """
    from nnjax import nn
    from nnjax.distributed.process import initialize_if_launched
    from nnjax.io import layout, run

    initialize_if_launched()  # under `nnjax launch`: join the group before any JAX work
    if args.resume and not args.out:
        raise CLIError("--resume continues the run in --out; name that run folder with --out")
    config, done = _plan(args, Path(args.out) if args.out else None)
    train_set, test_set, prep = load_split(config)
    model = build_model(config)
    loss, metrics = loss_and_metrics(config)
    out, created = made_folder(Path(args.out) if args.out else None, config)
    with removed_unless_saved(out, created):  # a failed write too: no half-made folder
        layout.write_json(out / "config.json", config)
        layout.write_json(out / run.FILE, prep.to_dict())
        _say(
            f"nnjax train: {config['model']} on {config['dataset']} "
            f"({len(train_set[0])} train / {len(test_set[0])} test), "
            f"{nn.count_params(model):,} parameters -> {out}{_run_note(done, config['epochs'])}"
        )
        start = time.perf_counter()
        history = _fit(args, config, out, model, train_set, test_set, loss, metrics)
    _write_final(out, history, done, time.perf_counter() - start, metrics[0])
    return 0


def _write_final(out: Path, history, done: int, seconds: float, metric: str) -> None:
    """history.json, learning_curves.png and result.json after the last epoch; the summary."""
    from nnjax.distributed.process import is_main_process
    from nnjax.io import layout, run

    ran = len(history.epoch) - done  # this invocation's epochs, not the resumed ones
    layout.write_json(out / "history.json", _history_for_people(history))
    plotted = is_main_process() and plot_history(history.history, out / "learning_curves.png")
    final = {k: v[-1] for k, v in history.history.items()}
    result = {"seconds": round(seconds, 2), "epochs_run": ran, "epochs": len(history.epoch)}
    layout.write_json(out / "result.json", {**result, **final})
    span = f"epochs {done + 1}-{done + ran}" if ran > 1 else f"epoch {done + 1}"
    timing = f"{seconds:.1f} s for {span}" if ran else f"after epoch {done}; none left to train"
    scores = f"test {metric}: {final[f'val_{metric}']:.4f}  (test loss {final['val_loss']:.4f}"
    _say(f"{scores}, {timing})")
    _say(
        f"saved checkpoint/, {run.FILE}, history.csv, history.json"
        f"{', learning_curves.png' if plotted else ''} in {out}"
    )
