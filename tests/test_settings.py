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


def test_from_flat_refuses_what_its_caller_passed_that_does_not_apply():
  with pytest.raises(config.ConfigError) as refused:
    settings.from_flat({'proximal_mu': 0.1})
  assert str(refused.value) == ('--proximal_mu applies to --algorithm=fedprox; '
                                'this run is --algorithm=fedavg')
  assert settings.from_flat({'proximal_mu': 0.1}, given=()).algorithm.algorithm == 'fedavg'
  assert settings.from_flat({'proximal_mu': 0.1, 'seed': 1}, given={'seed'}).run.seed == 1


@pytest.mark.parametrize('values,message', [
    ({'dp_noise_multiplier': 1.0},
     '--dp_noise_multiplier applies to --dp_mechanism=gaussian|laplace; '
     'this run is --dp_mechanism=none'),
    ({'dirichlet_alpha': 0.1},  # partition resolves to iid for digits.
     '--dirichlet_alpha applies to --partition=dirichlet; this run is --partition=iid'),
    ({'dataset': 'femnist_leaf', 'dirichlet_alpha': 0.1},
     '--dirichlet_alpha applies to --partition=dirichlet; this run is --partition=natural'),
    ({'dp_target_unclipped_quantile': 0.3},
     '--dp_target_unclipped_quantile applies to --dp_mechanism=gaussian|laplace with '
     '--dp_adaptive_clip=true; this run is --dp_mechanism=none, --dp_adaptive_clip=false'),
    ({'straggler_policy': 'drop'},
     '--straggler_policy applies when --straggler_fraction > 0; '
     'this run is --straggler_fraction=0.0'),
    ({'worker_connect_timeout_s': 5.0},
     '--worker_connect_timeout_s applies with --workers; this run is without --workers'),
    ({'proximal_mu': 0.1, 'dp_clip_norm': 2.0, 'dp_noise_multiplier': 1.0},
     '--proximal_mu applies to --algorithm=fedprox; this run is --algorithm=fedavg. '
     '--dp_clip_norm, --dp_noise_multiplier apply to --dp_mechanism=gaussian|laplace; '
     'this run is --dp_mechanism=none'),
])
def test_the_refusal_says_what_would_make_the_flag_apply(values, message):
  with pytest.raises(config.ConfigError) as refused:
    settings.from_flat(values)
  assert str(refused.value) == message


# The finite settings (choices, bools): the walk below changes one of them at a time.
_FINITE = [f for f in settings.fields()
           if (f.setting.choices is not None and not f.is_tuple) or f.base_type is bool]
# Values set beside each change (they apply or not; nothing checks them unless given), so that
# switches with a numeric condition are on: a DP mechanism needs its noise, etc.
_BESIDE = {'dp_noise_multiplier': 1.0, 'dp_adaptive_clip': True, 'dp_target_epsilon': 1.0,
           'straggler_fraction': 0.5, 'target_accuracy': 0.5, 'personalization_epochs': 1,
           'workers': ('localhost:8000',)}
# A value to give for each setting whose default is None (unset is no request).
_GIVEN = {'mlp_hidden_units': (8,), 'personalization_batch_size': 5,
          'personalization_learning_rate': 0.05, 'dp_noise_multiplier': 0.5,
          'dp_target_epsilon': 2.0, 'dp_delta': 1e-4, 'dp_clipped_count_stddev': 1.0,
          'secagg_clip_norm': 10.0, 'secagg_neighbors': 2, 'secagg_threshold': 2,
          'workers': ('localhost:8001',), 'client_weighting': 'num_examples'}
# A setting whose own value is its rule: given (not None) it applies.
_ACTIVE_WHENEVER_GIVEN = {'workers'}


def _walk_candidates():
  """Valid runs (values, resolved flat): the defaults and each single change of a finite
  setting, alone and beside _BESIDE."""
  candidates = []
  for beside in ({}, _BESIDE):
    changes = [{}] + [{f.flag: v} for f in _FINITE
                      for v in (f.setting.choices() if f.setting.choices else (False, True))]
    for change in changes:
      values = {**beside, **change}
      try:
        candidates.append((values, config.flat(settings.from_flat(values, given=()))))
      except config.ConfigError:
        continue
  return candidates


def test_every_setting_with_a_rule_is_refused_where_it_does_not_apply():
  candidates = _walk_candidates()
  ruled = [f for f in settings.fields() if f.setting.active is not None]
  assert {f.flag for f in ruled if f.default is None} <= set(_GIVEN)
  refused = set()
  for field in ruled:
    value = _GIVEN.get(field.flag, field.default)
    inactive = active = None
    for values, flat in candidates:
      run = {**values, field.flag: value}
      holds = bool(field.setting.active({**flat, field.flag: value}))
      if (active if holds else inactive) is not None:
        continue
      try:
        settings.from_flat(run, given=())  # Valid with the value given (ignored if inactive).
      except config.ConfigError:
        continue
      if holds:
        active = run
      else:
        inactive = run
    assert active is not None, field.flag
    settings.from_flat(active, given={field.flag})  # Where it applies, it is accepted.
    if field.flag in _ACTIVE_WHENEVER_GIVEN:
      assert inactive is None
      continue
    assert inactive is not None, f'no run found where --{field.flag} does not apply'
    with pytest.raises(config.ConfigError) as refusal:
      settings.from_flat(inactive, given={field.flag})
    message = str(refusal.value)
    assert re.match(rf'--{field.flag} (applies|does not apply)', message), message
    assert '\n' not in message
    refused.add(field.flag)
  assert refused == {f.flag for f in ruled} - _ACTIVE_WHENEVER_GIVEN
