"""Client learning-rate schedules: values by hand, carried by the tasks, applied per round."""

import collections
import math
import types

import numpy as np
import pytest
import tensorflow_federated as tff

import reference
from tff_experiments import experiment
from tff_experiments.clients import lr_schedules
from tff_experiments.core import config as config_lib
from tff_experiments.runner import round_plan

_ROUNDS = (1, 2, 3, 5)


def _rates(make_config, **flags):
  client = make_config(client_learning_rate=0.2, **flags).client
  return [lr_schedules.learning_rate(client, r) for r in _ROUNDS]


def test_schedule_values_by_hand(make_config):
  assert _rates(make_config) == [0.2] * 4
  assert _rates(make_config, client_lr_schedule='exp_decay', client_lr_decay=0.5) == (
      pytest.approx([0.2, 0.1, 0.05, 0.0125]))
  assert _rates(make_config, client_lr_schedule='inv_sqrt_decay') == pytest.approx(
      [0.2 / math.sqrt(r) for r in _ROUNDS])


def test_decay_is_active_only_for_exp_decay_and_checked(make_config):
  assert 'client_lr_decay' not in config_lib.active_flat(make_config())
  assert config_lib.active_flat(make_config(client_lr_schedule='exp_decay'))[
      'client_lr_decay'] == 0.99
  for bad in ({'client_lr_decay': 0.0}, {'client_lr_decay': 1.5}):
    with pytest.raises(config_lib.ConfigError, match='--client_lr_decay'):
      make_config(client_lr_schedule='exp_decay', **bad)
  with pytest.raises(config_lib.ConfigError, match='--client_lr_schedule'):
    make_config(client_lr_schedule='cosine')


def test_planner_sends_and_records_the_round_rate():
  schedule = lambda round_num: 0.4 / round_num
  planner = round_plan.RoundPlanner([f'c{i}' for i in range(6)], seed=1, clients_per_round=3,
                                    learning_rate=schedule)
  plan = planner.plan(4)
  assert [float(t['learning_rate']) for t in plan.tasks()] == [np.float32(0.1)] * 3
  assert plan.metrics()['plan/client_learning_rate'] == 0.1


# One client of 6 examples in one batch of 6: one full-batch step per round, in any order.
_X, _Y = reference.client_arrays(6, seed=21)


def _trained_rounds(config, *, scheduled=True):
  """Trainable weights after rounds 1 and 2 of the config's process over its planner's tasks
  (not `scheduled`: tasks without a learning rate, so the update's constant applies)."""
  data = types.SimpleNamespace(train=tff.simulation.datasets.TestClientData(
      {'a': collections.OrderedDict(x=_X, y=_Y)}))
  model = reference.linear_model(6)
  rounds = experiment.build_rounds(config, data, model)
  planner = (experiment.build_planner(config, data) if scheduled
             else round_plan.RoundPlanner(['a'], seed=config.run.seed, clients_per_round=1))
  state, weights = rounds.initialize(), []
  for round_num in (1, 2):
    state = rounds.run(state, planner.plan(round_num)).state
    weights.append([np.asarray(t) for t in rounds.get_model_weights(state).trainable])
  return model, weights


@pytest.mark.usefixtures('tff_worker')
def test_round_two_trains_at_the_decayed_rate(make_config):
  config = make_config(client_learning_rate=0.5, client_lr_schedule='exp_decay',
                       client_lr_decay=0.3, client_batch_size=6, clients_per_round=1)
  model, (first, second) = _trained_rounds(config)
  w0, b0 = (np.asarray(v, np.float64) for v in model.initial_weights.trainable)
  w1, b1 = reference.numpy_sgd(w0, b0, _X, _Y, lr=0.5, batch_size=6)
  w2, b2 = reference.numpy_sgd(w1, b1, _X, _Y, lr=0.15, batch_size=6)
  for got, want in zip(first + second, (w1, b1, w2, b2)):
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.usefixtures('tff_worker')
def test_constant_schedule_is_exactly_the_constant_learning_rate(make_config):
  config = make_config(client_learning_rate=0.5, client_batch_size=6, clients_per_round=1)
  _, scheduled = _trained_rounds(config)
  _, constant = _trained_rounds(config, scheduled=False)
  for got, want in zip(scheduled[0] + scheduled[1], constant[0] + constant[1]):
    np.testing.assert_array_equal(got, want)
