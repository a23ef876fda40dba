"""FedSGD (McMahan et al. 2017's baseline): each client takes one full-batch gradient step."""

from typing import Optional

import tensorflow_federated as tff

from tff_experiments.algorithms import fedavg
from tff_experiments.clients import client_data
from tff_experiments.clients import local_update


def build(*, model, config, aggregator: tff.aggregators.WeightedAggregationFactory,
          inputs: Optional[client_data.ClientInputs] = None
          ) -> tff.learning.templates.LearningProcess:
  """Clients send lr x (the gradient over all their examples at the global model); the
  server averages (weighted by examples) and applies its optimizer. Batches only bound memory:
  the gradient is the same for any --client_batch_size; use --client_epochs_per_round=1."""
  update_fn = local_update.local_sgd(
      model, learning_rate=config.client.learning_rate, weighting=config.client.weighting,
      full_batch_gradient=True)
  return fedavg.compose(model, update_fn=update_fn, config=config, aggregator=aggregator,
                        inputs=inputs)
