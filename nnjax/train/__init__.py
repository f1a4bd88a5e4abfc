"""Training: pure jit-compiled Optax steps, ``fit``/``evaluate``/``predict``, callbacks.

The model is split once (:func:`split_model`) into a static graph and pytrees of
parameters and other state; the steps are plain :func:`jax.jit` functions over them.
"""

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
    "graphdef_for",
    "jit_train_step",
    "make_eval_step",
    "make_loss_fn",
    "make_predict_step",
    "make_train_step",
    "metric_name",
    "resolve_metrics",
    "scan_steps",
    "split_model",
]
