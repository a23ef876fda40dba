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
they got, and their status says so. Reads files only (no TensorFlow), so it starts at once.
"""

import os
import sys
from typing import Sequence

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


def _write_table(table, output_dir: str, name: str) -> str:
  """`<name>.csv` (full precision) and `<name>.md`; returns the Markdown."""
  text = compare.markdown(table)
  files.write_text_atomic(os.path.join(output_dir, f'{name}.csv'), table.to_csv(index=False))
  files.write_text_atomic(os.path.join(output_dir, f'{name}.md'), text)
  return text


def main(argv: Sequence[str]) -> int:
  paths = list(argv[1:])
  if not paths or not _OUTPUT_DIR.value:
    raise app.UsageError('give --output_dir and run directories, sweep directories or globs')
  try:
    frame = load_runs.load_runs(paths)
  except load_runs.LoadError as e:
    print(f'compare: error: {e}', file=sys.stderr)
    return 2
  output_dir = _OUTPUT_DIR.value
  os.makedirs(output_dir, exist_ok=True)
  over = list(_GROUP_BY.value)
  constant = [o for o in over if o not in load_runs.hparam_columns(frame)]
  if constant:
    print(f'note: {", ".join(constant)} does not vary across these runs', file=sys.stderr)
  runs = compare.per_run(frame)
  shown = _write_table(runs, output_dir, 'runs')
  if over:
    shown = _write_table(compare.grouped(runs, over), output_dir, 'groups')
  figures = plots.write_all(frame, output_dir, over=over)
  try:
    _print_summary(shown, runs, output_dir, figures)
  except BrokenPipeError:  # `... | head`: the reader left early; the files are written.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  return 0


def _print_summary(shown: str, runs, output_dir: str, figures: Sequence[str]) -> None:
  print(shown)
  counts = runs['status'].value_counts()
  print(f'{len(runs)} runs ({", ".join(f"{n} {s}" for s, n in counts.items())}); wrote '
        f'{", ".join(sorted(os.listdir(output_dir)))} in {output_dir}')
  if not figures:
    print('no figure: no run has evaluated rounds yet', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
