r"""Privacy against utility of DP-FedAvg: accuracy and epsilon on real MNIST and LEAF FEMNIST.

  .venv/bin/python -m bench.privacy_utility > /tmp/privacy_utility.txt 2>&1
  .venv/bin/python -m bench.privacy_utility --dry_run        # print the commands only
  .venv/bin/python -m bench.privacy_utility --groups=noise --rounds=2 --max_points=2 \
      --root_output_dir=/tmp/bench_privacy                    # a smoke test

DP-FedAvg (McMahan et al. 2018) set up as in TFF's DP tutorial: the 2NN (200-200 MLP),
Poisson client sampling, unweighted averaging of L2-clipped updates (clip 0.3), Gaussian noise,
plain server SGD at lr 1, delta 1e-5 (server momentum 0.9 with clip 1, the tutorial's server
optimizer, accumulated the noise and diverged here: z=0.5 fell from 0.83 to 0.49 by round 100).
MNIST: 1000 clients (60 examples each), 50 expected per round (q = 0.05), B=20, E=1, client lr
0.1 (a client takes 3 steps, so the tutorial's 0.01, for EMNIST writers of ~200 examples, would
barely move). --rounds rounds
(default 100), evaluated every 5 and at the last. Groups (--groups, default all):

  noise     MNIST iid and shards (2 label-sorted shards per client), z in {0, 0.3, 0.5, 1}
            (z=0 clips but adds no noise: the non-private baseline, epsilon infinite)
  target    MNIST iid, --dp_target_epsilon in {1, 2, 8}: z calibrated to it over --rounds
  clipping  MNIST iid z=0.5: fixed clip 0.3 against adaptive clipping (Andrew et al. 2021,
            median of update norms) from 0.1, TFF's initial clip
  mode      MNIST iid z=0.5: central against local DP (each client noises its own update)
  femnist   the LEAF FEMNIST sample, natural per-writer split, digits only (the tutorial's
            task), z in {0, 0.5, 1}; 50 of its 105 train writers per round, the tutorial's
            cohort and so its noise on the average, but q = 0.48 makes epsilon far larger

Each point is one `python -m launch.run_experiment` subprocess with a stable
--experiment_name, its run directory and log in --root_output_dir: a stopped run resumes and a
finished one is only read back. The table reads each run's summary.json (the calibrated z of
the target rows included); then `launch.compare` over the run directories writes its tables and
the accuracy-vs-epsilon plot into <root_output_dir>/compare.
"""

import dataclasses
import json
import math
import os
import sys
from typing import Any, Optional, Sequence

from absl import app
from absl import flags

from bench import common

DELTA = 1e-5
# Fixed clip: about the median norm of the early updates here (what adaptive clipping finds).
FIXED_CLIP = 0.3
# TFF's DP tutorial (EMNIST digits, 2NN, 50 clients per round, adaptive clip, 100 rounds).
TFF_TUTORIAL = {0.0: 0.805, 0.5: 0.770, 1.0: 0.383}

# Shared by every point: DP-FedAvg as in the module docstring.
DP_FEDAVG: dict[str, Any] = {
    'model': 'mnist_2nn', 'clients_per_round': 50, 'client_sampling': 'poisson',
    'client_batch_size': 20, 'client_epochs_per_round': 1, 'client_learning_rate': 0.1,
    'server_optimizer': 'sgd', 'server_learning_rate': 1.0,
    'dp_mechanism': 'gaussian', 'dp_delta': DELTA, 'seed': 0,
    'rounds_per_eval': 5, 'rounds_per_checkpoint': 10,
}
DATA: dict[str, tuple[str, dict[str, Any]]] = {  # key -> (table label, dataset flags)
    'mnist_iid': ('mnist iid', {'dataset': 'mnist', 'partition': 'iid', 'num_clients': 1000}),
    'mnist_shards': ('mnist shards',
                     {'dataset': 'mnist', 'partition': 'shards', 'num_clients': 1000}),
    'femnist': ('femnist_leaf natural',
                {'dataset': 'femnist_leaf', 'partition': 'natural', 'only_digits': True}),
}


@dataclasses.dataclass(frozen=True)
class Point:
  """One run: data, noise (a multiplier z, or a target epsilon to calibrate z to), clip, mode."""
  data: str
  z: Optional[float] = None
  epsilon: Optional[float] = None
  clip: str = 'fixed'  # 'fixed' (FIXED_CLIP) or 'adaptive' (from 0.1).
  mode: str = 'central'  # --dp_mode.

  def noise(self) -> str:
    return f'eps{self.epsilon:g}' if self.epsilon is not None else f'z{self.z:g}'

  def setting(self) -> str:
    noise = f'ε={self.epsilon:g} target' if self.epsilon is not None else f'z={self.z:g}'
    return f'{noise} {self.clip} clip {self.mode}'


GROUPS: dict[str, list[Point]] = {
    'noise': [Point(d, z=z) for d in ('mnist_iid', 'mnist_shards') for z in (0, 0.3, 0.5, 1)],
    'target': [Point('mnist_iid', epsilon=e) for e in (1, 2, 8)],
    'clipping': [Point('mnist_iid', z=0.5), Point('mnist_iid', z=0.5, clip='adaptive')],
    'mode': [Point('mnist_iid', z=0.5), Point('mnist_iid', z=0.5, mode='local')],
    'femnist': [Point('femnist', z=z) for z in (0, 0.5, 1)],
}

_ROUNDS = flags.DEFINE_integer('rounds', 100, 'Rounds per run.', lower_bound=1)
_GROUPS = flags.DEFINE_list('groups', list(GROUPS), f'Groups to run, from {list(GROUPS)}.')
_ROOT = flags.DEFINE_string('root_output_dir', 'results/bench_privacy',
                            'Run directories, logs and compare/ (relative: to the repo root).')
_DATA_DIR = flags.DEFINE_string('data_dir', '../shared/data/mnist',
                                'MNIST IDX files (relative: to the repo root).')
_FEMNIST_DIR = flags.DEFINE_string('femnist_dir', '../shared/data/femnist_leaf',
                                   'LEAF FEMNIST train/ and test/ (relative: to the repo root).')
_MAX_POINTS = flags.DEFINE_integer('max_points', 0, 'Run only the first N points (0: all).',
                                   lower_bound=0)
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the commands only.')


def repo_path(path: str) -> str:
  """`path` resolved against the repo root (where the runs execute) unless absolute."""
  return os.path.normpath(os.path.join(common.REPO_ROOT, path))


def run_name(point: Point) -> str:
  return f'dp_{point.data}_{point.noise()}_{point.clip}_{point.mode}_r{_ROUNDS.value}'


def command(point: Point) -> list[str]:
  """The `launch.run_experiment` command line of `point`."""
  data_dir = _FEMNIST_DIR.value if point.data == 'femnist' else _DATA_DIR.value
  settings = {**DP_FEDAVG, **DATA[point.data][1], 'data_dir': repo_path(data_dir),
              'dp_mode': point.mode, 'dp_clip_norm': 0.1 if point.clip == 'adaptive' else FIXED_CLIP}
  if point.clip == 'adaptive':
    settings['dp_adaptive_clip'] = True
  if point.epsilon is not None:
    settings['dp_target_epsilon'] = point.epsilon
  else:
    settings['dp_noise_multiplier'] = point.z
  settings.update(total_rounds=_ROUNDS.value, root_output_dir=repo_path(_ROOT.value),
                  experiment_name=run_name(point))
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def selected_points() -> list[Point]:
  """The points of --groups in order, each once (clipping and mode share their z=0.5 run)."""
  points = list(dict.fromkeys(p for g in _GROUPS.value for p in GROUPS[g]))
  return points[:_MAX_POINTS.value] if _MAX_POINTS.value else points


def read_summary(point: Point) -> Optional[dict[str, Any]]:
  path = os.path.join(repo_path(_ROOT.value), run_name(point), 'summary.json')
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def number(value: Optional[float], fmt: str) -> str:
  if value is None:
    return '-'
  return '∞' if math.isinf(value) else format(value, fmt)


def table_row(point: Point) -> list[str]:
  """data | setting | z | clip | mode | rounds | final acc | best acc | final epsilon."""
  summary = read_summary(point) or {}
  z = summary.get('dp_noise_multiplier', point.z)
  rounds = str(summary.get('rounds_completed', '-'))
  if summary.get('status', 'completed') != 'completed':
    rounds += f' ({summary["status"]})'
  elif not summary:
    rounds = 'no summary (see its log)'
  return [DATA[point.data][0], point.setting(), number(z, '.3f'), point.clip, point.mode,
          rounds, number(summary.get('final_accuracy'), '.4f'),
          number(summary.get('best_accuracy'), '.4f'),
          number(math.inf if summary.get('final_epsilon_unbounded')
                 else summary.get('final_epsilon'), '.3g')]


def compare(points: Sequence[Point]) -> None:
  """`launch.compare` over the finished run directories, into <root>/compare (log beside)."""
  root = repo_path(_ROOT.value)
  runs = [os.path.join(root, run_name(p)) for p in points
          if os.path.exists(os.path.join(root, run_name(p), 'metrics.csv'))]
  if not runs or not os.path.exists(os.path.join(common.REPO_ROOT, 'launch', 'compare.py')):
    return
  out = os.path.join(root, 'compare')
  code, _, _ = common.run_logged(
      [sys.executable, '-m', 'launch.compare', *runs, f'--output_dir={out}'],
      os.path.join(root, 'compare.log'))
  plot = os.path.join(out, 'accuracy_vs_epsilon.png')
  print(f'\nlaunch.compare (exit {code}): tables and figures in {out}'
        + (f'; privacy-utility plot {plot}' if os.path.exists(plot) else
           f'; no accuracy_vs_epsilon.png (see {root}/compare.log)'))


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  common.check_choices('--groups', _GROUPS.value, list(GROUPS))
  points = selected_points()
  if _DRY_RUN.value:
    for point in points:
      print(' '.join(command(point)))
    return
  root = repo_path(_ROOT.value)
  os.makedirs(root, exist_ok=True)
  print(common.machine_line(), flush=True)
  common.run_cells([(run_name(p), command(p)) for p in points], log_dir=root)
  print(f'\nDP-FedAvg, 2NN, 50 expected clients per round (Poisson), B=20, E=1, client lr 0.1, '
        f'server SGD lr 1, clip {FIXED_CLIP} (adaptive from 0.1), {_ROUNDS.value} rounds, RDP '
        'accountant; target rows show the calibrated z')
  print(common.format_table(
      ['data', 'setting', 'noise multiplier', 'clip', 'mode', 'rounds', 'final acc',
       'best acc', f'final ε (δ={DELTA:g})'], [table_row(p) for p in points]))
  print('\nFor comparison, a different dataset: TFF DP tutorial (federated EMNIST digits, '
        '3383 writers, 50 clients/round, adaptive clip, 100 rounds) final accuracy: '
        + ', '.join(f'z={z:g} -> {acc:.3f}' for z, acc in TFF_TUTORIAL.items()))
  compare(points)


if __name__ == '__main__':
  app.run(main)
