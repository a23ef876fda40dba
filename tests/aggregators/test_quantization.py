"""The quantization layer and the bits accounting against closed forms and numpy."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

import reference

from tff_experiments import settings
from tff_experiments.aggregators import quantization
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.algorithms import server_optimizers
from tff_experiments.clients import client_data
from tff_experiments.clients import update_weight
from tff_experiments.models import model as model_lib
from tff_experiments.results import metrics_csv
from tff_experiments.runner import round_plan

pytestmark = pytest.mark.usefixtures('tff_worker')


def _sizes(name):
  model = model_lib.build(name, input_shape=(28, 28, 1), num_classes=10, seed=0)
  return [w.size for w in model.initial_weights.trainable]


@pytest.mark.parametrize('name,params,tensors', [('mnist_2nn', 199_210, 6),
                                                 ('mnist_cnn', 1_663_370, 8)])
@pytest.mark.parametrize('bits', [1, 2, 4, 8, 16, 32])
def test_message_bits_closed_form(name, params, tensors, bits):
  sizes = _sizes(name)
  assert (sum(sizes), len(sizes)) == (params, tensors)
  want = 32 * params if bits == 32 else bits * params + 2 * 32 * tensors  # + min/max floats.
  assert quantization.message_bits(sizes, bits=bits, rotation=False) == want


def test_float32_cnn_uplink_matches_tff_tutorial_anchor():
  # TFF's compression tutorial: 507.62 Mibit per round for the CNN's float32 uplink, 10 clients.
  bits = 10 * quantization.message_bits(_sizes('mnist_cnn'), bits=32, rotation=False)
  assert round(bits / 2**20, 2) == 507.62


def _process(flags, shapes):
  value_type = tff.types.tensorflow_to_type(tuple(tf.TensorSpec(s, tf.float32) for s in shapes))
  return stack.build(settings.from_flat(flags)).create(value_type, update_weight.TYPE)


def _weights(weights, update_seeds=None):
  """The clients' weights, client i's with update seed `update_seeds[i]` (default: i)."""
  update_seeds = range(len(weights)) if update_seeds is None else update_seeds
  return [update_weight.make(np.float32(w), np.int64(s)) for w, s in zip(weights, update_seeds)]


def test_accounting_columns_equal_the_closed_form_per_client_and_round():
  shapes = [(784, 200), (200,), (200, 10), (10,)]
  process = _process({'quantization': 'uniform', 'quantization_bits': 4,
                      'quantization_rotation': 'hadamard'}, shapes)
  values = [tuple(np.full(s, float(i), np.float32) for s in shapes) for i in range(3)]
  state = process.initialize()
  rows = []
  for _ in range(2):
    output = process.next(state, values, _weights([1] * 3))
    state = output.state
    rows.append({metrics_csv.column_name(k): v
                 for k, v in metrics_csv.flatten(output.measurements).items()})
  # Rotation pads to whole blocks: 156,800 -> 159,744; 200 -> 256; 2,000 -> 2,048; 10 -> 16.
  # Side information: min and max per tensor; the rotation seed is the client's update seed,
  # which the server derives from (seed, round, client): no bits.
  per_client = 4 * (159_744 + 256 + 2_048 + 16) + 64 * 4
  assert rows[0]['comm/uplink_bits_per_client'] == per_client
  assert rows[0]['comm/uplink_bits_round'] == 3 * per_client
  assert rows[1]['comm/uplink_bits_cumulative'] == 6 * per_client
  assert rows[0]['comm/downlink_bits_round'] == 3 * 32 * sum(int(np.prod(s)) for s in shapes)
  assert rows[0]['comm/compression_ratio'] == pytest.approx(
      32 * sum(int(np.prod(s)) for s in shapes) / per_client)


def test_deterministic_quantized_mean_and_its_error_match_numpy():
  rng = np.random.default_rng(0)
  shapes = [(5, 3), (3,)]
  clients = [tuple(rng.normal(size=s).astype(np.float32) for s in shapes) for _ in range(3)]
  weights = np.array([1.0, 2.0, 5.0], np.float32)
  process = _process({'quantization': 'uniform', 'quantization_bits': 3,
                      'quantization_rounding': 'deterministic'}, shapes)
  output = process.next(process.initialize(), clients, _weights(weights))

  def decode(x):
    step = (x.max() - x.min()) / 7
    return x.min() + np.round((x - x.min()) / step) * step

  weighted = lambda arrays: sum(w * a for w, a in zip(weights, arrays)) / weights.sum()
  want = [weighted([decode(c[t]) for c in clients]) for t in range(2)]
  exact = [weighted([c[t] for c in clients]) for t in range(2)]
  for got, w in zip(output.result, want):
    np.testing.assert_allclose(got, w, atol=1e-5)
  flat = {metrics_csv.column_name(k): v for k, v in metrics_csv.flatten(output.measurements).items()}
  mse = sum(np.sum((w - e)**2) for w, e in zip(want, exact)) / 18
  np.testing.assert_allclose(flat['comm/quantization_mse'], mse, rtol=1e-4)
  assert 0 < flat['comm/uplink_bits_entropy_per_client'] <= 3 * 18 + 64 * 2


def test_stochastic_quantization_is_seeded_by_the_clients_update_seeds_not_by_time():
  shapes = [(50,)]
  clients = [(np.linspace(0, 1, 50, dtype=np.float32) * (i + 1),) for i in range(2)]
  flags = {'quantization': 'uniform', 'quantization_bits': 2,
           'quantization_rotation': 'hadamard'}
  run = lambda update_seeds: _process(flags, shapes).next(
      _process(flags, shapes).initialize(), clients, _weights([1, 1], update_seeds)).result[0]
  first = run([11, 12])
  np.testing.assert_array_equal(first, run([11, 12]))  # Same seeds: same draws.
  assert not np.array_equal(first, run([11, 13]))  # Another seed of one client: other draws.


# k clients sending the same update round it independently: with 1 bit, levels {0, 1}, a
# coordinate at 0.25 decodes to 1 with probability 1/4 (error variance 3/16), so the mean of k
# has per-coordinate error variance 3/16 / k; the two end points decode exactly. Over 40,000
# coordinates the measured MSE's relative standard error is below 1.5%, so 8% is > 5 of them;
# rounding seeded by the update would give k copies one draw (3/16 for every k).
@pytest.mark.parametrize('k', [1, 4])
def test_identical_updates_round_independently(k):
  n = 40_000
  update = np.full(n, 0.25, np.float32)
  update[:2] = 0.0, 1.0
  process = _process({'quantization': 'uniform', 'quantization_bits': 1}, [(n,)])
  update_seeds = round_plan.update_seeds(0, 1, [f'c{i}' for i in range(k)]).values()
  output = process.next(process.initialize(), [(update,)] * k,
                        _weights([1] * k, list(update_seeds)))
  flat = {metrics_csv.column_name(k): v for k, v in metrics_csv.flatten(output.measurements).items()}
  assert flat['comm/quantization_mse'] == pytest.approx(3 / 16 / k * (n - 2) / n, rel=0.08)


@pytest.mark.parametrize('algorithm', algorithms.ALGORITHMS.names())
@pytest.mark.parametrize('optimizer', server_optimizers.SERVER_OPTIMIZERS.names())
def test_quantization_composes_with_every_algorithm_and_server_optimizer(make_config, algorithm,
                                                                         optimizer):
  config = make_config(algorithm=algorithm, server_optimizer=optimizer, quantization='uniform',
                       quantization_bits=4, quantization_rotation='hadamard')
  model = reference.linear_model(0)
  process = algorithms.build(config, model=model, aggregator=stack.build(config))
  inputs = [client_data.client_input(reference.dataset(*reference.client_arrays(n, n), 4),
                                     update_seed=n) for n in (6, 9)]
  output = process.next(process.initialize(), inputs)
  flat = {metrics_csv.column_name(k): v for k, v in metrics_csv.flatten(output.metrics).items()}
  assert flat['comm/uplink_bits_round'] == 2 * quantization.message_bits(
      [w.size for w in model.initial_weights.trainable], bits=4, rotation=True)
  new = process.get_model_weights(output.state).trainable
  assert all(np.all(np.isfinite(w)) for w in new)
  assert not np.allclose(new[0], model.initial_weights.trainable[0])
