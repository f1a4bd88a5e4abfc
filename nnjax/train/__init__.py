"""Training: pure jit-compiled Optax steps, ``fit``/``evaluate``/``predict``, callbacks.

The model is split once (:func:`split_model`) into a static graph and pytrees of
parameters and other state; the steps are plain :func:`jax.jit` functions over them.
"""

from nnjax.train.callbacks import Callback, CallbackList, CSVLogger, EarlyStopping, TensorBoard
from nnjax.train.checkpoint import ModelCheckpoint, latest_epoch, load_checkpoint
from nnjax.train.evaluate import evaluate, predict
from nnjax.train.history import History
from nnjax.train.loop import DEFAULT_STEPS_PER_DISPATCH, Loop, NonFiniteLossError, fit
from nnjax.train.mc_dropout import fresh_keys, mc_dropout_predict, mc_dropout_samples
from nnjax.train.optimizers import get_optimizer
from nnjax.train.per_example import (
    batch_grad,
    clip_per_example,
    per_example_grads,
    per_example_norms,
)
from nnjax.train.regularization import (
    KERNEL_NAMES,
    add_l1_l2,
    all_leaves,
    by_prefix,
    clip_gradients,
    freeze,
    is_kernel,
    l1_l2_penalty,
    l1_penalty,
    l2_penalty,
    max_norm,
    path_names,
    project_max_norm,
    select,
)
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
from nnjax.train.sweep import SweepResult, ensemble_predict, grid, member_predictions, sweep

__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "KERNEL_NAMES",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "Loop",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "SweepResult",
    "TensorBoard",
    "TrainState",
    "add_l1_l2",
    "all_leaves",
    "batch_grad",
    "by_prefix",
    "clip_gradients",
    "clip_per_example",
    "ensemble_predict",
    "evaluate",
    "fit",
    "freeze",
    "fresh_keys",
    "get_optimizer",
    "graphdef_for",
    "grid",
    "is_kernel",
    "jit_train_step",
    "l1_l2_penalty",
    "l1_penalty",
    "l2_penalty",
    "latest_epoch",
    "load_checkpoint",
    "make_eval_step",
    "make_loss_fn",
    "make_mesh",
    "make_predict_step",
    "make_train_step",
    "max_norm",
    "mc_dropout_predict",
    "mc_dropout_samples",
    "member_predictions",
    "metric_name",
    "path_names",
    "per_example_grads",
    "per_example_norms",
    "predict",
    "project_max_norm",
    "resolve_metrics",
    "scan_steps",
    "select",
    "split_model",
    "sweep",
]
