"""Algorithms by `--algorithm`: name -> builder of a TFF `LearningProcess`.

Each builder composes distributor, client work, aggregator and finalizer with
`tff.learning.templates.compose_learning_process`; the runner never branches on the name.
Clients receive `inputs` (a `client_data.ClientInputs`; default: ready ClientInputs);
`clients.client_data.compose_with_tasks` turns the process into one that takes ClientTasks.
"""

from typing import Callable, Optional

import tensorflow_federated as tff

from tff_experiments.algorithms import fedavg
from tff_experiments.algorithms import fednova
from tff_experiments.algorithms import fedprox
from tff_experiments.algorithms import fedsgd
from tff_experiments.clients import client_data
from tff_experiments.core import registry

# builder(*, model, config, aggregator, inputs=None) -> LearningProcess
Builder = Callable[..., tff.learning.templates.LearningProcess]

ALGORITHMS: registry.Registry[Builder] = registry.Registry('algorithm', flag='algorithm', entries={
    'fedavg': fedavg.build,
    'fedprox': fedprox.build,
    'fedsgd': fedsgd.build,
    'fednova': fednova.build,
})

# --client_weighting when it is not given: the weights each algorithm's paper averages with.
# FedNova's p_i = n_i / n is the client's share of the data whatever work it did (Wang et al.
# 2020); `num_examples` would also weight a straggler by its steps tau_i, making the update
# sum(tau_i^2) / (sum tau_i)^2 * sum(Delta_i) under partial work. Others: McMahan's n_k.
_CLIENT_WEIGHTING = {'fednova': 'dataset_size'}
_DEFAULT_CLIENT_WEIGHTING = 'num_examples'


def default_client_weighting(algorithm: str) -> str:
  """The --client_weighting of `algorithm` when the flag is not given."""
  return _CLIENT_WEIGHTING.get(algorithm, _DEFAULT_CLIENT_WEIGHTING)


def build(config, *, model, aggregator: tff.aggregators.WeightedAggregationFactory,
          inputs: Optional[client_data.ClientInputs] = None
          ) -> tff.learning.templates.LearningProcess:
  """The learning process named by `config.algorithm.algorithm`, its clients receiving
  `inputs`."""
  return ALGORITHMS.get(config.algorithm.algorithm)(model=model, config=config,
                                                    aggregator=aggregator, inputs=inputs)
