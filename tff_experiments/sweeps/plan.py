"""Plans a sweep: every grid point as a validated run, named, with what run_experiment would do.

Each point (the fixed flags with its grid values) is parsed and checked by run_experiment's own
flag definitions (`flag_binding`) and its run directory by `run_dir`'s rules, so a typo fails the
whole sweep before anything starts. A flag that does not apply at a point is left out of it
(points that then are the same run are one), with a note; one that applies at no point fails.
"""

import difflib
import os
import sys
from typing import Sequence

from absl import flags

from tff_experiments import flag_binding
from tff_experiments import settings
from tff_experiments.core import applicability
from tff_experiments.core import config as config_lib
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.sweeps import grid
from tff_experiments.sweeps import state

# Set by the sweep for each run.
_SWEEP_FLAGS = ('experiment_name', 'root_output_dir')


class SweepError(ValueError):
  """The sweep cannot start (the message names the flag, value or run)."""


def parse_run_flags(argv: Sequence[str], cross_checks: bool = True) -> flags.FlagValues:
  """`argv` parsed by launch.run_experiment's own flag definitions and validators (without
  those across settings if not `cross_checks`: for the fixed flags, which the grid completes)."""
  values = flags.FlagValues()
  flag_binding.define_flags(values, cross_checks=cross_checks)
  try:
    rest = values(['run_experiment', *argv])
  except flags.Error as e:
    raise SweepError(str(e)) from e
  if len(rest) > 1:
    raise SweepError(f'unexpected arguments for launch.run_experiment: {rest[1:]}')
  return values


def _check_axes(axes: Sequence[grid.Axis], fixed: flags.FlagValues) -> None:
  known = flag_binding.flag_names()
  for axis in axes:
    if axis.flag in _SWEEP_FLAGS:
      raise SweepError(f'--{axis.flag} cannot be a grid axis: the sweep sets it for each run')
    if axis.flag not in known:
      close = difflib.get_close_matches(axis.flag, known, n=3, cutoff=0.5)
      hint = (f'; did you mean {" or ".join(close)}?' if close
              else '; see python -m launch.run_experiment --help')
      raise SweepError(f'--grid: unknown flag {axis.flag!r}{hint}')
    if fixed[axis.flag].present:
      raise SweepError(f'--{axis.flag} is both a grid axis and a fixed flag after --')
  for flag in _SWEEP_FLAGS:
    if fixed[flag].present:
      raise SweepError(f'--{flag} after --: the sweep names its runs and puts them under '
                       '--root_output_dir/--sweep_name')


class Planned(list):
  """The sweep's runs as (point, action) in grid order, the number of `grid_points` they come
  from, and `notes`: one line per flag left out of the points where it does not apply."""

  def __init__(self, runs=(), grid_points=0, notes=()):
    super().__init__(runs)
    self.grid_points, self.notes = grid_points, list(notes)


def _applying(values: dict, fixed_args: Sequence[str]
              ) -> tuple[dict, list[str], flags.FlagValues, list[applicability.Reason]]:
  """A grid point without the flags, grid or fixed, that its other settings make inactive:
  (its grid values, its run_experiment arguments and their parse, why each was left out)."""
  point, args, left_out = grid.flag_args(values), [*fixed_args, *grid.flag_args(values)], []
  for _ in range(len(flag_binding.flag_names())):  # Each pass leaves out at least one flag.
    try:
      parsed = parse_run_flags(args)
      flag_binding.config_from_flags(parsed, given_flags=())  # Valid, whatever applies.
    except (SweepError, config_lib.ConfigError) as e:
      raise SweepError(f'grid point {point}: {e}') from e
    reasons = settings.unapplied(flag_binding.values(parsed), flag_binding.given(parsed))
    if not reasons:
      break
    left_out += reasons
    names = {flag for reason in reasons for flag in reason.flags}
    values = {flag: value for flag, value in values.items() if flag not in names}
    fixed_args = flag_binding.without(fixed_args, names, parsed)
    args = [*fixed_args, *grid.flag_args(values)]
  return values, args, parsed, left_out


def _applies_at_no_point(flag: str, reason: applicability.Reason) -> str:
  where = f'it applies {reason.condition}; ' if reason.condition else ''
  return (f'--{flag} does not apply at any point of this sweep ({where}the first point is '
          f'{reason.current})')


def _left_out_note(flag: str, reason: applicability.Reason, count: int, total: int) -> str:
  why = (f'applies {reason.condition}' if reason.condition
         else f'does not apply with {reason.current}')
  return f'note: --{flag} {why}: left out of {count} of {total} grid points (they run without it)'


def plan_points(axes: Sequence[grid.Axis], fixed_args: Sequence[str], sweep_dir: str
                ) -> Planned:
  """Every point as a validated run (its command, settings and run directory) and what
  run_experiment would do with it (start, resume, done); SweepError naming the point.

  A flag that does not apply at a point is left out of its command and name (points that then
  are the same run are one), noted in `Planned.notes`; one that applies at no point fails.
  """
  fixed = parse_run_flags(fixed_args, cross_checks=False)
  _check_axes(axes, fixed)
  grid_points = grid.expand(axes)
  runs, left_out = [], {}  # left_out: flag -> [points without it, first reason].
  for grid_values in grid_points:
    values, args, parsed, reasons = _applying(grid_values, fixed_args)
    for reason in reasons:
      for flag in reason.flags:
        left_out.setdefault(flag, [0, reason])[0] += 1
    name = grid.run_name({flag: parsed[flag].value for flag in values})
    if reasons and name in [run[0] for run in runs]:
      continue  # The same run as an earlier point, once what does not apply is left out.
    runs.append((name, values, args, parsed))
  nowhere = [_applies_at_no_point(flag, reason) for flag, (count, reason) in left_out.items()
             if count == len(grid_points)]
  if nowhere:
    raise SweepError('; '.join(nowhere))
  grid.check_unique([run[0] for run in runs])
  planned = Planned(grid_points=len(grid_points), notes=[
      _left_out_note(flag, reason, count, len(grid_points))
      for flag, (count, reason) in left_out.items()])
  for name, values, args, parsed in runs:
    args = [*args, f'--root_output_dir={sweep_dir}', f'--experiment_name={name}']
    try:
      parsed.root_output_dir, parsed.experiment_name = sweep_dir, name
      config = flag_binding.config_from_flags(parsed)
      paths, action = run_dir.plan(config, overwrite=parsed.overwrite)
    except (flags.Error, config_lib.ConfigError, run_dir.RunDirError, files.FileError) as e:
      raise SweepError(f'run {name}: {e}') from e
    point = state.Point(
        name=name, values=dict(values), run_dir=paths.run_dir,
        log=os.path.join(sweep_dir, f'{name}.log'),
        command=[sys.executable, '-m', 'launch.run_experiment', *args],
        hparams=config_lib.active_flat(config))
    planned.append((point, action))
  return planned
