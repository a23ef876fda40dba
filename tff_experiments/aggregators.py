"""Aggregator registry: `--aggregator` name -> a weighted `tff.aggregators` factory.

Later layers (clipping, DP, quantization, secure sum) are factories that wrap or nest in these,
in TFF's style, so each is one entry here rather than a branch in the algorithms.
"""

from typing import Callable

import tensorflow_federated as tff

from tff_experiments import config as config_lib

# name -> fn(config) -> tff.aggregators.WeightedAggregationFactory
AGGREGATORS: dict[str, Callable[[config_lib.ExperimentConfig],
                                tff.aggregators.WeightedAggregationFactory]] = {
    # McMahan et al.: the update average weighted by each client's example count.
    'mean': lambda config: tff.aggregators.MeanFactory(),
}


def build(config: config_lib.ExperimentConfig) -> tff.aggregators.WeightedAggregationFactory:
  """The model-update aggregation factory named by `config.aggregator`."""
  if config.aggregator not in AGGREGATORS:
    raise ValueError(
        f'--aggregator={config.aggregator!r} is unknown; choose one of {sorted(AGGREGATORS)}')
  return AGGREGATORS[config.aggregator](config)
