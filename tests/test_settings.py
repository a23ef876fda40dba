"""The experiment's settings: hparams.json holds active settings, stable readable run names."""

import re

import pytest

from tff_experiments import settings
from tff_experiments.core import config


def _active(**values):
  return config.active_flat(settings.from_flat(values))


def test_hparams_hold_only_the_active_settings():
  assert 'dirichlet_alpha' not in _active(partition='iid')
  assert _active(partition='dirichlet', dirichlet_alpha=0.1)['dirichlet_alpha'] == 0.1
  assert 'server_momentum' not in _active(server_optimizer='sgd')
  assert _active(server_optimizer='sgdm')['server_momentum'] == 0.9
  natural = _active(dataset='femnist_leaf')
  assert 'num_clients' not in natural and 'split_seed' not in natural
  assert 'mlp_hidden_units' not in _active(model='mnist_cnn')


def test_defaults_resolve_from_the_dataset_and_model():
  experiment = settings.from_flat({'dataset': 'mnist'})
  assert (experiment.data.partition, experiment.model.model) == ('iid', 'mnist_2nn')
  assert experiment.model.mlp_hidden_units == (200, 200)
  assert settings.from_flat({}).model.mlp_hidden_units == (32,)


def test_default_run_name_is_readable_stable_and_tied_to_the_settings():
  name = lambda **v: settings.from_flat(v).run.experiment_name
  assert name(seed=2) == name(seed=2)
  assert name(seed=2) != name(seed=3)
  assert re.fullmatch(r'digits-fedavg-digits_mlp-iid-seed=2-clients_per_round=4-[0-9a-f]{8}',
                      name(seed=2, clients_per_round=4))
  # Where a run lives is not part of what it computes: same name.
  assert name(cache_dir='/a') == name(cache_dir='/b')
  # Explicit defaults are not "non-default", and resolved defaults count as default.
  assert name(client_learning_rate=0.1, mlp_hidden_units=(32,)) == name()
  assert 'mlp_hidden_units=64' in name(mlp_hidden_units=(64,))
  assert len(name(**{'mlp_hidden_units': tuple(range(1, 200))})) <= 180


@pytest.mark.parametrize('values,flag', [
    ({'client_learning_rate': float('inf')}, 'client_learning_rate'),
    ({'server_learning_rate': float('inf')}, 'server_learning_rate'),
    ({'seed': 2**31}, 'seed'),
    ({'split_seed': -1}, 'split_seed'),
    ({'mlp_hidden_units': (0,)}, 'mlp_hidden_units'),
    ({'partition': 'natural'}, 'partition'),
    ({'experiment_name': '..'}, 'experiment_name'),
    ({'model': 'lenet'}, 'model'),  # 8x8 digits are too small for its valid convolutions.
])
def test_bad_settings_name_the_flag(values, flag):
  with pytest.raises(config.ConfigError, match=f'--{flag}'):
    settings.from_flat(values)
