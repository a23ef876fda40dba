"""launch.sweep: up-front validation, skip/resume planning, sweep.json, the process pool, and
one end-to-end sweep on digits (a failing point among good ones, then a re-run that skips)."""

import errno
import json
import os
import re
import subprocess
import sys
import time

import pytest

import sweep_helpers
from launch import sweep
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.results import run_lock
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import grid
from tff_experiments.sweeps import pool
from tff_experiments.sweeps import state

_FIXED = sweep_helpers.FIXED


def _plan(tmp_path, axes, fixed=_FIXED, seeds=None):
  return sweep.plan_points(grid.combine(axes, seeds), list(fixed), str(tmp_path / 's'))


@pytest.mark.parametrize('axes,fixed,message', [
    ([grid.Axis('client_learning_rte', ('0.1',))], _FIXED,
     "unknown flag 'client_learning_rte'; did you mean client_learning_rate"),
    ([grid.Axis('client_learning_rate', ('0.1', '-1'))], _FIXED, 'client_learning_rate=-1'),
    ([grid.Axis('server_optimizer', ('sgd', 'adm'))], _FIXED, 'server_optimizer=adm'),
    ([grid.Axis('seed', ('0',))], [*_FIXED, '--totl_rounds=3'], 'totl_rounds'),
    ([grid.Axis('seed', ('0',))], [*_FIXED, '--experiment_name=x'], '--experiment_name after'),
    ([grid.Axis('total_rounds', ('1', '2'))], _FIXED, '--total_rounds is both'),
    ([grid.Axis('num_clients', ('10', '2'))], ['--clients_per_round=3'],
     r'num_clients=2.*clients_per_round must be <='),
])
def test_a_bad_flag_or_value_fails_the_whole_sweep_naming_it(tmp_path, axes, fixed, message):
  with pytest.raises(sweep.SweepError, match=message):
    _plan(tmp_path, axes, fixed)
  assert not os.path.exists(tmp_path / 's')  # Nothing was created.


def test_points_are_named_from_parsed_values_and_run_under_the_sweep(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('client_learning_rate', ('0.10', '0.3'))], seeds=[0, 1])
  names = [p.name for p, _ in planned]
  assert names == ['client_learning_rate=0.1-seed=0', 'client_learning_rate=0.1-seed=1',
                   'client_learning_rate=0.3-seed=0', 'client_learning_rate=0.3-seed=1']
  point, action = planned[1]
  assert action == run_dir.Action.START
  assert point.run_dir == str(tmp_path / 's' / names[1])
  assert point.log == str(tmp_path / 's' / f'{names[1]}.log')
  assert point.command[1:3] == ['-m', 'launch.run_experiment']
  assert point.command[3:] == [*_FIXED, '--client_learning_rate=0.10', '--seed=1',
                               f'--root_output_dir={tmp_path / "s"}',
                               f'--experiment_name={names[1]}']
  assert point.hparams['client_learning_rate'] == 0.1 and point.hparams['seed'] == 1


def test_equal_values_written_differently_are_one_run(tmp_path):
  with pytest.raises(grid.GridError, match='client_learning_rate=0.1'):
    _plan(tmp_path, [grid.Axis('client_learning_rate', ('0.1', '0.10'))])


def _fake_run(point, status):
  """A run directory as launch.run_experiment leaves it, with summary status `status`."""
  os.makedirs(point.run_dir)
  files.write_json_atomic(os.path.join(point.run_dir, 'hparams.json'), point.hparams)
  files.write_json_atomic(os.path.join(point.run_dir, 'summary.json'), {'status': status})


def test_rerun_skips_finished_runs_and_resumes_unfinished_ones(tmp_path):
  axes = [grid.Axis('client_learning_rate', ('0.1', '0.2', '0.3', '0.4'))]
  planned = _plan(tmp_path, axes)
  for (point, _), status in zip(planned, ['completed', 'diverged', 'interrupted']):
    _fake_run(point, status)
  actions = [action for _, action in _plan(tmp_path, axes)]
  assert actions == [run_dir.Action.DONE, run_dir.Action.DONE, run_dir.Action.RESUME,
                     run_dir.Action.START]


def test_a_run_directory_with_other_settings_fails_the_sweep_up_front(tmp_path):
  axes = [grid.Axis('client_learning_rate', ('0.1',))]
  point, _ = _plan(tmp_path, axes)[0]
  _fake_run(point, 'completed')
  with pytest.raises(sweep.SweepError, match='total_rounds'):
    _plan(tmp_path, axes, fixed=[*_FIXED, '--total_rounds=5'])


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
  while sweep_helpers.alive(pid):
    assert time.monotonic() < deadline, 'the child outlived the sweep'
    time.sleep(0.05)


def test_each_point_is_validated_with_its_grid_values_not_the_fixed_flags_alone(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('dp_noise_multiplier', ('0.3', '1.0'))],
                  fixed=[*_FIXED, '--dp_mechanism=gaussian'])
  assert [p.hparams['dp_noise_multiplier'] for p, _ in planned] == [0.3, 1.0]
  assert [p.hparams['dp_mechanism'] for p, _ in planned] == ['gaussian', 'gaussian']
  with pytest.raises(sweep.SweepError, match='needs --dp_noise_multiplier'):  # Still per point.
    _plan(tmp_path, [grid.Axis('seed', ('0',))], fixed=[*_FIXED, '--dp_mechanism=gaussian'])


def test_points_where_a_grid_flag_does_not_apply_are_one_run_without_it(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('algorithm', ('fedavg', 'fedprox')),
                             grid.Axis('proximal_mu', ('0.01', '0.1'))], seeds=[0])
  points = [p for p, _ in planned]
  assert [p.name for p in points] == ['algorithm=fedavg-seed=0',
                                      'algorithm=fedprox-proximal_mu=0.01-seed=0',
                                      'algorithm=fedprox-proximal_mu=0.1-seed=0']
  assert points[0].values == {'algorithm': 'fedavg', 'seed': 0}
  assert not any('proximal_mu' in arg for arg in points[0].command)
  assert 'proximal_mu' not in points[0].hparams
  assert '--proximal_mu=0.1' in points[2].command and points[2].hparams['proximal_mu'] == 0.1
  assert planned.grid_points == 4
  assert planned.notes == ['note: --proximal_mu applies to --algorithm=fedprox: left out of 2 '
                           'of 4 grid points (they run without it)']


@pytest.mark.parametrize('in_flagfile', [False, True])
def test_a_fixed_flag_is_left_out_of_the_points_where_it_does_not_apply(tmp_path, in_flagfile):
  flagfile = tmp_path / 'fixed.flags'
  flagfile.write_text('\n'.join([*_FIXED, '--proximal_mu=0.1']))
  fixed = [f'--flagfile={flagfile}'] if in_flagfile else [*_FIXED, '--proximal_mu=0.1']
  planned = _plan(tmp_path, [grid.Axis('algorithm', ('fedavg', 'fedprox'))], fixed=fixed)
  (fedavg, _), (fedprox, _) = planned
  assert fedavg.command[3:] == [*_FIXED, '--algorithm=fedavg',
                                f'--root_output_dir={tmp_path / "s"}',
                                '--experiment_name=algorithm=fedavg']
  assert fedprox.command[3:5 + len(fixed)] == [*fixed, '--algorithm=fedprox',  # Unchanged.
                                                f'--root_output_dir={tmp_path / "s"}']
  assert fedprox.hparams['proximal_mu'] == 0.1 and 'proximal_mu' not in fedavg.hparams
  assert len(planned.notes) == 1 and 'left out of 1 of 2' in planned.notes[0]


@pytest.mark.parametrize('axes,fixed,message', [
    ([grid.Axis('seed', ('0', '1'))], [*_FIXED, '--proximal_mu=0.1'],
     r'^--proximal_mu does not apply at any point of this sweep \(it applies to '
     r'--algorithm=fedprox; the first point is --algorithm=fedavg\)$'),
    ([grid.Axis('proximal_mu', ('0.01', '0.1'))], [*_FIXED, '--algorithm=fednova'],
     '--proximal_mu does not apply at any point'),
])
def test_a_flag_that_applies_at_no_point_fails_the_sweep(tmp_path, axes, fixed, message):
  with pytest.raises(sweep.SweepError, match=message):
    _plan(tmp_path, axes, fixed)
  assert not os.path.exists(tmp_path / 's')


def _trivial_sweep(tmp_path, codes):
  """sweep.json of points running `python -c <code>` (name -> code), as run_sweep takes it."""
  points = [state.Point(name=name, values={}, run_dir=str(tmp_path / name),
                        log=str(tmp_path / f'{name}.log'),
                        command=[sys.executable, '-c', code], hparams={})
            for name, code in codes.items()]
  return state.SweepFile(str(tmp_path / 'sweep.json'), header={'sweep_name': 's'},
                         points=points)


def test_a_point_killed_by_a_signal_says_so_not_its_log_header(tmp_path, capsys):
  sweep_file = _trivial_sweep(tmp_path, {
      'killed': 'import os, signal; print("round 1/9"); os.kill(os.getpid(), signal.SIGKILL)'})
  code = sweep.run_sweep(sweep_file, backends.BACKENDS.get('local'), parallel=1, threads=1)
  assert code == 1
  point = files.read_json(str(tmp_path / 'sweep.json'))['points'][0]
  assert (point['state'], point['exit_code']) == ('failed', -9)
  assert point['message'] == ("killed by SIGKILL (signal 9), not by the sweep (the kernel's "
                              'out-of-memory killer, or another process); its last output: '
                              'round 1/9')
  printed = capsys.readouterr()
  assert 'FAILED killed (exit -9): killed by SIGKILL (signal 9)' in printed.out
  assert '===' not in printed.out + printed.err


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


def test_a_full_disk_stops_the_sweep_with_one_line_and_an_intact_sweep_json(
    tmp_path, monkeypatch, capsys):
  sleeper = ('import signal, sys, time\n'
             'signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))\n'
             'time.sleep(60)\n')
  sweep_file = _trivial_sweep(tmp_path, {'quick': 'pass', 'slow': sleeper, 'queued': sleeper})
  fsync, calls = os.fsync, []
  def fsync_until_the_disk_is_full(fd):  # Both starts fit; the quick point's end does not.
    calls.append(fd)
    if len(calls) > 2:
      raise OSError(errno.ENOSPC, 'No space left on device')
    fsync(fd)
  monkeypatch.setattr(os, 'fsync', fsync_until_the_disk_is_full)
  code = sweep.run_sweep(sweep_file, backends.BACKENDS.get('local'), parallel=2, threads=1)
  monkeypatch.setattr(os, 'fsync', fsync)
  err = capsys.readouterr().err
  assert code == 1
  assert err == (f'sweep: error: stopped every run: cannot write {tmp_path / "sweep.json"}: the '
                 'disk is full; free space and run the same command again to resume the '
                 'sweep\n')
  saved = json.loads((tmp_path / 'sweep.json').read_text())  # The last write that fitted.
  assert saved['counts'] == {'running': 2, 'pending': 1}
  assert sorted(os.listdir(tmp_path)) == ['quick.log', 'slow.log', 'sweep.json']  # No temp.
  slow = sweep_file.points[1]  # Stopped (SIGTERM) rather than left to sleep; queued not run.
  assert (slow.state, slow.exit_code) == ('interrupted', 130) or slow.exit_code == -15
  assert sweep_file.points[2].state == 'pending'


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
