"""The classic networks of the course: pure functions over explicit parameters.

* :mod:`~nnjax.classic.perceptron`: threshold units trained by the perceptron rule.
* :mod:`~nnjax.classic.logic_gates`: hand-weighted sigmoid and sign gates, two-layer XOR,
  and a 2-2-1 network that learns XOR.
* :mod:`~nnjax.classic.backprop`: manual backpropagation (BP1–BP4) and the matrix-form
  gradient of a sigmoid/softmax network, both equal to :func:`jax.grad`.
* :mod:`~nnjax.classic.hopfield`: Hebbian storage, recall and energy.
* :mod:`~nnjax.classic.echo_state`: sparse random reservoirs with a ridge readout, and the
  Mackey–Glass series.
* :mod:`~nnjax.classic.markov`: transition matrices, sampled paths, stationary
  distributions.

Everything here imports only :mod:`nnjax.functional` and the modules below it.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import classic
  >>> classic.gate("or", jnp.array([0.0, 1.0]), kind="sigmoid").round()
  Array(1., dtype=float32)
"""

from nnjax.classic.backprop import (
    backprop,
    quadratic_cost,
    sigmoid_mlp,
    sigmoid_mlp_forward,
    sigmoid_mlp_init,
    sigmoid_prime,
    softmax_net_grads,
    softmax_net_init,
    softmax_net_logits,
    softmax_net_loss,
)
from nnjax.classic.echo_state import (
    esn_fit_readout,
    esn_init,
    esn_readout,
    esn_states,
    mackey_glass,
    nrmse,
)
from nnjax.classic.hopfield import (
    hopfield_energy,
    hopfield_recall,
    hopfield_step,
    hopfield_store,
    hopfield_sweep,
    overlap,
)
from nnjax.classic.logic_gates import (
    SIGMOID_GATES,
    SIGN_GATES,
    gate,
    neuron,
    train_xor,
    truth_table_inputs,
    xor_gate,
)
from nnjax.classic.markov import (
    distribution_after,
    sample_path,
    stationary_distribution,
    transition_matrix,
    visit_frequencies,
)
from nnjax.classic.perceptron import (
    perceptron,
    perceptron_epoch,
    perceptron_fit,
    perceptron_init,
    perceptron_update,
)

__all__ = [
    "SIGMOID_GATES",
    "SIGN_GATES",
    "backprop",
    "distribution_after",
    "esn_fit_readout",
    "esn_init",
    "esn_readout",
    "esn_states",
    "gate",
    "hopfield_energy",
    "hopfield_recall",
    "hopfield_step",
    "hopfield_store",
    "hopfield_sweep",
    "mackey_glass",
    "neuron",
    "nrmse",
    "overlap",
    "perceptron",
    "perceptron_epoch",
    "perceptron_fit",
    "perceptron_init",
    "perceptron_update",
    "quadratic_cost",
    "sample_path",
    "sigmoid_mlp",
    "sigmoid_mlp_forward",
    "sigmoid_mlp_init",
    "sigmoid_prime",
    "softmax_net_grads",
    "softmax_net_init",
    "softmax_net_logits",
    "softmax_net_loss",
    "stationary_distribution",
    "train_xor",
    "transition_matrix",
    "truth_table_inputs",
    "visit_frequencies",
    "xor_gate",
]
