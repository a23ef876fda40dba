"""Builds the model-update aggregator from the aggregation settings: enabled layers, one order.

The order is fixed by each layer's `position` (see `layers`): update layers outermost, then
the mean, then sum layers, innermost the plain `tff.aggregators.SumFactory`. An unweighted
result is adapted to the weighted interface that `compose_learning_process` requires.
"""

from typing import Any

import tensorflow_federated as tff

from tff_experiments.aggregators import layers


def enabled_layers(settings: Any) -> list[str]:
  """Names of the layers the settings enable, outermost first."""
  chosen = [(layer.position, name) for name, layer in layers.LAYERS.items()
            if layer.enabled(settings)]
  names = [name for _, name in sorted(chosen)]
  means = [n for n in names if layers.LAYERS.get(n).kind == 'mean']
  if len(means) != 1:
    raise ValueError(f'--aggregator must enable exactly one mean layer, got {means}')
  return names


def build(settings: Any, *, inner: Any = None) -> tff.aggregators.WeightedAggregationFactory:
  """The weighted aggregation factory of `settings.AggregationSettings`.

  `inner` replaces the innermost sum (tests pass a fake to check that every layer delegates).
  """
  factory = inner if inner is not None else tff.aggregators.SumFactory()
  for name in reversed(enabled_layers(settings)):
    factory = layers.LAYERS.get(name).wrap(factory, settings)
  if isinstance(factory, tff.aggregators.UnweightedAggregationFactory):
    factory = tff.aggregators.as_weighted_aggregator(factory)
  return factory
