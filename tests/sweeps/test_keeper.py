"""The keeper: whatever its service starts (a child ignoring SIGTERM, a daemon that left its
parent) is stopped when the caller closes the pipe, or dies by SIGKILL; a service that cannot
start is one line."""

import os
import subprocess
import sys
import time

import process_tree
import pytest

import sweep_helpers
from tff_experiments.sweeps import keeper

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The keeper imports the service from sweep_helpers, beside the tests.
_ENV = {**os.environ, 'PYTHONPATH': os.pathsep.join(
    [_TESTS, sweep_helpers.ROOT, os.environ.get('PYTHONPATH', '')])}


def _wait_gone(pids, seconds=60):
  deadline = time.monotonic() + seconds
  while left := [pid for pid in pids if process_tree.alive(pid)]:
    assert time.monotonic() < deadline, f'still alive: {left}'
    time.sleep(0.1)


def _ppid(pid):
  with open(f'/proc/{pid}/stat') as f:
    return int(f.read().rsplit(')', 1)[1].split()[1])


def test_close_stops_the_service_and_the_daemon_it_left(tmp_path):
  kept = keeper.Keeper.start('sweep_helpers', 'start_stubborn_processes',
                             {'pid_dir': str(tmp_path)}, env=_ENV, grace_s=0.5)
  pids = kept.result
  assert all(process_tree.alive(pid) for pid in pids)
  assert _ppid(pids[1]) == kept.process.pid  # The daemon's parent left: the keeper adopted it.
  kept.close()
  assert kept.process.returncode == 0
  _wait_gone(pids, seconds=1)  # Gone when close returns.


def test_sigkill_of_the_caller_stops_everything_the_keeper_kept(tmp_path):
  caller = ('import json, sys, time\n'
            'from tff_experiments.sweeps import keeper\n'
            f'kept = keeper.Keeper.start("sweep_helpers", "start_stubborn_processes", '
            f'{{"pid_dir": {str(tmp_path)!r}}}, grace_s=0.5)\n'
            'print(json.dumps([kept.process.pid, *kept.result]), flush=True)\n'
            'time.sleep(60)\n')
  process = subprocess.Popen([sys.executable, '-c', caller], env=_ENV, stdout=subprocess.PIPE,
                             text=True)
  pids = [int(pid) for pid in process.stdout.readline().strip('[]\n').split(',')]
  assert len(pids) == 3 and all(process_tree.alive(pid) for pid in pids)
  process.kill()
  process.wait()
  _wait_gone(pids)  # The keeper, the child and the daemon, though both ignore SIGTERM.


def test_a_service_that_cannot_start_is_one_line(tmp_path):
  with pytest.raises(keeper.KeeperError) as error:
    keeper.Keeper.start('sweep_helpers', 'fail_to_start', {}, env=_ENV)
  assert str(error.value) == 'RuntimeError: no such service'
