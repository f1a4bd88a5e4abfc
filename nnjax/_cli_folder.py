"""The run folder of `nnjax train`: checks, the default name, cleanup on failure (private).

Split out of :mod:`nnjax._cli_train`. A run without ``--out`` claims
``runs/<dataset>-<model>-<time>`` by making it (never a folder that exists: two runs
started in the same second get ``...-2``, ``...-3``); a run that fails before its
first checkpoint removes what it created, and only that.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

from nnjax._cli_setup import CLIError

#: The files `nnjax train` writes into a run folder before the first checkpoint.
RUN_FILES = ("config.json", "preprocessing.json", "history.csv")
#: The files `nnjax train` writes after the last epoch (learning_curves.png needs matplotlib).
FINAL_FILES = ("history.json", "result.json")


def check_out(out: Path) -> None:
    """Refuses an ``--out`` that is a file, or a folder of checkpoints that is no run."""
    from nnjax.io import layout, steps

    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is an existing file, not a folder; choose another --out")
    if out.is_dir() and (steps.epochs(out) or (out / layout.META).is_file()):
        raise CLIError(
            f"--out {out} holds checkpoints of another kind (saved with nnjax.save or "
            "ModelCheckpoint), not a run of `nnjax train`; choose another --out"
        )


def has_final_files(out: Path, epochs: int) -> bool:
    """Whether the run folder holds the files written after its last epoch, ``epochs``.

    Files of an earlier end (a run resumed for more epochs, interrupted before its own
    end rewrote them) do not count: their ``result.json`` records fewer epochs.
    """
    if not all((out / name).is_file() for name in FINAL_FILES):
        return False
    try:
        recorded = json.loads((out / "result.json").read_text()).get("epochs")
    except (OSError, ValueError, AttributeError):  # unreadable, garbled, not an object
        return False
    return recorded == epochs


def _new_paths(out: Path) -> list[Path]:
    """The folders and files of a run folder that do not exist yet (this run creates them)."""
    missing = [p for p in (out, out / "checkpoint") if not p.exists()]
    return missing + [out / name for name in RUN_FILES if not (out / name).exists()]


def made_folder(out: Path | None, config: dict) -> tuple[Path, list[Path]]:
    """The run folder (``None``: the default one, claimed), made; and what this run creates.

    The paths are listed in the order they are made, for :func:`removed_unless_saved`.
    Only process 0 makes the folder (and writes the files), and every process of a
    group gets process 0's list: another process's ``mkdir`` could come first, or its
    look at the folder come after process 0's first writes.
    """
    from nnjax.distributed.process import is_main_process

    claimed = out is None
    if out is None:
        out = _claim_default_out(config)
    created = _as_on_process_0(out, [out] * claimed + _new_paths(out))
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
    return out, created


def _as_on_process_0(out: Path, paths: list[Path]) -> list[Path]:
    """``paths`` (some of the run folder's own) as process 0 listed them, on every process."""
    import jax

    if jax.process_count() == 1:
        return paths
    import numpy as np
    from jax.experimental import multihost_utils

    every = [out, out / "checkpoint", *(out / name for name in RUN_FILES)]
    listed = np.array([path in paths for path in every], np.int32)
    listed = np.asarray(multihost_utils.broadcast_one_to_all(listed))
    return [path for path, flag in zip(every, listed) if flag]


def _stamped(config: dict, now: int, n: int) -> Path:
    """``runs/<dataset>-<model>-<time>``, with ``-<n>`` for ``n > 1``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(f"runs/{config['dataset']}-{config['model']}-{stamp}{f'-{n}' if n > 1 else ''}")


def _claim_default_out(config: dict) -> Path:
    """Makes the default run folder on process 0 (one no other run has); every process's path.

    The folder is made without ``exist_ok``: of two runs started in the same second,
    the second gets the name with ``-2`` (and so on). Process 0's choice (its time and
    suffix) is broadcast, so every process of a group writes into the same folder.
    """
    import jax
    import numpy as np

    now, n = int(time.time()), 1
    if jax.process_index() == 0:
        Path("runs").mkdir(exist_ok=True)
        for n in itertools.count(1):
            try:
                _stamped(config, now, n).mkdir()
                break
            except FileExistsError:  # another run's (started in the same second)
                continue
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        chosen = multihost_utils.broadcast_one_to_all(np.array([now, n], np.int32))
        now, n = (int(v) for v in np.asarray(chosen))
    return _stamped(config, now, n)


@contextlib.contextmanager
def removed_unless_saved(out: Path, created: list[Path]) -> Iterator[None]:
    """On an error before the first checkpoint, removes what this run created (only that).

    So a run that fails before training (bad data, a diverging first epoch, Ctrl-C)
    leaves no empty run folder behind; anything that was there before stays. In a
    group every process removes them (process 0's list, from :func:`made_folder`): a
    stop (``nnjax launch`` after Ctrl-C) can leave process 0 blocked in a collective
    that a process already gone never joins, until it is killed.
    """
    from nnjax import train

    try:
        yield
    except BaseException:
        if train.latest_epoch(out / "checkpoint") is None:
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()  # only when empty: never someone else's files
                    else:
                        path.unlink()
        raise
