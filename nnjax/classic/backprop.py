"""Backpropagation by hand: the four equations BP1–BP4 and the matrix form.

Two textbook networks whose gradients are written out explicitly (not by autodiff), so
they can be read next to the course notes and checked against :func:`jax.grad`.

1. A sigmoid MLP with the quadratic cost ``C = 1/(2n) Σ_x ||y(x) − a^L(x)||²``
   (Nielsen, *Neural Networks and Deep Learning*, ch. 2), by

   * BP1 ``δ^L = ∇_a C ⊙ σ'(z^L)``
   * BP2 ``δ^l = ((w^{l+1})^T δ^{l+1}) ⊙ σ'(z^l)``
   * BP3 ``∂C/∂b^l_j = δ^l_j``
   * BP4 ``∂C/∂w^l_jk = a^{l−1}_k δ^l_j``

   Weights are stored as ``(in, out)`` kernels (row vectors times matrices, as in
   :func:`nnjax.functional.dense`), so ``(w^{l+1})^T δ`` reads ``δ @ kernel.T`` and BP4
   reads ``a^{l−1}.T @ δ``, summed over the batch.

2. A one-hidden-layer network, sigmoid hidden units and a softmax output, with the mean
   cross-entropy, whose gradient is the matrix form
   ``dZ2 = (softmax(Z2) − Y)/n``, ``dW2 = A1^T dZ2``, ``dZ1 = dZ2 W2^T ⊙ A1 ⊙ (1 − A1)``,
   ``dW1 = X^T dZ1`` (biases: column sums of ``dZ``).

Example:
  >>> import jax, jax.numpy as jnp
  >>> from nnjax import classic
  >>> params = classic.sigmoid_mlp_init(jax.random.key(0), (2, 3, 1))
  >>> x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))
  >>> manual = classic.backprop(params, x, y)
  >>> auto = jax.grad(classic.quadratic_cost)(params, x, y)
  >>> bool(jnp.allclose(manual[0]["kernel"], auto[0]["kernel"], atol=1e-6))
  True
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from nnjax import _checks, activations, initializers, losses
from nnjax import functional as F
from nnjax.classic import _args

Layer = dict[str, jax.Array]
MLPParams = list[Layer]


def sigmoid_prime(z: jax.typing.ArrayLike) -> jax.Array:
    """The derivative ``σ'(z) = σ(z)(1 − σ(z))`` of the logistic sigmoid.

    Args:
      z: any shape, floating (weighted inputs).

    Returns:
      ``σ'(z)`` elementwise, the shape and dtype of ``z``, in ``(0, 0.25]``.

    Raises:
      TypeError: ``z`` is not floating (e.g. an integer array).

    Example:
      >>> sigmoid_prime(jnp.array([0.0]))
      Array([0.25], dtype=float32)
    """
    _checks.check_floating("sigmoid_prime", "z", z)
    s = activations.sigmoid(z)
    return s * (1 - s)


def sigmoid_mlp_init(
    key: jax.Array,
    sizes: Sequence[int],
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer | None = None,
) -> MLPParams:
    """Initialises a fully connected sigmoid network with layer sizes ``sizes``.

    Args:
      key: one PRNG key, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``.
      sizes: ``(in, hidden..., out)``, at least two positive ints (NumPy ints count).
      dtype: parameter dtype, floating.
      kernel_init: initializer (or its name) for the kernels and biases; ``None`` draws
        both from the standard normal ``N(0, 1)``, as in Nielsen's book.

    Returns:
      A list of ``len(sizes) - 1`` layers ``{"kernel": (n_l-1, n_l), "bias": (n_l,)}``.

    Raises:
      ValueError: ``sizes`` has fewer than two entries or one that is not a positive
        int, or ``kernel_init`` is an unknown initializer name.
      TypeError: ``sizes`` is not a sequence (e.g. a single int), ``key`` is not one
        PRNG key (an int, ``None``, a batch of keys), ``dtype`` is not floating, or
        ``kernel_init`` is neither a name nor a callable.

    Example:
      >>> [p["kernel"].shape for p in sigmoid_mlp_init(jax.random.key(0), (4, 3, 2))]
      [(4, 3), (3, 2)]
    """
    sizes = _args.layer_sizes("sigmoid_mlp_init", sizes)
    _args.check_key("sigmoid_mlp_init", "key", key)
    dtype = _args.float_dtype("sigmoid_mlp_init", dtype)
    keys = jax.random.split(key, len(sizes) - 1)
    init = initializers.normal(1.0) if kernel_init is None else kernel_init
    _args.initializer("sigmoid_mlp_init", "kernel_init", init)  # names the function
    return [
        F.dense_init(k, n_in, n_out, dtype=dtype, kernel_init=init, bias_init=init)
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
    ]


def sigmoid_mlp_forward(
    params: MLPParams, x: jax.typing.ArrayLike
) -> tuple[list[jax.Array], list[jax.Array]]:
    """Runs the network and keeps what backpropagation needs.

    Args:
      params: as from :func:`sigmoid_mlp_init`.
      x: ``(B, in)``, floating.

    Returns:
      ``(zs, activations)``: the weighted inputs ``z^l`` ``(B, n_l)`` of every layer, and
      the activations ``a^0 = x, a^1, ..., a^L`` (one more entry than ``zs``), each
      ``(B, n_l)`` in the dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``x`` is not rank 2, or its last axis is not the first layer's
        ``in``.
      ValueError: ``params`` has no layers.

    Example:
      >>> zs, acts = sigmoid_mlp_forward(sigmoid_mlp_init(jax.random.key(0), (2, 2)),
      ...                                jnp.ones((1, 2)))
      >>> len(zs), len(acts)
      (1, 2)
    """
    if not params:
        raise ValueError(
            f"sigmoid_mlp: `params` has no layers (got {params!r}); build it with "
            "sigmoid_mlp_init(key, (in, ..., out))"
        )
    a = jnp.asarray(x)
    _checks.check_rank("sigmoid_mlp", "x", a, 2)
    zs, acts = [], [a]
    for layer in params:
        z = F.dense(layer, a)
        a = activations.sigmoid(z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def sigmoid_mlp(params: MLPParams, x: jax.typing.ArrayLike) -> jax.Array:
    """The output ``a^L`` ``(B, out)`` of the sigmoid network for inputs ``x`` ``(B, in)``.

    Args:
      params: as from :func:`sigmoid_mlp_init`.
      x: ``(B, in)``, floating.

    Returns:
      ``(B, out)`` sigmoid outputs in ``(0, 1)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: as :func:`sigmoid_mlp_forward`.

    Example:
      >>> sigmoid_mlp(sigmoid_mlp_init(jax.random.key(0), (2, 3, 1)), jnp.ones((5, 2))).shape
      (5, 1)
    """
    return sigmoid_mlp_forward(params, x)[1][-1]


def quadratic_cost(
    params: MLPParams, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike
) -> jax.Array:
    """``C = 1/(2n) Σ_x ||y(x) − a^L(x)||²`` over the ``n`` rows of ``x`` ``(n, in)``.

    Args:
      params: as from :func:`sigmoid_mlp_init`.
      x: ``(n, in)`` inputs, floating.
      y: ``(n, out)`` targets, an array or nested list (cast to the dtype of ``x``).

    Returns:
      A scalar in the dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``x`` does not fit the network, or ``y`` is not ``(n, out)``.
      ValueError: ``x`` has no rows (``n == 0``: the mean is undefined), or ``params``
        has no layers.

    Example:
      >>> p = [{"kernel": jnp.zeros((2, 1)), "bias": jnp.zeros(1)}]
      >>> float(quadratic_cost(p, jnp.ones((3, 2)), jnp.zeros((3, 1))))  # σ(0) = 0.5
      0.125
    """
    a = sigmoid_mlp(params, x)
    _args.check_rows("quadratic_cost", a.shape[0])
    y = jnp.asarray(y)
    _checks.check_shape("quadratic_cost", "y", y, a.shape)
    return 0.5 * jnp.sum(losses.mse(a, y.astype(a.dtype), reduction="none")) / a.shape[0]


def backprop(params: MLPParams, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> MLPParams:
    """The gradient of :func:`quadratic_cost` by the equations BP1–BP4.

    Args:
      params: as from :func:`sigmoid_mlp_init`.
      x: ``(n, in)`` inputs, floating.
      y: ``(n, out)`` targets, an array or nested list (cast to the dtype of ``x``).

    Returns:
      Gradients with the structure (shapes) of ``params``, in the dtype of ``x``, equal
      to ``jax.grad(quadratic_cost)(params, x, y)`` to float tolerance.

    Raises:
      nnjax.ShapeError, ValueError: as :func:`quadratic_cost`.

    Example:
      >>> p = sigmoid_mlp_init(jax.random.key(0), (2, 3, 1))
      >>> jax.tree.map(jnp.shape, backprop(p, jnp.ones((4, 2)), jnp.ones((4, 1))))[1]
      {'bias': (1,), 'kernel': (3, 1)}
    """
    zs, acts = sigmoid_mlp_forward(params, x)
    n = acts[0].shape[0]
    _args.check_rows("backprop", n)
    y = jnp.asarray(y)
    _checks.check_shape("backprop", "y", y, acts[-1].shape)
    y = y.astype(acts[-1].dtype)  # the dtype of x, as the activations
    delta = (acts[-1] - y) / n * sigmoid_prime(zs[-1])  # BP1 (∇_a C of the mean cost)
    grads = []
    for layer in range(len(params) - 1, -1, -1):
        a_prev = acts[layer]
        grads.append({"kernel": a_prev.T @ delta, "bias": jnp.sum(delta, axis=0)})  # BP4, BP3
        if layer > 0:
            kernel = params[layer]["kernel"].astype(delta.dtype)  # as F.dense casts it
            delta = (delta @ kernel.T) * sigmoid_prime(zs[layer - 1])  # BP2
    return grads[::-1]


def softmax_net_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    classes: int,
    *,
    dtype: jnp.dtype = jnp.float32,
) -> dict[str, jax.Array]:
    """Initialises the one-hidden-layer sigmoid/softmax network of :func:`softmax_net_grads`.

    Kernels Glorot uniform, biases zero (:func:`nnjax.functional.dense_init`).

    Args:
      key: one PRNG key, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``.
      in_features: ``in``, the input size, a positive int.
      hidden: the number of sigmoid hidden units, a positive int.
      classes: the number of output classes, a positive int.
      dtype: parameter dtype, floating (float32 by default).

    Returns:
      ``{"w1": (in, hidden), "b1": (hidden,), "w2": (hidden, classes), "b2": (classes,)}``
      in ``dtype``.

    Raises:
      ValueError: ``in_features``, ``hidden`` or ``classes`` is not a positive int.
      TypeError: ``key`` is not one PRNG key (an int, ``None``, a batch of keys), or
        ``dtype`` is not floating.

    Example:
      >>> sorted(softmax_net_init(jax.random.key(0), 4, 3, 2))
      ['b1', 'b2', 'w1', 'w2']
    """
    in_features = _checks.positive_int("softmax_net_init", "in_features", in_features)
    hidden = _checks.positive_int("softmax_net_init", "hidden", hidden)
    classes = _checks.positive_int("softmax_net_init", "classes", classes)
    _args.check_key("softmax_net_init", "key", key)
    dtype = _args.float_dtype("softmax_net_init", dtype)
    k1, k2 = jax.random.split(key)
    l1 = F.dense_init(k1, in_features, hidden, dtype=dtype)
    l2 = F.dense_init(k2, hidden, classes, dtype=dtype)
    return {"w1": l1["kernel"], "b1": l1["bias"], "w2": l2["kernel"], "b2": l2["bias"]}


def softmax_net_logits(params: dict[str, jax.Array], x: jax.typing.ArrayLike) -> jax.Array:
    """Logits ``Z2 = σ(X W1 + b1) W2 + b2`` ``(n, classes)`` for inputs ``x`` ``(n, in)``.

    Args:
      params: as from :func:`softmax_net_init`.
      x: ``(n, in)`` inputs, floating.

    Returns:
      ``(n, classes)`` logits in the dtype of ``x``.

    Raises:
      nnjax.ShapeError: ``x`` is not rank 2 (a single example is ``x[None]``), its last
        axis is not ``in``, or ``params`` of inconsistent shapes (named as
        :func:`nnjax.functional.dense`'s).
      TypeError: ``x`` is not floating.
      KeyError: ``params`` lacks one of ``"w1"``, ``"b1"``, ``"w2"``, ``"b2"``.

    Example:
      >>> p = softmax_net_init(jax.random.key(0), 4, 3, 2)
      >>> softmax_net_logits(p, jnp.ones((5, 4))).shape
      (5, 2)
    """
    x = jnp.asarray(x)
    _checks.check_rank("softmax_net_logits", "x", x, 2)
    return _softmax_net_forward(params, x)[1]


def _softmax_net_forward(
    params: dict[str, jax.Array], x: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """``(A1, Z2)``: the hidden activations and the logits."""
    a1 = activations.sigmoid(F.dense({"kernel": params["w1"], "bias": params["b1"]}, x))
    return a1, F.dense({"kernel": params["w2"], "bias": params["b2"]}, a1)


def softmax_net_loss(
    params: dict[str, jax.Array], x: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> jax.Array:
    """Mean softmax cross-entropy of :func:`softmax_net_logits` against integer ``labels``.

    Args:
      params: as from :func:`softmax_net_init`.
      x: ``(n, in)`` inputs, floating.
      labels: ``(n,)`` integer class ids in ``[0, classes)``.

    Returns:
      A scalar in the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError: as :func:`softmax_net_logits` and
        :func:`nnjax.losses.cross_entropy`.
      ValueError: ``x`` has no rows (the mean is undefined), or the network has a single
        class (``classes == 1``: the loss is always 0).

    Example:
      >>> p = softmax_net_init(jax.random.key(0), 4, 3, 2)
      >>> softmax_net_loss(p, jnp.ones((5, 4)), jnp.zeros(5, jnp.int32)).shape
      ()
    """
    logits = softmax_net_logits(params, x)
    _args.check_rows("softmax_net_loss", logits.shape[0])
    _args.check_classes("softmax_net_loss", logits)
    return losses.cross_entropy(logits, labels)


def softmax_net_grads(
    params: dict[str, jax.Array], x: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> dict[str, jax.Array]:
    """The gradient of :func:`softmax_net_loss` in matrix form (no autodiff).

    Args:
      params: as from :func:`softmax_net_init` (``(in, hidden)``, ``(hidden,)``,
        ``(hidden, classes)`` and ``(classes,)`` floating arrays).
      x: ``(n, in)`` inputs, floating.
      labels: ``(n,)`` integer class ids in ``[0, classes)``.

    Returns:
      Gradients with the structure (shapes) of ``params``, in the dtype of ``x``, equal
      to ``jax.grad(softmax_net_loss)``.

    Raises:
      nnjax.ShapeError: ``x`` is not rank 2, or ``labels`` is not ``(n,)``.
      TypeError: ``labels`` is not an integer array.
      ValueError: concrete (not traced) ``labels`` with an id outside ``[0, classes)``,
        as :func:`softmax_net_loss` (names the first one and ``classes``), ``x`` has
        no rows, or the network has a single class (as :func:`softmax_net_loss`).

    Example:
      >>> p = softmax_net_init(jax.random.key(0), 4, 3, 2)
      >>> softmax_net_grads(p, jnp.ones((5, 4)), jnp.zeros(5, jnp.int32))["w1"].shape
      (4, 3)
    """
    x = jnp.asarray(x)
    _checks.check_rank("softmax_net_grads", "x", x, 2)
    _args.check_rows("softmax_net_grads", x.shape[0])
    labels = jnp.asarray(labels)
    _checks.check_shape("softmax_net_grads", "labels", labels, (x.shape[0],))
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"softmax_net_grads: argument `labels` has dtype {labels.dtype}, expected "
            "integer class ids"
        )
    a1, z2 = _softmax_net_forward(params, x)
    _args.check_classes("softmax_net_grads", z2)
    losses._check_class_ids("softmax_net_grads", z2, labels)
    y = jax.nn.one_hot(labels, z2.shape[-1], dtype=z2.dtype)
    dz2 = (activations.softmax(z2) - y) / x.shape[0]
    dz1 = (dz2 @ params["w2"].astype(dz2.dtype).T) * a1 * (1 - a1)
    return {
        "w1": x.T @ dz1,
        "b1": jnp.sum(dz1, axis=0),
        "w2": a1.T @ dz2,
        "b2": jnp.sum(dz2, axis=0),
    }
