"""Aggregator layers by name: each wraps an inner `tff.aggregators` factory, TFF-style.

A layer is one registry entry: its place in the stack, whether the config enables it, and
`wrap(inner_factory, config) -> factory` (it reads `config.aggregation`, and `config.run.seed`
for seeded randomness at the server). Kinds, outermost first:

- `update` layers see each client's own update and keep the weighted interface (zeroing,
  clipping, local DP's clip and noise, quantization of the uplink); the weight they receive
  carries the client's update seed (`clients.update_weight`), which seeds their draws;
- exactly one `mean` layer turns client values into the server's average: `--aggregator`'s,
  or under central DP the DP-FedAvg mean (clip, sum, noise, divide: `dp`); its inner factory
  is the sum of (possibly weighted) client values;
- `sum` layers replace that plain sum from the inside (communication accounting, then the
  secure sum innermost: `secure`; under secure aggregation the mean's weights are summed
  securely too).

Every layer reports its own measurements (TFF's factories nest the inner one's beside them),
and they reach metrics.csv under `aggregator/...` with no code elsewhere.
"""

import dataclasses
from typing import Any, Callable

import tensorflow_federated as tff

from tff_experiments.aggregators import dp
from tff_experiments.aggregators import quantization
from tff_experiments.aggregators import secure
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
  weighted: bool = True  # Mean layers: whether client weights count.
  choice: bool = True  # Mean layers: whether --aggregator names it (DP's is --dp_mechanism's).

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'layer kind must be one of {KINDS}, got {self.kind!r}')


def _unweighted_mean(inner: Factory, config: Any) -> Factory:
  del config
  return tff.aggregators.UnweightedMeanFactory(value_sum_factory=inner)


def _dp_mode(config: Any) -> str:
  """'central' or 'local' under DP, else '' (no DP)."""
  return config.privacy.mode if config.privacy.mechanism != 'none' else ''


def _secure(config: Any) -> bool:
  return config.secure_aggregation.mode in secure.SECURE_SUMS


def _comm_accounting(inner: Factory, config: Any) -> Factory:
  a = config.aggregation
  if _secure(config):  # b-bit integers on a public scale (one per server), and the weight.
    return quantization.CommAccountingFactory(
        inner, uplink_bits=config.secure_aggregation.bits, rotation=False,
        side_information=False, downlink_bits=a.downlink_bits,
        copies=secure.SECURE_SUMS.get(config.secure_aggregation.mode).servers,
        extra_bits=secure.WEIGHT_BITS if mean_layer(config).weighted else 0)
  quantized = a.quantization != 'none'
  return quantization.CommAccountingFactory(
      inner, uplink_bits=a.quantization_bits if quantized else quantization.FLOAT_BITS,
      rotation=quantized and a.quantization_rotation == 'hadamard',
      downlink_bits=a.downlink_bits)


def _quantize(inner: Factory, config: Any) -> Factory:
  a = config.aggregation
  return quantization.QuantizeFactory(
      inner, bits=a.quantization_bits, stochastic=a.quantization_rounding == 'stochastic',
      rotation=a.quantization_rotation == 'hadamard',
      weighted=mean_layer(config).weighted, diagnostics=not _secure(config))


LAYERS: registry.Registry[Layer] = registry.Registry('aggregator layer', flag='aggregator', entries={
    'comm_accounting': Layer(
        kind='sum', position=1000, enabled=lambda c: True, wrap=_comm_accounting,
        help='report the exact uplink and downlink bits of every round (comm/...)'),
    'secure_sum': Layer(
        kind='sum', position=1100, enabled=_secure,
        wrap=lambda inner, c: secure.value_sum(inner, c, weighted=mean_layer(c).weighted),
        help='secure aggregation: the server receives only masked vectors or shares '
             '(--secure_aggregation, secagg/...)'),
    'zeroing': Layer(
        kind='update', position=10,
        enabled=lambda c: c.aggregation.zeroing_norm is not None,
        wrap=lambda inner, c: tff.aggregators.zeroing_factory(c.aggregation.zeroing_norm,
                                                             inner, norm_order=2.0),
        help='replace by zeros a client update whose L2 norm exceeds --zeroing_norm'),
    'clip': Layer(
        kind='update', position=20,
        enabled=lambda c: c.aggregation.clip_norm is not None,
        wrap=lambda inner, c: tff.aggregators.clipping_factory(c.aggregation.clip_norm, inner),
        help='scale each client update down to L2 norm <= --clip_norm (robust aggregation)'),
    'dp_local': Layer(
        kind='update', position=25, enabled=lambda c: _dp_mode(c) == 'local', wrap=dp.local,
        help='local DP: each client clips and noises its own update (--dp_mode=local)'),
    'quantize': Layer(
        kind='update', position=30,
        enabled=lambda c: c.aggregation.quantization != 'none', wrap=_quantize,
        help='b-bit quantization of each client update, as sent (--quantization*)'),
    'mean': Layer(
        kind='mean', position=100,
        enabled=lambda c: not _dp_mode(c) and c.aggregation.aggregator == 'mean',
        wrap=lambda inner, c: tff.aggregators.MeanFactory(
            value_sum_factory=inner, weight_sum_factory=secure.weight_sum(c)),
        help='average weighted by each client\'s update weight (FedAvg: examples)'),
    'unweighted_mean': Layer(
        kind='mean', position=100, weighted=False,
        enabled=lambda c: (_dp_mode(c) == 'local' or not _dp_mode(c)
                           and c.aggregation.aggregator == 'unweighted_mean'),
        wrap=_unweighted_mean,
        help='plain average over reporting clients (weights ignored; local DP\'s mean)'),
    'dp': Layer(
        kind='mean', position=100, weighted=False, choice=False,
        enabled=lambda c: _dp_mode(c) == 'central', wrap=dp.central,
        help='central DP-FedAvg: clip, sum, seeded noise, divide by --clients_per_round'),
})


# `--quantization` choices: none, or a scheme the quantize layer implements.
QUANTIZATION_SCHEMES = ('none', 'uniform')


def mean_names() -> list[str]:
  """The `--aggregator` choices: the mean layers it names."""
  return [name for name, layer in LAYERS.items() if layer.kind == 'mean' and layer.choice]


def mean_layer(config: Any) -> Layer:
  """The one mean layer the config enables."""
  return next(layer for _, layer in LAYERS.items()
              if layer.kind == 'mean' and layer.enabled(config))
