"""Faults of the TFF worker and what it reads: killed, hung, or its client files deleted
mid-run. Each ends within a bounded time with one line and exit 1, and the run resumes."""

import contextlib
import os
import shutil
import signal
import time

import pytest

import faults_helpers as fh

pytestmark = pytest.mark.slow


def test_killed_worker_fails_fast_with_a_message_and_the_run_resumes(tmp_path):
  args = fh.run_flags(tmp_path, rounds=30)
  run = fh.start(args)
  fh.wait_for_line(run, 'round  2/')
  os.kill(fh.worker_pid(run.pid), signal.SIGKILL)
  began = time.monotonic()
  _, err = run.communicate(timeout=60)
  assert time.monotonic() - began < 30
  assert run.returncode == 1 and 'the TFF worker died (signal SIGKILL)' in err
  assert 'worker.log' in err and 'Traceback' not in err
  assert fh.summary(tmp_path / 'out' / 'run')['status'] == 'failed'
  resumed = fh.launch(args)
  assert resumed.returncode == 0 and 'from the checkpoint of round' in resumed.stdout
  assert fh.rounds(tmp_path / 'out' / 'run') == list(range(1, 31))


def test_a_worker_that_stops_answering_fails_after_the_deadline(tmp_path):
  run = fh.start(fh.run_flags(tmp_path, rounds=30, worker_timeout_s=4))
  fh.wait_for_line(run, 'round  2/')
  worker = fh.worker_pid(run.pid)
  os.kill(worker, signal.SIGSTOP)
  try:
    _, err = run.communicate(timeout=60)
  finally:
    with contextlib.suppress(ProcessLookupError):
      os.kill(worker, signal.SIGKILL)
  assert run.returncode == 1 and 'did not answer within 4 s' in err
  assert 'Traceback' not in err


def test_cache_dir_deleted_mid_run_is_one_line_and_the_next_run_rebuilds_it(tmp_path):
  # 30 clients: most are still unread (the worker reads a client's file when it is sampled).
  args = fh.run_flags(tmp_path, rounds=40, num_clients=30)
  run = fh.start(args)
  fh.wait_for_line(run, 'round  2/')
  shutil.rmtree(tmp_path / 'cache')
  _, err = run.communicate(timeout=120)
  assert run.returncode == 1, err
  assert err.count('\n') == 1 and err.startswith('run_experiment: error: '), err
  assert f'the client-data cache {tmp_path / "cache"}' in err and 'was deleted' in err
  assert '.tfrecord' in err and 'run the same command again' in err  # The file read.
  summary = fh.summary(tmp_path / 'out' / 'run')
  assert summary['status'] == 'failed' and summary['message'].count('\n') == 0
  resumed = fh.launch(args)
  assert resumed.returncode == 0, resumed.stderr[-1500:]
  assert 'from the checkpoint of round' in resumed.stdout
  assert fh.rounds(tmp_path / 'out' / 'run') == list(range(1, 41))
  assert fh.summary(tmp_path / 'out' / 'run')['status'] == 'completed'
