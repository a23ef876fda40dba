"""FedAvg (McMahan et al. 2017) from its parts: broadcast, `local_sgd`, aggregator, optimizer.

Algorithms that differ only in the client update or the aggregation are this builder with other
`local_sgd` options or another aggregator stack, not copies of it.
"""

from typing import Optional

import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.algorithms import distributors
from tff_experiments.algorithms import server_optimizers
from tff_experiments.clients import client_data
from tff_experiments.clients import client_work
from tff_experiments.clients import local_update
from tff_experiments.clients import update_weight
from tff_experiments.models import model as model_lib


def initial_weights_computation(model: model_lib.Model) -> tff.Computation:
  """A computation returning the model's (seeded) initial `ModelWeights`."""

  @tff.tensorflow.computation
  def initial_weights():
    trainable, non_trainable = model.initial_weights
    return tff.learning.models.ModelWeights(
        tuple(tf.convert_to_tensor(w) for w in trainable),
        tuple(tf.convert_to_tensor(w) for w in non_trainable))

  return initial_weights


def compose(model: model_lib.Model, *, update_fn, config,
            aggregator: tff.aggregators.WeightedAggregationFactory,
            update_type: Optional[tff.types.Type] = None,
            inputs: Optional[client_data.ClientInputs] = None
            ) -> tff.learning.templates.LearningProcess:
  """Distributor (`--downlink_bits`) + client work of `update_fn` over `inputs` (default:
  ready ClientInputs) + aggregator + server optimizer finalizer. `update_type` is what clients
  send (default: the trainable weights), beside an `update_weight`."""
  weights_type = model.weights_type()
  return tff.learning.templates.compose_learning_process(
      initial_weights_computation(model),
      distributors.build(config, weights_type),
      client_work.build_client_work(model, update_fn=update_fn, inputs=inputs),
      aggregator.create(update_type or weights_type.trainable, update_weight.TYPE),
      tff.learning.templates.build_apply_optimizer_finalizer(
          server_optimizers.build(config.server), weights_type),
  )


def build(*, model: model_lib.Model, config,
          aggregator: tff.aggregators.WeightedAggregationFactory,
          inputs: Optional[client_data.ClientInputs] = None
          ) -> tff.learning.templates.LearningProcess:
  """FedAvg: local SGD (`--client_momentum`), the aggregator stack's average of deltas, server
  optimizer."""
  update_fn = local_update.local_sgd(model, learning_rate=config.client.learning_rate,
                                     momentum=config.client.momentum,
                                     weighting=config.client.weighting)
  return compose(model, update_fn=update_fn, config=config, aggregator=aggregator,
                 inputs=inputs)
