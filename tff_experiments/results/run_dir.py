"""A run's directory: where its files live, and whether a run may start, resume or skip.

`<root_output_dir>/<experiment_name>/` holds metrics.csv (`metrics_csv.MetricsCsv`),
hparams.json (the active settings: the run's identity), summary.json (`summary`) and
checkpoints/ (`tff.program.FileProgramStateManager`). JSON files are written atomically.
"""

import dataclasses
import enum
import logging
import os
import shutil

from tff_experiments.core import config as config_lib
from tff_experiments.core import files
from tff_experiments.results import behaviour
from tff_experiments.results import run_lock

# Keys every hparams.json of this package has: what marks a directory as one of its runs.
RUN_KEYS = ('dataset', 'algorithm', 'seed')
# summary.json statuses of a run that is over: the same command has nothing left to do.
FINAL_STATUSES = ('completed', 'diverged', 'budget_exhausted', 'target_reached')
# Final statuses of a run that ended as it was asked to: its schedule, --stop_at_target or
# --dp_stop_at_budget (the command exits 0; `diverged` is a failure of the settings).
REQUESTED_ENDS = ('completed', 'target_reached', 'budget_exhausted')


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


def _is_abandoned_start(run_dir: str) -> bool:
  """A directory holding only our lock file: a start that died before writing anything."""
  return set(os.listdir(run_dir)) == {run_lock.LOCK_FILE}


def _saved_settings(paths: RunPaths) -> dict:
  """The run's hparams.json; RunDirError if the directory is not a run of this package."""
  try:
    saved = files.read_json(paths.hparams_json)
  except files.FileError as e:
    raise RunDirError(f'{e}: the settings of {paths.run_dir} are unknown, so it is left alone; '
                      'move it aside, or choose another --experiment_name') from e
  if not isinstance(saved, dict) or not all(k in saved for k in RUN_KEYS):
    raise RunDirError(f'{paths.run_dir} exists but is not a run of this package (no hparams.json '
                      'of one), so it is left alone; choose another --experiment_name or '
                      '--root_output_dir')
  return saved


def _strictly_inside(run_dir: str, root: str) -> bool:
  """Whether `run_dir` is a direct child of `root` (symlinks resolved), not root itself."""
  real_dir, real_root = os.path.realpath(run_dir), os.path.realpath(root)
  return os.path.dirname(real_dir) == real_root and real_dir != real_root


def plan(config, *, overwrite: bool) -> tuple[RunPaths, Action]:
  """Decides, without touching the disk, what to do with the run directory.

  Identity compares the active settings as JSON reads them back (a tuple saved as a list is
  equal); a setting missing from an older run's hparams.json counts as its default.
  `--overwrite` only ever replaces a run of this package lying directly inside the root.
  """
  paths = paths_of(config)
  if not os.path.lexists(paths.run_dir):
    return paths, Action.START
  if not os.path.isdir(paths.run_dir):
    raise RunDirError(f'{paths.run_dir} is a file, not a run directory; choose another '
                      '--experiment_name or --root_output_dir')
  if _is_abandoned_start(paths.run_dir):
    return paths, Action.START
  saved = _saved_settings(paths)
  if overwrite:
    if not _strictly_inside(paths.run_dir, config.run.root_output_dir):
      raise RunDirError(f'--overwrite refused: {paths.run_dir} does not lie directly inside '
                        f'--root_output_dir={config.run.root_output_dir}')
    return paths, Action.OVERWRITE
  differing = config_lib.differing_flags(config, saved)
  if differing:
    given = config_lib.flat(config)
    details = ', '.join(f'--{k} (saved {saved.get(k, "default")!r}, given {given[k]!r})'
                        for k in differing)
    raise RunDirError(
        f'{paths.run_dir} holds a run with other settings: {details}. Choose another '
        '--experiment_name, or pass --overwrite to replace it')
  _check_behaviour(paths, config, saved)
  try:
    summary = files.read_json(paths.summary_json) or {}
  except files.FileError as e:
    logging.warning('%s; treating the run as unfinished (the file is rewritten)', e)
    summary = {}
  return paths, Action.DONE if summary.get('status') in FINAL_STATUSES else Action.RESUME


def _check_behaviour(paths: RunPaths, config, saved: dict) -> None:
  """RunDirError if the run was started by a package whose results for its settings have
  changed since: resuming (or reporting it finished) would mix two behaviours."""
  version = behaviour.saved_version(saved)
  changes = behaviour.changes_since(version, config_lib.flat(config))
  if changes:
    raise RunDirError(
        f'{paths.run_dir} was started with behaviour version {version}; since then '
        f'{"; ".join(c.what for c in changes)}. Its results cannot be continued: pass '
        '--overwrite to run it anew, or choose another --experiment_name')


def create(paths: RunPaths, action: Action, config) -> run_lock.RunLock:
  """Makes the run directory ready for `action` and returns its lock (held until released).

  OVERWRITE takes the old run's lock first (a run in progress is never replaced), moves it
  aside and deletes it. START re-checks under the lock, so of two concurrent starts under one
  name exactly one writes the directory.
  """
  if action == Action.OVERWRITE:
    with run_lock.RunLock(paths.run_dir):
      aside = os.path.join(os.path.dirname(paths.run_dir),
                           f'.{os.path.basename(paths.run_dir)}.replaced-{os.getpid()}')
      os.replace(paths.run_dir, aside)
    shutil.rmtree(aside)
  os.makedirs(paths.run_dir, exist_ok=True)
  lock = run_lock.RunLock(paths.run_dir)
  try:
    if action != Action.RESUME:
      if not _is_abandoned_start(paths.run_dir):  # Another start won the race meanwhile.
        raise RunDirError(f'{paths.run_dir} was created by another run meanwhile; run the '
                          'command again to resume or skip it')
      files.write_json_atomic(paths.hparams_json, {**config_lib.active_flat(config),
                                                   behaviour.KEY: behaviour.CURRENT})
  except BaseException:
    lock.release()
    raise
  return lock


def check_locations(config) -> None:
  """Fails (RunDirError naming the flag) if the run could not write its files: checked before
  any data is loaded, so a bad location costs nothing and changes nothing."""
  paths = paths_of(config)
  _check_directory_flag('root_output_dir', config.run.root_output_dir)
  _check_directory_flag('cache_dir', config.data.cache_dir)
  if os.path.lexists(paths.run_dir) and not os.path.isdir(paths.run_dir):
    raise RunDirError(f'{paths.run_dir} is a file, not a run directory; choose another '
                      '--experiment_name or --root_output_dir')
  limit = os.pathconf(_existing_ancestor(config.run.root_output_dir), 'PC_NAME_MAX')
  if len(config.run.experiment_name.encode('utf-8')) > limit:
    raise RunDirError(f'--experiment_name is {len(config.run.experiment_name)} characters; '
                      f'this filesystem allows {limit}')


def _existing_ancestor(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def _check_directory_flag(flag: str, path: str) -> None:
  """`path` is a directory, or can be made one: not a file, on a writable filesystem."""
  ancestor = _existing_ancestor(path)
  if not os.path.isdir(ancestor):
    raise RunDirError(f'--{flag}={path}: {ancestor} is a file, not a directory')
  if os.statvfs(ancestor).f_flag & os.ST_RDONLY:
    raise RunDirError(f'--{flag}={path}: {ancestor} is on a read-only filesystem')
  if not os.access(ancestor, os.W_OK | os.X_OK):
    raise RunDirError(f'--{flag}={path}: {ancestor} is not writable')
