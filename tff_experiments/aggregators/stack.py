"""Builds the model-update aggregator from the config: the enabled layers, in one order.

The order is fixed by each layer's `position` (see `layers`): update layers outermost, then
the mean, then sum layers, innermost the plain `tff.aggregators.SumFactory`. An unweighted
mean is adapted to the weighted interface (which update layers and `compose_learning_process`
require) where it is built. The stack takes each client's weight with its update seed
(`clients.update_weight.TYPE`): update layers draw from that seed, and the seed is dropped
right above the mean (`seeded.WeightOnlyFactory`).
"""

from typing import Any

import tensorflow_federated as tff

from tff_experiments.aggregators import layers
from tff_experiments.aggregators import seeded


def enabled_layers(config: Any) -> list[str]:
  """Names of the layers the config enables, outermost first."""
  chosen = [(layer.position, name) for name, layer in layers.LAYERS.items()
            if layer.enabled(config)]
  names = [name for _, name in sorted(chosen)]
  means = [n for n in names if layers.LAYERS.get(n).kind == 'mean']
  if len(means) != 1:
    raise ValueError(f'--aggregator must enable exactly one mean layer, got {means}')
  return names


def build(config: Any, *, inner: Any = None) -> tff.aggregators.WeightedAggregationFactory:
  """The weighted aggregation factory of a `settings.ExperimentConfig`; its weight type is
  `clients.update_weight.TYPE`.

  `inner` replaces the innermost sum (tests pass a fake to check that every layer delegates).
  """
  factory = inner if inner is not None else tff.aggregators.SumFactory()
  for name in reversed(enabled_layers(config)):
    layer = layers.LAYERS.get(name)
    factory = layer.wrap(factory, config)
    if layer.kind == 'mean':
      if isinstance(factory, tff.aggregators.UnweightedAggregationFactory):
        factory = tff.aggregators.as_weighted_aggregator(factory)  # Update layers are weighted.
      factory = seeded.WeightOnlyFactory(factory)
  return factory
