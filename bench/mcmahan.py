r"""Rounds to target accuracy on MNIST vs McMahan et al. 2017, Table 2 (FedAvg rows).

  .venv/bin/python -m bench.mcmahan > /tmp/mcmahan.txt 2>&1
  .venv/bin/python -m bench.mcmahan --rows=2nn_iid --max_rounds_2nn_iid=3   # a smoke test

Real MNIST, 100 clients (IID, or the paper's pathological non-IID split of 2 label-sorted
shards per client), C=0.1, B=10, client SGD lr 0.1, server SGD lr 1 (plain averaging):

  row         model      E  target  paper rounds (IID / non-IID)
  2nn_iid     mnist_2nn  1  97%     87
  cnn_iid     mnist_cnn  5  99%     20
  2nn_noniid  mnist_2nn  1  97%     664
  cnn_noniid  mnist_cnn  5  99%     229

Each row is one `python -m launch.run_experiment` subprocess, evaluating every round, with its
output in bench/out/<run>.log and its run directory in bench/out/<run>/ (the run name holds the
round cap). The package's runner trains up to the cap (it does not stop at the target) and
reports the interpolated first round at the target in summary.json, which this script reads.

Runs resume: a row stopped by --time_budget_s (or killed) continues from its last checkpoint
when this script is run again with the same flags, and a finished row is only read back. A
different --max_rounds_<row> is a different run (it starts afresh). The CNN rows are long (an
E=5 round takes one to two minutes on 2 cores, so cnn_noniid needs hours): run them under the
budget and re-run to continue, or pass --time_budget_s=0.
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


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the paper's Table 2 and how it is run here."""
  model: str
  partition: str  # launch's --partition: 'iid' or 'shards' (the paper's non-IID split).
  epochs: int
  target: float
  paper_rounds: int
  default_cap: int  # Default --max_rounds_<row>: ~1.5x the paper, past the +30% band.
  rounds_per_checkpoint: int  # Long rounds checkpoint often, so a budget stop loses little.


ROWS: dict[str, Row] = {
    '2nn_iid': Row(model='mnist_2nn', partition='iid', epochs=1, target=0.97, paper_rounds=87,
                   default_cap=130, rounds_per_checkpoint=10),
    'cnn_iid': Row(model='mnist_cnn', partition='iid', epochs=5, target=0.99, paper_rounds=20,
                   default_cap=30, rounds_per_checkpoint=1),
    '2nn_noniid': Row(model='mnist_2nn', partition='shards', epochs=1, target=0.97,
                      paper_rounds=664, default_cap=1000, rounds_per_checkpoint=10),
    'cnn_noniid': Row(model='mnist_cnn', partition='shards', epochs=5, target=0.99,
                      paper_rounds=229, default_cap=350, rounds_per_checkpoint=1),
}
# Relative distance to the paper's rounds that counts as reproduced.
TOLERANCE = 0.3

_ROWS = flags.DEFINE_list('rows', list(ROWS), f'Rows to run, from {sorted(ROWS)}.')
_MAX_ROUNDS = {
    name: flags.DEFINE_integer(f'max_rounds_{name}', row.default_cap,
                               f'Round cap (--total_rounds) of row {name}.', lower_bound=1)
    for name, row in ROWS.items()
}
_TIME_BUDGET_S = flags.DEFINE_float(
    'time_budget_s', 3600.0,
    'Wall seconds per row and invocation; then the run is stopped (SIGTERM) and resumes on '
    'the next invocation. 0: no budget.', lower_bound=0.0)


def run_name(name: str) -> str:
  """The run directory name of a row: the cap is in it, as a resumed run must keep its cap."""
  return f'mcmahan_{name}_cap{_MAX_ROUNDS[name].value}'


def launch_command(name: str) -> list[str]:
  """The `launch.run_experiment` command line of row `name`."""
  row = ROWS[name]
  settings = {
      **common.MCMAHAN_MNIST,
      'partition': row.partition,
      'model': row.model,
      'client_epochs_per_round': row.epochs,
      'total_rounds': _MAX_ROUNDS[name].value,
      'rounds_per_eval': 1,
      'rounds_per_checkpoint': row.rounds_per_checkpoint,
      'target_accuracy': row.target,
      'root_output_dir': common.OUT_DIR,
      'experiment_name': run_name(name),
  }
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def run_row(name: str) -> tuple[int, float, bool]:
  """Runs (or resumes) row `name` within the time budget; its output goes to a log file.

  Returns the exit code, the seconds this invocation took and whether the budget stopped it.
  """
  log_path = os.path.join(common.ensure_out_dir(), f'{run_name(name)}.log')
  command = launch_command(name)
  print(f'{name}: {" ".join(command[1:])}\n  log: {log_path}', flush=True)
  return common.run_logged(command, log_path, budget_s=_TIME_BUDGET_S.value)


def read_summary(name: str) -> Optional[dict[str, Any]]:
  """The row's summary.json, or None if the run never finished a round."""
  path = os.path.join(common.OUT_DIR, run_name(name), 'summary.json')
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def our_rounds(summary: dict[str, Any]) -> str:
  """Rounds to target, or how far the run got without reaching it."""
  reached = summary.get('rounds_to_target')
  if reached is not None:
    return f'{reached:.1f}'
  best = summary.get('best_accuracy')
  best_text = f'{best:.4f}' if best is not None else '-'
  return f'not reached (best acc {best_text} after {summary.get("rounds_completed", 0)} rounds)'


def verdict(summary: dict[str, Any], paper_rounds: int) -> str:
  """'yes' / 'no' for within TOLERANCE of the paper, or why it cannot be told yet."""
  reached = summary.get('rounds_to_target')
  if reached is not None:
    return 'yes' if abs(reached - paper_rounds) <= TOLERANCE * paper_rounds else 'no'
  if summary.get('rounds_completed', 0) > (1 + TOLERANCE) * paper_rounds:
    return 'no'
  if summary.get('status') == 'completed':
    return f'unknown (cap below paper +{TOLERANCE:.0%})'
  return 'unfinished (re-run to continue)'


def format_duration(seconds: Optional[float]) -> str:
  """Seconds as h:mm:ss."""
  if seconds is None or math.isnan(seconds):
    return '-'
  minutes, secs = divmod(int(round(seconds)), 60)
  return f'{minutes // 60}:{minutes % 60:02d}:{secs:02d}'


def table_row(name: str, returncode: int, elapsed_s: float, stopped: bool) -> list[str]:
  """row | paper | ours | within | run status | wall time (all sessions) | this invocation."""
  row = ROWS[name]
  summary = read_summary(name)
  if summary is None:
    return [name, str(row.paper_rounds), f'no summary (exit {returncode}; see its log)', '-',
            '-', '-', format_duration(elapsed_s)]
  status = summary.get('status', '?') + (' (time budget)' if stopped else '')
  return [name, str(row.paper_rounds), our_rounds(summary), verdict(summary, row.paper_rounds),
          status, format_duration(summary.get('wall_time_s')), format_duration(elapsed_s)]


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_ROWS.value) - set(ROWS))
  if unknown:
    raise app.UsageError(f'unknown --rows {unknown}; choose from {sorted(ROWS)}')
  print(common.machine_line(), flush=True)
  rows = []
  for name in _ROWS.value:
    returncode, elapsed_s, stopped = run_row(name)
    rows.append(table_row(name, returncode, elapsed_s, stopped))
    print(f'  {" | ".join(rows[-1])}', flush=True)
  print(f'\nMcMahan et al. 2017 Table 2 on real MNIST (100 clients, C=0.1, B=10, client lr '
        f'{common.MCMAHAN_MNIST["client_learning_rate"]}); within = within '
        f'{TOLERANCE:.0%} of the paper; wall time = rounds + evaluation over all sessions')
  print(common.machine_line())
  print(common.format_table(
      ['row', 'paper rounds', 'our rounds to target', f'within ±{TOLERANCE:.0%}?', 'run status',
       'wall time', 'this invocation'], rows))


if __name__ == '__main__':
  app.run(main)
