"""`local_sgd`'s options against numpy references: proximal term, momentum, weightings,
normalization, the learning rate carried by the client input; a client building its input from
its task trains as one handed that input."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

import reference
from tff_experiments.clients import client_data
from tff_experiments.clients import client_work
from tff_experiments.clients import local_update

pytestmark = pytest.mark.usefixtures('tff_worker')
_MODEL = reference.linear_model(seed=4)
_CLIENT = reference.client_arrays(10, seed=11)  # 10 examples: batches of 3 -> 4 steps.


def _run(update_fn, client_inputs):
  """One ClientWorkProcess round from the model's initial weights; (results, train metrics)."""
  work = client_work.build_client_work(_MODEL, update_fn=update_fn)
  weights = tff.learning.models.ModelWeights(*_MODEL.initial_weights)
  output = work.next(work.initialize(), [weights] * len(client_inputs), client_inputs)
  return output.result, output.measurements['train']


def _input(batch_size=3, take=None, dataset_size=None):
  batches = reference.dataset(*_CLIENT, batch_size)
  if take is not None:
    batches = batches.take(take)
  return client_data.client_input(batches, update_seed=0, dataset_size=dataset_size)


def _initial():
  return [np.asarray(v, np.float64) for v in _MODEL.initial_weights.trainable]


@pytest.mark.parametrize('mu', [0.0, 0.5, 3.0])
def test_proximal_term_matches_numpy_fedprox(mu):
  update = local_update.local_sgd(_MODEL, learning_rate=0.4,
                                  regularizer=local_update.proximal_term(mu))
  (result,), _ = _run(update, [_input()])
  w0, b0 = _initial()
  w, b = reference.numpy_sgd(w0, b0, *_CLIENT, lr=0.4, batch_size=3, mu=mu)
  np.testing.assert_allclose(result.update[0], w0 - w, atol=1e-5)
  np.testing.assert_allclose(result.update[1], b0 - b, atol=1e-5)


def test_proximal_term_zero_is_plain_sgd_and_larger_mu_stays_closer():
  plain, = _run(local_update.local_sgd(_MODEL, learning_rate=0.4), [_input()])[0]
  distances = []
  for mu in (0.0, 0.3, 1.0, 3.0):
    (result,), _ = _run(local_update.local_sgd(
        _MODEL, learning_rate=0.4, regularizer=local_update.proximal_term(mu)), [_input()])
    if mu == 0.0:
      for got, want in zip(result.update, plain.update):
        np.testing.assert_array_equal(got, want)
    distances.append(np.sqrt(sum(np.sum(np.square(u)) for u in result.update)))
  assert all(a > b for a, b in zip(distances, distances[1:])), distances


def test_weightings_examples_processed_dataset_size_and_uniform():
  capped = lambda: _input(take=2, dataset_size=10)  # 2 steps of 3: 6 of the 10 examples.
  weights = {}
  for name in local_update.WEIGHTINGS.names():
    (result,), train = _run(local_update.local_sgd(_MODEL, learning_rate=0.1, weighting=name),
                            [capped()])
    weights[name] = float(result.update_weight['weight'])
  assert weights == {'num_examples': 6.0, 'dataset_size': 10.0, 'uniform': 1.0}
  assert train['num_steps'] == 2 and train['num_examples'] == 6


def test_normalized_update_is_the_delta_over_the_steps():
  (plain,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=0.3), [_input()])
  (normalized,), train = _run(local_update.local_sgd(_MODEL, learning_rate=0.3,
                                                     normalize_by_steps=True), [_input()])
  assert train['num_steps'] == 4
  for got, want in zip(normalized.update, plain.update):
    np.testing.assert_allclose(got, want / 4.0, rtol=1e-6)


def test_a_non_finite_client_gets_weight_zero_and_is_counted():
  results, train = _run(local_update.local_sgd(_MODEL, learning_rate=np.inf),
                        [_input(), _input(batch_size=10)])
  assert [float(r.update_weight['weight']) for r in results] == [0.0, 0.0]
  assert all(np.all(u == 0) for r in results for u in r.update)
  assert train['num_clients'] == 2 and train['nonfinite_clients'] == 2


@pytest.mark.parametrize('momentum', [0.5, 0.9])
def test_momentum_matches_numpy_heavy_ball_sgd(momentum):
  update = local_update.local_sgd(_MODEL, learning_rate=0.2, momentum=momentum)
  (result,), train = _run(update, [_input()])
  w0, b0 = _initial()
  w, b = reference.numpy_sgd(w0, b0, *_CLIENT, lr=0.2, batch_size=3, momentum=momentum)
  assert train['num_steps'] == 4
  np.testing.assert_allclose(result.update[0], w0 - w, atol=1e-5)
  np.testing.assert_allclose(result.update[1], b0 - b, atol=1e-5)
  plain_w, _ = reference.numpy_sgd(w0, b0, *_CLIENT, lr=0.2, batch_size=3)
  assert not np.allclose(w, plain_w, atol=1e-3)  # Momentum made a difference.


def test_momentum_zero_and_a_carried_learning_rate_are_exactly_the_constant_path():
  (plain,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=0.4), [_input()])
  (zero,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=0.4, momentum=0.0), [_input()])
  carried = client_data.client_input(reference.dataset(*_CLIENT, 3), update_seed=0,
                                     learning_rate=0.4)
  (given,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=99.0), [carried])
  for got in (zero, given):
    for a, b in zip(got.update, plain.update):
      np.testing.assert_array_equal(a, b)


def test_effective_steps_sum_the_weights_momentum_gives_each_gradient():
  for rho in (0.0, 0.3, 0.9):
    for tau in (0, 1, 4, 7):
      # Gradient j (of tau) is applied at steps j..tau-1 with weights rho^0, rho^1, ...
      want = sum(rho ** i for j in range(tau) for i in range(tau - j))
      got = float(local_update.effective_steps(tf.constant(float(tau)), rho))
      assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_normalized_momentum_update_is_the_delta_over_the_effective_steps():
  (plain,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=0.3, momentum=0.6),
                     [_input()])
  (normalized,), _ = _run(local_update.local_sgd(_MODEL, learning_rate=0.3, momentum=0.6,
                                                 normalize_by_steps=True), [_input()])
  effective = float(local_update.effective_steps(tf.constant(4.0), 0.6))
  assert 1.0 < effective < 4.0 / 0.4
  for got, want in zip(normalized.update, plain.update):
    np.testing.assert_allclose(got, want / effective, rtol=1e-5)


def test_a_client_building_its_input_from_its_task_trains_as_one_handed_that_input():
  x, y = _CLIENT
  data = tff.simulation.datasets.TestClientData({'c': collections.OrderedDict(x=x, y=y)})
  update_fn = local_update.local_sgd(_MODEL, learning_rate=99.0)
  own_work = client_work.build_client_work(
      _MODEL, update_fn=update_fn, inputs=client_data.task_inputs(data, epochs=2, batch_size=3))
  task = client_data.task('c', shuffle_seed=5, update_seed=77, max_steps=3, learning_rate=0.3)
  weights = tff.learning.models.ModelWeights(*_MODEL.initial_weights)
  own = own_work.next(own_work.initialize(), [weights], [[task]])
  handed = client_data.client_input(
      client_data.preprocess(data.create_tf_dataset_for_client('c'),
                             shuffle_seed=tf.constant(5, tf.int64), epochs=2, batch_size=3,
                             max_steps=3), update_seed=77, learning_rate=0.3)
  (want,), want_train = _run(update_fn, [handed])
  (got,) = own.result
  for a, b in zip(got.update, want.update):
    np.testing.assert_array_equal(a, b)
  # 3 capped steps of 3 (of 20 examples); the client's update seed goes out with its weight.
  assert got.update_weight == want.update_weight == {'weight': 9, 'seed': 77}
  assert own.measurements['train']['num_steps'] == want_train['num_steps'] == 3
  assert own.measurements['train']['loss'] == want_train['loss']
