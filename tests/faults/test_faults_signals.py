"""Signals and a closed stdout: Ctrl-C, SIGTERM and SIGHUP stop a run with exit 130 and the hint
to resume, at any point; summary.json exists whenever the run directory does."""

import os
import signal
import subprocess
import sys
import time

import pytest

import faults_helpers as fh
from tff_experiments import experiment
from tff_experiments.runtime import execution

_MNIST = os.path.join(fh.ROOT, '..', 'shared', 'data', 'mnist')


@pytest.mark.slow
def test_sighup_is_handled_like_sigterm(tmp_path):
  run = fh.start(fh.run_flags(tmp_path, rounds=30))
  fh.wait_for_line(run, 'round  2/')
  run.send_signal(signal.SIGHUP)
  _, err = run.communicate(timeout=60)
  assert run.returncode == 130 and 'resume' in err and 'Traceback' not in err
  assert fh.summary(tmp_path / 'out' / 'run')['status'] == 'interrupted'


def _restoring_signal_handlers(function):
  """Calls `function`, then restores the SIGTERM/SIGHUP handlers main installs."""
  previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
  try:
    return function()
  finally:
    signal.signal(signal.SIGTERM, previous[0])
    signal.signal(signal.SIGHUP, previous[1])


def test_sigterm_during_data_loading_exits_130_with_the_hint(tmp_path, capsys, monkeypatch):
  def load_data(config):
    os.kill(os.getpid(), signal.SIGTERM)  # Arrives while the data loads.
    time.sleep(5)
    pytest.fail('SIGTERM did not interrupt data loading')
  monkeypatch.setattr(experiment, 'load_data', load_data)
  code, err = _restoring_signal_handlers(
      lambda: fh.main_in_process(fh.run_flags(tmp_path), capsys))
  assert code == 130 and 'run the same command again' in err and 'Traceback' not in err
  assert not (tmp_path / 'out' / 'run').exists()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(_MNIST), reason='needs ../shared/data/mnist')
def test_a_real_sigterm_while_mnist_loads_leaves_nothing_and_says_so(tmp_path):
  cache = tmp_path / 'cache'
  run = fh.start(fh.run_flags(tmp_path, dataset='mnist', data_dir=_MNIST, num_clients=100,
                              clients_per_round=2, rounds=1))
  # Loading writes the client files into a `.partial` directory of the cache: wait for it.
  deadline = time.monotonic() + 240
  while not (cache.is_dir() and any(p.name.endswith('.partial') for p in cache.iterdir())):
    assert run.poll() is None and time.monotonic() < deadline, 'loading never began'
    time.sleep(0.02)
  run.send_signal(signal.SIGTERM)
  out, err = run.communicate(timeout=120)
  assert run.returncode == 130, err
  assert err.strip() == ('interrupted before the run directory was made; run the same command '
                         'again to start the run'), err
  assert 'start:' not in out
  # As the README says: no run directory yet, so no summary.json; and no half-written cache.
  assert not (tmp_path / 'out' / 'run').exists()
  assert not [p for p in cache.iterdir() if p.name.endswith('.partial')]


@pytest.mark.parametrize('raised,status,code', [
    (KeyboardInterrupt, 'interrupted', 130), (RuntimeError('boom'), 'failed', 1)])
def test_an_end_before_the_first_round_still_writes_the_summary(tmp_path, capsys, monkeypatch,
                                                                raised, status, code):
  def run(*args, **kwargs):  # E.g. SIGTERM while the computations are built.
    raise raised
  monkeypatch.setattr(execution, 'context', lambda *args, **kwargs: fh.NoWorker())
  monkeypatch.setattr(experiment, 'run', run)
  got, err = _restoring_signal_handlers(
      lambda: fh.main_in_process(fh.run_flags(tmp_path), capsys))
  assert got == code and 'Traceback' not in err
  summary = fh.summary(tmp_path / 'out' / 'run')
  assert (summary['status'], summary['rounds_completed']) == (status, 0)


@pytest.mark.slow
def test_closed_stdout_does_not_stop_the_run(tmp_path):
  command = ' '.join([sys.executable, '-m', 'launch.run_experiment',
                      *fh.run_flags(tmp_path, rounds=4)])
  done = subprocess.run(['bash', '-c', f'{command} | head -1; exit ${{PIPESTATUS[0]}}'],
                        cwd=fh.ROOT, capture_output=True, text=True, timeout=300, env=fh.ENV)
  assert done.returncode == 0, done.stderr[-1500:]
  assert len(done.stdout.splitlines()) == 1 and 'Traceback' not in done.stderr
  run = tmp_path / 'out' / 'run'
  assert fh.rounds(run) == [1, 2, 3, 4] and fh.summary(run)['status'] == 'completed'
  assert 'round 4/4' in (run / 'console.log').read_text()
