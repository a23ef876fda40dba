"""launch.sweep: its one-line refusals (a backend that cannot run, a sweep directory in use),
sweep.json, the process pool, and one end-to-end sweep on digits (a failing point among good
ones, then a re-run that skips). Planning and running the points: tests/sweeps/test_plan.py and
test_execute.py."""

import os
import re
import subprocess
import sys
import time

import process_tree
import pytest

import sweep_helpers
from launch import sweep
from tff_experiments.core import files
from tff_experiments.results import run_lock
from tff_experiments.sweeps import pool
from tff_experiments.sweeps import state

_FIXED = sweep_helpers.FIXED


@pytest.mark.parametrize('code,summary,expected', [
    (0, {'status': 'completed'}, (state.DONE, 'completed')),
    (1, {'status': 'diverged'}, (state.DONE, 'diverged')),
    (1, {'status': 'target_reached'}, (state.DONE, 'target_reached')),
    (130, {'status': 'interrupted'}, (state.INTERRUPTED, 'interrupted')),
    (1, {'status': 'failed'}, (state.FAILED, 'failed')),
    (2, None, (state.FAILED, None)),
])
def test_outcome_of_a_child(code, summary, expected):
  assert state.outcome(code, summary) == expected


def test_sweep_json_is_rewritten_on_each_update(tmp_path):
  points = [state.Point(name=n, values={'a': n}, run_dir=str(tmp_path / n), log='', command=[],
                        hparams={}) for n in ('x', 'y')]
  sweep_file = state.SweepFile(str(tmp_path / 'sweep.json'), header={'sweep_name': 's'},
                               points=points)
  sweep_file.update(points[0], state=state.FAILED, exit_code=2, message='boom')
  saved = files.read_json(str(tmp_path / 'sweep.json'))
  assert saved['sweep_name'] == 's' and saved['counts'] == {'failed': 1, 'pending': 1}
  assert saved['points'][0]['state'] == 'failed' and saved['points'][0]['message'] == 'boom'
  with pytest.raises(ValueError):
    sweep_file.update(points[1], state='nonsense')


def test_pool_runs_at_most_parallel_jobs_and_reports_failures(tmp_path):
  record = sweep_helpers.Recorder()
  jobs = [sweep_helpers.job(tmp_path, f'ok{i}', 'import time; time.sleep(0.3)') for i in range(3)]
  jobs.insert(1, sweep_helpers.job(tmp_path, 'bad', 'import sys; print("nope"); sys.exit(3)'))
  pool.Pool(2, poll_s=0.05, **record.callbacks).run(jobs)
  assert record.most == 2
  assert record.codes() == {'ok0': 0, 'bad': 3, 'ok1': 0, 'ok2': 0}
  assert (tmp_path / 'bad.log').read_text() == 'nope\n'


def test_pool_stop_terminates_every_child(tmp_path):
  started, exits, began = [], {}, time.monotonic()
  def tick():  # Ctrl-C once both children had a second to start.
    if len(started) == 2 and time.monotonic() - began > 1.0:
      raise KeyboardInterrupt
  code = ('import signal, sys, time\n'
          'signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))\n'
          'time.sleep(60)\n')
  workers = pool.Pool(2, on_start=lambda job: started.append(job.key),
                      on_exit=lambda job, c, s: exits.update({job.key: c}), on_tick=tick,
                      poll_s=0.05, grace_s=10)
  with pytest.raises(KeyboardInterrupt):
    workers.run([sweep_helpers.job(tmp_path, k, code) for k in ('a', 'b', 'never')])
  assert started == ['a', 'b'] and exits == {'a': 130, 'b': 130}  # Queued jobs never start.


def test_threads_per_job_share_the_cores():
  assert pool.threads_per_job(1, cores=8) == 8
  assert pool.threads_per_job(3, cores=8) == 2
  assert pool.threads_per_job(16, cores=8) == 1


def test_end_to_end_sweep_with_a_failing_point_then_a_rerun_that_skips(tmp_path):
  saved, output = sweep_helpers.check_failing_sweep_then_rerun(
      tmp_path, '--parallel=2', '--grid', 'client_learning_rate=0.05,0.1', '--grid',
      f'cache_dir={tmp_path / "cache"},{sweep_helpers.failing_cache_dir(tmp_path)}')
  assert len(saved['points']) == 4 and saved['backend'] == 'local'
  assert 'Unable to register' not in output


@pytest.mark.parametrize('flags,message', [
    (['--ray_address=auto'], '--ray_address=auto needs --backend=ray'),
    (['--backend=ray'], r'--backend=ray needs Ray.*pip install \.\[ray\].*requirements-ray.lock'),
])
def test_a_backend_that_cannot_run_fails_the_sweep_in_one_line(tmp_path, monkeypatch, capsys,
                                                              flags, message):
  monkeypatch.setitem(sys.modules, 'ray', None)  # As if Ray were not installed.
  argv = ['sweep', *flags, '--seeds=0', f'--root_output_dir={tmp_path}', '--', *_FIXED]
  try:
    assert sweep.main(sweep.FLAGS(argv)) == 2
  finally:
    sweep.FLAGS.unparse_flags()
  error = capsys.readouterr().err
  assert re.fullmatch(f'sweep: error: .*{message}.*\n', error)
  assert not os.path.exists(tmp_path / 's')


def test_children_are_stopped_when_the_sweep_is_killed(tmp_path):
  """SIGKILL of the parent: the kernel sends its children SIGTERM (no orphans)."""
  child_pid = tmp_path / 'child.pid'
  child = (f'import os, time; open({str(child_pid)!r}, "w").write(str(os.getpid())); '
           'time.sleep(60)')
  parent = ('import os, sys\n'
            'from tff_experiments.sweeps import pool\n'
            f'job = pool.Job("c", [sys.executable, "-c", {child!r}], {str(tmp_path / "c.log")!r},'
            ' dict(os.environ))\n'
            'pool.Pool(1, on_start=lambda j: None, on_exit=lambda j, c, s: None).run([job])\n')
  process = subprocess.Popen([sys.executable, '-c', parent], cwd=sweep_helpers.ROOT)
  deadline = time.monotonic() + 30
  while not child_pid.exists() or not child_pid.read_text():
    assert time.monotonic() < deadline
    time.sleep(0.05)
  pid = int(child_pid.read_text())
  process.kill()
  process.wait()
  deadline = time.monotonic() + 10
  while process_tree.alive(pid):
    assert time.monotonic() < deadline, 'the child outlived the sweep'
    time.sleep(0.05)


def test_a_child_still_running_after_the_grace_period_is_killed_with_a_note(tmp_path):
  pid_file = tmp_path / 'stubborn.pid'
  code = ('import os, signal, sys, time\n'
          'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
          'open(sys.argv[1], "w").write(str(os.getpid()))\n'
          'time.sleep(60)\n')
  exits = {}
  def tick():
    if pid_file.exists() and pid_file.read_text():
      raise KeyboardInterrupt
  workers = pool.Pool(1, on_start=lambda job: None, on_exit=lambda j, c, s: exits.update({j.key: c}),
                      on_tick=tick, poll_s=0.05, grace_s=0.5)
  with pytest.raises(KeyboardInterrupt):
    workers.run([sweep_helpers.job(tmp_path, 'stubborn', code, args=[str(pid_file)])])
  assert exits == {'stubborn': -9}
  assert state.failure_message(str(tmp_path / 'stubborn.log'), -9) == (
      'killed by SIGKILL (signal 9): the sweep killed it (SIGKILL): still running 0 s after '
      'SIGTERM (or a second Ctrl-C) when the sweep was stopped')


def test_a_sweep_directory_in_use_is_refused_naming_it_and_the_pid(tmp_path, capsys):
  sweep_dir = tmp_path / 's'
  sweep_dir.mkdir()
  argv = ['sweep', '--seeds=0', f'--root_output_dir={tmp_path}', '--sweep_name=s', '--',
          *_FIXED]
  with run_lock.RunLock(str(sweep_dir)):  # As another sweep of it holds it.
    try:
      assert sweep.main(sweep.FLAGS(argv)) == 2
    finally:
      sweep.FLAGS.unparse_flags()
  assert capsys.readouterr().err == (
      f'sweep: error: {sweep_dir} is in use by pid {os.getpid()} (another sweep of it is '
      'going); wait for it to finish, or choose another --sweep_name\n')
  assert sorted(os.listdir(sweep_dir)) == ['.lock']  # Nothing else was written.


@pytest.mark.slow
def test_two_identical_sweeps_at_once_the_second_fails_fast_and_changes_nothing(tmp_path):
  fixed = [f for f in _FIXED if not f.startswith('--total_rounds')]
  args = [sys.executable, '-m', 'launch.sweep', f'--root_output_dir={tmp_path}',
          '--sweep_name=s', '--seeds=0', '--', *fixed, '--total_rounds=100000']
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  first = subprocess.Popen(args, cwd=sweep_helpers.ROOT, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  log = tmp_path / 's' / 'seed=0.log'
  deadline = time.monotonic() + 300
  while not (log.exists() and 'round ' in log.read_text()):  # Its run is training.
    assert first.poll() is None and time.monotonic() < deadline
    time.sleep(0.2)
  before = (tmp_path / 's' / 'sweep.json').read_text()
  second = subprocess.run(args, cwd=sweep_helpers.ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
  assert second.returncode == 2 and second.stdout == ''
  assert second.stderr == (f'sweep: error: {tmp_path / "s"} is in use by pid {first.pid} '
                           '(another sweep of it is going); wait for it to finish, or choose '
                           'another --sweep_name\n')
  assert (tmp_path / 's' / 'sweep.json').read_text() == before
  assert log.read_text().count('=== ') == 1  # The second started nothing.
  first.terminate()  # Stopped as Ctrl-C stops it: the run is interrupted, not failed.
  out, err = first.communicate(timeout=300)
  assert first.returncode == 130, out + err
  saved = files.read_json(str(tmp_path / 's' / 'sweep.json'))
  assert [(p['state'], p['status']) for p in saved['points']] == [('interrupted', 'interrupted')]


@pytest.mark.slow
def test_a_live_sweep_listens_on_no_tcp_port_of_this_network_namespace(tmp_path):
  """Every point's TFF worker is private to its run (its own network namespace, reached through
  a socket file): while two points train, nothing of the sweep's tree listens here, loopback
  included."""
  sweep_process = subprocess.Popen(
      [sys.executable, '-m', 'launch.sweep', f'--root_output_dir={tmp_path}', '--sweep_name=s',
       '--seeds=0,1', '--parallel=2', '--', '--dataset=digits', '--total_rounds=1000',
       '--rounds_per_eval=100', '--num_clients=10', '--clients_per_round=3'],
      cwd=sweep_helpers.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  try:
    csvs = [tmp_path / 's' / f'seed={seed}' / 'metrics.csv' for seed in (0, 1)]
    deadline = time.monotonic() + 240
    while not all(p.exists() and len(p.read_text().splitlines()) > 3 for p in csvs):
      assert sweep_process.poll() is None and time.monotonic() < deadline, 'points did not train'
      time.sleep(0.2)
    tree = process_tree.descendants(sweep_process.pid)
    workers = process_tree.worker_binaries(sweep_process.pid)
    listening = process_tree.listening_sockets([sweep_process.pid, *tree])
    # Both points still train (no row past the last round yet) while sampled.
    assert all(len(p.read_text().splitlines()) < 1001 for p in csvs)
  finally:
    sweep_process.terminate()
    sweep_process.wait(timeout=120)
  assert len(workers) == 2
  assert listening == {}
