"""Pure functional layers: ``import nnjax.functional as F``.

Convention: ``F.<op>_init(key, <sizes>, *, dtype=jnp.float32, ...) -> params`` and
``F.<op>(params, x, ...) -> y``. Parameters are plain nested dicts of arrays; nothing is
hidden or global. Shapes are checked with chex at trace time (free under ``jax.jit``).

Example:
  >>> import jax, jax.numpy as jnp
  >>> import nnjax.functional as F
  >>> params = F.dense_init(jax.random.key(0), 784, 10)
  >>> F.dense(params, jnp.zeros((32, 784))).shape
  (32, 10)
"""

from nnjax.functional._batch_mask import batch_mask, current_batch_mask
from nnjax.functional._forward_only import forward_only
from nnjax.functional.attention import multi_head_attention, multi_head_attention_init
from nnjax.functional.bidirectional_rnn import bidirectional, bidirectional_init
from nnjax.functional.conv import (
    conv1d,
    conv1d_init,
    conv2d,
    conv2d_init,
    conv3d,
    conv3d_init,
    conv_formulation,
)
from nnjax.functional.conv_transpose import (
    conv_transpose1d,
    conv_transpose1d_init,
    conv_transpose2d,
    conv_transpose2d_init,
    conv_transpose3d,
    conv_transpose3d_init,
)
from nnjax.functional.dense import dense, dense_init
from nnjax.functional.dropout import dropout
from nnjax.functional.embed import attend, embedding, embedding_init
from nnjax.functional.global_pool import global_avg_pool, global_max_pool
from nnjax.functional.group_norm import (
    group_norm,
    group_norm_init,
    instance_norm,
    instance_norm_init,
)
from nnjax.functional.normalization import batch_norm, batch_norm_init, layer_norm, layer_norm_init
from nnjax.functional.pooling import (
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    pool_formulation,
)
from nnjax.functional.positional import (
    rotary_position_encoding,
    sinusoidal_position_encoding,
)
from nnjax.functional.prelu import prelu, prelu_init
from nnjax.functional.recurrent import (
    LSTMState,
    gru_cell,
    gru_cell_init,
    lstm_cell,
    lstm_cell_init,
    rnn_cell,
    rnn_cell_init,
)
from nnjax.functional.rms_norm import rms_norm, rms_norm_init
from nnjax.functional.sequence import gru, lstm, rnn, zero_carry
from nnjax.functional.transformer import (
    transformer_encoder_block,
    transformer_encoder_block_init,
)

__all__ = [
    "LSTMState",
    "attend",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_mask",
    "batch_norm",
    "batch_norm_init",
    "bidirectional",
    "bidirectional_init",
    "conv1d",
    "conv1d_init",
    "conv2d",
    "conv2d_init",
    "conv3d",
    "conv3d_init",
    "conv_formulation",
    "conv_transpose1d",
    "conv_transpose1d_init",
    "conv_transpose2d",
    "conv_transpose2d_init",
    "conv_transpose3d",
    "conv_transpose3d_init",
    "current_batch_mask",
    "dense",
    "dense_init",
    "dropout",
    "embedding",
    "embedding_init",
    "forward_only",
    "global_avg_pool",
    "global_max_pool",
    "group_norm",
    "group_norm_init",
    "gru",
    "gru_cell",
    "gru_cell_init",
    "instance_norm",
    "instance_norm_init",
    "layer_norm",
    "layer_norm_init",
    "lstm",
    "lstm_cell",
    "lstm_cell_init",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "multi_head_attention",
    "multi_head_attention_init",
    "pool_formulation",
    "prelu",
    "prelu_init",
    "rms_norm",
    "rms_norm_init",
    "rnn",
    "rnn_cell",
    "rnn_cell_init",
    "rotary_position_encoding",
    "sinusoidal_position_encoding",
    "transformer_encoder_block",
    "transformer_encoder_block_init",
    "zero_carry",
]
