"""FedAvg built from our client update: against a numpy hand computation and TFF's own FedAvg."""

import numpy as np
import pytest
import tensorflow_federated as tff

import reference
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import fedavg
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.clients import client_data
from tff_experiments.clients import local_update
from tff_experiments.models import model as models



def _inputs(datasets):
  """Our processes take ClientInputs (batches, each client's update seed, ...); TFF's take
  the batches."""
  return [client_data.client_input(d, update_seed=i) for i, d in enumerate(datasets)]


@pytest.mark.usefixtures('tff_worker')
def test_one_round_equals_hand_computed_weighted_average(make_config):
  lr, batch = 0.5, 4
  model = reference.linear_model(seed=1)
  config = make_config(client_learning_rate=lr)
  process = algorithms.build(config, model=model, aggregator=stack.build(config))
  clients = [reference.client_arrays(n, seed) for n, seed in ((5, 1), (12, 2), (7, 3))]

  state = process.initialize()
  state = process.next(state, _inputs([reference.dataset(x, y, batch) for x, y in clients])).state
  got_w, got_b = process.get_model_weights(state).trainable

  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  trained = [reference.numpy_sgd(w0, b0, x, y, lr=lr, batch_size=batch) for x, y in clients]
  sizes = np.array([len(y) for _, y in clients], np.float64)
  want_w = sum(n * w for n, (w, _) in zip(sizes, trained)) / sizes.sum()
  want_b = sum(n * b for n, (_, b) in zip(sizes, trained)) / sizes.sum()
  np.testing.assert_allclose(got_w, want_w, atol=1e-5)
  np.testing.assert_allclose(got_b, want_b, atol=1e-5)
  assert not np.allclose(want_w, w0, atol=1e-3)  # The round really moved the model.


@pytest.mark.usefixtures('tff_worker')
@pytest.mark.parametrize('server_optimizer', ['sgd', 'adam'])
def test_two_rounds_match_tff_build_weighted_fed_avg(make_config, server_optimizer):
  lr, server_lr, batch = 0.2, 0.5, 3
  model = reference.linear_model(seed=2)
  config = make_config(client_learning_rate=lr, server_optimizer=server_optimizer,
                       server_learning_rate=server_lr)
  ours = algorithms.build(config, model=model, aggregator=stack.build(config))
  build_server = {'sgd': tff.learning.optimizers.build_sgdm,
                  'adam': lambda learning_rate: tff.learning.optimizers.build_adam(
                      learning_rate, beta_1=0.9, beta_2=0.99, epsilon=1e-3)}[server_optimizer]
  tff_fedavg = tff.learning.algorithms.build_weighted_fed_avg(
      models.functional(model),
      client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=lr),
      server_optimizer_fn=build_server(learning_rate=server_lr))

  rounds = [[reference.dataset(*reference.client_arrays(n, 10 * r + n), batch)
             for n in (4, 9, 6)] for r in range(2)]
  weights = []
  for process in (ours, tff_fedavg):
    state = process.initialize()
    for data in rounds:
      state = process.next(state, _inputs(data) if process is ours else data).state
    weights.append(process.get_model_weights(state).trainable)
  for got, want in zip(*weights):
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.usefixtures('tff_worker')
def test_round_metrics_count_examples_steps_and_accuracy(make_config):
  model = reference.linear_model(seed=3)
  config = make_config()
  frozen = local_update.local_sgd(model, learning_rate=0.0)  # Frozen model: metrics are exact.
  process = fedavg.compose(model, update_fn=frozen, config=config,
                           aggregator=stack.build(config))
  clients = [reference.client_arrays(n, seed) for n, seed in ((5, 4), (8, 5))]
  output = process.next(process.initialize(), _inputs([reference.dataset(x, y, 3) for x, y in clients]))
  train = output.metrics['client_work']['train']

  w, b = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  x = np.concatenate([c[0] for c in clients]).reshape(13, -1)
  y = np.concatenate([c[1] for c in clients])
  logits = x @ w + b
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  assert train['num_examples'] == 13
  assert train['num_steps'] == 2 + 3  # ceil(5/3) + ceil(8/3) batches.
  np.testing.assert_allclose(train['accuracy'], np.mean(logits.argmax(axis=1) == y), atol=1e-6)
  np.testing.assert_allclose(train['loss'], -log_p[np.arange(13), y].mean(), rtol=1e-5)


def test_unknown_algorithm_names_the_flag(make_config):
  with pytest.raises(ValueError, match='--algorithm'):
    algorithms.build(make_config(algorithm='nope'), model=reference.linear_model(0),
                     aggregator=stack.build(make_config()))
