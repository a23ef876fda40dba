"""Seeded aggregation layers: per-client seeds, round counters, the seed-carrying weight.

TFF's and tensorflow-privacy's random layers draw from the clock or from unseeded ops, so two
runs (or a run and its resume) differ. Our layers draw from stateless ops (`core.noise`). A
draw on one client's update (local DP noise, quantization's rotation and rounding) is seeded by the
client's update seed, which the round plan derives from (seed, round, client) and which
travels with the client's task into its computation and out in its weight
(`clients.update_weight`), and by the layer's purpose (`layer_seed`): so clients with equal
updates draw independently, and the draws do not depend on the data or on where the client
ran. Draws made once per round at the server (central DP's noise, the downlink's quantization)
are seeded by the run seed and a counter in the layer's state (e.g. `next_round`).
"""

from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import update_weight
from tff_experiments.core import seeds


def next_round() -> tff.Computation:
  """int64 round counter -> counter + 1 (server-side seeded layers keep it in their state)."""

  @tff.tensorflow.computation(tff.TensorType(np.int64))
  def increment(round_num):
    return round_num + 1

  return increment


def layer_seed(update_seed: tf.Tensor, purpose: str) -> tf.Tensor:
  """(2,) int64: the seed pair of one layer's draws on one client's update, from the client's
  update seed (itself derived from (seed, round, client)) and the layer's `purpose`."""
  return tf.stack([tf.cast(update_seed, tf.int64),
                   tf.constant(seeds.purpose_word(purpose), tf.int64)])


class SeededUpdateLayer(tff.aggregators.WeightedAggregationFactory):
  """An update layer that transforms each client's own update with draws seeded by the
  client's update seed (in its weight) and the layer's `purpose`, before the inner (weighted)
  aggregation; state is the inner one's.

  Subclasses set `purpose` and give `transform(value_type)`: a TF function (value, seed pair)
  -> (new value, extra client values), traced in the client's computation; and
  `report(value, weight, output, extra)`: the layer's measurements at the server (called while
  tracing; `output` is the inner one's, `weight` the clients' `update_weight.TYPE`).
  """
  purpose: str

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory):
    self._inner = inner

  def transform(self, value_type) -> Callable[[Any, tf.Tensor], tuple]:
    raise NotImplementedError

  def report(self, value, weight, output, extra):
    raise NotImplementedError

  def create(self, value_type, weight_type) -> tff.templates.AggregationProcess:
    update_weight.check(weight_type, type(self).__name__)
    inner = self._inner.create(value_type, weight_type)
    transform, purpose = self.transform(value_type), self.purpose

    @tff.tensorflow.computation(value_type, weight_type)
    def apply(value, weight):
      return transform(value, layer_seed(weight['seed'], purpose))

    @tff.federated_computation(inner.initialize.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS),
                               tff.FederatedType(weight_type, tff.CLIENTS))
    def next_fn(state, value, weight):
      transformed, extra = tff.federated_map(apply, (value, weight))
      output = inner.next(state, transformed, weight)
      return tff.templates.MeasuredProcessOutput(
          state=output.state, result=output.result,
          measurements=self.report(value, weight, output, extra))

    return tff.templates.AggregationProcess(inner.initialize, next_fn)


class WeightOnlyFactory(tff.aggregators.WeightedAggregationFactory):
  """Hands the inner factory each client's plain weight, without its update seed: the stack
  puts it right above its mean, as nothing from the mean inward draws per client. State and
  measurements are the inner one's."""

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory):
    self._inner = inner

  def create(self, value_type, weight_type) -> tff.templates.AggregationProcess:
    update_weight.check(weight_type, 'the aggregator stack')
    inner = self._inner.create(value_type, weight_type.weight)

    @tff.federated_computation(inner.initialize.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS),
                               tff.FederatedType(weight_type, tff.CLIENTS))
    def next_fn(state, value, weight):
      return inner.next(state, value, weight.weight)

    return tff.templates.AggregationProcess(inner.initialize, next_fn)
