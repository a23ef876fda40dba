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
import datetime
import signal
import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from datasets import base as datasets_base
from datasets import partitions
from datasets import registry as datasets_registry
from tff_experiments import aggregators
from tff_experiments import algorithms
from tff_experiments import config as config_lib
from tff_experiments import experiment
from tff_experiments import models
from tff_experiments import optimizers
from tff_experiments import results
from tff_experiments import runtime

# Output.
flags.DEFINE_string('experiment_name', None,
                    'Run directory name under --root_output_dir. Default: derived from the '
                    'dataset, algorithm, model, partition, seed and the start time.')
flags.DEFINE_string('root_output_dir', 'results', 'Where run directories are created.')
flags.DEFINE_bool('overwrite', False, 'Replace an existing run directory of the same name.')
# Data.
flags.DEFINE_enum('dataset', 'digits', sorted(datasets_registry.DATASETS),
                  'Dataset; digits is embedded (scikit-learn) and needs no download.')
flags.DEFINE_string('data_dir', None,
                    'Directory of the raw data (mnist: IDX .gz files; emnist: TFF sqlite cache; '
                    'femnist_leaf: LEAF train/ and test/). Missing mnist/emnist files are '
                    'downloaded into it when online.')
flags.DEFINE_string('cache_dir', os.path.join('~', '.cache', 'tff_experiments'),
                    'Where per-client data files are cached.')
flags.DEFINE_bool('only_digits', False, 'emnist/femnist_leaf: keep the 10 digit classes only.')
flags.DEFINE_enum('partition', None, sorted(partitions.PARTITIONS) + [datasets_registry.NATURAL],
                  'Client split: iid | shards (McMahan et al. 2017 pathological non-IID, 2 '
                  'label-sorted shards per client) | dirichlet (label skew, --dirichlet_alpha) | '
                  'natural (per-writer; emnist, femnist_leaf). Default: natural for natural '
                  'datasets, else iid.')
flags.DEFINE_integer('num_clients', 100, 'Clients to split a centralized dataset into.',
                     lower_bound=1)
flags.DEFINE_float('dirichlet_alpha', 0.5, 'Concentration of the dirichlet partition (> 0).')
# Model and algorithm.
flags.DEFINE_enum('model', None, sorted(models.MODELS),
                  "Model; default: the dataset's own (digits_mlp, mnist_2nn, emnist_cnn).")
flags.DEFINE_enum('algorithm', 'fedavg', sorted(algorithms.ALGORITHMS), 'Learning algorithm.')
flags.DEFINE_enum('aggregator', 'mean', sorted(aggregators.AGGREGATORS),
                  'Aggregation of client model updates.')
# Clients.
flags.DEFINE_integer('clients_per_round', 10, 'Clients sampled (without replacement) per round.',
                     lower_bound=1)
flags.DEFINE_integer('client_epochs_per_round', 1, 'Local epochs E.', lower_bound=1)
flags.DEFINE_integer('client_batch_size', 10, 'Local batch size B.', lower_bound=1)
flags.DEFINE_float('client_learning_rate', 0.1, 'Client SGD learning rate (> 0).')
# Server.
flags.DEFINE_enum('server_optimizer', 'sgd', sorted(optimizers.SERVER_OPTIMIZERS),
                  'Server optimizer applied to the averaged update (sgd at lr 1 = FedAvg).')
flags.DEFINE_float('server_learning_rate', 1.0, 'Server learning rate (> 0).')
flags.DEFINE_float('server_momentum', 0.9, 'Momentum of --server_optimizer=sgdm, in [0, 1).')
# Schedule.
flags.DEFINE_integer('total_rounds', 100, 'Training rounds.', lower_bound=1)
flags.DEFINE_integer('rounds_per_eval', 1, 'Evaluate on the test set every N rounds (and last).',
                     lower_bound=1)
flags.DEFINE_integer('rounds_per_checkpoint', 10, 'Checkpoint every N rounds (and last).',
                     lower_bound=1)
flags.DEFINE_float('target_accuracy', None,
                   'Test accuracy whose first (interpolated) round summary.json reports.')
flags.DEFINE_integer('seed', 0, 'Seed of client split, model init, sampling and shuffling.',
                     lower_bound=0)

FLAGS = flags.FLAGS

flags.register_validator('client_learning_rate', lambda v: v > 0, 'must be > 0')
flags.register_validator('server_learning_rate', lambda v: v > 0, 'must be > 0')
flags.register_validator('server_momentum', lambda v: 0 <= v < 1, 'must be in [0, 1)')
flags.register_validator('dirichlet_alpha', lambda v: v > 0, 'must be > 0')
flags.register_validator('target_accuracy', lambda v: v is None or 0 < v <= 1,
                         'must be in (0, 1]')
flags.register_validator('experiment_name',
                         lambda v: v is None or (v.strip() and os.sep not in v and v != '..'),
                         'must be a non-empty directory name without path separators')


@flags.multi_flags_validator(['dataset', 'partition'],
                             message='--partition does not fit --dataset: natural-split datasets '
                             '(emnist, femnist_leaf) take --partition=natural, the others '
                             f'one of {sorted(partitions.PARTITIONS)}')
def _check_partition(values):
  return (values['partition'] is None
          or values['partition'] in datasets_registry.partition_choices(values['dataset']))


@flags.multi_flags_validator(['clients_per_round', 'num_clients', 'dataset'],
                             message='--clients_per_round must be <= --num_clients')
def _check_cohort(values):
  if datasets_registry.DATASETS[values['dataset']].natural_split:
    return True  # Checked against the dataset's writers once it is loaded.
  return values['clients_per_round'] <= values['num_clients']


def config_from_flags() -> config_lib.ExperimentConfig:
  """Resolves defaults that depend on other flags into one frozen config."""
  info = datasets_registry.DATASETS[FLAGS.dataset]
  partition = FLAGS.partition or (datasets_registry.NATURAL if info.natural_split else 'iid')
  model = FLAGS.model or info.default_model
  name = FLAGS.experiment_name or '{}_{}_{}_{}_seed{}_{}'.format(
      FLAGS.dataset, FLAGS.algorithm, model, partition, FLAGS.seed,
      datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))
  return config_lib.ExperimentConfig(
      experiment_name=name,
      root_output_dir=FLAGS.root_output_dir,
      dataset=FLAGS.dataset,
      data_dir=os.path.abspath(os.path.expanduser(FLAGS.data_dir)) if FLAGS.data_dir else None,
      cache_dir=os.path.abspath(os.path.expanduser(FLAGS.cache_dir)),
      only_digits=FLAGS.only_digits,
      partition=partition,
      num_clients=FLAGS.num_clients,
      dirichlet_alpha=FLAGS.dirichlet_alpha,
      model=model,
      algorithm=FLAGS.algorithm,
      aggregator=FLAGS.aggregator,
      clients_per_round=FLAGS.clients_per_round,
      client_epochs_per_round=FLAGS.client_epochs_per_round,
      client_batch_size=FLAGS.client_batch_size,
      client_learning_rate=FLAGS.client_learning_rate,
      server_optimizer=FLAGS.server_optimizer,
      server_learning_rate=FLAGS.server_learning_rate,
      server_momentum=FLAGS.server_momentum,
      total_rounds=FLAGS.total_rounds,
      rounds_per_eval=FLAGS.rounds_per_eval,
      rounds_per_checkpoint=FLAGS.rounds_per_checkpoint,
      target_accuracy=FLAGS.target_accuracy,
      seed=FLAGS.seed,
  )


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
  config = config_from_flags()
  try:
    paths, action = results.plan(config, overwrite=FLAGS.overwrite)
    if action == results.Action.DONE:
      print(f'{paths.run_dir} already holds the completed run of these settings; nothing to do '
            '(pass --overwrite to run it again).')
      return 0
    data = experiment.load_data(config)
    num_train_clients = len(data.train.client_ids)
    if config.clients_per_round > num_train_clients:
      raise datasets_base.DataError(
          f'--clients_per_round={config.clients_per_round} exceeds the {num_train_clients} '
          f'training clients of --dataset={config.dataset}')
  except (datasets_base.DataError, results.RunDirError, ValueError) as e:
    print(f'run_experiment: error: {e}', file=sys.stderr)
    return 2
  results.create(paths, action, config)
  print(f'{action.value}: {paths.run_dir}', flush=True)
  try:
    with runtime.local_worker(log_path=paths.worker_log):
      summary = experiment.run(config, data, paths)
  except KeyboardInterrupt:
    print(f'interrupted; run the same command again to resume {paths.run_dir}', file=sys.stderr)
    return 130
  print(f'results: {paths.run_dir} (final accuracy {summary["final_accuracy"]}, '
        f'best {summary["best_accuracy"]}, rounds to target {summary["rounds_to_target"]}, '
        f'{summary["wall_time_s"]:.1f} s)')
  return 0


if __name__ == '__main__':
  app.run(main)
