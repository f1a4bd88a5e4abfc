"""Small valid inputs that the functional corpus breaks one argument of at a time."""

import jax
import jax.numpy as jnp

import nnjax.functional as F

K = jax.random.key(0)
X2 = jnp.ones((2, 3))
IMG = jnp.ones((1, 6, 6, 2))
DENSE = {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)}
CONV = F.conv2d_init(K, 2, 4, 3)
LN = F.layer_norm_init(K, 3)
BN_P, BN_S = F.batch_norm_init(K, 3)
SEQ = jnp.ones((2, 5, 3))
LSTM = F.lstm_cell_init(K, 3, 4)
EMB = F.embedding_init(K, 10, 4)
ATT = F.multi_head_attention_init(K, 4, num_heads=2)
