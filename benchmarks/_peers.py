"""Training and inference steps of one model in every peer framework.

A benchmark script describes its model once: a :class:`Spec` (input shape, classes,
optimizer) and, per framework, a zero-argument factory of the same architecture. The
builders here turn a factory into a :class:`Case` at one batch size: a zero-argument
``train`` callable (one optimizer step on one device-resident batch, softmax
cross-entropy) and a ``predict`` callable (one forward pass), timed by
:func:`_runner.run`.

Every peer runs the framework's usual fast path:

* ``nnjax``: ``nnjax.train.make_train_step`` under ``jax.jit``, donating as ``fit``
  does (``scan_steps``: K steps per dispatch with ``nnjax.train.scan_steps``;
  ``donate=False``: without donation);
* ``flax_nnx``: ``nnx.jit`` + ``nnx.Optimizer``, or ``nnx.jit_partial`` (``partial=True``);
* ``equinox``: ``eqx.filter_jit`` over a per-example model, ``jax.vmap``-ped over the batch;
* ``keras``: ``train_on_batch`` / ``predict_on_batch`` with ``jit_compile=True``;
* ``torch``: eager (``compile=True``: ``torch.compile``), on CUDA when available.

Example:
  >>> spec = Spec(input_shape=(4,), num_classes=3)
  >>> x, y = spec.data(2)
  >>> x.shape, y.shape
  ((2, 4), (2,))
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import _harness as H

H.ensure_nnjax_importable()
os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

Factory = Callable[[], Any]
Builder = Callable[[int], "Case"]
Layout = Callable[[np.ndarray], np.ndarray]
MODULES = {"equinox": "equinox", "keras": "keras", "torch": "torch", "torch_compile": "torch"}
# The peers of :func:`standard_peers`, run by default, and those run only on request.
STANDARD = ("nnjax", "nnjax_no_donate", "flax_nnx", "flax_nnx_partial", "equinox", "keras", "torch")
ON_REQUEST = ("torch_compile", "nnjax_256_bit")


def channels_first(x: np.ndarray) -> np.ndarray:
    """``(..., H, W, C)`` images to ``(..., C, H, W)`` (PyTorch and Equinox convolutions)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


@dataclasses.dataclass(frozen=True)
class Spec:
    """What every peer trains: random inputs of ``input_shape``, integer labels, optimizer.

    ``layouts`` maps a framework (``"equinox"``, ``"torch"``) to a host-side transform
    of the inputs, e.g. :func:`channels_first`; the others get the inputs as generated.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    optimizer: str = "adam"
    lr: float = 1e-3
    layouts: Mapping[str, Layout] = dataclasses.field(default_factory=dict)

    def data(self, batch: int, k: int = 1, framework: str = "") -> tuple[np.ndarray, np.ndarray]:
        """One batch ``(x, y)`` (``k > 1``: ``k`` stacked batches), the same in every peer."""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((k, batch, *self.input_shape), dtype=np.float32)
        y = rng.integers(0, self.num_classes, size=(k, batch)).astype(np.int32)
        x = self.layouts.get(framework, lambda a: a)(x)
        return (x[0], y[0]) if k == 1 else (x, y)

    def optax(self) -> optax.GradientTransformation:
        """The Optax optimizer (``adam`` or ``sgd`` at ``lr``)."""
        return {"adam": optax.adam, "sgd": optax.sgd}[self.optimizer](self.lr)


@dataclasses.dataclass
class Case:
    """One peer at one batch size: zero-argument ``train`` and ``predict`` callables."""

    train: Callable[[], Any]
    predict: Callable[[], Any]
    sync: Callable[[Any], None]
    steps_per_call: int = 1
    traces: dict[str, int] | None = None


def xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _device_data(spec: Spec, batch: int, k: int = 1, framework: str = ""):
    return tuple(map(jax.device_put, spec.data(batch, k, framework)))


# ---------------------------------------------------------------------------- nnjax


def nnjax(
    spec: Spec,
    factory: Factory,
    batch: int,
    *,
    scan_steps: int = 0,
    donate: bool | None = None,
    library_conv: bool = True,
    eigen_dots: bool | None = None,
    precision: str | None = None,
    narrow_vectors: bool = False,
) -> Case:
    """``nnjax.train``'s pure step jitted as ``fit`` jits it, donating params, optimizer and rest.

    Like ``fit``'s dispatch it takes and returns the state as its flat arrays
    (``nnjax.train.flat_dispatch.on_leaves``; before session 21 it took the NNX state,
    whose flattening and rebuilding cost about 180 us a call on the host for the MLP's
    25 arrays); predict reads the same arrays.

    ``scan_steps`` fuses K steps per dispatch; ``donate=None`` donates as ``fit`` does
    (``nnjax.train.compiled.donate_for``: measured per model kind and backend),
    ``False`` never (a diagnostic: the step is otherwise the same). The train step is
    compiled by ``nnjax.functional._conv_compiler.jit`` like ``fit``'s (XLA:CPU
    convolutions on Eigen); ``library_conv=False`` uses plain ``jax.jit`` (a diagnostic).
    ``eigen_dots=None`` puts the matmuls on Eigen where ``fit`` does
    (``nnjax.train.compiled.eigen_dots_for``, by model and ``precision``); ``False``
    never (a diagnostic).
    ``precision`` is ``fit``'s (``"bfloat16"``: ``nnjax.train.objective.compute_dtype``).
    ``narrow_vectors=True`` compiles with LLVM's default 256-bit vectors where ``fit``
    asks for 512-bit ones (``_conv_compiler.VECTOR_WIDTH_OPTION``; a diagnostic).
    ``predict`` is compiled as ``nnjax.train.predict`` compiles its dispatch
    (``nnjax.train.eval_blocks.library_jit``; plain ``jax.jit`` with ``library_conv=False``),
    at ``precision`` as ``predict(precision=...)`` runs it (before session 44: float32).
    The batch is split over every local device that divides it and the state
    replicated, as ``fit`` places them (``nnjax.train.sharding``; one device unless the
    process has more, e.g. ``--cpu-devices``), and the calls run in that mesh's context
    (``jax.set_mesh``), as ``fit``'s do (the LSTM's per-step matmul blocks count the
    rows of one device from it; before session 40 the peer traced outside it).
    Like ``fit``, it tunes the host ``malloc`` on the CPU
    (``nnjax.train.retain_freed_memory``), for the whole process: the peers timed with
    it run with the same setting (recorded as ``host_memory_retained``).
    """
    from nnjax import train
    from nnjax.functional import _conv_compiler
    from nnjax.train import compiled, eval_blocks, host_memory, sharding
    from nnjax.train.flat_dispatch import on_leaves
    from nnjax.train.precision import canonical_precision

    host_memory.retain_freed_memory()  # as fit does (process-wide: every peer shares it)
    model = factory()
    graphdef, params, rest = train.split_model(model)
    tx = spec.optax()
    traces: dict[str, int] = {}
    step = train.make_train_step(graphdef, "cross_entropy", tx, metrics=(), precision=precision)
    step = train.scan_steps(step) if scan_steps else step
    donate = compiled.donate_for(graphdef) if donate is None else donate
    if eigen_dots is None:  # as fit chooses: by model and precision
        eigen_dots = compiled.eigen_dots_for(graphdef, None, precision)
    jit = functools.partial(_conv_compiler.jit, eigen_dots=eigen_dots) if library_conv else jax.jit
    if narrow_vectors and library_conv:
        jit = functools.partial(jit, compiler_options={_conv_compiler.VECTOR_WIDTH_OPTION: "256"})
    # the state as its flat arrays, as fit's dispatch takes it (flat_dispatch.on_leaves)
    flat = on_leaves(H.counted(step, traces, "train"))
    step = jit(flat, static_argnums=0, donate_argnums=(1,) if donate else ())
    predict_precision = canonical_precision(precision)  # as predict(precision=...) takes it
    inference = train.graphdef_for(model, training=False)
    predict_step = H.counted(
        train.make_predict_step(inference, predict_precision), traces, "predict"
    )

    def flat_predict(treedef, leaves, x):  # the state's arrays, as the train step has them
        params, _, rest = jax.tree.unflatten(treedef, leaves)
        return predict_step(params, rest, x)

    # compiled as predict() compiles it (nnjax.train.eval_blocks.library_jit)
    predict_jit = eval_blocks.library_jit(graphdef, predict_precision) if library_conv else jax.jit
    predict = predict_jit(flat_predict, static_argnums=0)
    # placed as fit places them: the batch split over every local device it divides
    mesh = sharding.make_mesh(sharding.choose_devices(batch))
    batch_axis = 1 if scan_steps else 0
    x, y = sharding.put_batch(spec.data(batch, max(scan_steps, 1)), mesh, batch_axis)
    placed = sharding.put_replicated((params, tx.init(params), rest), mesh)
    leaves, treedef = jax.tree.flatten(placed)
    state = [leaves]
    x_pred = x[0] if scan_steps else x

    def run_train():
        with jax.set_mesh(mesh):  # as fit runs its programs: in their mesh's context
            state[0], logs = step(treedef, state[0], x, y)
        return logs["loss"]

    def run_predict():
        with jax.set_mesh(mesh):
            return predict(treedef, state[0], x_pred)

    return Case(
        run_train,
        run_predict,
        H.sync_jax,
        steps_per_call=max(scan_steps, 1),
        traces=traces,
    )


# ------------------------------------------------------------------------ Flax NNX


def _flax_train_step(traces: dict[str, int]) -> Callable:
    from flax import nnx

    def train_step(model, optimizer, x, y):
        traces["train"] = traces.get("train", 0) + 1
        loss, grads = nnx.value_and_grad(lambda m: xent(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    return train_step


def flax_nnx(spec: Spec, factory: Factory, batch: int, *, partial: bool = False) -> Case:
    """Idiomatic Flax NNX (``nnx.jit``), or ``nnx.jit_partial`` with ``partial=True``."""
    from flax import nnx

    model = factory()
    optimizer = nnx.Optimizer(model, spec.optax(), wrt=nnx.Param)
    traces: dict[str, int] = {}
    train_step = _flax_train_step(traces)
    forward = H.counted(lambda m, x: m(x), traces, "predict")
    x, y = _device_data(spec, batch)
    if partial:
        step = nnx.jit_partial(train_step, model, optimizer, graph=False)
        predict = nnx.jit_partial(forward, model, graph=False)
        return Case(lambda: step(x, y), lambda: predict(x), H.sync_jax, traces=traces)
    step, predict = nnx.jit(train_step), nnx.jit(forward)
    return Case(
        lambda: step(model, optimizer, x, y), lambda: predict(model, x), H.sync_jax, traces=traces
    )


# ------------------------------------------------------------------------- Equinox


def equinox(spec: Spec, factory: Callable[[jax.Array], Any], batch: int) -> Case:
    """``eqx.filter_jit``; ``factory(key)`` maps one example, ``jax.vmap``-ped over the batch."""
    import equinox as eqx

    tx = spec.optax()
    model = factory(jax.random.key(0))
    traces: dict[str, int] = {}

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        traces["train"] = traces.get("train", 0) + 1
        loss, grads = eqx.filter_value_and_grad(lambda m: xent(jax.vmap(m)(x), y))(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    predict = eqx.filter_jit(H.counted(lambda m, x: jax.vmap(m)(x), traces, "predict"))
    x, y = _device_data(spec, batch, framework="equinox")
    state = [model, tx.init(eqx.filter(model, eqx.is_array))]

    def run_train():
        *state[:], loss = step(*state, x, y)
        return loss

    return Case(run_train, lambda: predict(state[0], x), H.sync_jax, traces=traces)


# --------------------------------------------------------------------------- Keras


def keras(spec: Spec, factory: Factory, batch: int) -> Case:
    """Keras 3 on JAX: ``factory()`` returns an uncompiled model; logits, sparse labels."""
    import keras as K

    K.utils.set_random_seed(0)
    model = factory()
    optimizer = {"adam": K.optimizers.Adam, "sgd": K.optimizers.SGD}[spec.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate=spec.lr),
        loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    x, y = spec.data(batch, framework="keras")
    return Case(
        lambda: model.train_on_batch(x, y),
        lambda: model.predict_on_batch(x),
        H.sync_jax,
    )


# ------------------------------------------------------------------------- PyTorch


def torch(
    spec: Spec, factory: Factory, batch: int, *, compile: bool = False, onednn: bool = True
) -> Case:
    """Eager PyTorch (``compile=True``: ``torch.compile``), on CUDA where JAX runs on a GPU.

    ``onednn=False`` runs every call with oneDNN off (``torch.backends.mkldnn.flags``):
    a diagnostic, since on CPU ``nn.LSTM`` is then ATen's per-step loop instead of
    oneDNN's fused RNN primitive.
    """
    import contextlib

    import torch as T

    T.manual_seed(0)
    device, sync = H.torch_device()
    model = factory().to(device)
    optimizer = {"adam": T.optim.Adam, "sgd": T.optim.SGD}[spec.optimizer]
    optimizer = optimizer(model.parameters(), lr=spec.lr)
    loss_fn = T.nn.CrossEntropyLoss()
    forward = T.compile(model) if compile else model
    x, y = (T.from_numpy(a).to(device) for a in spec.data(batch, framework="torch"))
    y = y.long()

    def backends():
        return contextlib.nullcontext() if onednn else T.backends.mkldnn.flags(enabled=False)

    def run_train():
        with backends():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(forward(x), y)
            loss.backward()
            optimizer.step()
        return loss

    def run_predict():
        with backends(), T.inference_mode():
            return forward(x)

    return Case(run_train, run_predict, sync)


def standard_peers(
    spec: Spec,
    *,
    nnjax_model: Factory,
    flax_model: Factory,
    equinox_model: Callable[[jax.Array], Any],
    keras_model: Factory,
    torch_model: Factory,
) -> dict[str, Builder]:
    """The builders of the peers every script runs, keyed by peer name.

    Each value maps a batch size to a :class:`Case`; scripts add their own variants
    (e.g. ``nnjax_scan``) with ``functools.partial`` over the builders above.
    """
    p = functools.partial
    return {
        "nnjax": p(nnjax, spec, nnjax_model),
        "nnjax_no_donate": p(nnjax, spec, nnjax_model, donate=False),
        "flax_nnx": p(flax_nnx, spec, flax_model),
        "flax_nnx_partial": p(flax_nnx, spec, flax_model, partial=True),
        "equinox": p(equinox, spec, equinox_model),
        "keras": p(keras, spec, keras_model),
        "torch": p(torch, spec, torch_model),
        "torch_compile": p(torch, spec, torch_model, compile=True),
        "nnjax_256_bit": p(nnjax, spec, nnjax_model, narrow_vectors=True),
    }
