"""The Ray backend with trivial commands: exit codes, callbacks, logs, environment and working
directory, the parallel bound, and stopping (gently, then by force). One local Ray instance for
the module."""

import os
import signal
import time

import process_tree
import pytest

import sweep_helpers
from tff_experiments.sweeps import ray_pool
from tff_experiments.sweeps import state

ray = pytest.importorskip(
    'ray', reason='Ray is an optional extra: pip install --no-deps -r requirements-ray.lock')


@pytest.fixture(scope='module', autouse=True)
def ray_session():
  """A local Ray instance for the module's pools (a pool leaves an initialized Ray running)."""
  kept = ray_pool.start_ray(None, num_cpus=2)
  yield
  ray.shutdown()
  kept.close()


def _record():
  """(started keys, {key: exit code}, callbacks) of a pool."""
  started, exits = [], {}
  return started, exits, dict(on_start=lambda job: started.append(job.key),
                              on_exit=lambda job, code, seconds: exits.update({job.key: code}))


def test_runs_at_most_parallel_tasks_and_reports_exit_codes_and_logs(tmp_path):
  record = sweep_helpers.Recorder()
  show = 'import os, time; print(os.getcwd(), os.environ["SWEEP_TEST"]); time.sleep(0.5)'
  jobs = [sweep_helpers.job(tmp_path, f'ok{i}', show, env={**os.environ, 'SWEEP_TEST': str(i)},
                            cwd=str(tmp_path)) for i in range(3)]
  jobs.insert(1, sweep_helpers.job(tmp_path, 'bad', 'import sys; print("nope"); sys.exit(3)'))
  ray_pool.RayPool(2, poll_s=0.05, **record.callbacks).run(jobs)
  assert record.most == 2
  assert record.codes() == {'ok0': 0, 'bad': 3, 'ok1': 0, 'ok2': 0}
  assert all(0.5 <= seconds < 30 for key, (_, seconds) in record.exits.items() if key != 'bad')
  assert (tmp_path / 'bad.log').read_text() == 'nope\n'
  assert (tmp_path / 'ok2.log').read_text() == f'{tmp_path} 2\n'  # The job's cwd and env.
  assert ray.is_initialized()  # A Ray it did not start is left running.


def test_stop_sends_each_child_sigterm_and_never_starts_queued_jobs(tmp_path):
  started, exits, callbacks = _record()
  jobs = [sweep_helpers.job(tmp_path, k, sweep_helpers.SIGTERM_EXITS_130,
                            args=[str(tmp_path / f'{k}.pid')]) for k in ('a', 'b', 'never')]
  def tick():  # Ctrl-C once both children run.
    if all((tmp_path / f'{k}.pid').exists() for k in ('a', 'b')):
      raise KeyboardInterrupt
  workers = ray_pool.RayPool(2, on_tick=tick, poll_s=0.05, grace_s=20, **callbacks)
  with pytest.raises(KeyboardInterrupt):
    workers.run(jobs)
  assert started == ['a', 'b'] and exits == {'a': 130, 'b': 130}  # Their SIGTERM handlers ran.


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
  started, exits, callbacks = _record()
  code = ('import os, signal, sys, time\n'
          'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
          'open(sys.argv[1], "w").write(str(os.getpid()))\n'
          'time.sleep(60)\n')
  pid_file = tmp_path / 'stubborn.pid'
  def tick():
    if pid_file.exists() and pid_file.read_text():
      raise KeyboardInterrupt
  workers = ray_pool.RayPool(1, on_tick=tick, poll_s=0.05, grace_s=1, **callbacks)
  began = time.monotonic()
  with pytest.raises(KeyboardInterrupt):
    workers.run([sweep_helpers.job(tmp_path, 'stubborn', code, args=[str(pid_file)])])
  assert exits == {'stubborn': -signal.SIGKILL} and time.monotonic() - began < 30
  assert state.failure_message(str(tmp_path / 'stubborn.log'), -signal.SIGKILL).startswith(
      'killed by SIGKILL (signal 9): the sweep cancelled its Ray task by force when it was '
      'stopped')
  deadline = time.monotonic() + 10
  while process_tree.alive(int(pid_file.read_text())):
    assert time.monotonic() < deadline, 'the child outlived its task'
    time.sleep(0.05)


def test_a_task_whose_worker_dies_is_a_failed_run_with_the_reason_in_its_log(tmp_path, capsys):
  started, exits, callbacks = _record()
  kill_worker = 'import os, signal; os.kill(os.getppid(), signal.SIGKILL)'
  ray_pool.RayPool(1, poll_s=0.05, **callbacks).run(
      [sweep_helpers.job(tmp_path, 'orphan', kill_worker)])
  assert exits == {'orphan': 1}
  assert 'Error: the Ray task of this run failed' in (tmp_path / 'orphan.log').read_text()
  # Ray also prints the worker's death on the driver's console, a moment later: wait for it
  # here, within this test's captured output.
  printed, deadline = '', time.monotonic() + 10
  while 'worker died' not in printed and time.monotonic() < deadline:
    time.sleep(0.1)
    printed += capsys.readouterr().out


def test_the_task_function_runs_the_command_and_returns_its_exit_code(tmp_path):
  job = sweep_helpers.job(tmp_path, 'direct', 'import sys; print("hi"); sys.exit(4)')
  assert ray_pool.run_job(job, grace_s=1) == 4
  assert (tmp_path / 'direct.log').read_text() == 'hi\n'
