"""How the server's model reaches the clients: TFF's broadcast, or a quantized one.

With `--downlink_bits` < 32 the server sends each round the change of the model since the
last broadcast, b-bit quantized like the uplink (stochastic rounding, min/max range, seeded by
(run seed, round)); clients rebuild the model from it. The distributor's state holds the model
as the clients rebuilt it, so quantization error does not accumulate: the next round's delta
carries it. It reports `comm/downlink_quantization_mse` (per coordinate, the rebuilt model
against the server's).
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.aggregators import quantization
from tff_experiments.aggregators import quantizers
from tff_experiments.aggregators import seeded
from tff_experiments.core import seeds


def build(config, weights_type: tff.types.Type) -> tff.learning.templates.DistributionProcess:
  """The distributor of the config's `--downlink_bits` (float32: TFF's plain broadcast)."""
  bits = config.aggregation.downlink_bits
  if bits >= quantization.FLOAT_BITS:
    return tff.learning.templates.build_broadcast_process(weights_type)
  return _quantized_broadcast(weights_type, bits=bits,
                              seed=seeds.derive(config.run.seed, purpose='downlink'))


def _quantized_broadcast(weights_type, *, bits: int,
                         seed: int) -> tff.learning.templates.DistributionProcess:
  size = sum(int(np.prod(t.shape)) for t in tff.structure.flatten(weights_type))

  @tff.tensorflow.computation
  def zeros():
    return tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype),
                                 tff.types.type_to_tf_tensor_specs(weights_type))

  @tff.tensorflow.computation(weights_type, weights_type, tff.TensorType(np.int64))
  def rebuild(weights, held, round_num):
    rebuilt, squares = [], []
    for index, (w, h) in enumerate(zip(tf.nest.flatten(weights), tf.nest.flatten(held))):
      decoded, _ = quantizers.quantize_dequantize(
          w - h, bits=bits, stochastic=True, rotation=False,
          seed=tf.stack([tf.constant(seed, tf.int64), round_num * 1009 + index]))
      rebuilt.append(h + decoded)
      squares.append(tf.reduce_sum(tf.square(h + decoded - w)))
    mse = tf.add_n(squares) / float(size) if squares else tf.constant(0.0)
    return tf.nest.pack_sequence_as(weights, rebuilt), mse

  increment = seeded.next_round()

  @tff.federated_computation
  def init_fn():
    return tff.federated_zip(collections.OrderedDict(
        held=tff.federated_eval(zeros, tff.SERVER),
        round=tff.federated_value(np.int64(0), tff.SERVER)))

  @tff.federated_computation(init_fn.type_signature.result,
                             tff.FederatedType(weights_type, tff.SERVER))
  def next_fn(state, weights):
    rebuilt, mse = tff.federated_map(rebuild, (weights, state.held, state.round))
    return tff.templates.MeasuredProcessOutput(
        state=tff.federated_zip(collections.OrderedDict(
            held=rebuilt, round=tff.federated_map(increment, state.round))),
        result=tff.federated_broadcast(rebuilt),
        measurements=tff.federated_zip(collections.OrderedDict(
            comm=tff.federated_zip(collections.OrderedDict(downlink_quantization_mse=mse)))))

  return tff.learning.templates.DistributionProcess(init_fn, next_fn)
