"""Training: pure jit-compiled Optax steps, ``fit``/``evaluate``/``predict``, callbacks.

The model is split once (:func:`split_model`) into a static graph and pytrees of
parameters and other state; the steps are plain :func:`jax.jit` functions over them.
"""

from nnjax.train.callbacks import Callback, CallbackList, CSVLogger, EarlyStopping, TensorBoard
from nnjax.train.checkpoint import ModelCheckpoint, latest_epoch, load_checkpoint
from nnjax.train.evaluate import evaluate, predict
from nnjax.train.history import History
from nnjax.train.loop import DEFAULT_STEPS_PER_DISPATCH, Loop, NonFiniteLossError, fit
from nnjax.train.optimizers import get_optimizer
from nnjax.train.sharding import make_mesh
from nnjax.train.state import TrainState
from nnjax.train.step import (
    graphdef_for,
    jit_train_step,
    make_eval_step,
    make_loss_fn,
    make_predict_step,
    make_train_step,
    metric_name,
    resolve_metrics,
    scan_steps,
    split_model,
)

# --- Names from sweep.py, per_example.py, regularization.py, mc_dropout.py (other
# --- helper) are re-exported here by the lead.

__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "Loop",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "TensorBoard",
    "TrainState",
    "evaluate",
    "fit",
    "get_optimizer",
    "graphdef_for",
    "jit_train_step",
    "latest_epoch",
    "load_checkpoint",
    "make_eval_step",
    "make_loss_fn",
    "make_mesh",
    "make_predict_step",
    "make_train_step",
    "metric_name",
    "predict",
    "resolve_metrics",
    "scan_steps",
    "split_model",
]
