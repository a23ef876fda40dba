"""Which behaviour changes apply to which settings (the refusal itself: test_run_dir)."""

from tff_experiments.core import config as config_lib
from tff_experiments.results import behaviour


def _changes(make_config, **flags):
  return [c.what for c in behaviour.changes_since(1, config_lib.flat(make_config(**flags)))]


def test_fednovas_weighting_change_applies_only_where_the_weights_count(make_config):
  assert any('fednova' in what for what in _changes(make_config, algorithm='fednova'))
  for flags in (dict(algorithm='fedavg'),
                dict(algorithm='fednova', client_weighting='num_examples'),
                dict(algorithm='fednova', aggregator='unweighted_mean')):
    assert not _changes(make_config, **flags), flags


def test_the_dirichlet_change_applies_to_dirichlet_splits_only(make_config):
  assert any('NIID-Bench' in what for what in _changes(make_config, partition='dirichlet'))
  assert not _changes(make_config, partition='shards')
