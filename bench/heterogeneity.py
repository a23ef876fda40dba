r"""System heterogeneity: FedAvg (drop or partial work), FedProx and FedNova with 50% stragglers.

  .venv/bin/python -m bench.heterogeneity > /tmp/heterogeneity.txt 2>&1
  .venv/bin/python -m bench.heterogeneity --rounds=2 --datasets=mnist --methods=fedavg_drop  # smoke

The FedProx paper's question (Li et al. 2020, Fig. 1): when half of each round's clients are
stragglers, does the proximal term help? Every round 50% of the sampled clients (seeded by seed
and round) are stragglers: with `drop` they do not report (FedAvg as usually run); with
`partial` each does a uniformly random 1..all of its local steps and reports. Methods:
FedAvg(drop), FedAvg(partial), FedProx(partial) with mu in {0.01, 0.1, 1}, FedNova(partial,
normalized averaging). Data: real MNIST `shards` (McMahan's pathological split, 100 clients) and
the LEAF FEMNIST sample (natural per-writer split, 62 classes). Both: 10 clients per round,
E = 5, B = 10, client SGD lr 0.05, the 2NN (the paper's MNIST model is multinomial regression;
the 2NN keeps the runs short on 2 cores), --rounds rounds (default 50). Each cell is one
`python -m launch.run_experiment` subprocess in bench/out/ (resumable; finished cells are read
back). The table gives final and best test accuracy and the mean local steps per client.
"""

import os
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
import pandas as pd

from bench import common

METHODS = {  # key -> (label, flags)
    'fedavg_drop': ('FedAvg, stragglers drop', {'algorithm': 'fedavg', 'straggler_policy': 'drop'}),
    'fedavg_partial': ('FedAvg, partial work', {'algorithm': 'fedavg'}),
    'fedprox_0.01': ('FedProx mu=0.01, partial', {'algorithm': 'fedprox', 'proximal_mu': 0.01}),
    'fedprox_0.1': ('FedProx mu=0.1, partial', {'algorithm': 'fedprox', 'proximal_mu': 0.1}),
    'fedprox_1': ('FedProx mu=1, partial', {'algorithm': 'fedprox', 'proximal_mu': 1.0}),
    'fednova': ('FedNova, partial', {'algorithm': 'fednova'}),
}
DATASETS = {  # key -> (label, flags)
    'mnist': ('MNIST shards', {'dataset': 'mnist', 'data_dir': common.MNIST_DIR,
                               'partition': 'shards', 'num_clients': 100}),
    'femnist': ('FEMNIST (LEAF sample)', {
        'dataset': 'femnist_leaf', 'partition': 'natural',
        'data_dir': os.path.join(os.path.dirname(common.MNIST_DIR), 'femnist_leaf')}),
}
SHARED = {
    'model': 'mnist_2nn', 'clients_per_round': 10, 'client_epochs_per_round': 5,
    'client_batch_size': 10, 'client_learning_rate': 0.05, 'straggler_fraction': 0.5,
    'straggler_policy': 'partial', 'server_optimizer': 'sgd', 'server_learning_rate': 1.0,
    'rounds_per_eval': 5, 'rounds_per_checkpoint': 10, 'seed': 0,
}

_ROUNDS = flags.DEFINE_integer('rounds', 50, 'Rounds per cell.', lower_bound=1)
_DATASETS = flags.DEFINE_list('datasets', list(DATASETS), 'Datasets.')
_METHODS = flags.DEFINE_list('methods', list(METHODS), 'Methods.')
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', 0, 'Seconds per cell (0: no limit).')


def run_name(dataset: str, method: str) -> str:
  return f'hetero_{dataset}_{method}_r{_ROUNDS.value}'


def command(dataset: str, method: str) -> list[str]:
  settings = {**SHARED, **DATASETS[dataset][1], **METHODS[method][1],
              'total_rounds': _ROUNDS.value, 'root_output_dir': common.OUT_DIR,
              'experiment_name': run_name(dataset, method)}
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def row(dataset: str, method: str) -> list[str]:
  path = os.path.join(common.OUT_DIR, run_name(dataset, method), 'metrics.csv')
  frame: Optional[pd.DataFrame] = pd.read_csv(path) if os.path.exists(path) else None
  label = [DATASETS[dataset][0], METHODS[method][0]]
  if frame is None or frame.empty:
    return label + ['-'] * 4
  accuracy = frame['eval/accuracy'].dropna()
  return label + [len(frame), f'{accuracy.iloc[-1]:.4f}', f'{accuracy.max():.4f}',
                  f'{frame["train/mean_client_steps"].mean():.1f}']


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  common.check_choices('--datasets', _DATASETS.value, list(DATASETS))
  common.check_choices('--methods', _METHODS.value, list(METHODS))
  print(common.machine_line(), flush=True)
  common.run_cells([(run_name(dataset, method), command(dataset, method))
                    for dataset in _DATASETS.value for method in _METHODS.value],
                   budget_s=_TIME_BUDGET_S.value)
  print(f'\n50% stragglers per round, 10 clients per round, E=5, B=10, lr 0.05, 2NN, '
        f'{_ROUNDS.value} rounds, seed 0')
  print(common.format_table(
      ['data', 'method', 'rounds', 'final acc', 'best acc', 'mean local steps'],
      [row(d, m) for d in _DATASETS.value for m in _METHODS.value]))


if __name__ == '__main__':
  app.run(main)
