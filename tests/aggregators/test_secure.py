"""Secure sum layers: exact unmasked sums, masked vectors independent of the update, aborts,
the measured range and the encoding error against numpy, composition with DP and quantization,
and no unmasked update reaching the server."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff
from scipy import stats

import federated_types
import secure_layers

from tff_experiments import settings
from tff_experiments.aggregators import secure
from tff_experiments.aggregators import stack
from tff_experiments.clients import update_weight
from tff_experiments.results import metrics_csv
from tff_experiments.secagg import masking
from tff_experiments.secagg import messages
from tff_experiments.secagg import rounds

pytestmark = pytest.mark.usefixtures('tff_worker')

_SHAPES = [(7,), (2, 3)]
_VALUE_TYPE = tff.types.tensorflow_to_type(tuple(tf.TensorSpec(s, tf.float32) for s in _SHAPES))
_IDS = [f'client_{i}' for i in range(6)]


def _values(seed, n=len(_IDS), scale=1.0):
  rng = np.random.default_rng(seed)
  return [tuple((scale * rng.normal(size=s)).astype(np.float32) for s in _SHAPES)
          for _ in range(n)]


def _seeded(weights):
  """The stack's client weights: each with its own update seed."""
  return [update_weight.make(w, np.int64(i)) for i, w in enumerate(weights)]


def _run(build, settings_, values, weights=None, *, round_num=1, ids=_IDS):
  """One round of `build()`'s process on the protocol's survivors; (output, survivors).
  `weights` (plain) go in with their update seeds (`_seeded`)."""
  setup = rounds.protocol_setup(settings_, seed=0, client_ids=ids, round_num=round_num)
  keep = [ids.index(c) for c in setup.survivors]
  weighted = weights is not None
  outside, next_fn = secure_layers.aggregation_round(
      build, _VALUE_TYPE, update_weight.TYPE if weighted else None)
  args = [[values[i] for i in keep]] + ([[_seeded(weights)[i] for i in keep]] if weighted
                                        else [])
  return next_fn(outside.initialize(), *args, setup.clients, setup.server), keep


def _columns(output):
  return {metrics_csv.column_name(k): v
          for k, v in metrics_csv.flatten(output.measurements).items()}


def _grid_values(seed, *, levels, step_exponent=-20):
  """Per client, values on the fixed-point grid of step 2^step_exponent (exact in float32):
  stochastic rounding leaves them as they are, so the unmasked sum is exactly numpy's."""
  rng = np.random.default_rng(seed)
  return [tuple((rng.integers(-levels, levels + 1, size=s) * 2.0**step_exponent)
                .astype(np.float32) for s in _SHAPES) for _ in _IDS]


def _measured_range(contributions, tensor):
  """Numpy: the first half-octave edge 2^(k/2) at or above the clients' largest |coordinate|."""
  largest = max(float(np.max(np.abs(c[tensor].astype(np.float64)))) for c in contributions)
  k = math.ceil(2 * math.log2(largest))
  while 2.0**((k - 1) / 2) >= largest:
    k -= 1
  while 2.0**(k / 2) < largest:
    k += 1
  return 2.0**(k / 2)


def _too_few_holders(graph, survivors, *, threshold):
  """The abort rule, independently: fewer than t survivors, or a secret the server needs (a
  survivor's self-mask seed, a dropped client's mask key) held by fewer than t survivors."""
  if len(survivors) < threshold:
    return True
  for client, neighbours in graph.items():
    holders = len(survivors & set(neighbours)) + (client in survivors)
    needed = client in survivors or survivors & set(neighbours)
    if needed and holders < threshold:
      return True
  return False


@pytest.mark.parametrize('mode,rate,neighbors', [
    ('masking', 0.0, None), ('masking', 0.4, None), ('masking', 0.3, 2), ('two_server', 0, None)])
def test_unmasked_sum_is_exactly_the_sum_of_the_encoded_updates(mode, rate, neighbors):
  # 24 bits: sums below 2^23 in magnitude decode to distinct float32s, so equal floats are
  # equal integers. The clip makes the step 2^-20 and the values lie on its grid.
  levels = (2**23 - 1) // 6
  config = settings.from_flat({'secure_aggregation': mode, 'clients_per_round': 6,
                               'secagg_clip_norm': levels * 2.0**-20, 'secagg_bits': 24,
                               **({'secagg_dropout_rate': rate, 'secagg_threshold': 2,
                                   'secagg_neighbors': neighbors} if mode == 'masking' else {})})
  values = _grid_values(0, levels=levels)
  factory = lambda: secure.value_sum(tff.aggregators.SumFactory(), config, weighted=False)
  unmasked_with_drop_outs = 0
  for round_num in range(1, 6):
    output, keep = _run(factory, config.secure_aggregation, values, round_num=round_num)
    columns = _columns(output)
    graph = rounds.masking_graph(_IDS, neighbors=neighbors, seed=0, round_num=round_num)
    abort = _too_few_holders(graph, {_IDS[i] for i in keep}, threshold=2)
    assert columns['secagg/aborted'] == abort
    if abort:
      continue
    for t, got in enumerate(output.result):
      np.testing.assert_array_equal(got, sum(values[i][t].astype(np.float64) for i in keep))
    assert columns['secagg/encoding_mse'] == 0 and columns['secagg/range_max'] == (
        levels * 2.0**-20)
    assert columns['secagg/dropped_after_masking'] == len(_IDS) - len(keep)
    survivors = {_IDS[i] for i in keep}
    assert columns['secagg/recovered'] == sum(  # Dropped clients with masks to remove.
        1 for c in set(_IDS) - survivors if survivors & set(graph[c]))
    unmasked_with_drop_outs += len(keep) < len(_IDS)
  assert rate == 0 or unmasked_with_drop_outs >= 1


def _client_part(mode):
  config = settings.from_flat({'secure_aggregation': mode, 'secagg_bits': 32})
  factory = secure.value_sum(tff.aggregators.SumFactory(), config, weighted=False)
  return factory.client_part(_VALUE_TYPE)


def _message(rng, pairs=3):
  seed = lambda *shape: rng.integers(-2**62, 2**62, shape)
  return messages.client_message(seed(pairs, 2), [1, -1, 1][:pairs], seed(2), seed(2))


@pytest.mark.parametrize('mode', ['masking', 'two_server'])
def test_what_a_client_sends_is_uniform_and_independent_of_its_update(mode):
  send = _client_part(mode)
  rng = np.random.default_rng(1)
  flat = lambda sent: np.concatenate([np.ravel(t) for t in tf.nest.flatten(sent)])
  big = tuple(np.full(s, 9e3, np.float32) for s in _SHAPES)
  zero = tuple(np.zeros(s, np.float32) for s in _SHAPES)
  sent = {}
  for name, value in (('zero', zero), ('big', big)):
    draws = []
    for _ in range(300):  # Fresh seeds per message, as every round and client has.
      out, _ = send(value, _message(rng), np.int64(10), np.full(2, 1e4))
      draws.append(flat(out[0]))  # What the (first) server receives.
      if mode == 'two_server':  # The second share alone is uniform too.
        draws.append(flat(out[1]))
    sent[name] = np.concatenate(draws)
  for values in sent.values():
    assert values.min() >= 0 and values.max() < 2**32
    assert stats.kstest(values / 2**32, 'uniform').pvalue > 1e-3
    assert stats.chisquare(np.bincount(values >> 28, minlength=16)).pvalue > 1e-3
  assert stats.ks_2samp(sent['zero'], sent['big']).pvalue > 1e-3


def test_fewer_than_t_survivors_abort_and_a_layer_outside_a_round_only_aborts():
  config = settings.from_flat({'secure_aggregation': 'masking', 'clients_per_round': 6,
                               'secagg_threshold': 6, 'secagg_dropout_rate': 0.5})
  factory = lambda: secure.value_sum(tff.aggregators.SumFactory(), config, weighted=False)
  output, keep = _run(factory, config.secure_aggregation, _values(2))
  columns = _columns(output)
  assert len(keep) < 6 and columns['secagg/aborted'] == 1
  assert all(not np.any(t) for t in output.result)
  assert all(np.isnan(columns[f'secagg/{name}'])  # Nothing decoded, nothing measured.
             for name in ('range_max', 'encoding_mse', 'encoding_relative_error'))
  process = factory().create(_VALUE_TYPE)  # Placeholders: nothing to unmask with.
  alone = process.next(process.initialize(), _values(2))
  assert _columns(alone)['secagg/aborted'] == 1


def test_weighted_mean_measured_range_encoding_error_and_bits_columns():
  config = settings.from_flat({'secure_aggregation': 'masking', 'clients_per_round': 6,
                               'secagg_bits': 8})
  assert config.secure_aggregation.clip_norm is None  # Measured every round.
  values, weights = _values(3), [np.float32(w) for w in (600, 1, 30, 7, 600, 2)]
  output, keep = _run(lambda: stack.build(config), config.secure_aggregation, values, weights)
  assert len(keep) == 6
  # What the mean hands the sum: value x weight in float32.
  contributions = [tuple((w * v).astype(np.float64) for v in value)
                   for w, value in zip(weights, values)]
  levels = (2**7 - 1) // 6
  ranges = [_measured_range(contributions, t) for t in range(len(_SHAPES))]
  steps = [r / levels for r in ranges]
  total = sum(weights)
  for t, got in enumerate(output.result):
    want = sum(c[t] for c in contributions) / total
    assert np.abs(got - want).max() < 6 * steps[t] / total  # Each client: below a step.
  columns = _columns(output)
  assert columns['secagg/levels'] == levels
  assert columns['secagg/range_max'] == max(ranges)
  # The reported squared error against its closed-form mean and spread (stochastic rounding,
  # nothing clipped): sum over clients and coordinates of step^2 p (1 - p).
  mean = var = 0.0
  for c in contributions:
    for t, step in enumerate(steps):
      x = c[t] / step
      p = x - np.floor(x)
      mean += np.sum(step**2 * p * (1 - p))
      var += np.sum(step**4 * p * (1 - p) * ((1 - p)**3 + p**3) - (step**2 * p * (1 - p))**2)
  size = sum(int(np.prod(s)) for s in _SHAPES)
  assert abs(columns['secagg/encoding_mse'] * size - mean) <= 6 * math.sqrt(var)
  norms = sum(np.sum(t**2) for c in contributions for t in c)
  assert columns['secagg/encoding_relative_error'] == pytest.approx(
      math.sqrt(columns['secagg/encoding_mse'] * size / norms), rel=1e-6)
  per_client = 8 * 13 + 32  # The masked update and the masked weight (32-bit integers).
  assert columns['comm/uplink_bits_per_client'] == per_client
  histograms = 8 * len(_SHAPES) * 97  # And the masked range histograms, 97 buckets a tensor.
  assert columns['secagg/uplink_bits_round'] == (
      6 * (per_client + histograms) + columns['secagg/key_agreement_bits']
      + columns['secagg/share_bits'])
  assert columns['secagg/key_agreement_bits'] == 6 * 2 * 256


def test_composes_with_central_dp_and_with_quantization():
  flags = {'clients_per_round': 6, 'dp_mechanism': 'gaussian', 'dp_noise_multiplier': 0.0,
           'dp_clip_norm': 1.5}
  values = _values(4, scale=1.0)
  plain = stack.build(settings.from_flat(flags)).create(_VALUE_TYPE, update_weight.TYPE)
  ones = [np.float32(1)] * 6
  want = plain.next(plain.initialize(), values, _seeded(ones)).result
  config = settings.from_flat({**flags, 'secure_aggregation': 'masking'})
  assert config.secure_aggregation.clip_norm == 1.5  # The DP records fit exactly.
  got, _ = _run(lambda: stack.build(config), config.secure_aggregation, values, ones)
  step = 1.5 / ((2**31 - 1) // 6)  # The mean of 6 records, each rounded by below a step.
  for g, w in zip(got.result, want):
    np.testing.assert_allclose(g, w, atol=step + 1e-7)
  assert _columns(got)['secagg/range_max'] == 1.5
  quantized = {'quantization': 'uniform', 'quantization_bits': 8,
               'quantization_rounding': 'deterministic', 'clients_per_round': 6}
  plain = stack.build(settings.from_flat(quantized)).create(_VALUE_TYPE, update_weight.TYPE)
  want = plain.next(plain.initialize(), values, _seeded(ones)).result
  config = settings.from_flat({**quantized, 'secure_aggregation': 'two_server'})
  got, _ = _run(lambda: stack.build(config), config.secure_aggregation, values, ones)
  for g, w in zip(got.result, want):
    np.testing.assert_allclose(g, w, atol=1e-5)
  assert 'comm/quantization_mse' not in _columns(got)  # It would read each update.


def _update_shaped(computation):
  """(intrinsic, tensor type) of every update-shaped tensor crossing to the server."""
  return [(uri, t) for uri, member in federated_types.client_to_server(computation)
          for t in federated_types.tensors(member) if tuple(t.shape) in _SHAPES]


@pytest.mark.parametrize('mode', ['masking', 'two_server'])
def test_the_server_side_receives_no_unmasked_update(mode):
  config = settings.from_flat({'secure_aggregation': mode, 'clip_norm': 5.0,
                               'quantization': 'uniform', 'zeroing_norm': 100.0})
  _, next_fn = secure_layers.aggregation_round(lambda: stack.build(config), _VALUE_TYPE,
                                               update_weight.TYPE)
  shaped = _update_shaped(next_fn)
  # Only int64 vectors through plain sums: the masked vectors (one per server, each leaf).
  assert sorted(uri for uri, _ in shaped) == ['federated_sum'] * (
      len(_SHAPES) * secure.SECURE_SUMS.get(mode).servers)
  assert all(t.dtype == np.int64 for _, t in shaped)
  plain = stack.build(settings.from_flat({'clip_norm': 5.0})).create(
      _VALUE_TYPE, update_weight.TYPE)
  assert any(t.dtype == np.float32 for _, t in _update_shaped(plain.next))  # Seen if there.
