"""FedNova (Wang et al. 2020): normalized averaging, so clients doing more steps do not dominate.

Client i sends d_i = Delta_i / tau_i (its delta over its local steps) and tau_i; the server
applies tau_eff * sum_i p_i d_i with tau_eff = sum_i p_i tau_i and p_i the aggregation weights:
the paper's p_i = n_i / n by default (`--client_weighting` resolves to `dataset_size` for
fednova), so a straggler's share does not shrink with its work; a given `--client_weighting`
replaces them (`num_examples`, the examples processed, would shrink a straggler's weight with
its steps and make the update sum(tau_i^2) / (sum tau_i)^2 * sum(Delta_i) at equal n_i). With
`--client_momentum` tau_i is the paper's ||a_i||_1 for momentum (`local_update.effective_steps`).
When every client does its full E epochs in the same number of steps this is exactly FedAvg.
`NormalizedAveragingFactory` wraps the aggregator stack, so clipping, quantization etc. apply
to d_i.
"""

import collections
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.aggregators import layers
from tff_experiments.algorithms import fedavg
from tff_experiments.clients import client_data
from tff_experiments.clients import local_update


class NormalizedAveragingFactory(tff.aggregators.WeightedAggregationFactory):
  """Aggregates (d_i, tau_i): the inner stack averages d_i, then scales by mean tau_i (weighted
  by the clients' plain weights; the inner stack gets them with their update seeds)."""

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory, *, weighted: bool):
    self._inner, self._weighted = inner, weighted

  def create(self, value_type, weight_type) -> tff.templates.AggregationProcess:
    update_type, steps_type = value_type[0], value_type[1]
    inner = self._inner.create(update_type, weight_type)

    @tff.tensorflow.computation(value_type)
    def split(value):
      return value[0], value[1]

    @tff.tensorflow.computation(update_type, steps_type)
    def scale(update, tau_eff):
      return tf.nest.map_structure(lambda u: u * tau_eff, update)

    @tff.federated_computation(inner.initialize.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS),
                               tff.FederatedType(weight_type, tff.CLIENTS))
    def next_fn(state, value, weight):
      update, steps = tff.federated_map(split, value)
      output = inner.next(state, update, weight)
      tau_eff = (tff.federated_mean(steps, weight.weight) if self._weighted
                 else tff.federated_mean(steps))
      return tff.templates.MeasuredProcessOutput(
          state=output.state, result=tff.federated_map(scale, (output.result, tau_eff)),
          measurements=tff.federated_zip(collections.OrderedDict(
              normalized=output.measurements, tau_eff=tau_eff)))

    return tff.templates.AggregationProcess(inner.initialize, next_fn)


def build(*, model, config, aggregator: tff.aggregators.WeightedAggregationFactory,
          inputs: Optional[client_data.ClientInputs] = None
          ) -> tff.learning.templates.LearningProcess:
  """FedNova over the aggregator stack (see module doc)."""
  momentum = config.client.momentum
  normalized = local_update.local_sgd(model, learning_rate=config.client.learning_rate,
                                      momentum=momentum, weighting=config.client.weighting,
                                      normalize_by_steps=True)

  def update_fn(initial_weights, client_input):
    delta, weight, stats = normalized(initial_weights, client_input)
    steps = local_update.effective_steps(tf.cast(stats['num_steps'], tf.float32), momentum)
    return (delta, steps), weight, stats

  update_type = tff.StructType([model.weights_type().trainable, tff.TensorType(np.float32)])
  return fedavg.compose(
      model, update_fn=update_fn, config=config, update_type=update_type, inputs=inputs,
      aggregator=NormalizedAveragingFactory(
          aggregator, weighted=layers.mean_layer(config).weighted))
