"""The launch script: flag validation, results files, piping, rerun semantics."""

import json
import re
import os
import signal
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import pandas as pd
import pytest

from launch import run_experiment
from tff_experiments import flag_binding

FLAGS = flags.FLAGS
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse(argv):
  """Parses `argv` into FLAGS as absl.app would (validators included)."""
  FLAGS.unparse_flags()
  FLAGS(['run_experiment', *argv])


@pytest.mark.parametrize('argv,flag', [
    (['--total_rounds=-1'], 'total_rounds'),
    (['--total_rounds=abc'], 'total_rounds'),
    (['--clients_per_round=0'], 'clients_per_round'),
    (['--client_learning_rate=-0.1'], 'client_learning_rate'),
    (['--server_learning_rate=0'], 'server_learning_rate'),
    (['--dataset=nosuchdata'], 'dataset'),
    (['--partition=nosuchsplit'], 'partition'),
    (['--model=nosuchmodel'], 'model'),
    (['--client_batch_size=0'], 'client_batch_size'),
    (['--server_optimizer=nosuchopt'], 'server_optimizer'),
    (['--partition=dirichlet', '--dirichlet_alpha=-1'], 'dirichlet_alpha'),
    (['--clients_per_round=1000', '--num_clients=10'], 'clients_per_round'),
    (['--dataset=emnist', '--partition=iid'], 'partition'),
    (['--target_accuracy=1.5'], 'target_accuracy'),
    (['--experiment_name=a/b'], 'experiment_name'),
])
def test_bad_flags_are_rejected_naming_the_flag(argv, flag):
  with flagsaver.flagsaver():
    with pytest.raises(flags.Error, match=flag):
      _parse(argv)


@pytest.mark.parametrize('argv,line', [
    (['--client_learning_rate=-0.1'], '--client_learning_rate=-0.1: must be > 0'),
    (['--clients_per_round=1000', '--num_clients=10'],
     '--clients_per_round must be <= --num_clients'),
    (['--total_rounds=abc'], "flag --total_rounds=abc: invalid literal for int() with base 10: "
                             "'abc'"),  # absl's own parse error keeps its head: it names the flag.
])
def test_a_bad_flag_is_one_line_that_names_it_once(argv, line, capsys):
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    with pytest.raises(SystemExit) as exit_request:
      run_experiment._parse_flags(['run_experiment', *argv])
  assert exit_request.value.code == 2
  assert capsys.readouterr().err == f'run_experiment: error: {line} (--help lists the flags)\n'


@pytest.mark.parametrize('argv,flag', [
    (['--dataset=mnist', '--data_dir=/nonexistent/offline/dir'], 'data_dir'),
    (['--dataset=femnist_leaf', '--data_dir=/nonexistent/leaf'], 'data_dir'),
])
def test_missing_data_fails_before_any_output(tmp_path, capsys, argv, flag):
  with flagsaver.flagsaver():
    _parse([f'--root_output_dir={tmp_path}', '--experiment_name=x', *argv])
    assert run_experiment.main(['run_experiment']) == 2
  assert flag in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'x')


def test_defaults_resolve_from_the_dataset():
  with flagsaver.flagsaver():
    _parse(['--dataset=femnist_leaf', '--experiment_name=n'])
    config = flag_binding.config_from_flags()
  assert (config.data.partition, config.model.model) == ('natural', 'emnist_cnn')
  with flagsaver.flagsaver():
    _parse([])
    config = flag_binding.config_from_flags()
  assert (config.data.dataset, config.data.partition, config.model.model) == (
      'digits', 'iid', 'digits_mlp')
  # Readable, then a hash of the settings (no timestamp: the same command finds its run).
  assert re.fullmatch(r'digits-fedavg-digits_mlp-iid-[0-9a-f]{8}', config.run.experiment_name)


def _launch(args, *, pipe_through_cat=False, timeout=300):
  command = [sys.executable, '-m', 'launch.run_experiment', *args]
  if pipe_through_cat:
    command = ['bash', '-c', ' '.join(f"'{c}'" for c in command) + ' 2>&1 | cat']
  return subprocess.run(command, cwd=_ROOT, capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})


def _processes_holding(path) -> list[int]:
  """Pids of live processes with `path` open (the run's worker keeps worker.log open)."""
  holders = []
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      fds = os.listdir(f'/proc/{pid}/fd')
      if any(os.readlink(f'/proc/{pid}/fd/{fd}') == str(path) for fd in fds):
        holders.append(int(pid))
    except OSError:
      continue  # Exited meanwhile, or not ours to inspect.
  return holders


def test_end_to_end_piped_run_writes_results_and_leaves_no_worker(tmp_path):
  args = [f'--root_output_dir={tmp_path}', '--experiment_name=smoke', '--total_rounds=2',
          '--num_clients=10', '--clients_per_round=3', f'--cache_dir={tmp_path / "cache"}',
          '--target_accuracy=0.01']
  done = _launch(args, pipe_through_cat=True)
  assert done.returncode == 0, done.stdout[-2000:]
  assert 'round 2/2' in done.stdout and 'ETA' in done.stdout
  run_dir = tmp_path / 'smoke'
  frame = pd.read_csv(run_dir / 'metrics.csv')
  assert list(frame['round_num']) == [1, 2]
  assert frame['eval/accuracy'].between(0, 1).all()
  hparams = json.loads((run_dir / 'hparams.json').read_text())
  assert hparams['total_rounds'] == 2 and hparams['model'] == 'digits_mlp'
  summary = json.loads((run_dir / 'summary.json').read_text())
  assert summary['status'] == 'completed'
  assert summary['final_accuracy'] == pytest.approx(frame['eval/accuracy'].iloc[-1])
  assert summary['rounds_to_target'] == 1.0
  assert _processes_holding(run_dir / 'worker.log') == []  # The run's worker is gone.

  # Same flags again: the finished run is left untouched.
  mtime = os.path.getmtime(run_dir / 'metrics.csv')
  again = _launch(args)
  assert again.returncode == 0 and 'nothing to do' in again.stdout
  assert os.path.getmtime(run_dir / 'metrics.csv') == mtime
  # Other settings under the same name: refused, naming the differing flag.
  clash = _launch([*args, '--seed=9'])
  assert clash.returncode != 0 and '--seed' in clash.stderr
  assert os.path.getmtime(run_dir / 'metrics.csv') == mtime


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
  flags_ = [f'--root_output_dir={tmp_path}', '--experiment_name=int', '--total_rounds=30',
            '--num_clients=10', '--clients_per_round=2', '--rounds_per_checkpoint=2',
            f'--cache_dir={tmp_path / "c"}']
  run = subprocess.Popen([sys.executable, '-m', 'launch.run_experiment', *flags_], cwd=_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  for line in run.stdout:
    if line.startswith('round  3/'):
      break
  workers = subprocess.run(['pgrep', '-P', str(run.pid)], capture_output=True,
                           text=True).stdout.split()
  run.send_signal(signal.SIGINT)
  _, err = run.communicate(timeout=60)
  assert run.returncode == 130 and 'resume' in err
  summary = json.loads((tmp_path / 'int' / 'summary.json').read_text())
  assert summary['status'] == 'interrupted' and summary['rounds_completed'] >= 3
  for pid in workers:  # Stopped and reaped by the driver itself.
    assert not os.path.exists(f'/proc/{pid}')

  resumed = _launch(flags_)
  assert resumed.returncode == 0
  assert 'from the checkpoint of round' in resumed.stdout
  assert list(pd.read_csv(tmp_path / 'int' / 'metrics.csv')['round_num']) == list(range(1, 31))
  assert json.loads((tmp_path / 'int' / 'summary.json').read_text())['status'] == 'completed'


def test_the_same_command_without_a_name_runs_once_then_skips(tmp_path):
  out = tmp_path / 'out'
  args = [f'--root_output_dir={out}', '--total_rounds=2', '--num_clients=10',
          '--clients_per_round=3', f'--cache_dir={tmp_path / "cache"}', '--seed=2']
  first = _launch(args)
  assert first.returncode == 0, first.stderr[-2000:]
  second = _launch(args)
  assert second.returncode == 0 and 'nothing to do' in second.stdout
  run_dirs = list(out.iterdir())
  assert len(run_dirs) == 1 and run_dirs[0].name.startswith('digits-fedavg-digits_mlp-iid-')
  hparams = json.loads((run_dirs[0] / 'hparams.json').read_text())
  assert 'dirichlet_alpha' not in hparams and 'server_momentum' not in hparams
  assert (hparams['seed'], hparams['split_seed']) == (2, 0)


def test_a_diverged_run_says_so_and_is_final(tmp_path):
  args = [f'--root_output_dir={tmp_path}', '--experiment_name=div', '--total_rounds=3',
          '--num_clients=10', '--clients_per_round=3', f'--cache_dir={tmp_path / "c"}',
          '--client_learning_rate=1e30']
  done = _launch(args)
  assert done.returncode == 1 and 'diverged' in done.stderr and 'non-finite' in done.stderr
  summary = json.loads((tmp_path / 'div' / 'summary.json').read_text())
  assert summary['status'] == 'diverged' and summary['rounds_completed'] == 1
  again = _launch(args)  # Final: nothing to do, and the exit code of how it ended.
  assert again.returncode == 1 and 'nothing to do' in again.stdout and 'diverged' in again.stderr


@pytest.mark.parametrize('value', ['inf', 'nan'])
def test_non_finite_learning_rates_are_rejected(value):
  with flagsaver.flagsaver():
    with pytest.raises(flags.Error, match='client_learning_rate.*finite'):
      _parse([f'--client_learning_rate={value}'])


def test_tuple_flags_parse_into_the_config():
  with flagsaver.flagsaver():
    _parse(['--mlp_hidden_units=16,8', '--experiment_name=t'])
    assert flag_binding.config_from_flags().model.mlp_hidden_units == (16, 8)
  with flagsaver.flagsaver():
    with pytest.raises(flags.Error, match='mlp_hidden_units'):
      _parse(['--mlp_hidden_units=16,x'])


def test_every_setting_is_a_flag_listed_by_help():
  helped = subprocess.run([sys.executable, '-m', 'launch.run_experiment', '--help'], cwd=_ROOT,
                          capture_output=True, text=True, timeout=120).stdout
  for name in flag_binding.flag_names() + ['overwrite']:
    assert f'--{name}' in helped or f'--[no]{name}' in helped, name


def test_a_flag_from_a_flagfile_that_does_not_apply_is_refused_before_anything(tmp_path,
                                                                                 capsys):
  flagfile = tmp_path / 'run.flags'
  flagfile.write_text('--dataset=digits\n--proximal_mu=0.1\n')
  out = tmp_path / 'out'
  with flagsaver.flagsaver():
    _parse([f'--flagfile={flagfile}', f'--root_output_dir={out}',
            f'--cache_dir={tmp_path / "cache"}'])
    assert FLAGS['proximal_mu'].present  # absl counts a flagfile's flags as given.
    assert run_experiment.main(['run_experiment']) == 2
  assert capsys.readouterr().err == ('run_experiment: error: --proximal_mu applies to '
                                     '--algorithm=fedprox; this run is --algorithm=fedavg\n')
  assert not out.exists() and not (tmp_path / 'cache').exists()
  with flagsaver.flagsaver():  # Where it applies, the same flagfile is taken.
    _parse([f'--flagfile={flagfile}', '--algorithm=fedprox', '--experiment_name=p'])
    assert flag_binding.config_from_flags().algorithm.proximal_mu == 0.1


@pytest.mark.slow
@pytest.mark.parametrize('args,flags_named', [
    (['--proximal_mu=0.1'], ('--proximal_mu', '--algorithm=fedavg')),
    (['--dp_noise_multiplier=1.0'], ('--dp_noise_multiplier', '--dp_mechanism=none')),
    (['--dirichlet_alpha=0.1'], ('--dirichlet_alpha', '--partition=iid')),
    (['--flagfile=FLAGFILE'], ('--proximal_mu', '--dp_noise_multiplier')),
])
def test_flags_that_do_not_apply_exit_2_in_one_line_with_nothing_created(tmp_path, args,
                                                                          flags_named):
  flagfile = tmp_path / 'inactive.flags'
  flagfile.write_text('--proximal_mu=0.1\n--dp_noise_multiplier=1.0\n')
  out = tmp_path / 'out'
  done = _launch([f'--root_output_dir={out}', '--dataset=digits', '--total_rounds=2',
                  *[a.replace('FLAGFILE', str(flagfile)) for a in args]])
  output = done.stdout + done.stderr
  last = [line for line in output.splitlines() if line.strip()][-1]
  assert done.returncode == 2, output
  assert last.startswith('run_experiment: error: ') and all(f in last for f in flags_named)
  assert 'Traceback' not in output and not out.exists()
