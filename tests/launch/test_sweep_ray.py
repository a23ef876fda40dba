"""launch.sweep --backend=ray end to end: a 4-run digits sweep on a local Ray instance with one
failing run, then a re-run that skips the 3 completed ones; no Ray process is left behind, even
when the sweep is SIGKILLed, and Ray listens on loopback only."""

import os
import subprocess
import sys
import time
import uuid

import process_tree
import pytest

import sweep_helpers

pytest.importorskip(
    'ray', reason='Ray is an optional extra: pip install --no-deps -r requirements-ray.lock')
pytestmark = pytest.mark.slow


def test_ray_sweep_with_a_failing_run_then_a_rerun_that_skips_the_completed_ones(tmp_path):
  # Every process the sweeps start (Ray's, the runs) inherits this variable: those are the
  # ones that must be gone afterwards, whatever else runs on the machine.
  mark = ('TFF_EXPERIMENTS_TEST_SWEEP', uuid.uuid4().hex)
  cache_dirs = [str(tmp_path / f'cache{i}') for i in range(3)]
  cache_dirs.append(sweep_helpers.failing_cache_dir(tmp_path))
  saved, output = sweep_helpers.check_failing_sweep_then_rerun(
      tmp_path, '--backend=ray', '--parallel=2', '--grid', f'cache_dir={",".join(cache_dirs)}',
      env=dict([mark]))
  assert len(saved['points']) == 4 and sum(p['state'] == 'skipped' for p in saved['points']) == 3
  assert saved['backend'] == 'ray' and saved['ray_address'] is None
  assert '(backend ray, parallel 2,' in output
  deadline = time.monotonic() + 10
  while left := process_tree.processes_with(*mark):  # Each sweep stopped the Ray it started.
    assert time.monotonic() < deadline, f'processes left behind: {left}'
    time.sleep(0.2)


def _is_ray(command: str) -> bool:
  """Ray's own processes (not a run, nor the run's TFF worker)."""
  return '/ray/' in command or command.startswith('ray::')


def test_sigkill_of_a_ray_sweep_leaves_no_process_and_no_listening_socket(tmp_path):
  mark = ('TFF_EXPERIMENTS_TEST_SWEEP', uuid.uuid4().hex)
  fixed = [f for f in sweep_helpers.FIXED if not f.startswith('--total_rounds')]
  sweep = subprocess.Popen(
      [sys.executable, '-m', 'launch.sweep', f'--root_output_dir={tmp_path}', '--sweep_name=s',
       '--backend=ray', '--parallel=1', '--seeds=0', '--', *fixed, '--total_rounds=100000'],
      cwd=sweep_helpers.ROOT, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', mark[0]: mark[1]},
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  log = tmp_path / 's' / 'seed=0.log'
  try:
    deadline = time.monotonic() + 300
    while not (log.exists() and 'round ' in log.read_text()):  # The run is training.
      assert sweep.poll() is None and time.monotonic() < deadline, 'the sweep did not start'
      time.sleep(0.5)
    started = process_tree.processes_with(*mark)
    commands = ' '.join(started.values())
    assert all(name in commands for name in (
        'gcs_server', 'raylet', 'dashboard/agent.py', 'runtime_env/agent', 'run_experiment'))
    ray_sockets = process_tree.listening_sockets(
        [pid for pid, command in started.items() if _is_ray(command)])
    assert ray_sockets and all(process_tree.is_loopback(a) for a, _ in ray_sockets), ray_sockets
    sockets = process_tree.listening_sockets(started)
  finally:
    sweep.kill()
    sweep.wait()
  began = time.monotonic()
  while left := process_tree.processes_with(*mark):
    assert time.monotonic() - began < 60, f'processes left behind: {left}'
    time.sleep(0.2)
  print(f'every process of the sweep gone {time.monotonic() - began:.1f} s after its SIGKILL')
  still = process_tree.listening_sockets(map(int, filter(str.isdigit, os.listdir('/proc'))))
  assert not set(sockets) & set(still)
