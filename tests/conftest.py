"""Shared fixtures: a private TFF worker for the session and a config factory."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
import pytest

from tff_experiments import settings
from tff_experiments.runtime import local_worker
from tff_experiments.sweeps import ray_pool

# Before any test imports Ray: the local Ray instances of the tests' pools are local-only.
os.environ.setdefault(*ray_pool.LOCAL_ONLY)

# Small test settings (by flag name) over the flag defaults, for the digits dataset.
_DEFAULTS = dict(
    experiment_name='test', cache_dir='/tmp/tff_experiments_test_cache', num_clients=10,
    clients_per_round=3, client_batch_size=4, total_rounds=2, rounds_per_checkpoint=1)


@pytest.fixture
def make_config():
  """Returns `make(**overrides) -> ExperimentConfig`, overrides by flag name, validated (an
  override the run makes inactive is refused, as on the command line; the defaults are not)."""
  def make(**overrides):
    return settings.from_flat({**_DEFAULTS, **overrides}, given=overrides)
  return make


@pytest.fixture
def digits_config(make_config, tmp_path):
  """Returns `make(name, **overrides)`: a 4-round digits run named `name` under tmp_path."""
  def make(name, **overrides):
    return make_config(**{
        'root_output_dir': str(tmp_path), 'experiment_name': name,
        'cache_dir': str(tmp_path / 'cache'), 'total_rounds': 4, 'rounds_per_checkpoint': 2,
        'clients_per_round': 3, 'num_clients': 10, 'client_learning_rate': 0.3,
        **overrides})
  return make


@pytest.fixture(scope='session')
def tff_worker(tmp_path_factory):
  """TFF computations in this session run on one private worker, stopped at the end."""
  log = tmp_path_factory.mktemp('worker') / 'worker.log'
  with local_worker.local_worker(log_path=str(log)):
    yield


def pytest_configure(config):
  config.addinivalue_line('markers', 'slow: end-to-end subprocess runs (seconds each)')


@pytest.fixture
def umask():
  """Returns `set(mask)`: sets this process's umask for the test; the old one is restored."""
  previous = os.umask(0o022)
  os.umask(previous)
  yield os.umask
  os.umask(previous)
