r"""Runs a grid of `launch.run_experiment` runs, N at a time; re-running it resumes the sweep.

  python -m launch.sweep --grid client_learning_rate=0.01,0.03,0.1 \
      --grid server_optimizer=sgd,adam --seeds=0,1,2 --sweep_name=lr_opt \
      -- --dataset=digits --total_rounds=50

Flags after `--` are fixed for every run (`--flagfile=launch/presets/...` works there too).
Every point (the fixed flags with its grid values) is validated up front by run_experiment's own
flag definitions and checks (and its run directory by the same rules), so a typo fails the whole
sweep before anything starts. A flag that does not apply at a point (`--proximal_mu` where
`--algorithm=fedavg`) is left out of that point's command and name, with a note, so points that
differ only in it are one run; a flag that applies at no point fails the sweep.
Each point is one run, `<root_output_dir>/<sweep_name>/<run_name>/`, named from its grid values
(`client_learning_rate=0.01-server_optimizer=adam-seed=1`), with its output in
`<run_name>.log` beside it; `sweep.json` there records points, commands and states. A failed
run does not stop the others; the exit code is 1 if any failed (130 if interrupted). Finished
runs are skipped on a re-run and unfinished ones resume from their checkpoints. One sweep at a
time runs in a sweep directory (a second one fails at once, exit 2); a file the sweep cannot
write (a full disk) stops every run, with one line saying what to do.

`--backend=ray` runs each point as a Ray task instead of a child process (`pip install .[ray]`),
on a local Ray instance (listening on 127.0.0.1 only, kept by a process that stops all of it
however the sweep ends) or, with `--ray_address`, a cluster whose nodes share this directory
layout (same paths for the environment, the working directory and the results).
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TF is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
from launch import quiet_tf

quiet_tf.import_tensorflow()  # First: without TF's three cuDNN/cuFFT/cuBLAS lines.

import datetime
import difflib
import shlex
import signal
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags

from launch import console
from launch import flag_binding
from tff_experiments import settings
from tff_experiments.core import applicability
from tff_experiments.core import config as config_lib
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.results import run_lock
# Imported for its side effect: it frees TFF's import-time default context, whose __del__
# otherwise fails noisily at exit (the sweep itself runs no TFF computation).
from tff_experiments.runtime import local_worker  # pylint: disable=unused-import
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import grid
from tff_experiments.sweeps import pool
from tff_experiments.sweeps import progress as progress_lib
from tff_experiments.sweeps import state

# The sweep's own flags live apart from absl's global FLAGS, where launch.run_experiment's
# (same name: --root_output_dir) would clash with them in one interpreter (tests, notebooks).
FLAGS = flags.FlagValues()
_GRID = flags.DEFINE_multi_string(
    'grid', [], 'One axis of the grid: flag=value1,value2,... (repeat for more axes).',
    flag_values=FLAGS)
_GRID_FILE = flags.DEFINE_string(
    'grid_file', None, 'JSON or YAML file of more axes: {flag: [values, ...], ...}.',
    flag_values=FLAGS)
_SEEDS = flags.DEFINE_list('seeds', None, 'Seeds of every point (--seed): the last axis.',
                           flag_values=FLAGS)
_SWEEP_NAME = flags.DEFINE_string(
    'sweep_name', None, 'Directory of the sweep under --root_output_dir. Default: '
    'sweep-<grid flags>-<hash of the grid and fixed flags>, so the same command resumes it.',
    flag_values=FLAGS)
_ROOT = flags.DEFINE_string('root_output_dir', 'results', 'Where the sweep directory goes.',
                            flag_values=FLAGS)
_PARALLEL = flags.DEFINE_integer(
    'parallel', None, 'Runs at a time, with either backend (default: the usable cores here); '
    'the TF thread pools of each run get cores/parallel threads (with --backend=ray, each run '
    'requests as many CPUs).', lower_bound=1, flag_values=FLAGS)
_BACKEND = flags.DEFINE_enum(
    'backend', 'local', backends.BACKENDS.names(), 'How the runs are executed: local (child '
    'processes of the sweep) or ray (a Ray task per run, requesting its TF threads as CPUs; '
    'needs pip install .[ray]). The results directories are the same either way.',
    flag_values=FLAGS)
_RAY_ADDRESS = flags.DEFINE_string(
    'ray_address', None, 'With --backend=ray: the Ray cluster (auto, ray://head:10001). Default: '
    'a local Ray instance started and stopped by the sweep. A cluster\'s nodes must see the '
    'same paths: the Python environment, the working directory and --root_output_dir.',
    flag_values=FLAGS)
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the runs and what each would do; exit.',
                             flag_values=FLAGS)
_HELP = ('-h', '-help', '--help', '--helpshort', '--helpfull', '-?')

# Set by the sweep for each run.
_SWEEP_FLAGS = ('experiment_name', 'root_output_dir')
_THREAD_VARIABLES = ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS')


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


def _axes() -> list[grid.Axis]:
  """The grid's axes from --grid, --grid_file and --seeds (seeds last)."""
  axes = [grid.parse_axis(spec) for spec in _GRID.value]
  if _GRID_FILE.value:
    axes += grid.read_grid_file(_GRID_FILE.value)
  seeds = None
  if _SEEDS.value is not None:
    try:
      seeds = [int(s) for s in _SEEDS.value]
    except ValueError as e:
      raise SweepError(f'--seeds={",".join(_SEEDS.value)}: seeds are integers') from e
  if not axes and seeds is None:
    raise SweepError('nothing to sweep: give --grid, --grid_file or --seeds')
  return grid.combine(axes, seeds)


def run_sweep(sweep: state.SweepFile, backend: backends.Backend, parallel: int, threads: int,
              address: Optional[str] = None) -> int:
  """Runs the sweep's pending points with `backend`; the exit code (0, 1 if any failed or a file
  of the sweep cannot be written, 2 if the backend cannot run, 130 interrupted)."""
  by_name = {p.name: p for p in sweep.points}
  jobs = [pool.Job(key=p.name, command=p.command, log_path=p.log, cwd=os.getcwd(),
                   env={**os.environ, 'PYTHONUNBUFFERED': '1',
                        **{v: os.environ.get(v) or str(threads) for v in _THREAD_VARIABLES}})
          for p in sweep.points if p.state == state.PENDING]
  progress = progress_lib.Progress(sweep, len(jobs))
  # A file the sweep cannot write (sweep.json, a log; e.g. a full disk) stops the sweep at the
  # next tick: the callbacks record it rather than raise, so that stopping still reports every
  # run (in memory) and the first error is the one told.
  cannot_write: list[str] = []

  def record(point: state.Point, **changes) -> None:
    try:
      sweep.update(point, **changes)
    except state.SweepFileError as e:
      cannot_write.append(str(e))

  def on_start(job: pool.Job) -> None:
    try:
      with open(job.log_path, 'a', encoding='utf-8') as log:
        log.write(pool.log_header(job.command))
    except OSError as e:
      cannot_write.append(state.write_error(job.log_path, e))
    record(by_name[job.key], state=state.RUNNING)
    progress.say(f'started {job.key}')

  def on_exit(job: pool.Job, code: int, seconds: float) -> None:
    point = by_name[job.key]
    try:
      summary = files.read_json(os.path.join(point.run_dir, 'summary.json'))
    except files.FileError:
      summary = None
    new_state, status = state.outcome(code, summary)
    message = state.failure_message(job.log_path, code) if new_state != state.DONE else None
    record(point, state=new_state, status=status, exit_code=code, seconds=round(seconds, 1),
           message=message)
    progress.finished()
    progress.say(progress_lib.describe(point))

  def on_tick() -> None:
    if cannot_write:
      raise state.SweepFileError(cannot_write[0])

  try:
    backend.build(parallel, cpus_per_job=threads, address=address, on_start=on_start,
                  on_exit=on_exit, on_tick=on_tick).run(jobs)
  except backends.BackendError as e:
    progress.close()
    print(f'sweep: error: {e}', file=sys.stderr)
    return 2
  except state.SweepFileError:
    progress.close()
    print(f'sweep: error: stopped every run: {cannot_write[0]}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    progress.close()
    print(f'interrupted: every run was stopped; run the same command again to resume the sweep '
          f'({os.path.dirname(sweep.path)})', file=sys.stderr)
    return 130
  progress.close()
  if cannot_write:  # At the last run's end.
    print(f'sweep: error: {cannot_write[0]}', file=sys.stderr)
    return 1
  return progress_lib.report(sweep)


def _lock(sweep_dir: str) -> run_lock.RunLock:
  """The sweep directory, created if needed and locked: one sweep in it at a time
  (run_lock.RunInUseError naming the pid holding it; SweepFileError on a full disk, else
  SweepError if it cannot be made)."""
  try:
    os.makedirs(sweep_dir, exist_ok=True)
    return run_lock.RunLock(sweep_dir, holder='sweep', name_flag='--sweep_name')
  except OSError as e:
    if e.errno in state.DISK_FULL_ERRNOS:
      raise state.SweepFileError(state.write_error(sweep_dir, e)) from e
    raise SweepError(f'--root_output_dir: cannot create or lock the sweep directory '
                     f'{sweep_dir}: {e.strerror or e}') from e


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
  try:
    return _main(list(argv[1:]))
  except KeyboardInterrupt:  # Before any run started (while validating).
    print('interrupted', file=sys.stderr)
    return 130


def _main(fixed_args: list[str]) -> int:
  """The sweep of the parsed flags, with `fixed_args` for every run; the exit code."""
  lock = None
  try:
    backend = backends.check(_BACKEND.value, _RAY_ADDRESS.value)
    axes = _axes()
    sweep_name = _SWEEP_NAME.value or grid.default_sweep_name(axes, fixed_args)
    if not sweep_name.strip() or os.sep in sweep_name or sweep_name in ('.', '..'):
      raise SweepError(f'--sweep_name={sweep_name!r}: must be a directory name')
    sweep_dir = os.path.join(os.path.abspath(os.path.expanduser(_ROOT.value)), sweep_name)
    if os.path.isdir(sweep_dir) and not _DRY_RUN.value:
      lock = _lock(sweep_dir)  # Before reading its runs: another sweep may be writing them.
    planned = plan_points(axes, fixed_args, sweep_dir)
    if not _DRY_RUN.value:
      lock = lock or _lock(sweep_dir)  # A new directory: made once every point is valid.
  except (SweepError, grid.GridError, backends.BackendError, run_lock.RunInUseError,
          state.SweepFileError) as e:
    if lock:
      lock.release()
    print(f'sweep: error: {e}', file=sys.stderr)
    return 1 if isinstance(e, state.SweepFileError) else 2
  parallel = _PARALLEL.value or len(os.sched_getaffinity(0))
  threads = pool.threads_per_job(parallel)
  for point, action in planned:
    if action == run_dir.Action.DONE:
      summary = files.read_json(os.path.join(point.run_dir, 'summary.json')) or {}
      point.state, point.status = state.SKIPPED, summary.get('status')
  for note in planned.notes:
    print(note)
  collapsed = (f' (of {planned.grid_points} grid points)'
               if planned.grid_points != len(planned) else '')
  print(f'sweep {sweep_name}: {len(planned)} runs{collapsed} in {sweep_dir} (backend '
        f'{_BACKEND.value}, parallel {parallel}, {threads} TF thread(s) per run)')
  if _DRY_RUN.value:
    for point, action in planned:
      print(f'  {"skip" if action == run_dir.Action.DONE else action.value:9} {point.name}\n'
            f'      {shlex.join(point.command)}')
    return 0
  # Ctrl-C (even where SIGINT was inherited ignored), SIGTERM and SIGHUP stop every run.
  signal.signal(signal.SIGINT, signal.default_int_handler)
  for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, _raise_keyboard_interrupt)
  header = {'sweep_name': sweep_name, 'sweep_dir': sweep_dir,
            'grid': {a.flag: list(a.values) for a in axes}, 'fixed_args': fixed_args,
            'backend': _BACKEND.value, 'ray_address': _RAY_ADDRESS.value,
            'parallel': parallel, 'threads_per_run': threads,
            'started': datetime.datetime.now().isoformat(timespec='seconds')}
  try:
    sweep = state.SweepFile(os.path.join(sweep_dir, state.FILE_NAME), header=header,
                            points=[p for p, _ in planned])
  except state.SweepFileError as e:
    lock.release()
    print(f'sweep: error: {e}', file=sys.stderr)
    return 1
  skipped = [p.name for p in sweep.points if p.state == state.SKIPPED]
  if skipped:
    print(f'{len(skipped)} run(s) already finished, skipped: {", ".join(skipped)}')
  with lock:
    return run_sweep(sweep, backend, parallel, threads, _RAY_ADDRESS.value)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """Parses the sweep's flags from `argv`; returns the program and the flags after `--`."""
  end = argv.index('--') if '--' in argv else len(argv)
  if set(argv[1:end]) & set(_HELP):
    print(f'{__doc__}\nflags (then --, then launch.run_experiment\'s):\n{FLAGS.get_help()}')
    sys.exit(0)
  try:
    rest = FLAGS(list(argv))
    flags.FLAGS.mark_as_parsed()  # absl's own flags (logging, ...) keep their defaults.
    return rest
  except flags.Error as e:
    print(f'sweep: error: {e}\nPass --help for the flags.', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  try:
    app.run(main, flags_parser=parse_flags)
  except SystemExit as exit_request:
    console.exit_without_teardown(exit_request.code)
