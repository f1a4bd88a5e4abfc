"""Training: pure jit-compiled Optax steps, ``fit``/``evaluate``/``predict``, callbacks.

The model is split once (:func:`split_model`) into a static graph and pytrees of
parameters and other state; the steps are plain :func:`jax.jit` functions over them.
"""

from typing import TYPE_CHECKING

from nnjax.train import loop
from nnjax.train.caches import clear_caches
from nnjax.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TensorBoard,
)
from nnjax.train.checkpoint import ModelCheckpoint, latest_epoch, load_checkpoint
from nnjax.train.compiled import jit_train_step, loop_steps, scan_steps, steps_per_dispatch_for
from nnjax.train.data import Batch, epoch_index, epoch_order
from nnjax.train.driver import RunView
from nnjax.train.evaluate import evaluate
from nnjax.train.freezing import by_prefix, freeze
from nnjax.train.history import History
from nnjax.train.host_memory import retain_freed_memory
from nnjax.train.loop import DEFAULT_STEPS_PER_DISPATCH, NonFiniteLossError, fit
from nnjax.train.loss_scale import LossScaleState, dynamic_loss_scale
from nnjax.train.mc_dropout import fresh_keys, mc_dropout_predict, mc_dropout_samples
from nnjax.train.objective import compute_dtype, loss_normalizer, masked_mean
from nnjax.train.optimizers import get_hyperparameter, get_optimizer, set_hyperparameter
from nnjax.train.per_example import (
    batch_grad,
    clip_per_example,
    per_example_grads,
    per_example_norms,
)
from nnjax.train.prediction import predict
from nnjax.train.regularization import (
    KERNEL_NAMES,
    add_l1_l2,
    all_leaves,
    clip_gradients,
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
    batch_loss,
    call_model,
    graphdef_for,
    make_eval_step,
    make_loss_fn,
    make_objective,
    make_predict_step,
    make_train_step,
    metric_name,
    resolve_metrics,
    split_model,
)
from nnjax.train.sweep import SweepResult, ensemble_predict, grid, member_predictions, sweep
from nnjax.train.sweep_result import MemberGroup
from nnjax.train.sweep_space import Choice, Integer, LogUniform, Uniform, random_search

if TYPE_CHECKING:  # the deprecated old name of RunView (see nnjax.train.loop)
    from nnjax.train.loop import Loop as Loop
else:

    def __getattr__(name: str):
        """``Loop`` (deprecated, warns) from :mod:`nnjax.train.loop`."""
        if name == "Loop":
            return loop.__getattr__(name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "KERNEL_NAMES",
    "Batch",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "Choice",
    "EarlyStopping",
    "History",
    "Integer",
    "LearningRateScheduler",
    "LogUniform",
    "LossScaleState",
    "MemberGroup",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "ReduceLROnPlateau",
    "RunView",
    "SweepResult",
    "TensorBoard",
    "TrainState",
    "Uniform",
    "add_l1_l2",
    "all_leaves",
    "batch_grad",
    "batch_loss",
    "by_prefix",
    "call_model",
    "clear_caches",
    "clip_gradients",
    "clip_per_example",
    "compute_dtype",
    "dynamic_loss_scale",
    "ensemble_predict",
    "epoch_index",
    "epoch_order",
    "evaluate",
    "fit",
    "freeze",
    "fresh_keys",
    "get_hyperparameter",
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
    "loop_steps",
    "loss_normalizer",
    "make_eval_step",
    "make_loss_fn",
    "make_mesh",
    "make_objective",
    "make_predict_step",
    "make_train_step",
    "masked_mean",
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
    "random_search",
    "resolve_metrics",
    "retain_freed_memory",
    "scan_steps",
    "select",
    "set_hyperparameter",
    "split_model",
    "steps_per_dispatch_for",
    "sweep",
]
