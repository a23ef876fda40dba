"""The aggregator stack: every registered layer composes around a fake inner sum and reports."""

import collections

import numpy as np
import pytest
import tensorflow_federated as tff

import secure_layers
from tff_experiments import settings
from tff_experiments.aggregators import layers
from tff_experiments.aggregators import stack
from tff_experiments.clients import update_weight
from tff_experiments.results import metrics_csv
from tff_experiments.secagg import rounds

pytestmark = pytest.mark.usefixtures('tff_worker')

# Flags that enable each registered layer (thresholds large enough not to bite): a layer added
# to the registry without a row here fails test_the_table_covers_every_layer.
_ENABLING_FLAGS = {
    'comm_accounting': {},
    'quantize': {'quantization': 'uniform', 'quantization_bits': 16},
    'mean': {},
    'unweighted_mean': {'aggregator': 'unweighted_mean'},
    'clip': {'clip_norm': 1e6},
    'zeroing': {'zeroing_norm': 1e6},
    'dp': {'dp_mechanism': 'gaussian', 'dp_noise_multiplier': 0.0, 'dp_clip_norm': 1e6,
           'clients_per_round': 2},
    'dp_local': {'dp_mechanism': 'gaussian', 'dp_mode': 'local', 'dp_noise_multiplier': 0.0,
                 'dp_clip_norm': 1e6},
    'secure_sum': {'secure_aggregation': 'masking', 'clients_per_round': 2,
                   'secagg_clip_norm': 10.0},
}
_OWN_MEASUREMENTS = {'clip': 'clipped_count', 'zeroing': 'zeroed_count',
                     'comm_accounting': 'comm/uplink_bits_per_client',
                     'quantize': 'comm/quantization_mse', 'dp_local': 'clipped_fraction',
                     'secure_sum': 'secagg/clients_masked'}
_VALUES = [np.array([1.0, 2.0, 3.0], np.float32), np.array([-3.0, 0.5, 1.0], np.float32)]
_WEIGHTS = [np.float32(1.0), np.float32(3.0)]
_SEEDED_WEIGHTS = [update_weight.make(w, np.int64(i)) for i, w in enumerate(_WEIGHTS)]


class _ReportingSum(tff.aggregators.UnweightedAggregationFactory):
  """A plain sum that reports `fake_inner_calls`: proves a layer delegates to its inner one."""

  def create(self, value_type):
    @tff.federated_computation
    def init():
      return tff.federated_value((), tff.SERVER)

    @tff.federated_computation(init.type_signature.result,
                               tff.FederatedType(value_type, tff.CLIENTS))
    def next_fn(state, value):
      report = tff.federated_value(collections.OrderedDict(fake_inner_calls=np.int32(1)),
                                   tff.SERVER)
      return tff.templates.MeasuredProcessOutput(state, tff.federated_sum(value), report)

    return tff.templates.AggregationProcess(init, next_fn)


def _aggregate(config, inner=None):
  types = (tff.TensorType(np.float32, [3]), update_weight.TYPE)
  if config.secure_aggregation.mode == 'none':
    process = stack.build(config, inner=inner).create(*types)
    return process.next(process.initialize(), _VALUES, _SEEDED_WEIGHTS)
  # Secure sums take the protocol's messages of a round (both clients survive).
  outside, next_fn = secure_layers.aggregation_round(lambda: stack.build(config, inner=inner),
                                                     *types)
  setup = rounds.protocol_setup(config.secure_aggregation, seed=0, client_ids=['a', 'b'],
                                round_num=1)
  return next_fn(outside.initialize(), _VALUES, _SEEDED_WEIGHTS, setup.clients, setup.server)


def test_the_table_covers_every_layer():
  assert sorted(_ENABLING_FLAGS) == layers.LAYERS.names()


@pytest.mark.parametrize('name', sorted(_ENABLING_FLAGS))
def test_every_layer_composes_delegates_and_reports(name):
  config = settings.from_flat(_ENABLING_FLAGS[name])
  assert name in stack.enabled_layers(config)
  output = _aggregate(config, inner=_ReportingSum())
  flat = metrics_csv.flatten(output.measurements)
  assert any(key.endswith('fake_inner_calls') and value == 1 for key, value in flat.items())
  if name in _OWN_MEASUREMENTS:
    assert any(metrics_csv.column_name(key).endswith(_OWN_MEASUREMENTS[name]) for key in flat)
  unweighted = not layers.mean_layer(config).weighted
  weights = np.ones(2) if unweighted else np.array(_WEIGHTS, np.float64)
  want = sum(w * v for w, v in zip(weights, _VALUES)) / weights.sum()
  # 16-bit quantization moves a value by at most one step of its tensor's range.
  tolerance = (max(v.max() for v in _VALUES) - min(v.min() for v in _VALUES)) / 2**15
  # The secure sum rounds each weighted value to a step of clip / ((2^31 - 1) // 2).
  tolerance = {'quantize': tolerance, 'secure_sum': 10.0 / (2**30 - 1)}.get(name, 0)
  np.testing.assert_allclose(output.result, want, rtol=1e-6, atol=tolerance)


def test_layers_nest_in_the_documented_order():
  config = settings.from_flat({'clip_norm': 1.0, 'zeroing_norm': 10.0, 'quantization': 'uniform',
                               'aggregator': 'unweighted_mean'})
  assert stack.enabled_layers(config) == ['zeroing', 'clip', 'quantize', 'unweighted_mean',
                                          'comm_accounting']
  config = settings.from_flat({'secure_aggregation': 'masking', 'dp_mechanism': 'gaussian',
                               'dp_noise_multiplier': 1.0})  # The DP sum is the secure sum.
  assert stack.enabled_layers(config) == ['dp', 'comm_accounting', 'secure_sum']


def test_clipping_scales_each_client_before_the_weighted_mean():
  config = settings.from_flat({'clip_norm': 2.0})
  output = _aggregate(config)
  # Hand computation: norms sqrt(14) and sqrt(10.25) both exceed 2, so each value is scaled
  # to norm 2, then weighted 1:3.
  clipped = [v * (2.0 / np.linalg.norm(v)) for v in _VALUES]
  want = (1.0 * clipped[0] + 3.0 * clipped[1]) / 4.0
  np.testing.assert_allclose(output.result, want, rtol=1e-5)
  assert metrics_csv.flatten(output.measurements)['clipped_count'] == 2


def test_zeroing_drops_a_client_whose_norm_is_too_large():
  config = settings.from_flat({'zeroing_norm': 3.5})  # Drops only client 0.
  output = _aggregate(config)
  np.testing.assert_allclose(output.result, 3.0 * _VALUES[1] / 4.0, rtol=1e-5)
  assert metrics_csv.flatten(output.measurements)['zeroed_count'] == 1


@pytest.mark.parametrize('flags', [{}, {'quantization': 'uniform'}])
def test_a_weight_without_its_update_seed_is_refused(flags):
  # A silent shared seed would give every client the same draws: the seed must be given.
  config = settings.from_flat(flags)
  with pytest.raises(TypeError, match='update seed'):
    stack.build(config).create(tff.TensorType(np.float32, [3]), tff.TensorType(np.float32))
