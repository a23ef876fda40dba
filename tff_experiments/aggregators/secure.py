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

Measurements (`secagg/...`): clients_masked, dropped_after_masking, recovered, aborted,
key_agreement_bits, share_bits, uplink_bits_round (masked vectors or shares, plus key and
share traffic) and protocol_time_s (the driver's cryptography).
"""

import collections
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.core import registry
from tff_experiments.secagg import masking
from tff_experiments.secagg import messages

# Streams of the same seeds: the update's masks and the weight's are independent.
VALUE_STREAM, WEIGHT_STREAM = 0, 1
WEIGHT_BITS = masking.MAX_BITS  # Weights (example counts) are summed as exact integers.


def _int_type(value_type: tff.types.Type) -> tff.types.Type:
  """The value's structure with every tensor int64 (what travels)."""
  specs = tff.types.type_to_tf_tensor_specs(value_type)
  return tff.types.tensorflow_to_type(
      tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape, tf.int64), specs))


def _size(value_type: tff.types.Type) -> int:
  return sum(int(np.prod(t.shape)) for t in tff.structure.flatten(value_type))


class SecureSumFactory(tff.aggregators.UnweightedAggregationFactory):
  """A secure sum (see module doc); subclasses give the client's and the server's TF parts.

  `clip` None encodes integers (weights); `report` adds the `secagg` measurements (the
  weight's sum leaves them to the update's). `weight_bits` is what each client's weight
  costs on the uplink beside the update (for `uplink_bits_round`).
  """
  servers = 1

  def __init__(self, inner: tff.aggregators.UnweightedAggregationFactory, *, bits: int,
               clip: Optional[float], stream: int = VALUE_STREAM, report: bool = True,
               weight_bits: int = 0):
    if not 1 < bits <= masking.MAX_BITS:
      raise ValueError(f'secure aggregation needs 2 <= bits <= {masking.MAX_BITS}, got {bits}')
    self._inner, self._bits, self._clip = inner, bits, clip
    self._stream, self._report, self._weight_bits = stream, report, weight_bits

  def client_part(self, value_type) -> tff.Computation:
    """(value, client message, n) -> a tuple of `servers` int values, each what one server
    receives from this client."""
    raise NotImplementedError

  def unmask_part(self):
    """A TF function (sum mod 2^b, server message) -> the unmasked sum mod 2^b (run in the
    server's computation)."""
    raise NotImplementedError

  def _encode(self, value, participants):
    levels_ = masking.levels(self._bits, participants)
    clip = levels_ if self._clip is None else self._clip
    return masking.encode(value, clip=clip, levels_=levels_, bits=self._bits)

  def create(self, value_type) -> tff.templates.AggregationProcess:
    int_type = _int_type(value_type)
    transports = [self._inner.create(int_type) for _ in range(self.servers)]
    client_part, unmask_part = self.client_part(value_type), self.unmask_part()
    bits, clip, dtypes = self._bits, self._clip, tff.types.type_to_tf_tensor_specs(value_type)
    payload = float(self.servers * (bits * _size(value_type) + self._weight_bits))

    @tff.tensorflow.computation([int_type] * self.servers, messages.SERVER_TYPE)
    def combine(totals, message):
      total = totals[0]
      for other in totals[1:]:
        total = masking.add_mod(total, other, bits)
      levels_ = masking.levels(bits, message['participants'])
      decoded = masking.decode(unmask_part(total, message), levels_=levels_, bits=bits,
                               clip=levels_ if clip is None else clip,
                               dtypes=tf.nest.map_structure(lambda s: s.dtype, dtypes))
      return tf.nest.map_structure(
          lambda t: tf.where(message['unmasked'], t, tf.zeros_like(t)), decoded)

    @tff.tensorflow.computation(value_type)
    def one(value):
      del value
      return tf.constant(1, tf.int64)

    @tff.tensorflow.computation(messages.SERVER_TYPE, tff.TensorType(np.int64))
    def report(message, arrived):
      protocol_bits = message['key_agreement_bits'] + message['share_bits']
      return collections.OrderedDict(
          clients_masked=message['clients_masked'],
          dropped_after_masking=message['dropped_after_masking'],
          recovered=message['recovered'],
          aborted=tf.cast(tf.logical_not(message['unmasked']), tf.int64),
          key_agreement_bits=message['key_agreement_bits'], share_bits=message['share_bits'],
          uplink_bits_round=tf.cast(arrived, tf.float64) * payload + protocol_bits,
          protocol_time_s=message['protocol_time_s'])

    @tff.federated_computation
    def init_fn():
      return tff.federated_zip(collections.OrderedDict(
          (f'server_{i}', t.initialize()) for i, t in enumerate(transports)))

    @tff.federated_computation(init_fn.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS))
    def next_fn(state, value):
      client_messages, server_message = messages.current() or messages.placeholders()
      participants = tff.federated_broadcast(server_message.participants)
      sent = tff.federated_map(client_part, (value, client_messages, participants))
      outputs = [t.next(state[f'server_{i}'], sent[i]) for i, t in enumerate(transports)]
      result = tff.federated_map(combine, (tff.federated_zip([o.result for o in outputs]),
                                           server_message))
      measured = collections.OrderedDict(
          (f'server_{i}', o.measurements) for i, o in enumerate(outputs))
      if self._report:
        arrived = tff.federated_sum(tff.federated_map(one, value))
        measured['secagg'] = tff.federated_map(report, (server_message, arrived))
      return tff.templates.MeasuredProcessOutput(
          state=tff.federated_zip(collections.OrderedDict(
              (f'server_{i}', o.state) for i, o in enumerate(outputs))),
          result=result, measurements=tff.federated_zip(measured))

    return tff.templates.AggregationProcess(init_fn, next_fn)


class MaskedSumFactory(SecureSumFactory):
  """`masking`: y = q + sum_v sign_v PRG(s_uv) + PRG(b_u) mod 2^b; the server removes the masks
  its message's seeds expand to."""

  def client_part(self, value_type):
    bits, stream = self._bits, self._stream

    @tff.tensorflow.computation(value_type, messages.CLIENT_TYPE, tff.TensorType(np.int64))
    def mask(value, message, participants):
      encoded = self._encode(value, participants)
      pairs = masking.signed_mask_sum(message['pair_seeds'], message['pair_signs'], encoded,
                                      stream=stream, bits=bits)
      own = masking.masks(message['self_seed'], encoded, stream=stream, bits=bits)
      return (masking.add_mod(masking.add_mod(encoded, pairs, bits), own, bits),)

    return mask

  def unmask_part(self):
    bits, stream = self._bits, self._stream

    def unmask(total, message):
      correction = masking.signed_mask_sum(message['unmask_seeds'], message['unmask_signs'],
                                           total, stream=stream, bits=bits)
      return masking.add_mod(total, correction, bits, subtract=True)

    return unmask


class TwoServerSumFactory(SecureSumFactory):
  """`two_server`: shares r = PRG(share seed) and q - r mod 2^b, one per server."""
  servers = 2

  def client_part(self, value_type):
    bits, stream = self._bits, self._stream

    @tff.tensorflow.computation(value_type, messages.CLIENT_TYPE, tff.TensorType(np.int64))
    def split(value, message, participants):
      encoded = self._encode(value, participants)
      first = masking.masks(message['self_seed'], encoded, stream=stream, bits=bits)
      return first, masking.add_mod(encoded, first, bits, subtract=True)

    return split

  def unmask_part(self):
    return lambda total, message: total


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
                               stream=WEIGHT_STREAM, report=False)
