"""nnjax's annotations as a user's type checker reads them (mypy on a user's script).

The documented uses type-check; a misspelt keyword to ``fit`` is an error (``fit``'s
decorators keep its signature).
"""

import pathlib
import re
import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = pathlib.Path(__file__).resolve().parents[1]

USER_SCRIPT = """
import numpy as np
from flax import nnx

import nnjax
from nnjax import activations, data, metrics, nn, train

model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
x = np.zeros((8, 4), np.float32)
y = np.zeros(8, np.int32)
train.fit(model, (x, y), loss="cross_entropy", epoch=3)  # line 10: a misspelt keyword
train.fit(model, (x, y), loss={"a": "mse", "b": "cross_entropy"}, epochs=1)
train.evaluate(model, (x, y), loss=["mse", "mse"])
train.sweep(lambda rngs: nn.MLP(4, (8,), 3, rngs=rngs), (x, y), loss="mse", seeds=[0, 1])
activations.get("relu")(x)
metrics.get("accuracy")(x, y)
shapes = [xb.shape for xb in data.batches(x, None, 2)]


class Gap(train.Callback):
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if logs is not None:
            logs["gap"] = 1.0
        self.loop.request_stop()


class Patient(train.EarlyStopping):
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        super().on_epoch_end(epoch, logs)


loaded: nn.MLP = nnjax.load_state(model, "/nonexistent")
"""


@pytest.mark.slow  # one mypy run over JAX's and Flax's stubs: ~15 s
def test_a_users_script_type_checks_and_a_misspelt_keyword_does_not(tmp_path, monkeypatch):
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(USER_SCRIPT).lstrip())
    monkeypatch.chdir(ROOT)  # nnjax from this checkout, as an editable install has it
    out, err, _ = mypy_api.run([
        "--strict", "--follow-imports=silent", "--ignore-missing-imports",
        "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(script),
    ])  # fmt: skip
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = {int(re.search(r"user\.py:(\d+):", e)[1]) for e in errors}
    assert lines == {10}, out + err
    assert 'Unexpected keyword argument "epoch" for "fit"' in errors[0]
