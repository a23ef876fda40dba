"""Comparison figures (PNG, matplotlib Agg) of a `load_runs` frame, sized for a paper column.

- `accuracy_vs_round.png`: test accuracy at each evaluated round, a line per run, or per group
  (the mean over its runs, shaded ± one standard deviation where more than one run has the
  round);
- `accuracy_vs_epsilon.png`, where a `.../epsilon` column exists: the same curves against the
  privacy spent;
- `accuracy_vs_uplink_bits.png`, where uplink bits are measured: against cumulative uplink
  bits (log scale).

Lines are labelled by the settings that vary between them (the legend's title names them); a
run that did not complete says so in its label (diverged, running, ...).
"""

import os
import textwrap
from typing import Callable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use('Agg')  # No display: files only. pylint: disable=wrong-import-position
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
from matplotlib import ticker  # pylint: disable=g-import-not-at-top
import numpy as np
import pandas as pd

from tff_experiments.results import compare
from tff_experiments.results import load_runs

ACCURACY_LABEL = 'test accuracy'
_FIGSIZE = (5.5, 3.6)  # Inches: one column of a two-column paper at 1.6x, or a slide.
_DPI = 200
_LINESTYLES = ('-', '--', ':', '-.')
_LEGEND_WIDTH = 40  # Characters of a legend line inside the axes.
_FINISHED = ('completed', 'target_reached', 'budget_exhausted')
_XAxis = Callable[[pd.DataFrame], Optional[pd.Series]]


def _label(values: Mapping[str, object], statuses: Sequence[str], fallback: str,
           count: Optional[int]) -> str:
  """'0.1, adam', then the group's size and any status other than completed in brackets."""
  text = ', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values.values())
  notes = [f'n={count}'] if count is not None else []
  notes += sorted({s for s in statuses if s not in _FINISHED})
  text = text or fallback
  return f'{text} ({"; ".join(notes)})' if notes else text


def groups(frame: pd.DataFrame, over: Sequence[str] = ()) -> dict[str, list[str]]:
  """Legend label -> runs. With `over` (e.g. ['seed']): one group per distinct value of the
  other varying settings; without: one per run. Labels are the varying settings' values."""
  hparams = [h for h in load_runs.hparam_columns(frame) if h not in over]
  firsts = frame.groupby('run', sort=False).first()
  keys = (firsts[hparams].astype(str).agg('\x1f'.join, axis=1) if hparams and over
          else pd.Series(firsts.index if not over else '', index=firsts.index))
  out: dict[str, list[str]] = {}
  for key in keys.unique():
    runs = list(firsts.index[keys == key])
    label = _label({h: firsts.loc[runs[0], h] for h in hparams},
                   list(firsts.loc[runs, 'status']),
                   fallback='all runs' if over else runs[0],
                   count=len(runs) if over else None)
    out[label if label not in out else f'{label} [{runs[0]}]'] = runs
  return out


def _legend_title(frame: pd.DataFrame, over: Sequence[str]) -> str:
  """The names of the settings in the labels, wrapped; what the shading means."""
  hparams = [h for h in load_runs.hparam_columns(frame) if h not in over]
  title = textwrap.fill(', '.join(hparams), width=_LEGEND_WIDTH)
  return f'{title}\n(mean ± std over {", ".join(over)})' if over and title else title


def _curves(frame: pd.DataFrame, runs: Sequence[str], x_of: _XAxis) -> Optional[pd.DataFrame]:
  """Per evaluated round: mean x, mean and std accuracy and the run count, over `runs`."""
  parts = []
  for run in runs:
    rows = frame[(frame['run'] == run) & frame['round_num'].notna()].sort_values('round_num')
    x = x_of(rows)
    if x is None or compare.ACCURACY not in rows:
      continue
    parts.append(pd.DataFrame({'round': rows['round_num'].astype(float).values,
                               'x': x.astype(float).values,
                               'y': rows[compare.ACCURACY].astype(float).values}).dropna())
  if not parts:
    return None
  stats = pd.concat(parts).groupby('round').agg(
      x=('x', 'mean'), y=('y', 'mean'), std=('y', 'std'), n=('y', 'size'))
  return stats if len(stats) else None


def _plot(frame: pd.DataFrame, over: Sequence[str], x_of: _XAxis, x_label: str, path: str,
          *, log_x: bool = False, integer_x: bool = False) -> bool:
  """One figure of accuracy against `x_of(run rows)`; False (nothing written) without data."""
  fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
  drawn = 0
  for label, runs in groups(frame, over).items():
    stats = _curves(frame, runs, x_of)
    if stats is None:
      continue
    (line,) = ax.plot(stats['x'], stats['y'], label=label, linewidth=1.5,
                      marker='o' if len(stats) <= 20 else None, markersize=3,
                      linestyle=_LINESTYLES[drawn // 10 % len(_LINESTYLES)])  # 10 colours.
    spread = stats['std'].where(stats['n'] > 1)
    if spread.notna().any():
      ax.fill_between(stats['x'], stats['y'] - spread, stats['y'] + spread,
                      color=line.get_color(), alpha=0.2, linewidth=0)
    drawn += 1
  if not drawn:
    plt.close(fig)
    return False
  ax.set_xlabel(x_label)
  ax.set_ylabel(ACCURACY_LABEL)
  if log_x:
    ax.set_xscale('log')
  if integer_x:
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.grid(True, alpha=0.3)
  # Inside where the labels are few and short (matplotlib finds the emptiest corner), else
  # beside the axes.
  title = _legend_title(frame, over) or None
  labels = [line.get_label() for line in ax.get_lines()]
  outside = drawn > 6 or max(len(l) for l in labels) > _LEGEND_WIDTH
  ax.legend(title=title, fontsize=8, title_fontsize=8, loc='upper left' if outside else 'best',
            bbox_to_anchor=(1.02, 1.0) if outside else None, frameon=not outside)
  if not outside:  # Else bbox_inches='tight' makes room for the legend.
    fig.tight_layout()
  fig.savefig(path, bbox_inches='tight')
  plt.close(fig)
  return True


def _cumulative_uplink(rows: pd.DataFrame) -> Optional[pd.Series]:
  bits = compare.uplink_bits_per_round(rows)
  return None if bits is None else bits.fillna(0).cumsum()


def _epsilon(rows: pd.DataFrame) -> Optional[pd.Series]:
  column = compare.metric_column(rows, compare.EPSILON)
  return None if column is None or rows[column].isna().all() else rows[column]


def write_all(frame: pd.DataFrame, output_dir: str, over: Sequence[str] = ()) -> list[str]:
  """Writes every figure the frame's columns allow into `output_dir`; their paths."""
  figures = [
      ('accuracy_vs_round.png', lambda rows: rows['round_num'], 'communication round',
       dict(integer_x=True)),
      ('accuracy_vs_epsilon.png', _epsilon, 'privacy spent ε (at the run\'s δ)', {}),
      ('accuracy_vs_uplink_bits.png', _cumulative_uplink, 'cumulative uplink (bits)',
       dict(log_x=True)),
  ]
  written = []
  for name, x_of, x_label, options in figures:
    path = os.path.join(output_dir, name)
    with np.errstate(invalid='ignore'):
      if _plot(frame, over, x_of, x_label, path, **options):
        written.append(path)
  return written
