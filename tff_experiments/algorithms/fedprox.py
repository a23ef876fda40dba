"""FedProx (Li et al. 2020): FedAvg whose clients minimize loss + mu/2 ||w - w_global||^2."""

from typing import Optional

import tensorflow_federated as tff

from tff_experiments.algorithms import fedavg
from tff_experiments.clients import client_data
from tff_experiments.clients import local_update


def build(*, model, config, aggregator: tff.aggregators.WeightedAggregationFactory,
          inputs: Optional[client_data.ClientInputs] = None
          ) -> tff.learning.templates.LearningProcess:
  """FedAvg with the proximal term `--proximal_mu` in `local_sgd` (mu = 0: exactly FedAvg)."""
  update_fn = local_update.local_sgd(
      model, learning_rate=config.client.learning_rate, momentum=config.client.momentum,
      weighting=config.client.weighting,
      regularizer=local_update.proximal_term(config.algorithm.proximal_mu))
  return fedavg.compose(model, update_fn=update_fn, config=config, aggregator=aggregator,
                        inputs=inputs)
