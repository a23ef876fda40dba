r"""Runs one federated-learning experiment and writes its results directory.

  python -m launch.run_experiment --dataset=mnist --data_dir=../shared/data/mnist \
      --partition=shards --model=mnist_cnn --client_epochs_per_round=5 --total_rounds=300

writes <root_output_dir>/<experiment_name>/{metrics.csv, hparams.json, summary.json,
checkpoints/}. Run the same command again to resume a killed run; a finished one is left as
it is unless --overwrite is given (a damaged metrics.csv of it is first restored from its final
checkpoint).

Exit codes:
  0    the run ended as asked: `completed`, or `target_reached` (--stop_at_target) or
       `budget_exhausted` (--dp_stop_at_budget), now or when found again ("nothing to do");
       --help.
  1    the run failed: `diverged` (final: found again, it exits 1 again), the worker died or
       hung, the disk filled up, the client-data cache vanished, an unexpected error (one line;
       the traceback in error.log). The same command resumes all but `diverged`.
  2    refused before training, nothing changed: a bad flag or value, missing data, a run
       directory that cannot be used (other settings, in use by another process, not a run of
       this package, a finished run whose metrics.csv cannot be restored).
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); the same command resumes.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TF is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
from launch import quiet_tf

tf = quiet_tf.import_tensorflow()  # First: without TF's three cuDNN/cuFFT/cuBLAS lines.

import errno
import signal
import sys
import tempfile
import traceback
from typing import Optional

from absl import app
from absl import flags
from absl import logging

from datasets import base as datasets_base
from launch import console
from tff_experiments import experiment
from tff_experiments import flag_binding
from tff_experiments.core import config as config_lib
from tff_experiments.core import files
from tff_experiments.results import metrics_csv
from tff_experiments.results import run_dir
from tff_experiments.results import run_lock
from tff_experiments.runner import checkpoints
from tff_experiments.runner import finished_run
from tff_experiments.runtime import execution
from tff_experiments.runtime import remote_workers
from tff_experiments.runtime import watchdog

flag_binding.define_flags()
for _name in flag_binding.flag_names() + ['overwrite']:
  flags.declare_key_flag(_name)  # Listed by --help, as flags of this script.

FLAGS = flags.FLAGS


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def _error(text: str) -> None:
  print(f'run_experiment: error: {text}', file=sys.stderr, flush=True)


def _is_disk_full(error: BaseException) -> bool:
  """ENOSPC from Python, or TF's ResourceExhaustedError writing a checkpoint on a full disk."""
  if isinstance(error, OSError):
    return error.errno == errno.ENOSPC
  return isinstance(error, tf.errors.OpError) and 'No space left on device' in str(error)


def _report_unexpected(error: BaseException, paths: Optional[run_dir.RunPaths]) -> None:
  """One line for the user; the traceback goes to error.log (in the run dir if there is one)."""
  trace = ''.join(traceback.format_exception(error))
  log_dir = paths.run_dir if paths and os.path.isdir(paths.run_dir) else tempfile.gettempdir()
  log_path = os.path.join(log_dir, 'error.log' if paths and log_dir == paths.run_dir
                          else f'run_experiment-error-{os.getpid()}.log')
  try:
    with open(log_path, 'a', encoding='utf-8') as f:
      f.write(trace)
  except OSError:
    log_path = '(could not be written)'
  _error(f'{type(error).__name__}: {error} (traceback in {log_path})')


def _prepare(config) -> tuple:
  """Checks and loads everything the run needs, before any directory is made (exit 2 if bad).

  Returns (paths, action, data, config completed with the settings that need the data).
  """
  paths, action = run_dir.plan(config, overwrite=FLAGS.overwrite)
  if action == run_dir.Action.DONE:
    return paths, action, None, config
  run_dir.check_locations(config)
  data = experiment.load_data(config)
  num_train_clients = len(data.train.client_ids)
  if config.schedule.clients_per_round > num_train_clients:
    raise datasets_base.DataError(
        f'--clients_per_round={config.schedule.clients_per_round} exceeds the '
        f'{num_train_clients} training clients of --dataset={config.data.dataset}')
  execution.check(config.run.workers, connect_timeout_s=config.run.worker_connect_timeout_s,
                  client_data=data.train)
  return paths, action, data, experiment.complete(config, data)


def _train(config, paths: run_dir.RunPaths, action: run_dir.Action, data) -> int:
  """Runs the experiment holding the run directory's lock; the exit code.

  From the directory's creation on, summary.json exists whatever happens: the round loop
  writes it, and a failure or interrupt before the loop began (starting the worker, building
  the computations) writes one of its own.
  """
  with run_dir.create(paths, action, config):
    print(f'{action.value}: {paths.run_dir}', flush=True)
    try:
      with execution.context(config.run.workers,
                             connect_timeout_s=config.run.worker_connect_timeout_s,
                             log_path=paths.worker_log) as worker:
        summary = experiment.run(config, data, paths, guard=worker.deadline)
    except BaseException as e:
      if not os.path.exists(paths.summary_json):
        experiment.write_summary(config, paths, error=e)
      raise
  print(f'results: {paths.run_dir} ({summary["status"]}; final accuracy '
        f'{summary["final_accuracy"]}, best {summary["best_accuracy"]}, rounds to target '
        f'{summary["rounds_to_target"]}, {summary["wall_time_s"]:.1f} s)')
  if summary['status'] not in run_dir.REQUESTED_ENDS:
    print(f'run_experiment: {summary["status"]}: {summary.get("message", "")}', file=sys.stderr)
    return 1
  return 0


def _finished(paths: run_dir.RunPaths) -> int:
  """A finished run found again: its metrics.csv checked (and restored), nothing else done;
  the exit code its end had."""
  restored = finished_run.restore_metrics(paths)
  if restored:
    print(restored, flush=True)
  print(f'{paths.run_dir} already holds the finished run of these settings; nothing to do '
        '(pass --overwrite to run it again).')
  summary = files.read_json(paths.summary_json) or {}
  if summary.get('status') not in run_dir.REQUESTED_ENDS:
    print(f'run_experiment: {summary.get("status")}: {summary.get("message", "")}',
          file=sys.stderr)
    return 1
  return 0


def main(argv):
  if len(argv) > 1:
    _error(f'unexpected arguments: {" ".join(argv[1:])} (flags are --name=value)')
    return 2
  stdout = console.install()
  # SIGTERM and SIGHUP unwind like Ctrl-C: the worker is stopped and the summary written.
  for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, _raise_keyboard_interrupt)
  logging.set_verbosity(logging.WARNING)  # TF's checkpoint INFO lines would drown progress.
  tf.get_logger().setLevel('ERROR')
  paths = None
  try:
    try:
      config = flag_binding.config_from_flags()
      paths, action, data, config = _prepare(config)
      if action == run_dir.Action.DONE:
        return _finished(paths)
    except (datasets_base.DataError, run_dir.RunDirError, config_lib.ConfigError,
            files.FileError, remote_workers.RemoteWorkerError) as e:
      _error(str(e))
      return 2
    stdout.log_to(os.path.join(paths.run_dir, 'console.log'))
    return _train(config, paths, action, data)
  except KeyboardInterrupt:
    if paths and os.path.isdir(paths.run_dir):
      print(f'interrupted; run the same command again to resume {paths.run_dir}',
            file=sys.stderr)
    else:
      print('interrupted before the run directory was made; run the same command again to '
            'start the run', file=sys.stderr)
    return 130
  except (run_lock.RunInUseError, run_dir.RunDirError) as e:  # Refused: nothing was changed.
    _error(str(e))
    return 2
  except (watchdog.WorkerFailure, remote_workers.RemoteWorkerError, checkpoints.CheckpointError,
          metrics_csv.MetricsCsvError, datasets_base.DataError) as e:
    _error(str(e))
    return 1
  except Exception as e:  # pylint: disable=broad-except  # One line + a log, never a traceback.
    if _is_disk_full(e):
      _error(f'the disk is full ({getattr(e, "filename", None) or paths.run_dir}); free space '
             'and run the same command again to resume from the last checkpoint')
    else:
      _report_unexpected(e, paths)
    return 1


def _without_absl_prefix(message: str) -> str:
  """A validator's message without absl's `flag --x=v: ` / `flags x=v, y=w: ` head: our
  checks' messages name their flags and values themselves."""
  head, sep, rest = message.partition(': ')
  if sep and head.startswith(('flag --', 'flags ')) and rest.startswith('--'):
    return rest
  return message


def _parse_flags(argv: list[str]) -> list[str]:
  """Parses the flags as absl does, but a bad flag exits 2 with one line, and --help (and
  --helpshort, --helpfull, --helpxml) exits 0: absl exits 1 for both."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _error(f'{_without_absl_prefix(str(e))} (--help lists the flags)')
    sys.exit(2)
  except SystemExit:  # Raised by absl's help flags only, once the help is printed.
    sys.exit(0)


if __name__ == '__main__':
  try:
    app.run(main, flags_parser=_parse_flags)
  except SystemExit as exit_request:
    console.exit_without_teardown(exit_request.code)
