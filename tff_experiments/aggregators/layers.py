"""Aggregator layers by name: each wraps an inner `tff.aggregators` factory, TFF-style.

A layer is one registry entry: its place in the stack, whether the aggregation settings enable
it, and `wrap(inner_factory, settings) -> factory`. Kinds, outermost first:

- `update` layers see each client's own update and keep the weighted interface (e.g. clipping,
  zeroing; later DP's clipping where it belongs outside the mean);
- exactly one `mean` layer, chosen by `--aggregator`, turns client values into the server's
  average; its inner factory is the sum of (possibly weighted) client values;
- `sum` layers replace that plain sum from the inside (DP noise, quantization, secure sum).

Every layer reports its own measurements (TFF's factories nest the inner one's beside them),
and they reach metrics.csv under `aggregator/...` with no code elsewhere.
"""

import dataclasses
from typing import Any, Callable

import tensorflow_federated as tff

from tff_experiments.core import registry

Factory = Any  # tff.aggregators.{Weighted,Unweighted}AggregationFactory
KINDS = ('update', 'mean', 'sum')


@dataclasses.dataclass(frozen=True)
class Layer:
  """One layer: `position` orders the stack (outermost first, kinds in KINDS order)."""
  kind: str
  position: int
  enabled: Callable[[Any], bool]
  wrap: Callable[[Factory, Any], Factory]
  help: str

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'layer kind must be one of {KINDS}, got {self.kind!r}')


def _unweighted_mean(inner: Factory, settings: Any) -> Factory:
  del settings
  return tff.aggregators.UnweightedMeanFactory(value_sum_factory=inner)


LAYERS: registry.Registry[Layer] = registry.Registry('aggregator layer', flag='aggregator', entries={
    'zeroing': Layer(
        kind='update', position=10,
        enabled=lambda s: s.zeroing_norm is not None,
        wrap=lambda inner, s: tff.aggregators.zeroing_factory(s.zeroing_norm, inner,
                                                             norm_order=2.0),
        help='replace by zeros a client update whose L2 norm exceeds --zeroing_norm'),
    'clip': Layer(
        kind='update', position=20,
        enabled=lambda s: s.clip_norm is not None,
        wrap=lambda inner, s: tff.aggregators.clipping_factory(s.clip_norm, inner),
        help='scale each client update down to L2 norm <= --clip_norm (robust aggregation)'),
    'mean': Layer(
        kind='mean', position=100,
        enabled=lambda s: s.aggregator == 'mean',
        wrap=lambda inner, s: tff.aggregators.MeanFactory(value_sum_factory=inner),
        help='average weighted by each client\'s update weight (FedAvg: examples)'),
    'unweighted_mean': Layer(
        kind='mean', position=100,
        enabled=lambda s: s.aggregator == 'unweighted_mean',
        wrap=_unweighted_mean,
        help='plain average over reporting clients (weights ignored)'),
})


def mean_names() -> list[str]:
  """The `--aggregator` choices: layers of kind `mean`."""
  return [name for name, layer in LAYERS.items() if layer.kind == 'mean']
