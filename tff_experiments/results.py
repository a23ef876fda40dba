"""A run's directory: where its files live, when it may start or resume, and its summary.

`<root_output_dir>/<experiment_name>/` holds metrics.csv (`metrics.MetricsCsv`), hparams.json
(the resolved config), summary.json and checkpoints/ (`tff.program.FileProgramStateManager`).
JSON files are written atomically (`files`).
"""

import csv
import dataclasses
import enum
import math
import os
import shutil
from typing import Any, Optional, Sequence

from tff_experiments import config as config_lib
from tff_experiments import files


class RunDirError(Exception):
  """The run directory cannot be used with the given flags (message says why and what to do)."""


class Action(enum.Enum):
  START = 'start'            # New directory.
  RESUME = 'resume'          # Unfinished run with the same settings: continue from checkpoint.
  DONE = 'done'              # Finished run with the same settings: nothing to do.
  OVERWRITE = 'overwrite'    # --overwrite: the old directory is removed first.


@dataclasses.dataclass(frozen=True)
class RunPaths:
  """The files of one run."""
  run_dir: str

  @property
  def metrics_csv(self) -> str:
    return os.path.join(self.run_dir, 'metrics.csv')

  @property
  def hparams_json(self) -> str:
    return os.path.join(self.run_dir, 'hparams.json')

  @property
  def summary_json(self) -> str:
    return os.path.join(self.run_dir, 'summary.json')

  @property
  def checkpoints_dir(self) -> str:
    return os.path.join(self.run_dir, 'checkpoints')

  @property
  def worker_log(self) -> str:
    return os.path.join(self.run_dir, 'worker.log')


def plan(config: config_lib.ExperimentConfig, *, overwrite: bool) -> tuple[RunPaths, Action]:
  """Decides, without touching the disk, what to do with the run directory."""
  paths = RunPaths(os.path.join(config.root_output_dir, config.experiment_name))
  if not os.path.exists(paths.run_dir):
    return paths, Action.START
  if overwrite:
    return paths, Action.OVERWRITE
  saved = files.read_json(paths.hparams_json)
  if saved is None:
    raise RunDirError(
        f'{paths.run_dir} exists but has no hparams.json, so it is not a run of this package; '
        'choose another --experiment_name or --root_output_dir (or pass --overwrite)')
  differing = config_lib.differing_fields(config, saved)
  if differing:
    details = ', '.join(f'--{k} (saved {saved.get(k)!r}, given {getattr(config, k)!r})'
                        for k in differing)
    raise RunDirError(
        f'{paths.run_dir} holds a run with other settings: {details}. Choose another '
        '--experiment_name, or pass --overwrite to replace it')
  summary = files.read_json(paths.summary_json) or {}
  return paths, Action.DONE if summary.get('status') == 'completed' else Action.RESUME


def create(paths: RunPaths, action: Action, config: config_lib.ExperimentConfig) -> None:
  """Makes the run directory ready for `action` (removing it first for OVERWRITE)."""
  if action == Action.OVERWRITE:
    shutil.rmtree(paths.run_dir)
  os.makedirs(paths.run_dir, exist_ok=True)
  if action != Action.RESUME:
    files.write_json_atomic(paths.hparams_json, config.to_json_dict())


def rounds_to_target(rounds: Sequence[float], accuracies: Sequence[float],
                     target: float) -> Optional[float]:
  """First round reaching `target`, as in McMahan et al. 2017.

  The accuracy curve is made monotone (best so far) and the crossing is linearly interpolated
  between the last evaluated round below the target and the first at or above it. None when
  the target is never reached.
  """
  best, prev_round, prev_best = -math.inf, None, None
  for r, acc in zip(rounds, accuracies):
    if acc is None or math.isnan(acc):
      continue
    best = max(best, acc)
    if best >= target:
      if prev_round is None or prev_best is None:
        return float(r)
      return float(prev_round + (target - prev_best) / (best - prev_best) * (r - prev_round))
    prev_round, prev_best = r, best
  return None


def _float_or_none(text: str) -> Optional[float]:
  return float(text) if text not in ('', None) else None


def summarize(metrics_csv: str, *, target_accuracy: Optional[float], status: str,
              total_rounds: int) -> dict[str, Any]:
  """The summary of a run from its metrics.csv (so resumed runs summarize all their rounds)."""
  with open(metrics_csv, newline='') as f:
    rows = list(csv.DictReader(f))
  rounds = [int(r['round_num']) for r in rows]
  evals = [(int(r['round_num']), _float_or_none(r.get('eval/accuracy', '')))
           for r in rows]
  evals = [(r, a) for r, a in evals if a is not None]
  wall = sum((_float_or_none(r.get('round_time_s', '')) or 0.0)
             + (_float_or_none(r.get('eval_time_s', '')) or 0.0) for r in rows)
  return {
      'status': status,
      'rounds_completed': max(rounds) if rounds else 0,
      'total_rounds': total_rounds,
      'final_accuracy': evals[-1][1] if evals else None,
      'best_accuracy': max(a for _, a in evals) if evals else None,
      'target_accuracy': target_accuracy,
      'rounds_to_target': (rounds_to_target([r for r, _ in evals], [a for _, a in evals],
                                            target_accuracy)
                           if target_accuracy is not None else None),
      'wall_time_s': round(wall, 3),
  }
