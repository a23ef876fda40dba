r"""NIID-Bench's MNIST rows (Li et al. 2021, Table 3) next to the paper's: FedAvg, FedProx, FedNova.

  .venv/bin/python -m bench.niid_bench > /tmp/niid_bench.txt 2>&1       # hours; resumable
  .venv/bin/python -m bench.niid_bench --partitions=dir0.5 --algorithms=fedprox   # one cell
  .venv/bin/python -m bench.niid_bench --rounds=2 --partitions=iid --algorithms=fedavg  # smoke

NIID-Bench's setting, as Flower's `niid_bench` baseline re-runs it: MNIST split over 10 clients,
all of them in every round, 50 rounds, E = 10 local epochs, B = 64, client SGD at lr 0.01 with
momentum 0.9, the `lenet` CNN, FedProx mu = 0.01. Partitions: IID, Dirichlet(0.5) label skew,
and #C=k (`label_quantity`: k labels per client) for k = 1, 2, 3. The paper reports the best
test accuracy over the rounds (evaluated every round here). Each cell is one
`python -m launch.run_experiment` subprocess with its run directory in bench/out/; a stopped
cell resumes from its checkpoint and a finished one is only read back, so the table can be
completed over several sittings (--time_budget_s bounds one cell per sitting).
"""

import os
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags

from bench import common
from tff_experiments.core import files

# Best-round test accuracy (%) of Li et al. 2021, Table 3, MNIST (None: too unstable to compare).
PAPER = {
    'iid': {'fedavg': 99.1, 'fedprox': 99.2, 'fednova': 99.0},
    'dir0.5': {'fedavg': 98.9, 'fedprox': 99.0, 'fednova': 98.8},
    'c1': {'fedavg': None, 'fedprox': None, 'fednova': None},
    'c2': {'fedavg': 96.6, 'fedprox': 96.7, 'fednova': 96.5},
    'c3': {'fedavg': 98.2, 'fedprox': 97.8, 'fednova': 97.7},
}
PARTITIONS = {  # key -> (label, partition flags)
    'iid': ('IID', {'partition': 'iid'}),
    'dir0.5': ('Dirichlet(0.5)', {'partition': 'dirichlet', 'dirichlet_alpha': 0.5}),
    'c1': ('#C=1', {'partition': 'label_quantity', 'labels_per_client': 1}),
    'c2': ('#C=2', {'partition': 'label_quantity', 'labels_per_client': 2}),
    'c3': ('#C=3', {'partition': 'label_quantity', 'labels_per_client': 3}),
}
ALGORITHMS = {'fedavg': {}, 'fedprox': {'proximal_mu': 0.01}, 'fednova': {}}
NIID_BENCH = {
    'dataset': 'mnist', 'data_dir': common.MNIST_DIR, 'num_clients': 10,
    'clients_per_round': 10, 'model': 'lenet', 'client_epochs_per_round': 10,
    'client_batch_size': 64, 'client_learning_rate': 0.01, 'client_momentum': 0.9,
    'server_optimizer': 'sgd', 'server_learning_rate': 1.0, 'rounds_per_eval': 1,
    'rounds_per_checkpoint': 1, 'seed': 42,
}
TOLERANCE_POINTS = 1.5

_ROUNDS = flags.DEFINE_integer('rounds', 50, 'Rounds per cell (NIID-Bench: 50).', lower_bound=1)
_PARTITIONS = flags.DEFINE_list('partitions', list(PARTITIONS), 'Partitions (rows).')
_ALGORITHMS = flags.DEFINE_list('algorithms', list(ALGORITHMS), 'Algorithms (columns).')
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', 0, 'Seconds per cell (0: no limit).')


def run_name(partition: str, algorithm: str) -> str:
  return f'niid_{partition}_{algorithm}_r{_ROUNDS.value}'


def command(partition: str, algorithm: str) -> list[str]:
  settings = {**NIID_BENCH, **PARTITIONS[partition][1], 'algorithm': algorithm,
              **ALGORITHMS[algorithm], 'total_rounds': _ROUNDS.value,
              'root_output_dir': common.OUT_DIR,
              'experiment_name': run_name(partition, algorithm)}
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def summary(partition: str, algorithm: str) -> Optional[dict]:
  path = os.path.join(common.OUT_DIR, run_name(partition, algorithm), 'summary.json')
  try:
    return files.read_json(path)
  except files.FileError:
    return None


def cell(partition: str, algorithm: str) -> tuple[str, str]:
  """(ours vs paper, verdict) for one cell: best accuracy in %, within 1.5 points or not."""
  paper = PAPER[partition][algorithm]
  done = summary(partition, algorithm)
  best = (done or {}).get('best_accuracy')
  if best is None:
    return f'- / {paper if paper is not None else "n/a"}', 'not run'
  ours = 100 * best
  rounds = f' ({done["rounds_completed"]}/{done["total_rounds"]} rounds)' if (
      done['rounds_completed'] < done['total_rounds']) else ''
  if paper is None:
    return f'{ours:.1f} / n/a{rounds}', 'not compared'
  verdict = 'ok' if abs(ours - paper) <= TOLERANCE_POINTS else 'off'
  return f'{ours:.1f} / {paper}{rounds}', f'{verdict} ({ours - paper:+.1f})'


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  common.check_choices('--partitions', _PARTITIONS.value, list(PARTITIONS))
  common.check_choices('--algorithms', _ALGORITHMS.value, list(ALGORITHMS))
  print(common.machine_line(), flush=True)
  common.run_cells([(run_name(partition, algorithm), command(partition, algorithm))
                    for partition in _PARTITIONS.value for algorithm in _ALGORITHMS.value],
                   budget_s=_TIME_BUDGET_S.value)
  rows = []
  for partition in _PARTITIONS.value:
    cells = [cell(partition, a) for a in _ALGORITHMS.value]
    rows.append([PARTITIONS[partition][0]] + [c for pair in cells for c in pair])
  headers = ['partition'] + [h for a in _ALGORITHMS.value
                             for h in (f'{a} ours / paper %', f'{a} within 1.5')]
  print(f'\nNIID-Bench MNIST (Li et al. 2021, Table 3): 10 clients, all per round, '
        f'{_ROUNDS.value} rounds, E=10, B=64, SGD lr 0.01 momentum 0.9, lenet, FedProx mu '
        f'0.01; best-round test accuracy, seed {NIID_BENCH["seed"]}')
  print(common.format_table(headers, rows))


if __name__ == '__main__':
  app.run(main)
