"""The run folder of ``nnjax train`` across interruptions and concurrent runs.

* a plain ``--resume`` trains to the run's recorded epochs (not the parser's 10);
* a run interrupted after its last checkpoint, before the files written after the
  last epoch, gets them on ``--resume`` (nothing is trained);
* runs started in the same second without ``--out`` never share a folder.
"""

import json
import time

import pytest

from nnjax import _cli_folder, train
from tests._cli_runs import TINY, run_cli

pytest.importorskip("sklearn")


class _CtrlCAfter(train.Callback):
    """Ctrl-C at the end of epoch ``epoch`` (0-based), after its checkpoint."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _interrupt_after(monkeypatch, epoch):
    """Makes the next ``nnjax train`` see Ctrl-C after epoch ``epoch``'s checkpoint."""
    fit = train.fit

    def interrupted(*args, callbacks, **kwargs):
        monkeypatch.setattr(train, "fit", fit)  # once
        return fit(*args, callbacks=[*callbacks, _CtrlCAfter(epoch)], **kwargs)

    monkeypatch.setattr(train, "fit", interrupted)


def _json(path):
    return json.loads(path.read_text())


def test_a_plain_resume_trains_to_the_recorded_epochs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 0)
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "3", "--out", out)
    assert code == 130, err
    assert train.latest_epoch(out / "checkpoint") == 0
    code, stdout, err = run_cli(capsys, "train", "--out", out, "--resume", "--quiet")
    assert code == 0, err
    assert "s for epochs 2-3)" in stdout
    assert _json(out / "config.json")["epochs"] == 3
    assert (_json(out / "result.json")["epochs"], train.latest_epoch(out / "checkpoint")) == (3, 2)


def test_resume_completes_a_run_interrupted_before_its_final_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--epochs", "2", "--out", out)[0] == 0
    result = _json(out / "result.json")
    rows = (out / "history.csv").read_text().splitlines()
    for name in ("history.json", "result.json", "learning_curves.png"):
        (out / name).unlink()
    (out / "history.csv").write_text("\n".join(rows[:2]) + "\n")  # killed before its last row
    resume = ("train", "--out", out, "--epochs", "2", "--resume", "--quiet")
    code, stdout, err = run_cli(capsys, *resume)
    assert code == 0, err
    assert "(all 2 epochs trained; writing the files its end left out)" in stdout
    assert "after epoch 2; none left to train)" in stdout
    assert (out / "learning_curves.png").is_file()
    assert _json(out / "history.json")["epoch"] == [1, 2]
    completed = _json(out / "result.json")
    assert completed["epochs"] == 2 and completed["epochs_run"] == 0
    assert completed["val_loss"] == result["val_loss"]  # the final metrics of the run
    assert (out / "history.csv").read_text().splitlines() == rows
    assert train.latest_epoch(out / "checkpoint") == 1  # nothing trained
    code, _, err = run_cli(capsys, *resume)
    assert code == 2 and "has trained 2 epochs already" in err  # now complete


def _stamp(t):
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t))


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    now = int(time.time())
    others = [tmp_path / "runs" / f"xor-mlp-{_stamp(now + s)}" for s in range(60)]
    for other in others:  # another run's folder, whatever second this one starts in
        other.mkdir(parents=True)
        (other / "theirs.txt").write_text("another run")
    code, stdout, err = run_cli(capsys, "train", *TINY, "--epochs", "1")
    assert code == 0, err
    for other in others:
        assert [p.name for p in other.iterdir()] == ["theirs.txt"], other
    (mine,) = set((tmp_path / "runs").iterdir()) - set(others)
    assert mine.name in {f"{o.name}-2" for o in others}
    assert (mine / "result.json").is_file() and f"-> runs/{mine.name}" in stdout


def test_the_default_folder_is_claimed_with_a_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_cli_folder.time, "time", lambda: 1_800_000_000.0)
    config = {"dataset": "xor", "model": "mlp"}
    claimed = [_cli_folder.made_folder(None, config) for _ in range(3)]
    first = f"runs/xor-mlp-{_stamp(1_800_000_000)}"
    assert [str(out) for out, _ in claimed] == [first, f"{first}-2", f"{first}-3"]
    assert all(out.is_dir() and created[0] == out for out, created in claimed)


def test_a_failed_first_write_leaves_no_default_folder(tmp_path, capsys, monkeypatch):
    """The claimed folder is removed when writing config.json fails (a full disk)."""
    from nnjax.io import layout

    monkeypatch.chdir(tmp_path)
    real = layout.write_json

    def full(path, data):
        if path.name == "config.json":
            raise OSError(28, f"cannot write {path}: No space left on device")
        return real(path, data)

    monkeypatch.setattr(layout, "write_json", full)
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1")
    assert code != 0 and "No space left on device" in err
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_resume_completes_an_end_that_left_an_earlier_ends_files(tmp_path, capsys):
    """A run resumed for more epochs, interrupted before its end rewrote the files."""
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--epochs", "1", "--out", out)[0] == 0
    first = {name: (out / name).read_text() for name in ("result.json", "history.json")}
    resume = ("train", "--out", out, "--resume", "--quiet")
    assert run_cli(capsys, *resume, "--epochs", "2")[0] == 0
    for name, text in first.items():  # as if killed after epoch 2's checkpoint
        (out / name).write_text(text)
    code, stdout, err = run_cli(capsys, *resume)
    assert code == 0, err
    assert "(all 2 epochs trained; writing the files its end left out)" in stdout
    assert _json(out / "result.json")["epochs"] == 2
    assert _json(out / "history.json")["epoch"] == [1, 2]
