r"""What secure aggregation costs: round time and uplink bits by cohort size, and accuracy.

  .venv/bin/python -m bench.secure_aggregation > /tmp/secure_aggregation.txt 2>&1
  .venv/bin/python -m bench.secure_aggregation --cohorts=10 --cost_rounds=2 \
      --accuracy_rounds=2   # smoke test

McMahan's MNIST setting (2NN, E=1, B=10, client lr 0.1, server SGD lr 1), 100 clients.

- Cost: for each of --cohorts clients per round (all 100 clients reach 100) and each of --modes
  (`none`, `masking`, `two_server`, and `masking_k<k>` for SecAgg+ with k neighbours),
  --cost_rounds rounds. The table gives the median round time after the first (which traces
  the computation) and against `none`, the driver's protocol time within it (keys, Shamir,
  reconstruction: `secagg/protocol_time_s`), and the uplink per round: everything
  (`secagg/uplink_bits_round`, or `comm/uplink_bits_round` without secure aggregation), of it
  the key-agreement and share traffic. The pairwise masks make each client expand n - 1 PRG
  streams (k with SecAgg+) and the shares grow as n^2 (n k).
- Accuracy: 10 clients per round, --accuracy_rounds rounds, each mode against `none`.

Each cell is one `python -m launch.run_experiment` subprocess with its run directory in
bench/out/; runs resume, and a finished one is only read back.
"""

import os
import statistics
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
import pandas as pd

from bench import common

_COHORTS = flags.DEFINE_list('cohorts', ['10', '50', '100'], 'Clients per round (cost).')
_MODES = flags.DEFINE_list('modes', ['none', 'masking', 'two_server', 'masking_k8'],
                           'none | masking | two_server | masking_k<k> (SecAgg+).')
_COST_ROUNDS = flags.DEFINE_integer('cost_rounds', 4, 'Rounds per cost run.', lower_bound=2)
_ACCURACY_ROUNDS = flags.DEFINE_integer('accuracy_rounds', 50, 'Rounds per accuracy run.',
                                        lower_bound=1)
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', 0, 'Seconds per run (0: no limit).')


def mode_settings(mode: str) -> dict:
  """The run settings of a --modes entry."""
  if mode.startswith('masking_k'):
    return {'secure_aggregation': 'masking', 'secagg_neighbors': int(mode[len('masking_k'):])}
  return {'secure_aggregation': mode}


def run_name(kind: str, mode: str, cohort: int, rounds: int) -> str:
  return f'secagg_{kind}_{mode}_n{cohort}_r{rounds}'


def command(kind: str, mode: str, cohort: int, rounds: int) -> list[str]:
  settings = {
      **common.MCMAHAN_MNIST, 'partition': 'iid', 'model': 'mnist_2nn',
      'clients_per_round': cohort, 'total_rounds': rounds,
      'rounds_per_eval': 10 if kind == 'accuracy' else rounds, 'rounds_per_checkpoint': 10,
      'root_output_dir': common.OUT_DIR, 'experiment_name': run_name(kind, mode, cohort, rounds),
      **mode_settings(mode)}
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def read(kind: str, mode: str, cohort: int, rounds: int) -> Optional[pd.DataFrame]:
  path = os.path.join(common.OUT_DIR, run_name(kind, mode, cohort, rounds), 'metrics.csv')
  frame = pd.read_csv(path) if os.path.exists(path) else None
  return frame if frame is not None and not frame.empty else None


def _median_round_s(frame: pd.DataFrame) -> float:
  return statistics.median(frame['round_time_s'].iloc[1:] if len(frame) > 1
                           else frame['round_time_s'])


def cost_rows(cohorts: Sequence[int], modes: Sequence[str]) -> list[list[str]]:
  rounds, rows = _COST_ROUNDS.value, []
  for cohort in cohorts:
    plain = read('cost', 'none', cohort, rounds)
    for mode in modes:
      frame = read('cost', mode, cohort, rounds)
      if frame is None:
        rows.append([cohort, mode] + ['-'] * 6)
        continue
      round_s = _median_round_s(frame)
      versus = f'{round_s / _median_round_s(plain):.2f}x' if plain is not None else '-'
      secure = 'secagg/uplink_bits_round' in frame
      uplink = frame['secagg/uplink_bits_round' if secure else 'comm/uplink_bits_round']
      protocol_bits = (frame['secagg/key_agreement_bits'] + frame['secagg/share_bits']
                       if secure else 0 * uplink)
      protocol_s = frame['secagg/protocol_time_s'].median() if secure else 0.0
      rows.append([cohort, mode, f'{round_s:.2f}', versus, f'{protocol_s:.2f}',
                   f'{uplink.mean() / 1e6:,.1f}', f'{protocol_bits.mean() / 1e6:,.2f}',
                   f'{uplink.mean() / cohort / 1e6:,.2f}'])
  return rows


def accuracy_rows(modes: Sequence[str]) -> list[list[str]]:
  rounds = _ACCURACY_ROUNDS.value
  plain, rows = read('accuracy', 'none', 10, rounds), []
  for mode in modes:
    frame = read('accuracy', mode, 10, rounds)
    if frame is None:
      rows.append([mode] + ['-'] * 4)
      continue
    final = frame['eval/accuracy'].dropna().iloc[-1]
    delta = (f'{100 * (final - plain["eval/accuracy"].dropna().iloc[-1]):+.2f}'
             if plain is not None else '-')
    aborted = int((frame['round_status'] == 'aborted').sum())
    rows.append([mode, f'{final:.4f}', f'{frame["eval/accuracy"].max():.4f}', delta, aborted])
  return rows


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  for mode in _MODES.value:
    if not (mode in ('none', 'masking', 'two_server') or mode.startswith('masking_k')):
      raise app.UsageError(f'unknown --modes entry {mode!r}')
  cohorts = [int(c) for c in _COHORTS.value]
  modes = ['none'] + [m for m in _MODES.value if m != 'none']
  print(common.machine_line(), flush=True)
  cells = [(run_name('cost', m, n, _COST_ROUNDS.value), command('cost', m, n, _COST_ROUNDS.value))
           for n in cohorts for m in modes]
  cells += [(run_name('accuracy', m, 10, _ACCURACY_ROUNDS.value),
             command('accuracy', m, 10, _ACCURACY_ROUNDS.value)) for m in modes]
  common.run_cells(cells, budget_s=_TIME_BUDGET_S.value)
  print(f'\nCost: MNIST 2NN (199,210 parameters), E=1, B=10, {_COST_ROUNDS.value} rounds; '
        'median round time after the first; uplink per round')
  print(common.format_table(
      ['clients/round', 'mode', 'round s', 'vs none', 'protocol s', 'uplink Mbit',
       'keys+shares Mbit', 'Mbit/client'], cost_rows(cohorts, modes)))
  print(f'\nAccuracy: 10 clients per round, {_ACCURACY_ROUNDS.value} rounds, seed 0')
  print(common.format_table(['mode', 'final acc', 'best acc', 'vs none (points)',
                             'aborted rounds'], accuracy_rows(modes)))


if __name__ == '__main__':
  app.run(main)
