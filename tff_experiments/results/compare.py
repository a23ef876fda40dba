"""Comparison tables of runs (from `load_runs`): one row per run, or mean ± std over seeds.

Per run: its status, the settings that vary across the runs, rounds done, final and best test
accuracy, rounds to target (where a run has --target_accuracy), total uplink bits and final
epsilon (where the metrics have them), wall time. Everything is computed from the run's
metrics.csv, so a run still going is compared as far as it got, and its status says so.
Grouped: the runs that differ only in the settings averaged over (e.g. `seed`) become one row
with the count and, for each number, the mean and the sample standard deviation (ddof=1; blank
for a single run). Rounds to target is averaged over the runs that reached it, counted apart.
"""

import math
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from tff_experiments.results import load_runs
from tff_experiments.results import summary as summary_lib

ACCURACY = 'eval/accuracy'
# Per-round total uplink bits (`comm/uplink_bits_round`), or per client (times the clients
# that reported).
UPLINK_BITS = ('uplink_bits_round', 'uplink_bits')
UPLINK_BITS_PER_CLIENT = 'uplink_bits_per_client'
CLIENT_COUNT_COLUMNS = ('train/num_clients', 'plan/clients_reporting')
EPSILON = 'epsilon'
PROBLEMS = 'problems'  # What of a run could not be read (load_runs), else blank.
# Numbers of the per-run table, in order, with their headers and formats.
NUMBERS = {
    'rounds': ('rounds', '{:.0f}'),
    'final_accuracy': ('final acc', '{:.4f}'),
    'best_accuracy': ('best acc', '{:.4f}'),
    'rounds_to_target': ('rounds to target', '{:.1f}'),
    'uplink_bits': ('uplink bits', '{:.3g}'),
    'final_epsilon': ('final ε', '{:.3f}'),
    'wall_time_s': ('wall time (s)', '{:.1f}'),
}
_OPTIONAL = ('rounds_to_target', 'uplink_bits', 'final_epsilon')


def metric_column(frame: pd.DataFrame, suffix: str) -> Optional[str]:
  """The first metrics column whose last '/' part is `suffix` (e.g. privacy/epsilon)."""
  return next((c for c in frame.columns if c.split('/')[-1] == suffix
               and not c.startswith(load_runs.SUMMARY_PREFIX)), None)


def uplink_bits_per_round(rows: pd.DataFrame) -> Optional[pd.Series]:
  """A run's uplink bits of each round (`.../uplink_bits_round`, else
  `.../uplink_bits_per_client` times the reporting clients), or None without such a column."""
  for suffix in UPLINK_BITS:
    total = metric_column(rows, suffix)
    if total is not None and rows[total].notna().any():
      return rows[total].astype(float)
  per_client = metric_column(rows, UPLINK_BITS_PER_CLIENT)
  clients = next((c for c in CLIENT_COUNT_COLUMNS if c in rows), None)
  if per_client is None or clients is None or not rows[per_client].notna().any():
    return None
  return rows[per_client].astype(float) * rows[clients].astype(float)


def _run_numbers(rows: pd.DataFrame) -> dict[str, Any]:
  rows = rows[rows['round_num'].notna()].sort_values('round_num')
  rounds = rows['round_num'].astype(float)
  evaluated = rows[rows[ACCURACY].notna()] if ACCURACY in rows else rows.iloc[:0]
  accuracy = evaluated[ACCURACY].astype(float) if len(evaluated) else pd.Series(dtype=float)
  numbers: dict[str, Any] = {
      'rounds': rounds.max() if len(rows) else 0,
      'final_accuracy': accuracy.iloc[-1] if len(accuracy) else math.nan,
      'best_accuracy': accuracy.max() if len(accuracy) else math.nan,
  }
  target = rows.get(f'{load_runs.SUMMARY_PREFIX}target_accuracy')
  target = target.dropna().iloc[0] if target is not None and target.notna().any() else None
  if target is not None:
    reached = summary_lib.rounds_to_target(list(evaluated['round_num'].astype(float)),
                                           list(accuracy), float(target))
    numbers['rounds_to_target'] = math.nan if reached is None else reached
  bits = uplink_bits_per_round(rows)
  if bits is not None:
    numbers['uplink_bits'] = bits.sum()
  epsilon = metric_column(rows, EPSILON)
  if epsilon is not None and rows[epsilon].notna().any():
    numbers['final_epsilon'] = float(rows[epsilon].dropna().iloc[-1])
  times = [c for c in ('round_time_s', 'eval_time_s') if c in rows]
  numbers['wall_time_s'] = (float(rows[times].astype(float).fillna(0).sum().sum())
                            if len(rows) else math.nan)
  return numbers


def per_run(frame: pd.DataFrame) -> pd.DataFrame:
  """One row per run: run, status, `problems` (only when some run has any: what of it could
  not be read), the varying settings, then `NUMBERS` (optional ones only when some run has
  them)."""
  hparams = load_runs.hparam_columns(frame)
  rows = []
  for run, group in frame.groupby('run', sort=False):
    first = group.iloc[0]
    rows.append({'run': run, 'status': first['status'], PROBLEMS: first.get(PROBLEMS),
                 **{h: first[h] for h in hparams}, **_run_numbers(group)})
  table = pd.DataFrame(rows)
  numbers = [n for n in NUMBERS if n in table and (n not in _OPTIONAL or table[n].notna().any())]
  problems = [PROBLEMS] if table[PROBLEMS].notna().any() else []
  table = table[['run', 'status', *problems, *hparams, *numbers]]
  table.attrs['hparams'] = hparams
  return table


def _status_counts(statuses: pd.Series) -> str:
  counts = statuses.value_counts(sort=False)
  return ', '.join(f'{n} {status}' for status, n in counts.items())


def grouped(table: pd.DataFrame, over: Sequence[str]) -> pd.DataFrame:
  """Rows of `per_run` that differ only in the settings `over` -> one row each: the other
  settings, `runs`, `status` counts, and `<number>_mean` / `<number>_std` (ddof=1) per number;
  with rounds to target, `reached_target` ('2/3') counts the runs that reached it; where some
  run has problems, `problems` ('1/3') counts the runs with any."""
  hparams = list(table.attrs.get('hparams', []))
  keys = [h for h in hparams if h not in over]
  numbers = [n for n in NUMBERS if n in table]
  group_ids = (table[keys].astype(str).agg('\x1f'.join, axis=1) if keys
               else pd.Series('', index=table.index))
  rows = []
  for _, group in table.groupby(group_ids, sort=False):
    row = {k: group[k].iloc[0] for k in keys}
    row['runs'] = len(group)
    row['status'] = _status_counts(group['status'])
    if PROBLEMS in table:
      row[PROBLEMS] = f'{int(group[PROBLEMS].notna().sum())}/{len(group)}'
    for number in numbers:
      values = group[number].astype(float).dropna()
      row[f'{number}_mean'] = values.mean() if len(values) else math.nan
      row[f'{number}_std'] = values.std(ddof=1) if len(values) > 1 else math.nan
      if number == 'rounds_to_target':
        row['reached_target'] = f'{len(values)}/{len(group)}'
    rows.append(row)
  out = pd.DataFrame(rows)
  out.attrs.update(hparams=keys, over=[o for o in over if o in hparams])
  return out


def _format_value(value: Any) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ''
  if isinstance(value, (float, np.floating)):
    return f'{float(value):g}'
  return str(value)


def _format_number(number: str, value: Any) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '–'
  return NUMBERS[number][1].format(value)


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  escape = lambda text: str(text).replace('|', '\\|')
  lines = ['| ' + ' | '.join(escape(h) for h in headers) + ' |',
           '|' + '|'.join('---' for _ in headers) + '|']
  lines += ['| ' + ' | '.join(escape(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'


def markdown(table: pd.DataFrame) -> str:
  """A per-run or grouped table as Markdown (grouped numbers as `mean ± std`)."""
  hparams = list(table.attrs.get('hparams', []))
  if 'runs' in table:  # Grouped.
    numbers = [n for n in NUMBERS if f'{n}_mean' in table]
    extra = [(c, c.replace('_', ' ')) for c in (PROBLEMS, 'reached_target') if c in table]
    headers = [*hparams, 'runs', 'status', *(h for _, h in extra),
               *(NUMBERS[n][0] for n in numbers)]
    rows = []
    for _, r in table.iterrows():
      cells = [_format_value(r[h]) for h in hparams] + [str(r['runs']), r['status']]
      cells += [r[c] for c, _ in extra]
      for n in numbers:
        mean, std = _format_number(n, r[f'{n}_mean']), r[f'{n}_std']
        cells.append(mean if std is None or math.isnan(std) else
                     f'{mean} ± {_format_number(n, std)}')
      rows.append(cells)
    return _markdown(headers, rows)
  numbers = [n for n in NUMBERS if n in table]
  problems = [PROBLEMS] if PROBLEMS in table else []
  headers = ['run', 'status', *problems, *hparams, *(NUMBERS[n][0] for n in numbers)]
  rows = [[r['run'], r['status'], *(_format_value(r[p]) for p in problems),
           *(_format_value(r[h]) for h in hparams),
           *(_format_number(n, r[n]) for n in numbers)] for _, r in table.iterrows()]
  return _markdown(headers, rows)
