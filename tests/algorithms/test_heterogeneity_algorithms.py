"""FedProx, FedSGD, FedNova and client momentum against FedAvg and numpy hand computations."""

import math

import numpy as np
import pytest

import reference
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.clients import client_data
from tff_experiments.core import config as config_lib

pytestmark = pytest.mark.usefixtures('tff_worker')


def _trained(config, model, rounds_of_clients, batch):
  process = algorithms.build(config, model=model, aggregator=stack.build(config))
  state = process.initialize()
  for clients in rounds_of_clients:
    inputs = [client_data.client_input(reference.dataset(x, y, batch), update_seed=i)
              for i, (x, y) in enumerate(clients)]
    state = process.next(state, inputs).state
  return process.get_model_weights(state).trainable


def _clients(sizes, seed=0):
  return [reference.client_arrays(n, seed + n) for n in sizes]


def test_fedprox_with_mu_zero_is_exactly_fedavg(make_config):
  model, data = reference.linear_model(1), [_clients((5, 9)), _clients((7, 4), seed=9)]
  fedavg = _trained(make_config(client_learning_rate=0.3), model, data, 3)
  fedprox = _trained(make_config(client_learning_rate=0.3, algorithm='fedprox', proximal_mu=0.0),
                     model, data, 3)
  for a, b in zip(fedavg, fedprox):
    np.testing.assert_array_equal(a, b)


def test_fedprox_round_equals_the_numpy_weighted_average_of_proximal_sgd(make_config):
  lr, mu, batch = 0.4, 2.0, 3
  model, clients = reference.linear_model(2), _clients((5, 11, 8))
  got = _trained(make_config(client_learning_rate=lr, algorithm='fedprox', proximal_mu=mu),
                 model, [clients], batch)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  trained = [reference.numpy_sgd(w0, b0, x, y, lr=lr, batch_size=batch, mu=mu)
             for x, y in clients]
  sizes = np.array([len(y) for _, y in clients], np.float64)
  for index, got_tensor in enumerate(got):
    want = sum(n * t[index] for n, t in zip(sizes, trained)) / sizes.sum()
    np.testing.assert_allclose(got_tensor, want, atol=1e-5)


@pytest.mark.parametrize('batch', [10, 3])
def test_fedsgd_with_one_client_is_one_full_batch_sgd_step(make_config, batch):
  lr, model, clients = 0.5, reference.linear_model(3), _clients((10,))
  got = _trained(make_config(client_learning_rate=lr, algorithm='fedsgd'), model, [clients],
                 batch)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  want = reference.numpy_sgd(w0, b0, *clients[0], lr=lr, batch_size=10)  # One step, all 10.
  for got_tensor, want_tensor in zip(got, want):
    np.testing.assert_allclose(got_tensor, want_tensor, atol=1e-5)


def test_fednova_with_equal_steps_equals_fedavg(make_config):
  model, data = reference.linear_model(4), [_clients((6, 6, 6)), _clients((6, 6, 6), seed=3)]
  fedavg = _trained(make_config(client_learning_rate=0.3), model, data, 2)
  fednova = _trained(make_config(client_learning_rate=0.3, algorithm='fednova'), model, data, 2)
  for a, b in zip(fedavg, fednova):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_fednova_with_unequal_steps_matches_the_hand_computed_formula(make_config):
  lr, batch = 0.3, 2
  model, clients = reference.linear_model(5), _clients((3, 8, 13))
  got = _trained(make_config(client_learning_rate=lr, algorithm='fednova'), model, [clients],
                 batch)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  sizes = np.array([len(y) for _, y in clients], np.float64)
  p = sizes / sizes.sum()
  steps = np.array([math.ceil(n / batch) for n in sizes])  # 2, 4, 7: unequal.
  deltas = [[v0 - v for v0, v in zip((w0, b0), reference.numpy_sgd(w0, b0, x, y, lr=lr,
                                                                      batch_size=batch))]
            for x, y in clients]
  tau_eff = float(np.sum(p * steps))
  for index, got_tensor in enumerate(got):
    update = tau_eff * sum(pi * d[index] / t for pi, d, t in zip(p, deltas, steps))
    np.testing.assert_allclose(got_tensor, (w0, b0)[index] - update, atol=1e-5)
  # And it differs from FedAvg, which weights the long-running client's larger delta more.
  fedavg = _trained(make_config(client_learning_rate=lr), model, [clients], batch)
  assert not np.allclose(fedavg[0], got[0], atol=1e-4)


def _partial_work_round(config, model, clients, steps, batch):
  """One round where client i runs only `steps[i]` of its batches, its size still its data's."""
  process = algorithms.build(config, model=model, aggregator=stack.build(config))
  inputs = [client_data.client_input(reference.dataset(x, y, batch).take(tau),
                                     dataset_size=len(y), update_seed=i)
            for i, ((x, y), tau) in enumerate(zip(clients, steps))]
  state = process.next(process.initialize(), inputs).state
  return process.get_model_weights(state).trainable


def test_fednova_under_partial_work_weights_clients_by_their_data_share(make_config):
  # Wang et al. 2020: p_i = n_i / n, tau_eff = sum p_i tau_i, update = tau_eff sum p_i Delta_i /
  # tau_i. Equal data, tau = 2, 5, 9: the update is 0.89 Delta_1 + 0.36 Delta_2 + 0.20 Delta_3,
  # where examples-processed weights would give 110/256 = 0.43 Delta_i to every client.
  lr, batch, steps = 0.3, 2, np.array([2, 5, 9])
  model, clients = reference.linear_model(8), _clients((18, 18, 18), seed=20)
  config = make_config(client_learning_rate=lr, algorithm='fednova')
  assert config_lib.active_flat(config)['client_weighting'] == 'dataset_size'
  got = _partial_work_round(config, model, clients, steps, batch)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  deltas = [[v0 - v for v0, v in zip((w0, b0), reference.numpy_sgd(
      w0, b0, x, y, lr=lr, batch_size=batch, max_steps=tau))]
            for (x, y), tau in zip(clients, steps)]
  p = np.full(3, 1 / 3)
  tau_eff = float(np.sum(p * steps))
  for index, got_tensor in enumerate(got):
    update = tau_eff * sum(pi * d[index] / t for pi, d, t in zip(p, deltas, steps))
    np.testing.assert_allclose(got_tensor, (w0, b0)[index] - update, atol=1e-5)
  # A given --client_weighting still applies: examples processed give every client 110/256.
  by_work = _partial_work_round(make_config(client_learning_rate=lr, algorithm='fednova',
                                            client_weighting='num_examples'),
                                model, clients, steps, batch)
  for index, got_tensor in enumerate(by_work):
    update = np.sum(steps ** 2) / np.sum(steps) ** 2 * sum(d[index] for d in deltas)
    np.testing.assert_allclose(got_tensor, (w0, b0)[index] - update, atol=1e-5)


def test_client_weighting_defaults_to_each_algorithms_paper(make_config):
  weightings = {name: config_lib.active_flat(make_config(algorithm=name))['client_weighting']
                for name in ('fedavg', 'fedprox', 'fedsgd', 'fednova')}
  assert weightings == {'fedavg': 'num_examples', 'fedprox': 'num_examples',
                        'fedsgd': 'num_examples', 'fednova': 'dataset_size'}
  # The resolved default is no difference in the run name; a given other value is.
  named = lambda **flags: make_config(experiment_name=None, **flags).run.experiment_name
  assert named(algorithm='fednova').startswith('digits-fednova-digits_mlp-iid-')
  assert 'client_weighting' not in named(algorithm='fednova')
  assert 'client_weighting=num_examples' in named(algorithm='fednova',
                                                  client_weighting='num_examples')


@pytest.mark.parametrize('algorithm,mu', [('fedavg', 0.0), ('fedprox', 1.0)])
def test_client_momentum_round_equals_numpy_heavy_ball(make_config, algorithm, mu):
  lr, momentum, batch = 0.3, 0.8, 2
  model, clients = reference.linear_model(6), _clients((7, 4))
  proximal = {'proximal_mu': mu} if algorithm == 'fedprox' else {}  # FedAvg has none to give.
  got = _trained(make_config(client_learning_rate=lr, client_momentum=momentum,
                             algorithm=algorithm, **proximal), model, [clients], batch)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  trained = [reference.numpy_sgd(w0, b0, x, y, lr=lr, batch_size=batch, mu=mu,
                                 momentum=momentum) for x, y in clients]
  sizes = np.array([len(y) for _, y in clients], np.float64)
  for index, got_tensor in enumerate(got):
    want = sum(n * t[index] for n, t in zip(sizes, trained)) / sizes.sum()
    np.testing.assert_allclose(got_tensor, want, atol=1e-5)


def test_fednova_with_momentum_and_equal_steps_equals_fedavg_with_momentum(make_config):
  model, data = reference.linear_model(7), [_clients((6, 6)), _clients((6, 6), seed=5)]
  flags = dict(client_learning_rate=0.2, client_momentum=0.7)
  fedavg = _trained(make_config(**flags), model, data, 2)
  fednova = _trained(make_config(algorithm='fednova', **flags), model, data, 2)
  for a, b in zip(fedavg, fednova):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_client_momentum_is_checked_and_inactive_for_fedsgd(make_config):
  with pytest.raises(config_lib.ConfigError, match='--client_momentum'):
    make_config(client_momentum=1.0)
  assert 'client_momentum' not in config_lib.active_flat(make_config(algorithm='fedsgd'))
  assert config_lib.active_flat(make_config(client_momentum=0.9))['client_momentum'] == 0.9
