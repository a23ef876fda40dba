"""Runs a planned sweep's pending points on a backend, keeping sweep.json up to date.

One sweep at a time in a sweep directory (`lock`). Each run's start and end is recorded as it
happens, with a failed run's message; a file the sweep cannot write (a full disk) stops every run
at the next tick with one line, and Ctrl-C stops them all, so that the same command resumes it.
"""

import os
import sys
from typing import Optional

from tff_experiments.core import files
from tff_experiments.results import run_lock
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import plan
from tff_experiments.sweeps import pool
from tff_experiments.sweeps import progress as progress_lib
from tff_experiments.sweeps import state

_THREAD_VARIABLES = ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS')


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


def lock(sweep_dir: str) -> run_lock.RunLock:
  """The sweep directory, created if needed and locked: one sweep in it at a time
  (run_lock.RunInUseError naming the pid holding it; SweepFileError on a full disk, else
  plan.SweepError if it cannot be made)."""
  try:
    os.makedirs(sweep_dir, exist_ok=True)
    return run_lock.RunLock(sweep_dir, holder='sweep', name_flag='--sweep_name')
  except OSError as e:
    if e.errno in state.DISK_FULL_ERRNOS:
      raise state.SweepFileError(state.write_error(sweep_dir, e)) from e
    raise plan.SweepError(f'--root_output_dir: cannot create or lock the sweep directory '
                          f'{sweep_dir}: {e.strerror or e}') from e
