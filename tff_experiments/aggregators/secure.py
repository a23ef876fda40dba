"""Secure sums as aggregation layers: the server only ever receives masked vectors or one share.

Sum layers (`layers`: innermost), replacing the plain sum of client values under
`--secure_aggregation`; the mean's weight sum is one too, so the server learns no client's
weight either. Each client encodes its contribution modulo 2^b (`secagg.masking`) and:

- `masking` (Bonawitz et al. 2017): adds the PRG masks of its pair seeds (+ or -) and of its
  self-mask seed, all from its own round message (`secagg.messages`, made by
  `secagg.protocol`). The inner factory, the transport to the server, carries only masked
  vectors; the server subtracts the masks its message's seeds expand to (the survivors' self
  masks and the pair masks of clients that dropped after masking, rebuilt from Shamir shares)
  and decodes. A message saying `unmasked` false (too few shares) aborts the round.
- `two_server`: splits it into two additive shares mod 2^b, a uniform one from its share seed
  and the rest; each share goes through its own transport (one per non-colluding server),
  and the update is the sum of the two servers' sums.

Encoding (`secagg.masking`): per tensor a range R, clip to [-R, R], L = floor((2^(b-1) - 1) / n)
levels per client, unbiased stochastic rounding from the client's own rounding seed. R is, by
default, measured in the same round (`secagg.ranges`: a histogram of the clients' largest
|coordinates|, summed securely first, its own mask stream), so the step R / L follows the
update's scale at any bit width and weighting; a fixed `clip` (--secagg_clip_norm, the DP clip)
replaces it. Under a weighted mean the sum sees update x weight; the measured range scales
with it, so the relative rounding error does not depend on the weights' scale.

Measurements (`secagg/...`): clients_masked, dropped_after_masking, recovered, aborted,
key_agreement_bits, share_bits, uplink_bits_round (masked vectors or shares, the range
histograms, plus key and share traffic), protocol_time_s (the driver's cryptography), levels
(L), range_max (the largest R), encoding_mse (the clients' squared encoding errors summed, per
coordinate: the expected squared error of the decoded sum, clipping included) and
encoding_relative_error (sqrt of the clients' summed squared errors over their summed squared
norms: the RMS error relative to the contributions); the last three are NaN in an aborted
round (nothing decoded). These two come from a diagnostic each
client reports beside its masked vector (its squared error and squared norm, summed by TFF's
plain sum): the simulation's measurement, not part of the protocol.
"""

import collections
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.core import registry
from tff_experiments.secagg import masking
from tff_experiments.secagg import messages
from tff_experiments.secagg import ranges

# Streams of the same seeds: the update's masks, the weight's and the range histogram's are
# independent (and so are the rounding draws of the update and the weight).
VALUE_STREAM, WEIGHT_STREAM, RANGE_STREAM = 0, 1, 2
WEIGHT_BITS = masking.MAX_BITS  # Weights (example counts) are summed as exact integers.


def _int_type(value_type: tff.types.Type) -> tff.types.Type:
  """The value's structure with every tensor int64 (what travels)."""
  specs = tff.types.type_to_tf_tensor_specs(value_type)
  return tff.types.tensorflow_to_type(
      tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape, tf.int64), specs))


def _size(value_type: tff.types.Type) -> int:
  return sum(int(np.prod(t.shape)) for t in tff.structure.flatten(value_type))


def _squared_norm(value) -> tf.Tensor:
  return tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float64)))
                   for t in tf.nest.flatten(value)])


def _sum_mod(totals, bits: int):
  total = totals[0]
  for other in totals[1:]:
    total = masking.add_mod(total, other, bits)
  return total


class SecureSumFactory(tff.aggregators.UnweightedAggregationFactory):
  """A secure sum (see module doc); subclasses say how a client protects an encoded vector and
  how the server recovers the sum of the protected ones.

  `clip`: the fixed range of every tensor; None measures it each round. `integers` sums exact
  integers (weights) instead (R = L: step 1). `report` adds the `secagg` measurements (the
  weight's sum leaves them to the update's). `weight_bits` is what each client's weight costs
  on the uplink beside the update (for `uplink_bits_round`).
  """
  servers = 1

  def __init__(self, inner: tff.aggregators.UnweightedAggregationFactory, *, bits: int,
               clip: Optional[float], integers: bool = False, stream: int = VALUE_STREAM,
               report: bool = True, weight_bits: int = 0):
    if not 1 < bits <= masking.MAX_BITS:
      raise ValueError(f'secure aggregation needs 2 <= bits <= {masking.MAX_BITS}, got {bits}')
    self._inner, self._bits, self._clip, self._integers = inner, bits, clip, integers
    self._stream, self._report, self._weight_bits = stream, report, weight_bits

  @property
  def measures_range(self) -> bool:
    """Whether each round first measures the range (a secure sum of histograms)."""
    return self._clip is None and not self._integers

  def protect(self, encoded, message, *, stream: int) -> tuple:
    """TF (in the client's computation): `servers` int structures, each what one server
    receives of `encoded` (mod 2^b)."""
    raise NotImplementedError

  def recover(self, total, message, *, stream: int):
    """TF (in the server's computation): the sum mod 2^b of the encodings, from the sum of
    what the clients sent (the servers' sums added)."""
    raise NotImplementedError

  def client_part(self, value_type) -> tff.Computation:
    """(value, client message, n, ranges) -> (a tuple of `servers` int structures, each what
    one server receives from this client; (the squared error of its encoding, the squared
    norm of its value)), the second a diagnostic summed in the clear."""
    bits, stream = self._bits, self._stream
    ranges_type = tff.TensorType(np.float64, [len(tff.structure.flatten(value_type))])

    @tff.tensorflow.computation(value_type, messages.CLIENT_TYPE, tff.TensorType(np.int64),
                                ranges_type)
    def send(value, message, participants, ranges_):
      encoded, error = masking.encode(
          value, ranges=ranges_, levels_=masking.levels(bits, participants), bits=bits,
          rounding_seed=message['rounding_seed'], stream=stream)
      return self.protect(encoded, message, stream=stream), (error, _squared_norm(value))

    return send

  def _range_parts(self, value_type):
    """(the clients' computation sending their protected range histograms; the server's
    turning the servers' sums into the round's ranges)."""
    bits = self._bits
    hist_type = tff.TensorType(np.int64, [len(tff.structure.flatten(value_type)),
                                          ranges.BUCKETS])

    @tff.tensorflow.computation(value_type, messages.CLIENT_TYPE)
    def send(value, message):
      return self.protect(masking.wrap(ranges.histogram(value), bits), message,
                          stream=RANGE_STREAM)

    @tff.tensorflow.computation([hist_type] * self.servers, messages.SERVER_TYPE)
    def measure(totals, message):
      counts = self.recover(_sum_mod(totals, bits), message, stream=RANGE_STREAM)
      return ranges.from_counts(masking.signed(counts, bits))

    return hist_type, send, measure

  def create(self, value_type) -> tff.templates.AggregationProcess:
    int_type = _int_type(value_type)
    tensors = len(tff.structure.flatten(value_type))
    ranges_type = tff.TensorType(np.float64, [tensors])
    send = self.client_part(value_type)
    bits, clip, integers = self._bits, self._clip, self._integers
    specs = tff.types.type_to_tf_tensor_specs(value_type)
    dtypes = tf.nest.map_structure(lambda s: s.dtype, specs)
    size = _size(value_type)
    payload = float(self.servers * (bits * size + self._weight_bits))
    transports = collections.OrderedDict(
        (f'server_{i}', self._inner.create(int_type)) for i in range(self.servers))
    if self.measures_range:
      hist_type, send_histogram, measure = self._range_parts(value_type)
      transports.update((f'range_server_{i}', self._inner.create(hist_type))
                        for i in range(self.servers))
      payload += self.servers * bits * tensors * ranges.BUCKETS

    @tff.tensorflow.computation(messages.SERVER_TYPE)
    def fixed_ranges(message):
      levels_ = tf.cast(masking.levels(bits, message['participants']), tf.float64)
      return tf.fill([tensors], levels_ if integers else tf.constant(clip or 0, tf.float64))

    @tff.tensorflow.computation([int_type] * self.servers, messages.SERVER_TYPE, ranges_type)
    def combine(totals, message, ranges_):
      total = self.recover(_sum_mod(totals, bits), message, stream=self._stream)
      decoded = masking.decode(total, ranges=ranges_, bits=bits, dtypes=dtypes,
                               levels_=masking.levels(bits, message['participants']))
      return tf.nest.map_structure(
          lambda t: tf.where(message['unmasked'], t, tf.zeros_like(t)), decoded)

    @tff.tensorflow.computation(value_type)
    def one(value):
      del value
      return tf.constant(1, tf.int64)

    @tff.tensorflow.computation(messages.SERVER_TYPE, tff.TensorType(np.int64),
                                (tff.TensorType(np.float64), tff.TensorType(np.float64)),
                                ranges_type)
    def report(message, arrived, squares, ranges_):
      protocol_bits = message['key_agreement_bits'] + message['share_bits']
      # An aborted round decoded nothing (its range histograms neither): no encoding measured.
      measured = lambda x: tf.where(message['unmasked'], x, tf.constant(np.nan, tf.float64))
      squared_error, squared_norm = squares
      return collections.OrderedDict(
          clients_masked=message['clients_masked'],
          dropped_after_masking=message['dropped_after_masking'],
          recovered=message['recovered'],
          aborted=tf.cast(tf.logical_not(message['unmasked']), tf.int64),
          key_agreement_bits=message['key_agreement_bits'], share_bits=message['share_bits'],
          uplink_bits_round=tf.cast(arrived, tf.float64) * payload + protocol_bits,
          protocol_time_s=message['protocol_time_s'],
          levels=masking.levels(bits, message['participants']),
          range_max=measured(tf.reduce_max(ranges_)),
          encoding_mse=measured(squared_error / size),
          encoding_relative_error=measured(
              tf.sqrt(tf.math.divide_no_nan(squared_error, squared_norm))))

    @tff.federated_computation
    def init_fn():
      return tff.federated_zip(collections.OrderedDict(
          (name, t.initialize()) for name, t in transports.items()))

    def carry(prefix, sent, state, outputs):
      """Each server's transport of its part of `sent` (into `outputs`); their sums, zipped."""
      names = [f'{prefix}server_{i}' for i in range(self.servers)]
      for i, name in enumerate(names):
        outputs[name] = transports[name].next(state[name], sent[i])
      return tff.federated_zip([outputs[name].result for name in names])

    @tff.federated_computation(init_fn.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS))
    def next_fn(state, value):
      client_messages, server_message = messages.current() or messages.placeholders()
      outputs = collections.OrderedDict()
      if self.measures_range:
        histograms = tff.federated_map(send_histogram, (value, client_messages))
        ranges_ = tff.federated_map(measure, (carry('range_', histograms, state, outputs),
                                              server_message))
      else:
        ranges_ = tff.federated_map(fixed_ranges, server_message)
      sent = tff.federated_map(send, (value, client_messages,
                                      tff.federated_broadcast(server_message.participants),
                                      tff.federated_broadcast(ranges_)))
      result = tff.federated_map(combine, (carry('', sent[0], state, outputs), server_message,
                                           ranges_))
      measured = collections.OrderedDict(
          (name, outputs[name].measurements) for name in transports)
      if self._report:
        arrived = tff.federated_sum(tff.federated_map(one, value))
        squares = tff.federated_sum(sent[1])
        measured['secagg'] = tff.federated_map(report,
                                               (server_message, arrived, squares, ranges_))
      return tff.templates.MeasuredProcessOutput(
          state=tff.federated_zip(collections.OrderedDict(
              (name, outputs[name].state) for name in transports)),
          result=result, measurements=tff.federated_zip(measured))

    return tff.templates.AggregationProcess(init_fn, next_fn)


class MaskedSumFactory(SecureSumFactory):
  """`masking`: y = q + sum_v sign_v PRG(s_uv) + PRG(b_u) mod 2^b; the server removes the masks
  its message's seeds expand to."""

  def protect(self, encoded, message, *, stream):
    bits = self._bits
    pairs = masking.signed_mask_sum(message['pair_seeds'], message['pair_signs'], encoded,
                                    stream=stream, bits=bits)
    own = masking.masks(message['self_seed'], encoded, stream=stream, bits=bits)
    return (masking.add_mod(masking.add_mod(encoded, pairs, bits), own, bits),)

  def recover(self, total, message, *, stream):
    correction = masking.signed_mask_sum(message['unmask_seeds'], message['unmask_signs'],
                                         total, stream=stream, bits=self._bits)
    return masking.add_mod(total, correction, self._bits, subtract=True)


class TwoServerSumFactory(SecureSumFactory):
  """`two_server`: shares r = PRG(share seed) and q - r mod 2^b, one per server."""
  servers = 2

  def protect(self, encoded, message, *, stream):
    first = masking.masks(message['self_seed'], encoded, stream=stream, bits=self._bits)
    return first, masking.add_mod(encoded, first, self._bits, subtract=True)

  def recover(self, total, message, *, stream):
    del message, stream
    return total


# `--secure_aggregation` (besides `none`) -> the secure sum it builds.
SECURE_SUMS: registry.Registry[type] = registry.Registry(
    'secure aggregation protocol', flag='secure_aggregation',
    entries={'masking': MaskedSumFactory, 'two_server': TwoServerSumFactory})


def value_sum(inner, config, *, weighted: bool) -> tff.aggregators.UnweightedAggregationFactory:
  """The secure sum layer of the config (`--secure_aggregation`, `--secagg_*`); `weighted`:
  the mean's weights are securely summed beside it (they cost uplink bits too)."""
  s = config.secure_aggregation
  return SECURE_SUMS.get(s.mode)(inner, bits=s.bits, clip=s.clip_norm, stream=VALUE_STREAM,
                                 weight_bits=WEIGHT_BITS if weighted else 0)


def weight_sum(config) -> tff.aggregators.UnweightedAggregationFactory:
  """The sum of a weighted mean's weights: secure (exact integers) under secure aggregation."""
  mode = config.secure_aggregation.mode
  if mode not in SECURE_SUMS:
    return tff.aggregators.SumFactory()
  return SECURE_SUMS.get(mode)(tff.aggregators.SumFactory(), bits=WEIGHT_BITS, clip=None,
                               integers=True, stream=WEIGHT_STREAM, report=False)
