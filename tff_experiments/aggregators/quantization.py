"""Quantized uplink as a TFF aggregation layer, and the exact bits every round costs.

`QuantizeFactory` is an update layer: each client's own update (before weighting) is rotated
(optionally), b-bit quantized and decoded exactly as the server would decode what the client
sends, then handed to the inner aggregation (the mean and whatever sum layers follow). It
reports `comm/quantization_mse` (mean squared error per coordinate of the aggregate against
the unquantized mean of the same updates, the same weighting) and
`comm/uplink_bits_entropy_per_client` (entropy-coded symbols plus side information).

Randomness (rotation signs, stochastic rounding) is seeded by the client's update seed, from
(run seed, round, client) (`seeded`), so a resumed run draws exactly what an uninterrupted one
drew, and a run on workers what a local one drew.

`CommAccountingFactory` (always in the stack) reports the closed-form bits: payload plus side
information, per client, per round, cumulated in its state, and the downlink.
"""

import collections
from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.aggregators import quantizers
from tff_experiments.aggregators import seeded
from tff_experiments.core import noise

FLOAT_BITS = 32
# Side information per quantized tensor: its min and max as float32.
_SIDE_BITS_PER_TENSOR = 2 * FLOAT_BITS
# With rotation the server needs the client's rotation seed to invert it. That seed is the
# client's update seed: a function of (run seed, round, client id), which the server knows
# before the message arrives (it agreed the run seed, runs the round and chose the client), so
# the seed costs no uplink bits. (It cost 64 while it was a fingerprint of the client's update,
# which only the client knew.)
_ROTATION_SEED_BITS = 0


def side_bits(num_tensors: int, *, rotation: bool) -> int:
  """Side information of one quantized message: min/max per tensor (and the rotation seed,
  which the server derives: 0 bits)."""
  return _SIDE_BITS_PER_TENSOR * num_tensors + (_ROTATION_SEED_BITS if rotation else 0)


def message_bits(sizes: Sequence[int], *, bits: int, rotation: bool,
                 side_information: bool = True) -> int:
  """Bits one client sends for tensors of `sizes` elements: float32 when `bits` is 32;
  without side information for integers on a fixed scale (secure aggregation's)."""
  if bits >= FLOAT_BITS:
    return FLOAT_BITS * sum(sizes)
  sent = [quantizers.padded_size(n) if rotation else n for n in sizes]
  side = side_bits(len(sizes), rotation=rotation) if side_information else 0
  return bits * sum(sent) + side


def _leaves(value_type: tff.types.Type) -> list[tff.TensorType]:
  if isinstance(value_type, tff.TensorType):
    return [value_type]
  return [leaf for child in value_type.children() for leaf in _leaves(child)]


class QuantizeFactory(seeded.SeededUpdateLayer):
  """Quantizes each client update before the inner (weighted) aggregation; see module doc."""

  purpose = 'quantization'

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory, *, bits: int,
               stochastic: bool, rotation: bool, weighted: bool, diagnostics: bool = True):
    super().__init__(inner)
    self._bits, self._stochastic = bits, stochastic
    self._rotation, self._weighted = rotation, weighted
    self._diagnostics = diagnostics  # Off under secure aggregation: they read each update.

  def transform(self, value_type):
    side = float(side_bits(len(_leaves(value_type)), rotation=self._rotation))
    bits, stochastic, rotation = self._bits, self._stochastic, self._rotation

    def encode(value, seed):
      decoded, entropy = [], tf.constant(side)
      for index, tensor in enumerate(tf.nest.flatten(value)):
        out, tensor_bits = quantizers.quantize_dequantize(
            tensor, bits=bits, stochastic=stochastic, rotation=rotation,
            seed=noise.leaf_seed(seed, index))
        decoded.append(out)
        entropy += tensor_bits
      return tf.nest.pack_sequence_as(value, decoded), entropy

    return encode

  def report(self, value, weight, output, extra):
    """`comm/quantization_mse` against the unquantized mean, the entropy-coded bits."""
    if not self._diagnostics:
      return tff.federated_zip(collections.OrderedDict(quantized=output.measurements))
    value_type = value.type_signature.member
    sizes = sum(int(np.prod(t.shape)) for t in _leaves(value_type))

    @tff.tensorflow.computation(value_type, value_type)
    def mean_squared_error(got, want):
      squares = [tf.reduce_sum(tf.square(a - b)) for a, b in zip(tf.nest.flatten(got),
                                                                  tf.nest.flatten(want))]
      return tf.add_n(squares) / float(sizes)

    exact = (tff.federated_mean(value, weight.weight) if self._weighted
             else tff.federated_mean(value))
    comm = tff.federated_zip(collections.OrderedDict(
        quantization_mse=tff.federated_map(mean_squared_error, (output.result, exact)),
        uplink_bits_entropy_per_client=tff.federated_mean(extra)))
    return tff.federated_zip(collections.OrderedDict(quantized=output.measurements, comm=comm))


class CommAccountingFactory(tff.aggregators.UnweightedAggregationFactory):
  """Reports the closed-form bits of every round; passes the sum through to its inner one.

  A sum layer (innermost), so it counts the clients that reported without re-nesting other
  layers' measurements. Uplink: `message_bits` of the update's tensors per reporting client.
  Downlink: the model at `downlink_bits` to each of them. Cumulative uplink bits live in its
  state, so they survive a resume exactly.
  """

  def __init__(self, inner: tff.aggregators.UnweightedAggregationFactory, *, uplink_bits: int,
               rotation: bool, downlink_bits: int, side_information: bool = True,
               copies: int = 1, extra_bits: int = 0):
    self._inner = inner
    self._uplink = dict(bits=uplink_bits, rotation=rotation, side_information=side_information)
    self._copies, self._extra = copies, extra_bits  # E.g. two servers' shares, a weight.
    self._downlink = dict(bits=downlink_bits, rotation=False)

  def create(self, value_type) -> tff.templates.AggregationProcess:
    inner = self._inner.create(value_type)
    sizes = [int(np.prod(t.shape)) for t in _leaves(value_type)]
    per_client = float(self._copies * (message_bits(sizes, **self._uplink) + self._extra))
    downlink = float(message_bits(sizes, **self._downlink))
    ratio = FLOAT_BITS * sum(sizes) / per_client

    @tff.tensorflow.computation(value_type)
    def one(value):
      del value
      return tf.constant(1.0, tf.float64)

    @tff.tensorflow.computation(tff.TensorType(np.float64), tff.TensorType(np.float64))
    def report(clients, cumulative):
      uplink_round = clients * per_client
      return collections.OrderedDict(
          uplink_bits_per_client=tf.constant(per_client, tf.float64),
          uplink_bits_round=uplink_round,
          uplink_bits_cumulative=cumulative + uplink_round,
          downlink_bits_round=clients * downlink,
          compression_ratio=tf.constant(ratio, tf.float64))

    @tff.federated_computation
    def init_fn():
      return tff.federated_zip(collections.OrderedDict(
          inner=inner.initialize(), uplink_bits=tff.federated_value(np.float64(0), tff.SERVER)))

    @tff.federated_computation(init_fn.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS))
    def next_fn(state, value):
      output = inner.next(state.inner, value)
      clients = tff.federated_sum(tff.federated_map(one, value))
      comm = tff.federated_map(report, (clients, state.uplink_bits))
      return tff.templates.MeasuredProcessOutput(
          state=tff.federated_zip(collections.OrderedDict(
              inner=output.state, uplink_bits=comm.uplink_bits_cumulative)),
          result=output.result,
          measurements=tff.federated_zip(collections.OrderedDict(
              summed=output.measurements, comm=comm)))

    return tff.templates.AggregationProcess(init_fn, next_fn)
