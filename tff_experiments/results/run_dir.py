"""A run's directory: where its files live, and whether a run may start, resume or skip.

`<root_output_dir>/<experiment_name>/` holds metrics.csv (`metrics_csv.MetricsCsv`),
hparams.json (the active settings: the run's identity), summary.json (`summary`) and
checkpoints/ (`tff.program.FileProgramStateManager`). JSON files are written atomically.
"""

import dataclasses
import enum
import os
import shutil

from tff_experiments.core import config as config_lib
from tff_experiments.core import files

# summary.json statuses of a run that is over: the same command has nothing left to do.
FINAL_STATUSES = ('completed', 'diverged', 'budget_exhausted', 'target_reached')


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


def paths_of(config) -> RunPaths:
  """The files of the run of `config` (an `ExperimentConfig` with its name resolved)."""
  return RunPaths(os.path.join(config.run.root_output_dir, config.run.experiment_name))


def plan(config, *, overwrite: bool) -> tuple[RunPaths, Action]:
  """Decides, without touching the disk, what to do with the run directory.

  Identity compares the active settings as JSON reads them back (a tuple saved as a list is
  equal); a setting missing from an older run's hparams.json counts as its default.
  """
  paths = paths_of(config)
  if not os.path.exists(paths.run_dir):
    return paths, Action.START
  if overwrite:
    return paths, Action.OVERWRITE
  saved = files.read_json(paths.hparams_json)
  if saved is None:
    raise RunDirError(
        f'{paths.run_dir} exists but has no hparams.json, so it is not a run of this package; '
        'choose another --experiment_name or --root_output_dir (or pass --overwrite)')
  differing = config_lib.differing_flags(config, saved)
  if differing:
    given = config_lib.flat(config)
    details = ', '.join(f'--{k} (saved {saved.get(k, "default")!r}, given {given[k]!r})'
                        for k in differing)
    raise RunDirError(
        f'{paths.run_dir} holds a run with other settings: {details}. Choose another '
        '--experiment_name, or pass --overwrite to replace it')
  summary = files.read_json(paths.summary_json) or {}
  return paths, Action.DONE if summary.get('status') in FINAL_STATUSES else Action.RESUME


def create(paths: RunPaths, action: Action, config) -> None:
  """Makes the run directory ready for `action` (removing it first for OVERWRITE)."""
  if action == Action.OVERWRITE:
    shutil.rmtree(paths.run_dir)
  os.makedirs(paths.run_dir, exist_ok=True)
  if action != Action.RESUME:
    files.write_json_atomic(paths.hparams_json, config_lib.active_flat(config))


