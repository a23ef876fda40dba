"""Assembling an experiment: the split follows --split_seed only, the model --seed only; the
hooks the settings enable, in order; the config completed once; rounds in MapReduce form
unless secure aggregation wraps them."""

import os
import random

import dp_accounting
from dp_accounting import rdp
import numpy as np
import pytest

import federated_types
from tff_experiments import experiment
from tff_experiments.privacy import ledger
from tff_experiments.results import run_dir
from tff_experiments.runner import hooks
from tff_experiments.runner import round_runner
from tff_experiments.runner import tensorboard
from tff_experiments.secagg import rounds as secure_rounds


def _split(config):
  data = experiment.load_data(config)
  return {cid: sorted(np.asarray([e['y'] for e in data.train.create_tf_dataset_for_client(cid)]))
          for cid in data.train.client_ids}


def test_changing_seed_keeps_the_split_and_split_seed_changes_it(make_config, tmp_path):
  cache = str(tmp_path / 'cache')
  base = _split(make_config(seed=0, cache_dir=cache))
  assert _split(make_config(seed=5, cache_dir=cache)) == base
  assert _split(make_config(seed=0, split_seed=1, cache_dir=cache)) != base


def test_seed_changes_the_initial_model_without_touching_global_random_state(make_config):
  data = experiment.load_data(make_config())
  state = random.getstate(), np.random.get_state()[1].copy()
  a = experiment.build_model(make_config(seed=0), data).initial_weights.trainable
  b = experiment.build_model(make_config(seed=0), data).initial_weights.trainable
  c = experiment.build_model(make_config(seed=1), data).initial_weights.trainable
  assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not np.allclose(a[0], c[0])


def _hook_types(config, tmp_path, population=10):
  return [type(h) for h in experiment.build_hooks(config, run_dir.RunPaths(str(tmp_path)),
                                                  population=population)]


def test_the_hook_is_built_only_with_stop_at_target(make_config, tmp_path):
  built = lambda **kw: _hook_types(make_config(**kw), tmp_path)
  assert hooks.StopAtTarget in built(target_accuracy=0.5, stop_at_target=True)
  assert hooks.StopAtTarget not in built(target_accuracy=0.5)
  assert hooks.StopAtTarget not in built()


def test_tensorboard_hook_follows_the_flag(make_config, tmp_path):
  assert tensorboard.TensorBoardHook in _hook_types(make_config(), tmp_path)
  assert tensorboard.TensorBoardHook not in _hook_types(make_config(tensorboard=False), tmp_path)


def test_hooks_come_in_order_every_runs_first_tensorboard_last(make_config, tmp_path):
  config = make_config(dp_mechanism='gaussian', dp_noise_multiplier=1.0, target_accuracy=0.5,
                       stop_at_target=True)
  assert _hook_types(config, tmp_path) == [
      hooks.PlanColumns, hooks.Divergence, ledger.PrivacyLedger, hooks.StopAtTarget,
      tensorboard.TensorBoardHook]


def test_the_ledger_accounts_the_training_clients_it_is_given(make_config, tmp_path):
  config = make_config(dp_mechanism='gaussian', dp_noise_multiplier=1.0, dp_delta=1e-3,
                       client_sampling='poisson', clients_per_round=3)
  ledger_of = lambda population: next(
      h for h in experiment.build_hooks(config, run_dir.RunPaths(str(tmp_path)), population)
      if isinstance(h, ledger.PrivacyLedger))
  # One Poisson-sampled Gaussian round at q = 3 / population, by dp_accounting directly.
  for population in (10, 30):
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(
        3 / population, dp_accounting.GaussianDpEvent(1.0)))
    assert ledger_of(population).epsilon(1) == pytest.approx(accountant.get_epsilon(1e-3))
  assert ledger_of(10).summary()['dp_delta'] == 1e-3


def test_complete_fills_in_the_noise_once_and_run_refuses_a_config_without_it(make_config,
                                                                              tmp_path):
  config = make_config(dp_mechanism='gaussian', dp_target_epsilon=5.0, dp_delta=1e-3,
                       root_output_dir=str(tmp_path))
  data = experiment.load_data(config)
  assert config.privacy.noise_multiplier is None
  completed = experiment.complete(config, data)
  assert completed.privacy.noise_multiplier > 0
  assert experiment.complete(completed, data) == completed  # Nothing left to fill in.
  assert experiment.complete(make_config(), data) == make_config()  # Without DP: as it was.
  with pytest.raises(ValueError, match='completed config.*--dp_noise_multiplier'):
    experiment.run(config, data, run_dir.paths_of(config))
  assert not os.path.exists(run_dir.paths_of(config).run_dir)


@pytest.mark.usefixtures('tff_worker')
@pytest.mark.parametrize('flags, secure', [
    ({}, False), (dict(dp_mechanism='gaussian', dp_noise_multiplier=1.0), False),
    (dict(secure_aggregation='masking'), True)])
def test_rounds_are_one_map_reduce_aggregate_unless_secure_aggregation_wraps_them(
    make_config, flags, secure):
  config = make_config(**flags)
  data = experiment.load_data(config)
  rounds = experiment.build_rounds(config, data, experiment.build_model(config, data))
  assert isinstance(rounds, secure_rounds.SecureRounds if secure
                    else round_runner.PlainRounds)
  if not secure:  # MapReduce form: everything clients send goes through one aggregate.
    crossing = federated_types.client_to_server(rounds.process.next)
    assert [uri for uri, _ in crossing] == ['federated_aggregate']
