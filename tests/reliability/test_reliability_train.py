"""Bad arguments to fit, evaluate, predict and the callbacks: each refused before training.

Each case asserts the error type and the words naming the culprit (the argument and the
value passed). They all fail in the checks before anything compiles, so they are fast.
"""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.errors import ShapeError
from nnjax.train.callbacks import CSVLogger, Monitor
from nnjax.train.optimizers import check_learning_rate
from tests.reliability._corpus import case, check, params
from tests.train._data import blobs, mlp

X, Y = blobs(n=32)
KW = {"loss": "cross_entropy", "epochs": 1, "verbose": 0}


def fit(data=None, model=None, **kw):
    return T.fit(model or mlp(), (X, Y) if data is None else data, **{**KW, **kw})


class OneScore(nnx.Module):
    """A model with one output per example, ``(B,)``."""

    def __init__(self):
        self.linear = nnx.Linear(4, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.linear(x)[:, 0]


def _with_nan(value):
    x = X.copy()
    x[3, 1] = value
    return x


def _soft(rows):
    return np.tile(np.asarray(rows, np.float32), (len(X), 1))


CASES = [
    # --- data
    case("fit-data-not-a-pair", lambda: fit(data=(X,)), ValueError, "(x, y)", "length 1"),
    case("fit-lengths", lambda: fit(data=(X, Y[:-1])), ValueError, "32", "31"),
    case("fit-empty", lambda: fit(data=(X[:0], Y[:0])), ValueError, "empty", "(0, 4)"),
    case("fit-uint8-x", lambda: fit(data=((X * 10).astype(np.uint8), Y)), TypeError, "uint8"),
    case("fit-nan-x", lambda: fit(data=(_with_nan(np.nan), Y)), ValueError, "NaN", "example 3"),
    case("fit-inf-x", lambda: fit(data=(_with_nan(np.inf), Y)), ValueError, "inf", "example 3"),
    case("fit-features", lambda: fit(data=(np.ones((32, 5), np.float32), Y)), ValueError, "(5,)"),
    case(
        "fit-label-range",
        lambda: fit(data=(X, np.where(Y == 0, 5, Y))),
        ValueError,
        "= 5",
        "[0, 2]",
    ),
    case("fit-label-negative", lambda: fit(data=(X, np.where(Y == 0, -1, Y))), ValueError, "= -1"),
    case(
        "fit-one-hot-width",
        lambda: fit(data=(X, np.eye(4, dtype=np.float32)[Y])),
        ValueError,
        "labels",
        "(32, 4)",
    ),
    case(
        "fit-validation-shape",
        lambda: fit(validation_data=(np.ones((8, 6), np.float32), Y[:8])),
        ValueError,
        "(6,)",
    ),
    case(
        "fit-validation-nan",
        lambda: fit(validation_data=(_with_nan(np.nan), Y)),
        ValueError,
        "validation",
        "NaN",
    ),
    case(
        "fit-validation-split-range",
        lambda: fit(validation_split=1.5),
        ValueError,
        "validation_split",
        "1.5",
    ),
    case(
        "fit-validation-split-and-data",
        lambda: fit(validation_split=0.2, validation_data=(X, Y)),
        ValueError,
        "validation_split",
        "validation_data",
    ),
    case(
        "fit-sample-weight-negative",
        lambda: fit(data=(X, Y, -np.ones(32, np.float32))),
        ValueError,
        "-1",
    ),
    # --- counts
    case("fit-epochs-negative", lambda: fit(epochs=-1), ValueError, "epochs", "-1"),
    case("fit-epochs-string", lambda: fit(epochs="3"), TypeError, "epochs", "'3'"),
    case("fit-epochs-float", lambda: fit(epochs=2.5), TypeError, "epochs", "2.5"),
    case("fit-batch-size-zero", lambda: fit(batch_size=0), ValueError, "batch_size", "0"),
    case("fit-batch-size-bool", lambda: fit(batch_size=True), TypeError, "batch_size", "True"),
    case(
        "fit-initial-epoch",
        lambda: fit(epochs=2, initial_epoch=2),
        ValueError,
        "initial_epoch=2",
        "epochs=2",
    ),
    case(
        "fit-initial-epoch-negative",
        lambda: fit(initial_epoch=-1),
        ValueError,
        "initial_epoch",
        "-1",
    ),
    case("fit-steps-per-epoch", lambda: fit(steps_per_epoch=0), ValueError, "steps_per_epoch", "0"),
    case(
        "fit-accumulate-steps", lambda: fit(accumulate_steps=0), ValueError, "accumulate_steps", "0"
    ),
    case(
        "fit-steps-per-dispatch",
        lambda: fit(steps_per_dispatch=-2),
        ValueError,
        "steps_per_dispatch",
        "-2",
    ),
    # --- learning rate and optimizer
    case("fit-lr-negative", lambda: fit(learning_rate=-0.1), ValueError, "learning_rate", "-0.1"),
    case("fit-lr-zero", lambda: fit(learning_rate=0.0), ValueError, "learning_rate", "0.0"),
    case("fit-lr-nan", lambda: fit(learning_rate=float("nan")), ValueError, "learning_rate", "nan"),
    case("fit-lr-inf", lambda: fit(learning_rate=float("inf")), ValueError, "learning_rate", "inf"),
    case("fit-lr-string", lambda: fit(learning_rate="fast"), TypeError, "learning_rate", "'fast'"),
    case("fit-lr-bool", lambda: fit(learning_rate=True), TypeError, "learning_rate", "True"),
    case("fit-lr-array", lambda: fit(learning_rate=np.ones(2)), TypeError, "learning_rate", "(2,)"),
    case(
        "fit-lr-schedule-function",
        lambda: fit(learning_rate=lambda step: 0.1),
        TypeError,
        "learning_rate",
        "function",
    ),
    case("fit-optimizer-name", lambda: fit(optimizer="adamm"), ValueError, "'adamm'", "adam"),
    case(
        "set-lr-negative",
        lambda: check_learning_rate(-1e-3, zero_ok=True),
        ValueError,
        "learning_rate",
        "-0.001",
    ),
    # --- loss and metrics
    case("fit-loss-name", lambda: fit(loss="crossentropy"), ValueError, "'crossentropy'"),
    case("fit-loss-type", lambda: fit(loss=3), TypeError, "loss", "got 3"),
    case("fit-metric-name", lambda: fit(metrics=["acc_uracy"]), ValueError, "'acc_uracy'"),
    case(
        "fit-B-output-cross-entropy",
        lambda: fit(model=OneScore(), data=(X, (Y > 0).astype(np.int32))),
        ValueError,
        "cross_entropy",
        "no class axis",
        "(32,)",
    ),
    case(
        "fit-one-class-cross-entropy",
        lambda: fit(model=mlp(classes=1), data=(X, (Y > 0).astype(np.int32))),
        ValueError,
        "single class",
        "(32, 1)",
    ),
    case(
        "fit-soft-labels-sum",
        lambda: fit(data=(X, _soft([0.5, 0.5, 0.5]))),
        ValueError,
        "data y",
        "sums to 1.5",
    ),
    case(
        "fit-soft-labels-negative",
        lambda: fit(data=(X, _soft([1.5, -0.5, 0.0]))),
        ValueError,
        "data y",
        "negative",
    ),
    case(
        "fit-soft-labels-validation",
        lambda: fit(validation_data=(X, _soft([0.2, 0.2, 0.2]))),
        ValueError,
        "validation y",
        "sums to 0.6",
    ),
    case(
        "fit-regression-shape",
        lambda: fit(loss="mse", data=(X, np.ones((32, 2), np.float32))),
        ValueError,
        "(32, 3)",
        "(32, 2)",
    ),
    # --- callbacks
    case(
        "fit-callback-not-callback",
        lambda: fit(callbacks=[print]),
        TypeError,
        "Callback",
        "builtin_function_or_method",
    ),
    case(
        "fit-early-stopping-no-validation",
        lambda: fit(callbacks=[T.EarlyStopping("val_loss")]),
        ValueError,
        "'val_loss'",
    ),
    case(
        "checkpoint-max-to-keep-zero",
        lambda: T.ModelCheckpoint("/tmp/x", max_to_keep=0),
        ValueError,
        "max_to_keep",
        "got 0",
    ),
    case(
        "checkpoint-max-to-keep-negative",
        lambda: T.ModelCheckpoint("/tmp/x", max_to_keep=-3),
        ValueError,
        "max_to_keep",
        "-3",
    ),
    case(
        "checkpoint-max-to-keep-float",
        lambda: T.ModelCheckpoint("/tmp/x", max_to_keep=1.5),
        ValueError,
        "max_to_keep",
        "1.5",
    ),
    case(
        "checkpoint-max-to-keep-bool",
        lambda: T.ModelCheckpoint("/tmp/x", max_to_keep=True),
        ValueError,
        "max_to_keep",
        "True",
    ),
    case(
        "checkpoint-best-without-monitor",
        lambda: T.ModelCheckpoint("/tmp/x", save_best_only=True),
        ValueError,
        "save_best_only",
        "monitor",
    ),
    case("monitor-mode", lambda: Monitor("val_loss", mode="up"), ValueError, "mode", "'up'"),
    case("reduce-lr-factor", lambda: T.ReduceLROnPlateau(factor=1.5), ValueError, "factor", "1.5"),
    case(
        "csv-first-epoch",
        lambda: CSVLogger("/tmp/h.csv", first_epoch=2),
        ValueError,
        "first_epoch",
        "2",
    ),
    case(
        "scheduler-negative-rate",
        lambda: fit(callbacks=[T.LearningRateScheduler(lambda e, lr: -lr)]),
        ValueError,
        "learning_rate",
        "-0.001",
    ),
    # --- evaluate and predict
    case(
        "evaluate-loss-name", lambda: T.evaluate(mlp(), (X, Y), loss="nope"), ValueError, "'nope'"
    ),
    case(
        "evaluate-not-a-pair",
        lambda: T.evaluate(mlp(), X, loss="cross_entropy"),
        ValueError,
        "pair",
    ),
    case(
        "evaluate-uint8",
        lambda: T.evaluate(mlp(), (X.astype(np.uint8), Y), loss="cross_entropy"),
        TypeError,
        "uint8",
    ),
    case(
        "evaluate-batch-size",
        lambda: T.evaluate(mlp(), (X, Y), loss="cross_entropy", batch_size=0),
        ValueError,
        "batch_size",
        "0",
    ),
    case(
        "evaluate-label-range",
        lambda: T.evaluate(mlp(), (X, Y + 3), loss="cross_entropy"),
        ValueError,
        "[0, 2]",
    ),
    case(
        "evaluate-B-output",
        lambda: T.evaluate(OneScore(), (X, Y), loss="cross_entropy"),
        ValueError,
        "no class axis",
    ),
    case("predict-uint8", lambda: T.predict(mlp(), X.astype(np.uint8)), TypeError, "uint8"),
    case(
        "predict-features",
        lambda: T.predict(mlp(), np.ones((4, 7), np.float32)),
        ValueError,
        "(7,)",
    ),
    case(
        "predict-batch-size",
        lambda: T.predict(mlp(), X, batch_size=-1),
        ValueError,
        "batch_size",
        "-1",
    ),
    case("predict-scalar", lambda: T.predict(mlp(), np.float32(1.0)), ShapeError, "x", "float32"),
]


@pytest.mark.parametrize("c", params(CASES))
def test_bad_training_argument(c):
    check(c)


def test_a_bad_learning_rate_leaves_the_model_untouched():
    model = mlp()
    before = [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]
    with pytest.raises(ValueError, match="learning_rate"):
        fit(model=model, learning_rate=float("nan"))
    after = [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
