"""Fault injection against launch.run_experiment: each fault ends with a clear message and exit
code, loses nothing, hangs nothing, and changes nothing else on disk.

Runs are real subprocesses on the embedded digits dataset (2-4 rounds). Faults that need a
filesystem (read-only, full) use a small tmpfs where the test may mount one, else a fake.
"""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from absl import flags
from absl.testing import flagsaver
import pandas as pd
import process_tree
import pytest

from launch import run_experiment
from tff_experiments import experiment

FLAGS = flags.FLAGS
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}
pytestmark = pytest.mark.slow


def _flags(tmp_path, name='run', rounds=3, **extra):
  args = {'root_output_dir': str(tmp_path / 'out'), 'experiment_name': name,
          'total_rounds': rounds, 'num_clients': 10, 'clients_per_round': 3,
          'rounds_per_checkpoint': 1, 'cache_dir': str(tmp_path / 'cache'), **extra}
  return [f'--{k}={v}' for k, v in args.items()]


def _launch(args, timeout=300, **kwargs):
  return subprocess.run([sys.executable, '-m', 'launch.run_experiment', *args], cwd=_ROOT,
                        capture_output=True, text=True, timeout=timeout, env=_ENV, **kwargs)


def _start(args):
  return subprocess.Popen([sys.executable, '-m', 'launch.run_experiment', *args], cwd=_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV)


def _wait_for_line(process, prefix):
  for line in process.stdout:
    if line.startswith(prefix):
      return line
  raise AssertionError(f'no line starting {prefix!r}; stderr: {process.stderr.read()[-2000:]}')


def _interrupt_after(args, prefix):
  """Starts a run and Ctrl-C's it once a line starting `prefix` is printed."""
  run = _start(args)
  _wait_for_line(run, prefix)
  run.send_signal(signal.SIGINT)
  run.communicate(timeout=60)


def _tree_digest(root) -> str:
  """A hash of every path, size and content under `root` (nothing else may change)."""
  digest = hashlib.sha256()
  for folder, dirs, names in sorted(os.walk(root)):
    dirs.sort()
    for name in sorted(names + dirs):
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode())
      if os.path.isfile(path):
        with open(path, 'rb') as f:
          digest.update(f.read())
  return digest.hexdigest()


def _summary(run_dir):
  return json.loads((run_dir / 'summary.json').read_text())


def _rounds(run_dir):
  return list(pd.read_csv(run_dir / 'metrics.csv')['round_num'])


def _worker_pid(driver_pid):
  """The TFF worker_binary of the run (a child of its launcher, a child of the driver)."""
  found, = process_tree.worker_binaries(driver_pid)
  return found


@contextlib.contextmanager
def _tmpfs(path, size):
  """A tmpfs of `size` at `path` (skips when this machine does not allow mounting)."""
  os.makedirs(path, exist_ok=True)
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)],
                    capture_output=True).returncode != 0:
    pytest.skip('cannot mount a tmpfs here')
  try:
    yield path
  finally:
    subprocess.run(['umount', '-l', str(path)], capture_output=True)


# --- Lost data or wrong results -------------------------------------------------------------

def test_overwrite_of_dot_is_refused_and_nothing_changes(tmp_path):
  out = tmp_path / 'out'
  (out / 'other_run').mkdir(parents=True)
  (out / 'notes.txt').write_text('mine')
  before = _tree_digest(out)
  done = _launch([f'--root_output_dir={out}', '--experiment_name=.', '--overwrite'])
  assert done.returncode != 0 and 'experiment_name' in done.stderr
  assert _tree_digest(out) == before


def test_overwrite_of_a_non_run_directory_is_refused_without_suggesting_overwrite(tmp_path):
  user_dir = tmp_path / 'out' / 'run'
  user_dir.mkdir(parents=True)
  (user_dir / 'thesis.tex').write_text('precious')
  before = _tree_digest(tmp_path / 'out')
  for extra in ([], ['--overwrite']):
    done = _launch(_flags(tmp_path) + extra)
    assert done.returncode == 2 and 'not a run of this package' in done.stderr
    assert '--overwrite' not in done.stderr
  assert _tree_digest(tmp_path / 'out') == before


def test_overwrite_of_a_run_replaces_it(tmp_path):
  assert _launch(_flags(tmp_path, rounds=2)).returncode == 0
  (tmp_path / 'out' / 'sibling.txt').write_text('keep')
  done = _launch(_flags(tmp_path, rounds=2, seed=4) + ['--overwrite'])
  assert done.returncode == 0, done.stderr[-1000:]
  assert json.loads((tmp_path / 'out' / 'run' / 'hparams.json').read_text())['seed'] == 4
  assert sorted(os.listdir(tmp_path / 'out')) == ['run', 'sibling.txt']


def test_two_concurrent_starts_under_one_name_leave_one_consistent_run(tmp_path):
  first = _start(_flags(tmp_path, rounds=4))
  _wait_for_line(first, 'round 1/')
  second = _launch(_flags(tmp_path, rounds=3, seed=9))
  assert second.returncode != 0
  assert 'in use by pid' in second.stderr or 'other settings' in second.stderr
  first.communicate(timeout=300)
  assert first.returncode == 0
  run = tmp_path / 'out' / 'run'
  hparams = json.loads((run / 'hparams.json').read_text())
  assert (hparams['seed'], hparams['total_rounds']) == (0, 4)
  assert _rounds(run) == [1, 2, 3, 4] and _summary(run)['status'] == 'completed'


@pytest.mark.parametrize('damage', ['truncate', 'delete', 'garbage'])
def test_damaged_metrics_csv_is_rebuilt_from_the_checkpoint_on_resume(tmp_path, damage):
  args = _flags(tmp_path, rounds=4)
  _interrupt_after(args, 'round 3/')
  metrics = tmp_path / 'out' / 'run' / 'metrics.csv'
  before = pd.read_csv(metrics)
  checkpointed = before[before['round_num'] <= 3]  # Checkpoints are taken every round.
  {'truncate': lambda: metrics.write_text(metrics.read_text()[:40]),
   'delete': metrics.unlink,
   'garbage': lambda: metrics.write_bytes(b'\x00\xff,,"\n1,2,3,4,5,6\n')}[damage]()
  resumed = _launch(args)
  assert resumed.returncode == 0, resumed.stderr[-1500:]
  assert 'rebuilt rounds 1-' in resumed.stdout
  after = pd.read_csv(metrics)
  assert list(after['round_num']) == [1, 2, 3, 4]
  pd.testing.assert_frame_equal(after.iloc[:len(checkpointed)], checkpointed)


def test_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
  args = _flags(tmp_path, rounds=4)
  _interrupt_after(args, 'round 3/')
  checkpoints = tmp_path / 'out' / 'run' / 'checkpoints'
  latest = max(checkpoints.glob('program_state_*'), key=lambda p: int(p.name.split('_')[-1]))
  for path in latest.rglob('*'):
    if path.is_file():
      path.write_bytes(b'garbage')
  resumed = _launch(args)
  assert resumed.returncode == 0, resumed.stderr[-1500:]
  assert 'damaged checkpoint' in resumed.stdout and f'{latest}.damaged' in resumed.stdout
  assert _rounds(tmp_path / 'out' / 'run') == [1, 2, 3, 4]


# --- Hangs -----------------------------------------------------------------------------------

def test_killed_worker_fails_fast_with_a_message_and_the_run_resumes(tmp_path):
  args = _flags(tmp_path, rounds=30)
  run = _start(args)
  _wait_for_line(run, 'round  2/')
  os.kill(_worker_pid(run.pid), signal.SIGKILL)
  began = time.monotonic()
  _, err = run.communicate(timeout=60)
  assert time.monotonic() - began < 30
  assert run.returncode == 1 and 'the TFF worker died (signal SIGKILL)' in err
  assert 'worker.log' in err and 'Traceback' not in err
  assert _summary(tmp_path / 'out' / 'run')['status'] == 'failed'
  resumed = _launch(args)
  assert resumed.returncode == 0 and 'from the checkpoint of round' in resumed.stdout
  assert _rounds(tmp_path / 'out' / 'run') == list(range(1, 31))


def test_a_worker_that_stops_answering_fails_after_the_deadline(tmp_path):
  run = _start(_flags(tmp_path, rounds=30, worker_timeout_s=4))
  _wait_for_line(run, 'round  2/')
  worker = _worker_pid(run.pid)
  os.kill(worker, signal.SIGSTOP)
  try:
    _, err = run.communicate(timeout=60)
  finally:
    with contextlib.suppress(ProcessLookupError):
      os.kill(worker, signal.SIGKILL)
  assert run.returncode == 1 and 'did not answer within 4 s' in err
  assert 'Traceback' not in err


# --- One line, not a traceback ---------------------------------------------------------------

def _main_in_process(argv, capsys):
  """run_experiment.main on parsed flags in this process (for faults before any training)."""
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(['run_experiment', *argv])
    code = run_experiment.main(['run_experiment'])
  return code, capsys.readouterr().err


@pytest.mark.parametrize('setup,flag', [
    (lambda t: (t / 'out').write_text('a file'), 'root_output_dir'),
    (lambda t: (t / 'out').mkdir() or (t / 'out' / 'run').write_text('a file'), 'run'),
    (lambda t: (t / 'cache').write_text('a file'), 'cache_dir'),
])
def test_bad_output_locations_fail_before_loading_data(tmp_path, capsys, monkeypatch, setup,
                                                       flag):
  setup(tmp_path)
  before = _tree_digest(tmp_path)
  monkeypatch.setattr(experiment, 'load_data', lambda config: pytest.fail('data was loaded'))
  code, err = _main_in_process(_flags(tmp_path), capsys)
  assert code == 2 and flag in err and 'Traceback' not in err
  assert _tree_digest(tmp_path) == before


def test_a_name_too_long_for_the_filesystem_is_refused(tmp_path, capsys):
  code, err = _main_in_process(_flags(tmp_path, name='n' * 300), capsys)
  assert code == 2 and '--experiment_name' in err and 'allows 255' in err
  assert not (tmp_path / 'out').exists()


def test_a_read_only_output_filesystem_is_refused(tmp_path, capsys):
  with _tmpfs(tmp_path / 'ro', '1m') as mount:
    subprocess.run(['mount', '-o', 'remount,ro', str(mount)], check=True)
    code, err = _main_in_process(
        [f'--root_output_dir={mount}/results', '--experiment_name=x',
         f'--cache_dir={tmp_path / "cache"}'], capsys)
  assert code == 2 and '--root_output_dir' in err and 'read-only' in err


def test_a_full_disk_fails_with_one_message_and_resumes_after_space_is_freed(tmp_path):
  with _tmpfs(tmp_path / 'small', '200k') as mount:
    args = [f'--root_output_dir={mount}', '--experiment_name=full', '--total_rounds=60',
            '--num_clients=10', '--clients_per_round=3', f'--cache_dir={tmp_path / "cache"}',
            '--rounds_per_checkpoint=1']
    done = _launch(args)
    assert done.returncode == 1 and 'the disk is full' in done.stderr, done.stderr[-1500:]
    assert 'Traceback' not in done.stderr
    checkpoints = mount / 'full' / 'checkpoints'
    assert not [p for p in os.listdir(checkpoints) if '_temp' in p]
    subprocess.run(['mount', '-o', 'remount,size=64m', str(mount)], check=True)
    resumed = _launch(args)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert _rounds(mount / 'full') == list(range(1, 61))


def test_corrupt_hparams_is_named_and_corrupt_summary_is_rewritten(tmp_path):
  args = _flags(tmp_path, rounds=2)
  assert _launch(args).returncode == 0
  run = tmp_path / 'out' / 'run'
  (run / 'summary.json').write_text('{"status": "compl')
  again = _launch(args)
  assert again.returncode == 0 and 'summary.json' in again.stderr  # Warned, then resumed.
  assert _summary(run)['status'] == 'completed'
  (run / 'hparams.json').write_text('{not json')
  before = _tree_digest(run)
  refused = _launch(args)
  assert refused.returncode == 2 and 'hparams.json' in refused.stderr
  assert 'Traceback' not in refused.stderr and _tree_digest(run) == before


def test_sighup_is_handled_like_sigterm(tmp_path):
  run = _start(_flags(tmp_path, rounds=30))
  _wait_for_line(run, 'round  2/')
  run.send_signal(signal.SIGHUP)
  _, err = run.communicate(timeout=60)
  assert run.returncode == 130 and 'resume' in err and 'Traceback' not in err
  assert _summary(tmp_path / 'out' / 'run')['status'] == 'interrupted'


def test_sigterm_during_data_loading_exits_130_with_the_hint(tmp_path, capsys, monkeypatch):
  def load_data(config):
    os.kill(os.getpid(), signal.SIGTERM)  # Arrives while the data loads.
    time.sleep(5)
    pytest.fail('SIGTERM did not interrupt data loading')
  monkeypatch.setattr(experiment, 'load_data', load_data)
  previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
  try:
    code, err = _main_in_process(_flags(tmp_path), capsys)
  finally:
    signal.signal(signal.SIGTERM, previous[0])
    signal.signal(signal.SIGHUP, previous[1])
  assert code == 130 and 'run the same command again' in err and 'Traceback' not in err


def test_closed_stdout_does_not_stop_the_run(tmp_path):
  command = ' '.join([sys.executable, '-m', 'launch.run_experiment',
                      *_flags(tmp_path, rounds=4)])
  done = subprocess.run(['bash', '-c', f'{command} | head -1; exit ${{PIPESTATUS[0]}}'],
                        cwd=_ROOT, capture_output=True, text=True, timeout=300, env=_ENV)
  assert done.returncode == 0, done.stderr[-1500:]
  assert len(done.stdout.splitlines()) == 1 and 'Traceback' not in done.stderr
  run = tmp_path / 'out' / 'run'
  assert _rounds(run) == [1, 2, 3, 4] and _summary(run)['status'] == 'completed'
  assert 'round 4/4' in (run / 'console.log').read_text()


def test_an_unexpected_error_is_one_line_with_a_log_of_the_traceback(tmp_path, capsys,
                                                                    monkeypatch):
  monkeypatch.setattr(run_experiment, '_train',
                      lambda *args: (_ for _ in ()).throw(RuntimeError('boom')))
  code, err = _main_in_process(_flags(tmp_path), capsys)
  assert code == 1 and err.count('\n') == 1 and 'RuntimeError: boom' in err
  log_path = err.split('traceback in ')[1].rstrip(')\n')
  assert 'Traceback' in open(log_path).read()
