"""Shared pieces of the fault tests: real `launch.run_experiment` subprocesses on the embedded
digits dataset (2-4 rounds), a tree digest (nothing else may change), a tmpfs where the test may
mount one, and `main` in this process for faults before any training."""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import pandas as pd
import process_tree
import pytest

from launch import run_experiment

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}


def run_flags(tmp_path, name='run', rounds=3, **extra):
  """The flags of a small digits run under `tmp_path/out`, checkpointing every round."""
  args = {'root_output_dir': str(tmp_path / 'out'), 'experiment_name': name,
          'total_rounds': rounds, 'num_clients': 10, 'clients_per_round': 3,
          'rounds_per_checkpoint': 1, 'cache_dir': str(tmp_path / 'cache'), **extra}
  return [f'--{k}={v}' for k, v in args.items()]


def launch(args, timeout=300, **kwargs):
  return subprocess.run([sys.executable, '-m', 'launch.run_experiment', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=ENV, **kwargs)


def start(args, **kwargs):
  return subprocess.Popen([sys.executable, '-m', 'launch.run_experiment', *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                          **kwargs)


def wait_for_line(process, prefix):
  for line in process.stdout:
    if line.startswith(prefix):
      return line
  raise AssertionError(f'no line starting {prefix!r}; stderr: {process.stderr.read()[-2000:]}')


def interrupt_after(args, prefix):
  """Starts a run and Ctrl-C's it once a line starting `prefix` is printed."""
  run = start(args)
  wait_for_line(run, prefix)
  run.send_signal(signal.SIGINT)
  run.communicate(timeout=60)


def tree_digest(root) -> str:
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


def summary(run_dir):
  return json.loads((run_dir / 'summary.json').read_text())


def rounds(run_dir):
  return list(pd.read_csv(run_dir / 'metrics.csv')['round_num'])


def worker_pid(driver_pid):
  """The TFF worker_binary of the run (a child of its launcher, a child of the driver)."""
  found, = process_tree.worker_binaries(driver_pid)
  return found


@contextlib.contextmanager
def tmpfs(path, size):
  """A tmpfs of `size` at `path` (skips when this machine does not allow mounting)."""
  os.makedirs(path, exist_ok=True)
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)],
                    capture_output=True).returncode != 0:
    pytest.skip('cannot mount a tmpfs here')
  try:
    yield path
  finally:
    subprocess.run(['umount', '-l', str(path)], capture_output=True)


def main_in_process(argv, capsys):
  """(exit code, stderr) of run_experiment.main on parsed flags in this process."""
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(['run_experiment', *argv])
    code = run_experiment.main(['run_experiment'])
  return code, capsys.readouterr().err


class NoWorker:
  """An execution context that starts nothing, for runs that end before their first round."""

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return None

  @staticmethod
  def deadline(seconds):
    del seconds
    raise AssertionError('no round should run')
