r"""Runs one federated-learning experiment and writes its results directory.

  python -m launch.run_experiment --dataset=mnist --data_dir=../shared/data/mnist \
      --partition=shards --model=mnist_cnn --client_epochs_per_round=5 --total_rounds=300

writes <root_output_dir>/<experiment_name>/{metrics.csv, hparams.json, summary.json,
checkpoints/}. Run the same command again to resume a killed run; a finished one is left as
it is unless --overwrite is given.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TF is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
import signal
import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from datasets import base as datasets_base
from launch import flag_binding
from tff_experiments import experiment
from tff_experiments.core import config as config_lib
from tff_experiments.results import run_dir
from tff_experiments.runtime import local_worker

flag_binding.define_flags()
for _name in flag_binding.flag_names():
  flags.declare_key_flag(_name)  # Listed by --help, as flags of this script.
flags.DEFINE_bool('overwrite', False,
                  'Replace an existing run directory of the same name (it must be a run of this '
                  'package).')

FLAGS = flags.FLAGS


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  # SIGTERM unwinds like Ctrl-C, so the worker is stopped and the summary written.
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
  logging.set_verbosity(logging.WARNING)  # TF's checkpoint INFO lines would drown progress.
  tf.get_logger().setLevel('ERROR')
  try:
    config = flag_binding.config_from_flags()
    paths, action = run_dir.plan(config, overwrite=FLAGS.overwrite)
    if action == run_dir.Action.DONE:
      print(f'{paths.run_dir} already holds the completed run of these settings; nothing to do '
            '(pass --overwrite to run it again).')
      return 0
    data = experiment.load_data(config)
    num_train_clients = len(data.train.client_ids)
    if config.schedule.clients_per_round > num_train_clients:
      raise datasets_base.DataError(
          f'--clients_per_round={config.schedule.clients_per_round} exceeds the '
          f'{num_train_clients} training clients of --dataset={config.data.dataset}')
  except (datasets_base.DataError, run_dir.RunDirError, config_lib.ConfigError, ValueError) as e:
    print(f'run_experiment: error: {e}', file=sys.stderr)
    return 2
  run_dir.create(paths, action, config)
  print(f'{action.value}: {paths.run_dir}', flush=True)
  try:
    with local_worker.local_worker(log_path=paths.worker_log):
      summary = experiment.run(config, data, paths)
  except KeyboardInterrupt:
    print(f'interrupted; run the same command again to resume {paths.run_dir}', file=sys.stderr)
    return 130
  print(f'results: {paths.run_dir} ({summary["status"]}; final accuracy '
        f'{summary["final_accuracy"]}, best {summary["best_accuracy"]}, rounds to target '
        f'{summary["rounds_to_target"]}, {summary["wall_time_s"]:.1f} s)')
  if summary['status'] != 'completed':
    print(f'run_experiment: {summary["status"]}: {summary.get("message", "")}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  app.run(main)
