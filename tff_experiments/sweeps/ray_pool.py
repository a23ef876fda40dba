"""Runs a sweep's commands as Ray tasks, at most N at a time, and stops them all cleanly.

The Ray backend of `launch.sweep` (`--backend=ray`), with `pool.Pool`'s interface: each job is
one Ray task requesting `cpus_per_job` CPUs, which runs the job's command as a child of its
worker exactly as the local pool does (`pool.start`: same environment, log file and working
directory) and returns its exit code. Without an address Ray starts a local instance (stopped
again at the end), so the same sweep runs on a laptop and, with `address` ('auto',
'ray://head:10001'), on a cluster, where Ray's scheduler places the tasks on its nodes. The
nodes must see the same paths: the Python environment, the working directory and the sweep's
results directory (a shared filesystem).

Stopping cancels every task: first gently (`ray.cancel`), which interrupts the task, which sends
SIGTERM to its child (launch.run_experiment then writes its summary as `interrupted` and exits
130), then, after a grace period (or at a second Ctrl-C), by force, which kills the task's
worker; its child dies with it (Ray kills a dead worker's children, and the child gets SIGTERM
from the kernel when its parent dies).

Ray is an optional extra (`pip install .[ray]`, pinned in requirements-ray.lock): it is imported
only here, when a pool runs, and its absence is a one-line pool.BackendError.
"""

import logging
import os
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Optional, Sequence

from tff_experiments.sweeps import pool

_INSTALL_HINT = ('pip install .[ray], or pip install --no-deps -r requirements-ray.lock '
                 '(Ray is an optional extra)')
_CANCELLED = 130                  # Cancelled before it ran: interrupted, as the local pool's.
_KILLED = -int(signal.SIGKILL)    # Its worker was killed after the grace period.
# No usage reports sent from the sweep's machine; no warning about a default that will change
# (the children get the job's environment anyway).
_RAY_ENVIRONMENT = {'RAY_USAGE_STATS_ENABLED': '0', 'RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO': '0'}


def import_ray() -> Any:
  """The `ray` module; pool.BackendError naming --backend and how to install it if missing."""
  try:
    import ray  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  except ImportError as e:
    raise pool.BackendError(f'--backend=ray needs Ray, which is not installed ({e}): '
                            f'{_INSTALL_HINT}') from e
  return ray


def run_job(job: pool.Job, grace_s: float) -> int:
  """The Ray task: runs `job` as a child of this worker and returns its exit code.

  The child is polled rather than waited for, so that a gentle `ray.cancel` (a
  KeyboardInterrupt between Python instructions) reaches this task, which then stops the child
  the way the local pool does: SIGTERM, then SIGKILL after `grace_s`.
  """
  process = pool.start(job)
  try:
    while True:
      try:
        return process.wait(timeout=0.2)
      except subprocess.TimeoutExpired:
        pass
  except BaseException:
    process.terminate()
    try:
      return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
      process.kill()
      return process.wait()


def start_ray(address: Optional[str], num_cpus: int) -> None:
  """`ray.init`: a new local Ray instance with `num_cpus` CPUs and no dashboard if `address` is
  None (never an instance found through RAY_ADDRESS: that is `--ray_address=auto`), else the
  cluster at `address`. Quiet: Ray's own logging at errors only, the tasks' output not sent
  here (each run has its log). pool.BackendError (one line) if Ray cannot start or connect.

  `ray.init` replaces this process's SIGTERM handler with one that exits at once (stopping a
  local instance under the runs' feet); the caller's is put back, so that SIGTERM still stops
  the runs as Ctrl-C does (the sweep turns both into KeyboardInterrupt).
  """
  ray = import_ray()
  for name, value in _RAY_ENVIRONMENT.items():
    os.environ.setdefault(name, value)
  options = dict(logging_level=logging.ERROR, log_to_driver=False)
  if address is None:
    options.update(address='local', num_cpus=num_cpus, include_dashboard=False)
  else:
    options.update(address=address)
  main_thread = threading.current_thread() is threading.main_thread()
  sigterm_handler = signal.getsignal(signal.SIGTERM) if main_thread else None
  try:
    ray.init(**options)
  except Exception as e:  # pylint: disable=broad-except  # ConnectionError, ValueError, ...
    what = (f'--ray_address={address}: cannot connect to Ray' if address else
            '--backend=ray: cannot start a local Ray instance')
    raise pool.BackendError(f'{what}: {_first_line(e)}') from e
  finally:
    if sigterm_handler is not None:
      signal.signal(signal.SIGTERM, sigterm_handler)


def _first_line(error: BaseException) -> str:
  lines = [l.strip() for l in str(error).splitlines() if l.strip()]
  return lines[0] if lines else ''


class RayPool:
  """Runs jobs as Ray tasks, at most `parallel` at a time; callbacks report starts and exits.

  `address`: None starts a local Ray instance with enough CPUs for `parallel` jobs (and stops
  it at the end); else where to connect (`ray.init(address)`), disconnecting at the end. A Ray
  already initialized in this process is used as it is and left running.
  """

  def __init__(self, parallel: int, *, on_start: Callable[[pool.Job], None],
               on_exit: Callable[[pool.Job, int, float], None],
               on_tick: Optional[Callable[[], None]] = None, cpus_per_job: int = 1,
               address: Optional[str] = None, poll_s: float = 0.2, grace_s: float = 60.0):
    if parallel < 1 or cpus_per_job < 1:
      raise ValueError(f'parallel and cpus_per_job must be >= 1, got {parallel}, '
                       f'{cpus_per_job}')
    self._ray = import_ray()
    self._parallel, self._cpus, self._address = parallel, cpus_per_job, address
    self._on_start, self._on_exit = on_start, on_exit
    self._on_tick = on_tick or (lambda: None)
    self._poll_s, self._grace_s = poll_s, grace_s
    self._running: dict[Any, tuple[pool.Job, float]] = {}  # ObjectRef -> (job, start time).

  def _connect(self) -> bool:
    """Initializes Ray unless it already is; whether this pool did (and so shuts it down)."""
    if self._ray.is_initialized():
      return False
    cores = len(os.sched_getaffinity(0))
    start_ray(self._address, num_cpus=max(cores, self._parallel * self._cpus))
    return True

  def run(self, jobs: Sequence[pool.Job]) -> None:
    """Runs every job (in order, `parallel` at a time) until all have exited.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller), or any other
    exception, every running task is stopped and reported before the exception propagates;
    queued jobs never start. pool.BackendError if Ray cannot be started or reached.
    """
    started_ray = self._connect()
    try:
      task = self._ray.remote(num_cpus=self._cpus, max_retries=0)(run_job)
      queue = list(jobs)
      try:
        while queue or self._running:
          while queue and len(self._running) < self._parallel:
            job = queue.pop(0)
            self._running[task.options(name=job.key).remote(job, self._grace_s)] = (
                job, time.monotonic())
            self._on_start(job)
          ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running),
                                    timeout=self._poll_s)
          self._reap(ready, cancelled_code=_CANCELLED)
          self._on_tick()
      except BaseException:  # Ctrl-C, or a failing callback: no task outlives the pool.
        self.stop()
        raise
    finally:
      if started_ray:
        self._ray.shutdown()

  def _reap(self, refs: Sequence[Any], *, cancelled_code: int) -> None:
    """Reports the finished tasks `refs` (a Ray failure is written to the job's log)."""
    for ref in refs:
      job, began = self._running.pop(ref)
      try:
        code = self._ray.get(ref)
      except self._ray.exceptions.TaskCancelledError:
        code = cancelled_code
      except self._ray.exceptions.RayError as e:  # Its worker or node died, ...
        with open(job.log_path, 'a', encoding='utf-8') as log:
          log.write(f'\n{type(e).__name__}: the Ray task of this run failed: '
                    f'{_first_line(e)}\n')
        code = 1
      self._on_exit(job, code, time.monotonic() - began)

  def stop(self) -> None:
    """Cancels every task: gently (each stops its child with SIGTERM), then by force those still
    running after the grace period (or at a second Ctrl-C); each is reported."""
    for ref in self._running:
      self._ray.cancel(ref, force=False)
    deadline = time.monotonic() + self._grace_s
    try:
      while self._running and time.monotonic() < deadline:
        ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running),
                                  timeout=self._poll_s)
        self._reap(ready, cancelled_code=_CANCELLED)
    except KeyboardInterrupt:
      pass
    finally:
      for ref in self._running:
        self._ray.cancel(ref, force=True)
      self._reap(list(self._running), cancelled_code=_KILLED)
