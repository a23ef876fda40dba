r"""Compares runs: tables (CSV and Markdown) and figures (PNG) from any set of run directories.

  python -m launch.compare results/lr_sweep --output_dir=results/lr_sweep/comparison
  python -m launch.compare results/lr_sweep 'results/baseline-*' --group_by=seed \
      --output_dir=figures

Arguments are run directories, directories holding runs (a sweep), or globs. Writes into
--output_dir:
  runs.csv, runs.md        one row per run: status, the settings that vary across the runs,
                           rounds, final / best test accuracy, rounds to target, uplink bits and
                           final epsilon where measured, wall time
  groups.csv, groups.md    with --group_by=seed: mean ± std (and count) over the seeds
  accuracy_vs_round.png    and, where the metrics have them, accuracy_vs_epsilon.png and
                           accuracy_vs_uplink_bits.png
and prints the Markdown table. Runs still going, failed or diverged are compared as far as
they got, and their status says so. A run whose files are damaged is compared as far as they
read (the rows of metrics.csv before the damage; status `unreadable` if none), with a `problems`
column and a warning line each. --output_dir must be a directory of its own (not a file, nor a
run directory or inside one). Reads files only (no TensorFlow), so it starts at once.
"""

import os
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags

from tff_experiments.core import files
from tff_experiments.results import compare
from tff_experiments.results import load_runs
from tff_experiments.results import plots

_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where tables and figures are written.')
_GROUP_BY = flags.DEFINE_list(
    'group_by', [], 'Settings to average over (mean ± std and count), e.g. seed: runs that '
    'differ only in them form one row and one line of the figures.')


def _write_table(table, output_dir: str, name: str) -> tuple[str, list[str]]:
  """`<name>.csv` (full precision) and `<name>.md`; returns the Markdown and their paths."""
  text = compare.markdown(table)
  paths = [os.path.join(output_dir, f'{name}.{ext}') for ext in ('csv', 'md')]
  files.write_text_atomic(paths[0], table.to_csv(index=False))
  files.write_text_atomic(paths[1], text)
  return text, paths


def _output_dir_problem(output_dir: str) -> Optional[str]:
  """Why `output_dir` cannot take the comparison (a file, or a run directory or inside one,
  whose files it would mix with), or None."""
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    return f'--output_dir={output_dir} is a file, not a directory'
  target = directory = os.path.abspath(output_dir)
  while True:
    if os.path.isfile(os.path.join(directory, load_runs.HPARAMS)):
      where = 'the run directory' if directory == target else 'inside the run directory'
      return (f'--output_dir={output_dir} is {where} {directory}; choose a directory of its '
              'own')
    parent = os.path.dirname(directory)
    if parent == directory:
      return None
    directory = parent


def main(argv: Sequence[str]) -> int:
  paths = list(argv[1:])
  if not paths or not _OUTPUT_DIR.value:
    raise app.UsageError('give --output_dir and run directories, sweep directories or globs')
  output_dir = _OUTPUT_DIR.value
  refusal = _output_dir_problem(output_dir)
  if refusal:
    print(f'compare: error: {refusal}', file=sys.stderr)
    return 2
  try:
    frame = load_runs.load_runs(paths)
  except load_runs.LoadError as e:
    print(f'compare: error: {e}', file=sys.stderr)
    return 2
  runs = compare.per_run(frame)
  for _, run in runs.iterrows():  # Compared as far as they read; each said once.
    if compare.PROBLEMS in runs and isinstance(run[compare.PROBLEMS], str):
      print(f'warning: {run["run"]} ({run["status"]}): {run[compare.PROBLEMS]}', file=sys.stderr)
  over = list(_GROUP_BY.value)
  constant = [o for o in over if o not in load_runs.hparam_columns(frame)]
  if constant:
    print(f'note: {", ".join(constant)} does not vary across these runs', file=sys.stderr)
  try:
    os.makedirs(output_dir, exist_ok=True)
    shown, written = _write_table(runs, output_dir, 'runs')
    if over:
      shown, grouped = _write_table(compare.grouped(runs, over), output_dir, 'groups')
      written += grouped
    figures = plots.write_all(frame, output_dir, over=over)
  except OSError as e:
    print(f'compare: error: cannot write into --output_dir={output_dir}: '
          f'{e.strerror or e}', file=sys.stderr)
    return 1
  try:
    _print_summary(shown, runs, output_dir, written + figures)
  except BrokenPipeError:  # `... | head`: the reader left early; the files are written.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  return 0


def _print_summary(shown: str, runs, output_dir: str, written: Sequence[str]) -> None:
  print(shown)
  counts = runs['status'].value_counts()
  print(f'{len(runs)} runs ({", ".join(f"{n} {s}" for s, n in counts.items())}); wrote '
        f'{", ".join(sorted(os.path.basename(p) for p in written))} in {output_dir}')
  if not any(p.endswith('.png') for p in written):
    print('no figure: no run has evaluated rounds yet', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
