"""--workers: one simulation over worker services (one on a port of 127.0.0.1, one on a Unix
socket file only, as behind an SSH tunnel), equal to a local run; bounded failures (unreachable
at start, killed mid-run, client data not readable) and resume."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pandas as pd
import portpicker
import pytest

import run_helpers
import worker_processes
from tff_experiments import experiment
from tff_experiments.core import config as config_lib
from tff_experiments.runtime import contexts
from tff_experiments.runtime import execution
from tff_experiments.runtime import remote_workers


@pytest.fixture(scope='module')
def two_workers():
  socket_directory = tempfile.mkdtemp(dir='/tmp')  # Short: socket paths have 107 bytes.
  services = [worker_processes.WorkerService().start(),
              worker_processes.WorkerService(
                  socket_path=os.path.join(socket_directory, 'w.sock')).start()]
  yield services
  for service in services:
    service.stop()
  shutil.rmtree(socket_directory, ignore_errors=True)
  for service in services:
    assert not worker_processes.alive(service.binary_pid)  # No worker left behind.


@pytest.mark.parametrize('target,ok', [
    ('127.0.0.1:8000', True), ('worker-0.tff.svc:1', True), ('[::1]:65535', True),
    ('unix:/tmp/w.sock', True), ('host', False), ('host:0', False), ('host:65536', False),
    (':80', False), ('a b:80', False), ('host:80:90', False), ('unix:relative.sock', False),
    ('unix:/tmp/', False)])
def test_worker_addresses_are_host_and_port(target, ok):
  assert (remote_workers.target_error(target) is None) == ok


def test_a_bad_address_is_refused_naming_the_flag(make_config):
  with pytest.raises(config_lib.ConfigError, match='--workers'):
    make_config(workers=('localhost',))


def _run_on(config, log_path):
  with execution.context(config.run.workers,
                         connect_timeout_s=config.run.worker_connect_timeout_s,
                         log_path=log_path):
    return run_helpers.run(config)


def _check(config, client_data):
  """`execution.check` of the config's --workers, as run_experiment calls it."""
  execution.check(config.run.workers, connect_timeout_s=config.run.worker_connect_timeout_s,
                  client_data=client_data)


@pytest.mark.slow
@pytest.mark.parametrize('flags', [
    # Central DP: clipping, the noised sum and its server-side noise across the merged
    # sub-rounds.
    dict(dp_mechanism='gaussian', dp_noise_multiplier=0.5),
    # Per-client draws (stochastic rounding, rotation) seeded by each client's update seed, so
    # a worker draws what the local run drew although its updates differ in the last bits.
    dict(quantization='uniform', quantization_bits=2, quantization_rotation='hadamard')])
def test_two_workers_give_the_metrics_of_a_local_run(two_workers, digits_config, tmp_path,
                                                      flags):
  targets = tuple(s.target for s in two_workers)
  settings = dict(total_rounds=3, clients_per_round=5, seed=9, **flags)
  local_paths, _ = _run_on(digits_config('local', **settings), str(tmp_path / 'worker.log'))
  config = digits_config('remote', workers=targets, **settings)
  _check(config, experiment.load_data(config).train)
  remote_paths, summary = _run_on(config, str(tmp_path / 'unused.log'))
  assert summary['status'] == 'completed'
  local, remote = run_helpers.metrics(local_paths), run_helpers.metrics(remote_paths)
  assert list(local.columns) == list(remote.columns) and len(remote) == 3
  numeric = local.select_dtypes('number').columns
  # Float rounding: the merged sums add in another order (about 1e-7 relative).
  pd.testing.assert_frame_equal(local[numeric], remote[numeric], rtol=1e-6, atol=1e-5)


def test_a_worker_that_is_not_there_fails_within_the_timeout(two_workers, digits_config):
  nobody = f'127.0.0.1:{portpicker.pick_unused_port()}'
  config = digits_config('x', workers=(two_workers[0].target, nobody),
                         worker_connect_timeout_s=1.0)
  began = time.monotonic()
  with pytest.raises(remote_workers.RemoteWorkerError, match=f'no TFF worker answered at {nobody}'):
    _check(config, experiment.load_data(config).train)
  assert time.monotonic() - began < 10


def _damaged_copy(client_data, **changes):
  """The same ClientFiles object, but describing a copy with `changes` (what a worker sees
  where the driver's files are missing or differ)."""
  copy = client_data.__class__.__new__(client_data.__class__)
  copy.__dict__.update(client_data.__dict__)
  copy.__dict__.update(changes)
  return copy


@pytest.mark.parametrize('damage,message', [
    (lambda d: dict(meta_path='/nonexistent/meta.json'), 'does not exist there'),
    (lambda d: dict(meta_text=d.meta_text + ' '), 'differs from the driver'),
    (lambda d: dict(file_pattern=os.path.join(d.directory, 'MDAwM?.tfrecord')),  # '0000'-'0003'
     'only 4 of the 10 client files'),
])
def test_a_worker_that_cannot_read_the_client_data_is_named(two_workers, digits_config,
                                                            damage, message):
  config = digits_config('x', workers=(two_workers[1].target,))
  client_data = experiment.load_data(config).train
  with pytest.raises(remote_workers.RemoteWorkerError,
                     match=f'{two_workers[1].target} cannot read the client data.*{message}'):
    _check(config, _damaged_copy(client_data, **damage(client_data)))
  _check(config, client_data)  # The real copy is fine.


@pytest.mark.slow
def test_a_worker_killed_mid_run_fails_in_bounded_time_and_the_run_resumes(tmp_path):
  services = [worker_processes.WorkerService().start() for _ in range(2)]
  try:
    args = [f'--root_output_dir={tmp_path}', '--experiment_name=run', '--total_rounds=12',
            '--rounds_per_checkpoint=2', '--num_clients=10', '--clients_per_round=4',
            f'--cache_dir={tmp_path / "cache"}', '--worker_connect_timeout_s=3',
            '--workers=' + ','.join(s.target for s in services)]
    run = subprocess.Popen([sys.executable, '-m', 'launch.run_experiment', *args],
                           cwd=worker_processes.ROOT, env=worker_processes.ENV, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in run.stdout:
      if line.startswith('round  3/'):
        break
    services[1].kill_binary()
    began = time.monotonic()
    _, err = run.communicate(timeout=120)
    assert time.monotonic() - began < 3 + 10
    assert run.returncode == 1 and f'{services[1].target} has been unreachable' in err
    assert 'Traceback' not in err
    services[1] = worker_processes.WorkerService(services[1].port).start()
    resumed = subprocess.run([sys.executable, '-m', 'launch.run_experiment', *args],
                             cwd=worker_processes.ROOT, env=worker_processes.ENV, text=True,
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert 'from the checkpoint of round' in resumed.stdout
    rounds = pd.read_csv(tmp_path / 'run' / 'metrics.csv')['round_num']
    assert list(rounds) == list(range(1, 13))
  finally:
    for service in services:
      service.stop()


def test_the_watchdog_names_a_worker_whose_connection_stays_down():
  channel = contexts.Channel('127.0.0.1:1')  # Nothing listens on port 1.
  try:
    probe = remote_workers._liveness_probe([channel], timeout_s=0.2)  # pylint: disable=protected-access
    time.sleep(0.5)
    assert '127.0.0.1:1 has been unreachable' in probe()
  finally:
    channel.close()
