"""Algorithms by `--algorithm`: name -> builder of a TFF `LearningProcess` over ClientInputs.

Each builder composes distributor, client work, aggregator and finalizer with
`tff.learning.templates.compose_learning_process`; the runner never branches on the name.
`clients.client_data.compose_with_tasks` turns the process into one that takes ClientTasks.
"""

from typing import Callable

import tensorflow_federated as tff

from tff_experiments.algorithms import fedavg
from tff_experiments.algorithms import fednova
from tff_experiments.algorithms import fedprox
from tff_experiments.algorithms import fedsgd
from tff_experiments.core import registry

# builder(*, model, config, aggregator) -> LearningProcess
Builder = Callable[..., tff.learning.templates.LearningProcess]

ALGORITHMS: registry.Registry[Builder] = registry.Registry('algorithm', flag='algorithm', entries={
    'fedavg': fedavg.build,
    'fedprox': fedprox.build,
    'fedsgd': fedsgd.build,
    'fednova': fednova.build,
})


def build(config, *, model, aggregator: tff.aggregators.WeightedAggregationFactory
          ) -> tff.learning.templates.LearningProcess:
  """The learning process named by `config.algorithm.algorithm`."""
  return ALGORITHMS.get(config.algorithm.algorithm)(model=model, config=config,
                                                    aggregator=aggregator)
