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
import sys
import threading
import time
from typing import Any, Callable, Optional, Sequence

from tff_experiments.sweeps import keeper
from tff_experiments.sweeps import pool

_INSTALL_HINT = ('pip install .[ray], or pip install --no-deps -r requirements-ray.lock '
                 '(Ray is an optional extra)')
_CANCELLED = 130                  # Cancelled before it ran: interrupted, as the local pool's.
_KILLED = -int(signal.SIGKILL)    # Its worker was killed after the grace period.
# No usage reports sent from the sweep's machine; no warning about a default that will change
# (the children get the job's environment anyway).
_RAY_ENVIRONMENT = {'RAY_USAGE_STATS_ENABLED': '0', 'RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO': '0'}
# Read by Ray when it is imported: '0' makes its node address 127.0.0.1 (its default on macOS
# and Windows), so that a local instance listens on loopback only and its drivers reach it
# there (on Linux, Ray 2.50 otherwise rewrites a 127.0.0.1 address to the machine's own).
LOCAL_ONLY = ('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', '0')


def import_ray(local: bool = False) -> Any:
  """The `ray` module; pool.BackendError naming --backend and how to install it if missing.
  `local`: for a local instance, reached on 127.0.0.1 (LOCAL_ONLY, set before Ray's import)."""
  name, value = LOCAL_ONLY
  if local:
    if sys.modules.get('ray') is not None and os.environ.get(name) != value:
      raise pool.BackendError(f'--backend=ray: Ray was imported in this process before its '
                              f'local instance could be made local-only; set {name}={value} '
                              'before importing it')
    os.environ[name] = value
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


def start_local_instance(num_cpus: int) -> str:
  """Runs in the keeper (`keeper.Keeper`): `ray.init` of a new local Ray instance with
  `num_cpus` CPUs, no dashboard, everything it listens on bound to 127.0.0.1; its GCS address."""
  ray = import_ray(local=True)
  context = ray.init(address='local', num_cpus=num_cpus, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
  return context.address_info['gcs_address']


def stop_local_instance() -> None:
  """Runs in the keeper at the end: stops the instance `start_local_instance` started."""
  import_ray(local=True).shutdown()


def start_ray(address: Optional[str], num_cpus: int) -> Optional[keeper.Keeper]:
  """`ray.init`, connected to a new local Ray instance with `num_cpus` CPUs if `address` is None
  (never one found through RAY_ADDRESS: that is `--ray_address=auto`), else to the cluster at
  `address`. Quiet: Ray's own logging at errors only, the tasks' output not sent here (each run
  has its log). pool.BackendError (one line) if Ray cannot start or connect.

  The local instance runs inside a keeper process (returned: `close()` it after
  `ray.shutdown()`), never as children of this one, so that when this process dies, even by
  SIGKILL, the keeper stops every process of the instance (Ray's own fate sharing misses its
  agents) and the runs.

  `ray.init` replaces this process's SIGTERM handler with one that exits at once (stopping a
  local instance under the runs' feet); the caller's is put back, so that SIGTERM still stops
  the runs as Ctrl-C does (the sweep turns both into KeyboardInterrupt).
  """
  ray = import_ray(local=address is None)
  for name, value in _RAY_ENVIRONMENT.items():
    os.environ.setdefault(name, value)
  options = dict(logging_level=logging.ERROR, log_to_driver=False)
  kept = None
  if address is None:
    try:
      kept = keeper.Keeper.start(__name__, start_local_instance.__name__,
                                 {'num_cpus': num_cpus}, stop=stop_local_instance.__name__)
    except keeper.KeeperError as e:
      raise pool.BackendError(f'--backend=ray: cannot start a local Ray instance: {e}') from e
    options.update(address=kept.result)
  else:
    options.update(address=address)
  main_thread = threading.current_thread() is threading.main_thread()
  sigterm_handler = signal.getsignal(signal.SIGTERM) if main_thread else None
  try:
    ray.init(**options)
  except BaseException as e:
    if kept:
      kept.close()
    if not isinstance(e, Exception):
      raise
    what = (f'--ray_address={address}: cannot connect to Ray' if address else
            '--backend=ray: cannot connect to its local Ray instance')
    raise pool.BackendError(f'{what}: {_first_line(e)}') from e
  finally:
    if sigterm_handler is not None:
      signal.signal(signal.SIGTERM, sigterm_handler)
  return kept


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
    self._ray = import_ray(local=address is None)
    self._parallel, self._cpus, self._address = parallel, cpus_per_job, address
    self._on_start, self._on_exit = on_start, on_exit
    self._on_tick = on_tick or (lambda: None)
    self._poll_s, self._grace_s = poll_s, grace_s
    self._running: dict[Any, tuple[pool.Job, float]] = {}  # ObjectRef -> (job, start time).

  def run(self, jobs: Sequence[pool.Job]) -> None:
    """Runs every job (in order, `parallel` at a time) until all have exited.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller), or any other
    exception, every running task is stopped and reported before the exception propagates;
    queued jobs never start. pool.BackendError if Ray cannot be started or reached.
    """
    # Ray already initialized in this process is used as it is; else this pool connects (and
    # disconnects at the end), starting a local instance (stopped at the end) without address.
    started_ray, kept = False, None
    if not self._ray.is_initialized():
      cores = len(os.sched_getaffinity(0))
      kept = start_ray(self._address, num_cpus=max(cores, self._parallel * self._cpus))
      started_ray = True
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
          self._reap(ready)
          self._on_tick()
      except BaseException:  # Ctrl-C, or a failing callback: no task outlives the pool.
        self.stop()
        raise
    finally:
      if started_ray:
        self._ray.shutdown()
      if kept:
        kept.close()

  def _reap(self, refs: Sequence[Any], *, forced: bool = False) -> None:
    """Reports the finished tasks `refs`: cancelled ones as interrupted, or, `forced`, as killed
    with a note in the job's log saying the sweep did it; a Ray failure is written to the log."""
    for ref in refs:
      job, began = self._running.pop(ref)
      try:
        code = self._ray.get(ref)
      except (self._ray.exceptions.TaskCancelledError, self._ray.exceptions.RayError) as e:
        if forced:
          pool.add_note(job, 'the sweep cancelled its Ray task by force when it was stopped '
                        '(ray.cancel(force=True) kills the task\'s worker with SIGKILL), after '
                        f'{self._grace_s:.0f} s or a second Ctrl-C')
          code = _KILLED
        elif isinstance(e, self._ray.exceptions.TaskCancelledError):
          code = _CANCELLED
        else:  # Its worker or node died, ...
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
        self._reap(ready)
    except KeyboardInterrupt:
      pass
    finally:
      for ref in self._running:
        self._ray.cancel(ref, force=True)
      self._reap(list(self._running), forced=True)
