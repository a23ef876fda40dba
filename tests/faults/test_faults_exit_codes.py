"""Exit codes (0 ended as asked, 1 failed, 2 refused, 130 interrupted; run_experiment's
docstring) and the modes of every file a run writes (they follow the umask)."""

import os
import stat
import subprocess
import sys

import pytest

import faults_helpers as fh
from launch import run_experiment
from tff_experiments import experiment
from tff_experiments.results import run_lock
from tff_experiments.runtime import execution


@pytest.mark.slow
@pytest.mark.parametrize('flag', ['--help', '--helpshort', '--helpfull'])
def test_help_exits_0(flag):
  done = fh.launch([flag], timeout=120)
  assert done.returncode == 0 and '--total_rounds' in done.stdout, done.stderr[-500:]


@pytest.mark.slow
def test_a_bad_flag_exits_2_with_one_line_naming_it():
  done = fh.launch(['--total_rounds=abc'], timeout=120)
  assert done.returncode == 2 and done.stderr.count('\n') == 1, done.stderr
  assert done.stderr.startswith('run_experiment: error: ') and '--total_rounds' in done.stderr


def test_positional_arguments_exit_2(capsys):
  assert run_experiment.main(['run_experiment', 'mnist']) == 2
  assert 'unexpected arguments: mnist' in capsys.readouterr().err


@pytest.mark.parametrize('status,code', [
    ('completed', 0), ('target_reached', 0), ('budget_exhausted', 0), ('diverged', 1)])
def test_a_run_exits_0_when_it_ended_as_asked_and_1_when_it_diverged(tmp_path, capsys,
                                                                     monkeypatch, status, code):
  summary = {'status': status, 'final_accuracy': 0.5, 'best_accuracy': 0.5,
             'rounds_to_target': None, 'wall_time_s': 1.0, 'message': f'why {status}'}
  monkeypatch.setattr(execution, 'context', lambda *args, **kwargs: fh.NoWorker())
  monkeypatch.setattr(experiment, 'run', lambda *args, **kwargs: summary)
  got, err = fh.main_in_process(fh.run_flags(tmp_path), capsys)
  assert got == code
  assert (f'run_experiment: {status}: why {status}' in err) == (code == 1)


def test_a_run_directory_in_use_is_refused_with_exit_2(tmp_path, capsys):
  run = tmp_path / 'out' / 'run'
  run.mkdir(parents=True)
  with run_lock.RunLock(str(run)):  # Another process's run (flock: per open file).
    code, err = fh.main_in_process(fh.run_flags(tmp_path), capsys)
  assert code == 2 and f'{run} is in use by pid {os.getpid()}' in err
  assert err.count('\n') == 1 and os.listdir(run) == ['.lock']


@pytest.mark.slow
def test_stop_at_target_and_stop_at_budget_exit_0(tmp_path):
  reached = fh.launch(fh.run_flags(tmp_path, name='target', rounds=50, target_accuracy=0.5,
                                   stop_at_target='true'))
  assert reached.returncode == 0, reached.stderr[-1500:]
  assert fh.summary(tmp_path / 'out' / 'target')['status'] == 'target_reached'
  budget = fh.run_flags(tmp_path, name='budget', rounds=50, rounds_per_checkpoint=100,
                        dp_mechanism='gaussian', dp_noise_multiplier=1.0,
                        dp_target_epsilon=20, dp_stop_at_budget='true')
  spent = fh.launch(budget)
  assert spent.returncode == 0, spent.stderr[-1500:]
  run = tmp_path / 'out' / 'budget'
  summary = fh.summary(run)
  assert summary['status'] == 'budget_exhausted' and 0 < summary['rounds_completed'] < 50
  # The stop before a round checkpointed every row: a deleted metrics.csv comes back whole.
  original = (run / 'metrics.csv').read_bytes()
  (run / 'metrics.csv').unlink()
  again = fh.launch(budget)
  assert again.returncode == 0 and 'restored' in again.stdout, again.stderr[-1500:]
  assert (run / 'metrics.csv').read_bytes() == original


def _run_with_umask(mask, args):
  return subprocess.run([sys.executable, '-m', 'launch.run_experiment', *args], cwd=fh.ROOT,
                        capture_output=True, text=True, timeout=300, env=fh.ENV,
                        preexec_fn=lambda: os.umask(mask))


@pytest.mark.slow
@pytest.mark.parametrize('mask', [0o022, 0o027])
def test_every_file_and_directory_of_a_run_follows_the_umask(tmp_path, mask):
  done = _run_with_umask(mask, fh.run_flags(tmp_path, rounds=2, tensorboard='true'))
  assert done.returncode == 0, done.stderr[-1500:]
  readable = 0o444 & ~mask  # Read bits the umask grants; it takes away the others.
  checked = 0
  for folder in (tmp_path / 'out', tmp_path / 'cache'):
    for path in [folder, *folder.rglob('*')]:
      mode = stat.S_IMODE(path.lstat().st_mode)
      wanted = readable | (readable >> 2 if path.is_dir() else 0)  # r, and x for directories.
      assert mode & wanted == wanted and mode & mask == 0, (path, oct(mode))
      checked += 1
  names = {p.name for p in (tmp_path / 'out' / 'run').iterdir()}
  assert {'metrics.csv', 'hparams.json', 'summary.json', 'checkpoints', 'tensorboard',
          'worker.log', '.lock'} <= names and checked > 20
