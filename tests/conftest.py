"""Shared fixtures: a private TFF worker for the session and a config factory."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
import pytest

from tff_experiments import config as config_lib
from tff_experiments import runtime

# The flag defaults of launch/run_experiment.py, resolved for the digits dataset.
_DEFAULTS = dict(
    experiment_name='test', root_output_dir='results', dataset='digits', data_dir=None,
    cache_dir='/tmp/tff_experiments_test_cache', only_digits=False, partition='iid',
    num_clients=10, dirichlet_alpha=0.5, model='digits_mlp', algorithm='fedavg',
    aggregator='mean', clients_per_round=3, client_epochs_per_round=1, client_batch_size=4,
    client_learning_rate=0.1, server_optimizer='sgd', server_learning_rate=1.0,
    server_momentum=0.9, total_rounds=2, rounds_per_eval=1, rounds_per_checkpoint=1,
    target_accuracy=None, seed=0)


@pytest.fixture
def make_config():
  """Returns `make(**overrides) -> ExperimentConfig` on small test defaults."""
  def make(**overrides):
    return config_lib.ExperimentConfig(**{**_DEFAULTS, **overrides})
  return make


@pytest.fixture(scope='session')
def tff_worker(tmp_path_factory):
  """TFF computations in this session run on one private worker, stopped at the end."""
  log = tmp_path_factory.mktemp('worker') / 'worker.log'
  with runtime.local_worker(log_path=str(log)):
    yield
