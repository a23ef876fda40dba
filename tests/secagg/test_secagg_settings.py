"""The secure-aggregation settings: defaults, activity and the checks that name the flags."""

import pytest

from tff_experiments import settings
from tff_experiments.core import config


def _active(**values):
  return config.active_flat(settings.from_flat(values))


def test_only_the_protocols_own_settings_are_active():
  assert not any(k.startswith('secagg_') for k in _active())
  masking = _active(secure_aggregation='masking', clients_per_round=10)
  assert masking['secagg_threshold'] == 6 and masking['secagg_bits'] == 32
  assert masking['secagg_clip_norm'] is None  # The range is measured every round.
  assert _active(secure_aggregation='masking', secagg_clip_norm=3.0)['secagg_clip_norm'] == 3.0
  two = _active(secure_aggregation='two_server')
  assert 'secagg_threshold' not in two and 'secagg_dropout_rate' not in two


def test_defaults_follow_dp_and_the_masking_graph():
  dp = settings.from_flat({'secure_aggregation': 'masking', 'dp_mechanism': 'gaussian',
                           'dp_noise_multiplier': 1.0, 'dp_clip_norm': 0.7})
  assert dp.secure_aggregation.clip_norm == 0.7  # The DP records are already clipped to it.
  sparse = settings.from_flat({'secure_aggregation': 'masking', 'clients_per_round': 50,
                               'num_clients': 100, 'secagg_neighbors': 8})
  assert sparse.secure_aggregation.threshold == 5  # A majority of the k + 1 holders.


@pytest.mark.parametrize('values,message', [
    ({'secure_aggregation': 'masking', 'algorithm': 'fednova'}, '--algorithm=fednova'),
    ({'secure_aggregation': 'masking', 'secagg_threshold': 11}, '--secagg_threshold=11 exceeds'),
    ({'secure_aggregation': 'masking', 'secagg_neighbors': 4, 'secagg_threshold': 6},
     '--secagg_neighbors=4'),
    ({'secure_aggregation': 'masking', 'secagg_neighbors': 3}, 'even number'),
    ({'secure_aggregation': 'masking', 'secagg_bits': 8, 'clients_per_round': 128,
      'num_clients': 300}, r'--secagg_bits=8 leaves each of --clients_per_round=128 clients '
                           r'L = floor\(\(2\^7 - 1\) / 128\) = 0 levels'),
    ({'secure_aggregation': 'two_server', 'secagg_bits': 16, 'clients_per_round': 40000,
      'num_clients': 40000}, r'--clients_per_round=40000 clients L = floor\(\(2\^15 - 1\) / '
                             r'40000\) = 0 levels'),
    ({'secure_aggregation': 'masking', 'secagg_dropout_rate': 1.0}, 'must be in \\[0, 1\\)'),
    ({'secure_aggregation': 'shamir'}, 'choose one of'),
])
def test_bad_combinations_name_the_flags(values, message):
  with pytest.raises(config.ConfigError, match=message):
    settings.from_flat(values)


def test_the_fewest_levels_accepted_is_one():
  assert settings.from_flat({'secure_aggregation': 'masking', 'secagg_bits': 8,
                             'clients_per_round': 127, 'num_clients': 300})
