"""The private TFF worker: it runs computations, is reachable by nothing but its owner, and
never outlives it."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import forbidden_namespaces
import numpy as np
import process_tree
import pytest
import tensorflow_federated as tff
import worker_processes

from tff_experiments import experiment
from tff_experiments.runtime import local_worker


def _federated_mean():
  @tff.federated_computation(tff.FederatedType(np.float32, tff.CLIENTS))
  def mean(values):
    return tff.federated_mean(values)
  return mean


def test_runs_a_federated_mean_and_stops_the_worker_and_its_launcher(tmp_path):
  before = set(process_tree.descendants(os.getpid()))
  with local_worker.local_worker(log_path=str(tmp_path / 'w.log')):
    assert _federated_mean()([1.0, 2.0, 6.0]) == 3.0
    started = set(process_tree.descendants(os.getpid())) - before
    binaries = set(process_tree.worker_binaries(os.getpid())) & started
    assert len(binaries) == 1 and len(started) == 2  # The worker and its launcher.
    for pid in started:  # Their output goes to the log.
      assert os.readlink(f'/proc/{pid}/fd/1') == os.readlink(f'/proc/{pid}/fd/2') == str(
          tmp_path / 'w.log')
  assert not any(worker_processes.alive(pid) for pid in started)


def _launcher_and_worker(before: set[int]) -> tuple[int, int]:
  """The launcher and worker binary this process started since `before` (the session's own
  worker, if a fixture started one, is left out)."""
  started = set(process_tree.descendants(os.getpid())) - before
  binary, = set(process_tree.worker_binaries(os.getpid())) & started
  launcher, = started - {binary}
  return launcher, binary


def test_no_process_of_the_worker_listens_on_tcp_in_this_network_namespace(tmp_path):
  before = set(process_tree.descendants(os.getpid()))
  with local_worker.local_worker(log_path=str(tmp_path / 'w.log')):
    assert _federated_mean()([1.0, 3.0]) == 2.0
    tree = process_tree.descendants(os.getpid())
    _, binary = _launcher_and_worker(before)
    held = process_tree.socket_inodes([os.getpid()] + tree)
    # The worker does listen, in its own namespace: the check below can see a listener.
    assert held & process_tree.listening_tcp(binary).keys()
    assert not held & process_tree.listening_tcp('self').keys()  # Loopback included.
    assert os.readlink(f'/proc/{binary}/ns/net') != os.readlink('/proc/self/ns/net')


@pytest.mark.parametrize('umask', [0o022, 0o000])
def test_the_socket_file_is_0600_in_a_0700_directory_whatever_the_umask(tmp_path, umask):
  before = set(process_tree.descendants(os.getpid()))
  previous = os.umask(umask)
  try:
    with local_worker.local_worker(log_path=str(tmp_path / 'w.log')):
      assert _federated_mean()([4.0]) == 4.0
      launcher, _ = _launcher_and_worker(before)
      path = process_tree.argument(launcher, '--socket=')
      socket_mode, directory_mode = os.stat(path).st_mode, os.stat(os.path.dirname(path)).st_mode
  finally:
    os.umask(previous)
  assert stat.S_ISSOCK(socket_mode) and stat.S_IMODE(socket_mode) == 0o600
  assert stat.S_IMODE(directory_mode) == 0o700
  assert not os.path.exists(os.path.dirname(path))  # Removed when the block ends.


def test_worker_and_launcher_die_with_a_killed_owner(tmp_path):
  script = textwrap.dedent(f"""
      import os, sys, time
      from tff_experiments.runtime import local_worker
      with local_worker.local_worker(log_path={str(tmp_path / 'w.log')!r}):
        print('ready', flush=True)
        time.sleep(600)
  """)
  owner = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True,
                           env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert owner.stdout.readline().strip() == 'ready'
  deadline = time.monotonic() + 60
  while not process_tree.worker_binaries(owner.pid) and time.monotonic() < deadline:
    time.sleep(0.1)
  tree = process_tree.descendants(owner.pid)
  assert len(tree) == 2 and len(process_tree.worker_binaries(owner.pid)) == 1
  launcher, = set(tree) - set(process_tree.worker_binaries(owner.pid))
  socket_directory = os.path.dirname(process_tree.argument(launcher, '--socket='))
  owner.send_signal(signal.SIGKILL)
  owner.wait()
  deadline = time.monotonic() + 10
  while any(map(worker_processes.alive, tree)) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not any(map(worker_processes.alive, tree))
  assert not os.path.exists(socket_directory)  # The launcher cleaned up on its way out.


def test_computation_outside_the_worker_fails_instead_of_starting_one():
  # A fresh interpreter: this session's tests may have a worker installed.
  script = textwrap.dedent("""
      import subprocess
      import numpy as np
      import tensorflow_federated as tff
      from tff_experiments.runtime import local_worker
      @tff.federated_computation(tff.FederatedType(np.float32, tff.CLIENTS))
      def total(values):
        return tff.federated_sum(values)
      try:
        total([1.0])
      except RuntimeError as e:
        print('refused:', e)
      print('workers:', subprocess.run(['pgrep', '-c', '-P', str(__import__('os').getpid())],
                                       capture_output=True, text=True).stdout.strip())
  """)
  out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                       env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}, timeout=120).stdout
  assert 'refused:' in out and 'local_worker' in out
  assert 'workers: 0' in out


def _weights_after_two_rounds(config, **worker_options):
  """The global model after rounds 1-2 of `config`'s process in a private worker."""
  data = experiment.load_data(config)
  with local_worker.local_worker(**worker_options):
    rounds = experiment.build_rounds(config, data, experiment.build_model(config, data))
    planner = experiment.build_planner(config, data)
    state = rounds.initialize()
    for round_num in (1, 2):
      state = rounds.run(state, planner.plan(round_num)).state
    return [np.asarray(w) for w in rounds.get_model_weights(state).trainable]


def test_clients_in_parallel_give_the_weights_of_clients_one_at_a_time(make_config, tmp_path):
  config = make_config(cache_dir=str(tmp_path), clients_per_round=5, client_momentum=0.5)
  parallel = _weights_after_two_rounds(config)
  sequential = _weights_after_two_rounds(config, max_concurrent_computation_calls=1)
  assert len(parallel) == len(sequential)
  for a, b in zip(parallel, sequential):
    np.testing.assert_array_equal(a, b)  # The worker sums clients in cohort order either way.


@pytest.mark.slow
def test_where_namespaces_are_forbidden_a_run_says_so_in_one_line_and_completes(tmp_path):
  done = subprocess.run(
      forbidden_namespaces.command([
          sys.executable, '-m', 'launch.run_experiment', '--dataset=digits',
          '--total_rounds=2', f'--root_output_dir={tmp_path}', '--experiment_name=run',
          f'--cache_dir={tmp_path / "cache"}']),
      cwd=worker_processes.ROOT, env=worker_processes.ENV, capture_output=True, text=True,
      timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  notices = [line for line in done.stderr.splitlines() if 'TFF worker' in line]
  assert len(notices) == 1 and 'forbids a private network namespace' in notices[0]
  assert 'unshare: No space left on device' in notices[0] or 'not permitted' in notices[0]
  assert 'listens unauthenticated on port' in notices[0]
  assert len((tmp_path / 'run' / 'metrics.csv').read_text().splitlines()) == 3  # Header + 2.
