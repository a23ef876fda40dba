"""Run directories -> one pandas DataFrame: a row per run and round (what launch.compare reads).

  from tff_experiments.results import load_runs
  frame = load_runs.load_runs(['results/lr_sweep', 'results/other_run'])
  frame.groupby('client_learning_rate')['eval/accuracy'].max()

Paths may be run directories, directories holding runs at any depth (a sweep), or globs. Each
run is read from its own files, never from its directory name: `hparams.json` (its settings),
`metrics.csv` (its rounds; columns present in some runs only are blank elsewhere) and
`summary.json`. Columns, in order:

  run           the run's name (its --experiment_name; its path if names repeat)
  run_dir       the run directory
  status        summary.json's status (completed, diverged, target_reached, failed,
                interrupted, ...), `running` while its lock is held or before it has a summary,
                `unfinished` if it stopped without one, `unreadable` if its metrics.csv is
                damaged or missing and no round of it could be read
  problems      what of the run's files could not be read (blank if nothing): a damaged
                metrics.csv (the rows before the damage are kept), fewer rounds than its
                summary.json records, an unreadable hparams.json or summary.json
  <hparams>     the settings that vary across the runs (`frame.attrs['hparams']` lists them):
                a setting varies if the runs that record it do not all agree
  round_num, <metrics.csv columns>
  summary/...   the run's summary.json fields (computed from metrics.csv while it has none)

A run without any round yet keeps one row (round_num blank), so every run is in the frame. A
sweep directory's runs come in its sweep.json order, and its points that have no run directory
(failed before making one, or not started) appear with the state sweep.json gives them.
"""

import glob
import json
import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pandas as pd

from tff_experiments.core import files
from tff_experiments.results import read_metrics
from tff_experiments.results import summary as summary_lib

HPARAMS, METRICS, SUMMARY, SWEEP = 'hparams.json', 'metrics.csv', 'summary.json', 'sweep.json'
SUMMARY_PREFIX = 'summary/'
UNREADABLE = 'unreadable'  # The status of a run none of whose rounds could be read.
# Settings that name a run rather than describe it: never a hyperparameter column.
_NOT_HPARAMS = ('experiment_name',)
_LOCK_FILE = '.lock'
_SKIP_DIRS = ('checkpoints', 'tensorboard')


class LoadError(ValueError):
  """A path that holds no run (the message names it)."""


def find_run_dirs(paths: Iterable[str]) -> list[str]:
  """Run directories (with hparams.json) named by `paths` (runs, dirs of runs, globs), in the
  order given, sorted within a directory or glob, each once."""
  found: list[str] = []
  for path in paths:
    matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    runs = [run for match in matches for run in _runs_under(match)]
    if not runs:
      raise LoadError(f'{path}: no run directory (with {HPARAMS}) there')
    found += [run for run in runs if run not in found]
  return found


def _runs_under(path: str) -> list[str]:
  path = os.path.abspath(path)
  if os.path.isfile(os.path.join(path, HPARAMS)):
    return [path]
  runs = []
  for root, dirs, names in os.walk(path):
    dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith('.'))
    if HPARAMS in names:
      runs.append(root)
      dirs[:] = []
  return runs


def _lock_held(run_dir: str) -> Optional[bool]:
  """Whether a process holds the run's lock (Linux /proc/locks); None if it cannot be told."""
  try:
    stat = os.stat(os.path.join(run_dir, _LOCK_FILE))
    key = f'{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}'
    with open('/proc/locks', encoding='ascii') as f:
      return any(key in line.split() for line in f)
  except OSError:
    return None


def run_status(run_dir: str, summary: Optional[Mapping[str, Any]]) -> str:
  """The run's status: summary.json's, or running / unfinished (see the module doc)."""
  held = _lock_held(run_dir)
  if held:
    return 'running'
  if summary and summary.get('status'):
    return summary['status']
  return 'unfinished' if held is False else 'running'


def _read_json(path: str, problems: Optional[list[str]] = None) -> Optional[Any]:
  """The JSON in `path`, None if absent or unreadable (then said in `problems`, if given)."""
  try:
    return files.read_json(path)
  except (OSError, ValueError) as e:
    if problems is not None:
      problems.append(f'{os.path.basename(path)} is not readable JSON'
                      if isinstance(e, ValueError) else
                      f'{os.path.basename(path)} cannot be read ({e.strerror})')
    return None


def read_run(run_dir: str) -> dict[str, Any]:
  """One run: {'run_dir', 'hparams', 'summary', 'status', 'metrics' (DataFrame), 'problems'
  (what of it could not be read, or None)}. Its metrics are the rows of metrics.csv up to any
  damage; a run with a damaged or missing metrics.csv and no row read is `unreadable`."""
  problems: list[str] = []
  hparams = _read_json(os.path.join(run_dir, HPARAMS), problems) or {}
  summary = _read_json(os.path.join(run_dir, SUMMARY), problems)
  metrics_path = os.path.join(run_dir, METRICS)
  metrics, damage = read_metrics.read(metrics_path)
  missing = damage or read_metrics.missing_rounds(
      metrics_path, metrics, (summary or {}).get('rounds_completed'))
  problems += [missing] if missing else []
  status = run_status(run_dir, summary)
  if missing and not len(metrics):
    status = UNREADABLE
  if summary is None and not missing and len(metrics):
    try:
      summary = summary_lib.summarize(
          metrics_path, target_accuracy=hparams.get('target_accuracy'), status=status,
          total_rounds=hparams.get('total_rounds'))
    except (OSError, ValueError, KeyError):
      summary = None
  return {'run_dir': run_dir, 'hparams': hparams, 'summary': summary or {'status': status},
          'status': status, 'metrics': metrics, 'problems': '; '.join(problems) or None}


def _placeholder(point: Mapping[str, Any]) -> dict[str, Any]:
  """A sweep point without a run directory (failed before making one, or never started)."""
  status = point.get('state') or 'pending'
  return {'run_dir': os.path.abspath(point['run_dir']), 'hparams': point.get('hparams', {}),
          'summary': {'status': status, 'message': point.get('message')}, 'status': status,
          'metrics': pd.DataFrame({'round_num': pd.Series(dtype=float)}), 'problems': None}


def _runs_of(path: str, seen: set[str]) -> list[dict[str, Any]]:
  """The runs one path names that are not in `seen` (which it extends); for a sweep directory,
  in its sweep.json's order, with its points that have no run as runs without rounds."""
  sweep = _read_json(os.path.join(path, SWEEP)) if os.path.isdir(path) else None
  points = [p for p in (sweep or {}).get('points', []) if 'run_dir' in p]
  try:
    run_dirs = find_run_dirs([path])
  except LoadError:
    if not points:
      raise
    run_dirs = []
  runs = [read_run(d) for d in run_dirs if d not in seen]
  seen.update(run_dirs)
  for point in points:
    if os.path.abspath(point['run_dir']) not in seen:
      runs.append(_placeholder(point))
      seen.add(os.path.abspath(point['run_dir']))
  order = {os.path.abspath(p['run_dir']): i for i, p in enumerate(points)}
  return sorted(runs, key=lambda run: order.get(run['run_dir'], len(order)))


def varying_hparams(all_hparams: Sequence[Mapping[str, Any]]) -> list[str]:
  """Settings whose recorded values differ across runs (a run that does not record one, e.g.
  server_momentum of an sgd run, does not count), in first-seen order."""
  order: list[str] = []
  for hparams in all_hparams:
    order += [k for k in hparams if k not in order and k not in _NOT_HPARAMS]
  def distinct(key):
    return {json.dumps(h[key], sort_keys=True) for h in all_hparams if key in h}
  return [k for k in order if len(distinct(k)) > 1]


def _labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
  names = [r['hparams'].get('experiment_name') or os.path.basename(r['run_dir']) for r in runs]
  if len(set(names)) == len(names):
    return names
  base = os.path.commonpath([r['run_dir'] for r in runs]) if len(runs) > 1 else ''
  return [os.path.relpath(r['run_dir'], base) if base else r['run_dir'] for r in runs]


def _cell(value: Any) -> Any:
  """A setting as a DataFrame cell (lists as text, e.g. mlp_hidden_units '64,64')."""
  if isinstance(value, (list, tuple)):
    return ','.join(str(v) for v in value)
  return value


def load_runs(paths: Union[str, Sequence[str]]) -> pd.DataFrame:
  """The runs under `paths` as one DataFrame, a row per run and round (see the module doc)."""
  paths = [paths] if isinstance(paths, str) else list(paths)
  seen: set[str] = set()
  runs = [run for path in paths for run in _runs_of(path, seen)]
  hparam_names = varying_hparams([r['hparams'] for r in runs])
  frames, metric_names, summary_names = [], [], []
  for label, run in zip(_labels(runs), runs):
    metrics = run['metrics'] if len(run['metrics']) else pd.DataFrame({'round_num': [None]})
    metric_names += [c for c in metrics.columns if c not in metric_names]
    summary = {f'{SUMMARY_PREFIX}{k}': _cell(v) for k, v in run['summary'].items()}
    summary_names += [c for c in summary if c not in summary_names]
    head = {'run': label, 'run_dir': run['run_dir'], 'status': run['status'],
            'problems': run['problems'],
            **{k: _cell(run['hparams'].get(k)) for k in hparam_names}, **summary}
    frames.append(metrics.reset_index(drop=True).assign(
        **{k: [v] * len(metrics) for k, v in head.items()}))
  columns = ['run', 'run_dir', 'status', 'problems', *hparam_names, *metric_names,
             *summary_names]
  frame = pd.concat(frames, ignore_index=True, sort=False).reindex(columns=columns)
  frame.attrs['hparams'] = hparam_names
  return frame


def hparam_columns(frame: pd.DataFrame) -> list[str]:
  """The varying settings of a `load_runs` frame."""
  return list(frame.attrs.get('hparams', []))
