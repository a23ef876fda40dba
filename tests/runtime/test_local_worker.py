"""The private TFF worker: it runs computations and never outlives its owner."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import tensorflow_federated as tff
import worker_processes

from tff_experiments import experiment
from tff_experiments.runtime import local_worker


def _worker_pids_of(parent_pid: int) -> list[int]:
  out = subprocess.run(['pgrep', '-P', str(parent_pid), '-f', 'worker_binary'],
                       capture_output=True, text=True, check=False).stdout
  return [int(p) for p in out.split()]


def test_runs_a_federated_mean_and_stops_the_worker(tmp_path):
  before = set(_worker_pids_of(os.getpid()))
  with local_worker.local_worker(log_path=str(tmp_path / 'w.log')):
    @tff.federated_computation(tff.FederatedType(np.float32, tff.CLIENTS))
    def mean(values):
      return tff.federated_mean(values)
    assert mean([1.0, 2.0, 6.0]) == 3.0
    during = set(_worker_pids_of(os.getpid())) - before
    assert len(during) == 1
  pid, = during
  assert not worker_processes.alive(pid)


def test_worker_dies_with_a_killed_owner(tmp_path):
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
  workers = _worker_pids_of(owner.pid)
  assert len(workers) == 1
  owner.send_signal(signal.SIGKILL)
  owner.wait()
  deadline = time.monotonic() + 10
  while worker_processes.alive(workers[0]) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not worker_processes.alive(workers[0])


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
    process = experiment.build_process(config, data, experiment.build_model(config, data))
    planner = experiment.build_planner(config, data)
    state = process.initialize()
    for round_num in (1, 2):
      state = process.next(state, planner.plan(round_num).tasks()).state
    return [np.asarray(w) for w in process.get_model_weights(state).trainable]


def test_clients_in_parallel_give_the_weights_of_clients_one_at_a_time(make_config, tmp_path):
  config = make_config(cache_dir=str(tmp_path), clients_per_round=5, client_momentum=0.5)
  parallel = _weights_after_two_rounds(config)
  sequential = _weights_after_two_rounds(config, max_concurrent_computation_calls=1)
  assert len(parallel) == len(sequential)
  for a, b in zip(parallel, sequential):
    np.testing.assert_array_equal(a, b)  # The worker sums clients in cohort order either way.
