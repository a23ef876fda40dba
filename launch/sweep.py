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
import shlex
import signal
import sys
from typing import Sequence

from absl import app
from absl import flags

from launch import console
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.results import run_lock
# Imported for its side effect: it frees TFF's import-time default context, whose __del__
# otherwise fails noisily at exit (the sweep itself runs no TFF computation).
from tff_experiments.runtime import local_worker  # pylint: disable=unused-import
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import execute
from tff_experiments.sweeps import grid
from tff_experiments.sweeps import plan
from tff_experiments.sweeps import pool
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
      raise plan.SweepError(f'--seeds={",".join(_SEEDS.value)}: seeds are integers') from e
  if not axes and seeds is None:
    raise plan.SweepError('nothing to sweep: give --grid, --grid_file or --seeds')
  return grid.combine(axes, seeds)


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
      raise plan.SweepError(f'--sweep_name={sweep_name!r}: must be a directory name')
    sweep_dir = os.path.join(os.path.abspath(os.path.expanduser(_ROOT.value)), sweep_name)
    if os.path.isdir(sweep_dir) and not _DRY_RUN.value:
      lock = execute.lock(sweep_dir)  # Before reading its runs: another sweep may be writing them.
    planned = plan.plan_points(axes, fixed_args, sweep_dir)
    if not _DRY_RUN.value:
      lock = lock or execute.lock(sweep_dir)  # A new directory: made once every point is valid.
  except (plan.SweepError, grid.GridError, backends.BackendError, run_lock.RunInUseError,
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
    return execute.run_sweep(sweep, backend, parallel, threads, _RAY_ADDRESS.value)


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
