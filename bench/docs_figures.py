r"""Regenerates the README's sweep/compare table and figure from the commands the README shows.

  make docs-figures        (or: python -m bench.docs_figures)

Runs the README's `launch.sweep` command (at --parallel 1, into bench/out/docs_figures) and its
`launch.compare --group_by=seed`, then writes into docs/figures/:
  digits_sweep_runs.csv                 compare's runs.csv: one row per run, full precision
  digits_sweep_accuracy_vs_round.png    compare's accuracy_vs_round.png
  digits_sweep.json                     how they were made: commands, commit, date, machine,
                                        sweep time, the figure's sha256
and rewrites the README's block between the `docs-figures digits_sweep` markers from them.
tests/bench/test_docs_figures.py re-derives that block from the committed CSV and JSON, so the
README's table is the one these files hold, and these files the ones this command made.
"""

import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from typing import Any, Mapping, Sequence

import pandas as pd

from bench import common
from tff_experiments.core import files
from tff_experiments.results import compare

SWEEP_NAME = 'digits_lr_opt'
# The README's commands (its `bash` block shows them with `.venv/bin/python -m`).
SWEEP_ARGS = ('--sweep_name=digits_lr_opt', '--grid', 'client_learning_rate=0.05,0.2',
              '--grid', 'server_optimizer=sgd,adam', '--seeds=0,1,2', '--',
              '--dataset=digits', '--total_rounds=10')
COMPARE_ARGS = ('--group_by=seed',)
GROUP_BY = ['seed']
FIGURES_DIR = os.path.join(common.REPO_ROOT, 'docs', 'figures')
RUNS_CSV = os.path.join(FIGURES_DIR, 'digits_sweep_runs.csv')
FIGURE = os.path.join(FIGURES_DIR, 'digits_sweep_accuracy_vs_round.png')
PROVENANCE = os.path.join(FIGURES_DIR, 'digits_sweep.json')
README = os.path.join(common.REPO_ROOT, 'README.md')
BEGIN, END = '<!-- docs-figures digits_sweep: begin -->', '<!-- docs-figures digits_sweep: end -->'


def sha256(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def read_runs(path: str = RUNS_CSV) -> pd.DataFrame:
  """A runs.csv as compare.per_run made it (its settings columns known again)."""
  table = pd.read_csv(path)
  fixed = ('run', 'status', compare.PROBLEMS, *compare.NUMBERS)
  table.attrs['hparams'] = [c for c in table.columns if c not in fixed]
  return table


def readme_block(runs: pd.DataFrame, made: Mapping[str, Any]) -> str:
  """The README's text between the markers, from the runs table and the provenance."""
  table = compare.markdown(compare.grouped(runs, GROUP_BY))
  prose = textwrap.fill(
      'The sweep above (2 learning rates x 2 server optimizers x 3 seeds, 10 rounds on '
      f'`digits`) took {made["sweep_seconds"]:.0f} s at `--parallel 1` on this project\'s shared '
      f'2-core machine (each run ~{made["sweep_seconds"] / len(runs):.0f} s, most of it '
      'TensorFlow\'s import and the worker\'s start). Made by `make docs-figures` '
      f'(`bench/docs_figures.py`) at commit `{made["commit"][:10]}`; '
      '`tests/bench/test_docs_figures.py` checks this block against '
      '`docs/figures/digits_sweep_runs.csv` and `digits_sweep.json`. Its `groups.md`:', 95)
  return (f'{BEGIN}\n{prose}\n\n{table}\nand its `accuracy_vs_round.png`:\n\n'
          '![Test accuracy per round, mean ± std over 3 seeds]'
          f'(docs/figures/digits_sweep_accuracy_vs_round.png)\n{END}')


def replace_block(text: str, block: str) -> str:
  """`text` with its marked block replaced by `block` (ValueError if the markers are absent)."""
  start, end = text.index(BEGIN), text.index(END) + len(END)
  return text[:start] + block + text[end:]


def _git(*args: str) -> str:
  return subprocess.run(['git', *args], cwd=common.REPO_ROOT, capture_output=True, text=True,
                        check=True).stdout.strip()


def _run(command: Sequence[str]) -> float:
  """Runs `command` from the repository root (output through); its wall seconds."""
  began = time.monotonic()
  subprocess.run(list(command), cwd=common.REPO_ROOT, check=True,
                 env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  return time.monotonic() - began


def main() -> int:
  if _git('status', '--porcelain', '--untracked-files=no'):
    print('docs_figures: commit your changes first: the figures record the commit they came '
          'from', file=sys.stderr)
    return 2
  out = os.path.join(common.ensure_out_dir(), 'docs_figures')
  shutil.rmtree(out, ignore_errors=True)  # From scratch: nothing skipped or resumed.
  sweep = [sys.executable, '-m', 'launch.sweep', f'--root_output_dir={out}', '--parallel=1',
           *SWEEP_ARGS]
  compare_command = [sys.executable, '-m', 'launch.compare', os.path.join(out, SWEEP_NAME),
                     *COMPARE_ARGS, f'--output_dir={os.path.join(out, "comparison")}']
  machine = common.machine_line()
  try:
    seconds = _run(sweep)
    _run(compare_command)
  except subprocess.CalledProcessError as e:
    print(f'docs_figures: error: {" ".join(e.cmd[1:4])} ... exited {e.returncode} (see above); '
          'nothing written', file=sys.stderr)
    return 1
  os.makedirs(FIGURES_DIR, exist_ok=True)
  shutil.copyfile(os.path.join(out, 'comparison', 'runs.csv'), RUNS_CSV)
  shutil.copyfile(os.path.join(out, 'comparison', 'accuracy_vs_round.png'), FIGURE)
  made = {'sweep': ['python', '-m', 'launch.sweep', '--parallel=1', *SWEEP_ARGS],
          'compare': ['python', '-m', 'launch.compare', f'results/{SWEEP_NAME}', *COMPARE_ARGS],
          'commit': _git('rev-parse', 'HEAD'),
          'date': datetime.datetime.now().isoformat(timespec='seconds'),
          'machine': machine, 'sweep_seconds': round(seconds, 1),
          'figure_sha256': sha256(FIGURE)}
  files.write_json_atomic(PROVENANCE, made)
  with open(README, encoding='utf-8') as f:
    text = f.read()
  files.write_text_atomic(README, replace_block(text, readme_block(read_runs(), made)))
  print(f'wrote {RUNS_CSV}, {FIGURE}, {PROVENANCE} and the README block '
        f'(sweep {seconds:.0f} s)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
