"""Seeded randomness for aggregation layers: round counters, per-client seeds, noise.

TFF's and tensorflow-privacy's random layers draw from the clock or from unseeded ops, so two
runs (or a run and its resume) differ. Our layers draw from stateless ops seeded by
(run seed, round, client): the round is an int64 counter in the layer's state, and a client's
share is a fingerprint of its own update (itself a function of (seed, round, client)).
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff


def next_round() -> tff.Computation:
  """int64 round counter -> counter + 1 (the seeded layers keep their round in their state)."""

  @tff.tensorflow.computation(tff.TensorType(np.int64))
  def increment(round_num):
    return round_num + 1

  return increment


def client_seed(value, base: tf.Tensor) -> tf.Tensor:
  """(2,) int64: the round's base pair mixed with a fingerprint of the client's update."""
  flat = tf.concat([tf.reshape(t, [-1]) for t in tf.nest.flatten(value)], axis=0)
  fingerprint = tf.bitcast(tf.fingerprint(tf.reshape(tf.io.serialize_tensor(flat), [1]))[0],
                           tf.int64)
  return tf.stack([tf.bitwise.bitwise_xor(base[0], fingerprint), base[1]])


def leaf_seed(seed: tf.Tensor, index: int, stream: int = 0) -> tf.Tensor:
  """A distinct (2,) seed per tensor `index` (and `stream`) of a structure from one seed."""
  return tf.stack([seed[0], seed[1] * 1009 + 7 * index + 104729 * stream])


def gaussian_noise(structure, *, stddev, seed: tf.Tensor, stream: int = 0):
  """Independent N(0, stddev^2) noise shaped like each tensor of `structure`."""
  leaves = tf.nest.flatten(structure)
  noise = [tf.cast(stddev, t.dtype) * tf.random.stateless_normal(
      tf.shape(t), seed=leaf_seed(seed, i, stream), dtype=t.dtype)
           for i, t in enumerate(leaves)]
  return tf.nest.pack_sequence_as(structure, noise)


def laplace_noise(structure, *, scale, seed: tf.Tensor, stream: int = 0):
  """Independent Laplace(0, scale) noise: scale * (E1 - E2) for E1, E2 ~ Exp(1)."""
  leaves = tf.nest.flatten(structure)

  def draw(t, i):
    u = tf.random.stateless_uniform(tf.concat([[2], tf.shape(t)], 0),
                                    seed=leaf_seed(seed, i, stream), dtype=t.dtype)
    exponentials = -tf.math.log1p(-u)  # u in [0, 1): finite.
    return tf.cast(scale, t.dtype) * (exponentials[0] - exponentials[1])

  return tf.nest.pack_sequence_as(structure, [draw(t, i) for i, t in enumerate(leaves)])


def l1_clip(structure, clip):
  """`structure` scaled down so that its global L1 norm is <= clip; and that norm before."""
  leaves = tf.nest.flatten(structure)
  norm = tf.add_n([tf.reduce_sum(tf.abs(t)) for t in leaves])
  factor = tf.minimum(1.0, tf.math.divide_no_nan(tf.cast(clip, norm.dtype), norm))
  return tf.nest.pack_sequence_as(structure, [t * factor for t in leaves]), norm


class SeededUpdateLayer(tff.aggregators.WeightedAggregationFactory):
  """An update layer that transforms each client's own update with a seeded TF function
  before the inner (weighted) aggregation, keeping the round counter its seeds need.

  Subclasses give `transform(value_type)`: a `tff.tensorflow.computation` of (value, int64
  round) -> (new value, extra client values); and `report(value, weight, output, extra)`: the
  layer's measurements at the server (called while tracing; `output` is the inner one's).
  """

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory):
    self._inner = inner

  def transform(self, value_type) -> tff.Computation:
    raise NotImplementedError

  def report(self, value, weight, output, extra):
    raise NotImplementedError

  def create(self, value_type, weight_type) -> tff.templates.AggregationProcess:
    inner = self._inner.create(value_type, weight_type)
    transform, increment = self.transform(value_type), next_round()

    @tff.federated_computation
    def init_fn():
      return tff.federated_zip(collections.OrderedDict(
          inner=inner.initialize(), round=tff.federated_value(np.int64(0), tff.SERVER)))

    @tff.federated_computation(init_fn.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS),
                               tff.FederatedType(weight_type, tff.CLIENTS))
    def next_fn(state, value, weight):
      transformed, extra = tff.federated_map(
          transform, (value, tff.federated_broadcast(state.round)))
      output = inner.next(state.inner, transformed, weight)
      return tff.templates.MeasuredProcessOutput(
          state=tff.federated_zip(collections.OrderedDict(
              inner=output.state, round=tff.federated_map(increment, state.round))),
          result=output.result, measurements=self.report(value, weight, output, extra))

    return tff.templates.AggregationProcess(init_fn, next_fn)
