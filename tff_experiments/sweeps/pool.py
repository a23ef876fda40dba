"""Runs commands as child processes, at most N at a time, and stops them all cleanly.

Each child gets its own session (a Ctrl-C in the terminal reaches only the parent, which then
stops every child the same way) and is sent SIGTERM by the kernel if the parent dies, even by
SIGKILL (PR_SET_PDEATHSIG), so no child outlives the pool. Stopping sends SIGTERM
(launch.run_experiment then writes its summary as `interrupted` and exits 130; its next run
resumes from the checkpoint) and SIGKILL after a grace period.
"""

import ctypes
import dataclasses
import datetime
import os
import signal
import subprocess
import time
from typing import Callable, Mapping, Optional, Sequence

_PR_SET_PDEATHSIG = 1
# A job's log: each attempt starts with a header line (`=== <time>: <command>`); lines the pool
# adds about an attempt (why it stopped it by force) start with NOTE_PREFIX.
HEADER_PREFIX = '=== '
NOTE_PREFIX = 'sweep: '
_LIBC = ctypes.CDLL(None, use_errno=True)


class BackendError(RuntimeError):
  """A sweep backend cannot run (e.g. Ray missing or unreachable): a one-line message."""


@dataclasses.dataclass(frozen=True)
class Job:
  """A command to run, its output file (appended) and its environment."""
  key: str
  command: Sequence[str]
  log_path: str
  env: Mapping[str, str]
  cwd: Optional[str] = None


def log_header(command: Sequence[str]) -> str:
  """The line that starts an attempt in a job's log: the time and the command."""
  when = datetime.datetime.now().isoformat(timespec='seconds')
  return f'{HEADER_PREFIX}{when}: {" ".join(command)}\n'


def add_note(job: Job, text: str) -> None:
  """Appends the pool's note on `job`'s attempt to its log (best effort: e.g. a full disk)."""
  try:
    with open(job.log_path, 'a', encoding='utf-8') as log:
      log.write(f'\n{NOTE_PREFIX}{text}\n')
  except OSError:
    pass


def _terminate_with(parent_pid: int) -> Callable[[], None]:
  """A pre-exec hook: the child gets SIGTERM when `parent_pid` dies."""
  def hook() -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # The parent died before prctl took effect.
      os.kill(os.getpid(), signal.SIGTERM)
  return hook


def start(job: Job) -> subprocess.Popen:
  """Starts `job`'s command as a child of this process: its own session, stdin closed, stdout
  and stderr appended to its log, SIGTERM from the kernel when this process dies (also used by
  the Ray backend's tasks)."""
  with open(job.log_path, 'ab') as log:
    return subprocess.Popen(
        list(job.command), cwd=job.cwd, env=dict(job.env), stdin=subprocess.DEVNULL,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_terminate_with(os.getpid()))


def threads_per_job(parallel: int, cores: Optional[int] = None) -> int:
  """TF threads per child so that `parallel` children share the usable cores (at least 1)."""
  cores = cores or len(os.sched_getaffinity(0))
  return max(1, cores // max(1, parallel))


class Pool:
  """Runs jobs with at most `parallel` children; callbacks report starts and exits."""

  def __init__(self, parallel: int, *, on_start: Callable[[Job], None],
               on_exit: Callable[[Job, int, float], None],
               on_tick: Optional[Callable[[], None]] = None,
               poll_s: float = 0.2, grace_s: float = 60.0):
    if parallel < 1:
      raise ValueError(f'parallel must be >= 1, got {parallel}')
    self._parallel = parallel
    self._on_start, self._on_exit = on_start, on_exit
    self._on_tick = on_tick or (lambda: None)
    self._poll_s, self._grace_s = poll_s, grace_s
    self._running: dict[str, tuple[Job, subprocess.Popen, float]] = {}

  def _start(self, job: Job) -> None:
    self._running[job.key] = (job, start(job), time.monotonic())
    self._on_start(job)

  def _reap(self) -> None:
    for key, (job, process, began) in list(self._running.items()):
      if process.poll() is not None:
        del self._running[key]
        self._on_exit(job, process.returncode, time.monotonic() - began)

  def run(self, jobs: Sequence[Job]) -> None:
    """Runs every job (in order, `parallel` at a time) until all have exited.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller), or any other
    exception, every running child is stopped and reported before the exception propagates;
    queued jobs never start.
    """
    queue = list(jobs)
    try:
      while queue or self._running:
        while queue and len(self._running) < self._parallel:
          self._start(queue.pop(0))
        time.sleep(self._poll_s)
        self._reap()
        self._on_tick()
    except BaseException:  # Ctrl-C, or a failing callback: no child outlives the pool.
      self.stop()
      raise

  def stop(self) -> None:
    """SIGTERM to every child, SIGKILL to those still alive after the grace period (or at a
    second Ctrl-C); each is reaped and reported."""
    for _, process, _ in self._running.values():
      if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + self._grace_s
    try:
      while any(p.poll() is None for _, p, _ in self._running.values()):
        if time.monotonic() > deadline:
          break
        time.sleep(self._poll_s)
    except KeyboardInterrupt:
      pass
    finally:
      for job, process, _ in self._running.values():
        if process.poll() is None:
          process.kill()
          add_note(job, f'the sweep killed it (SIGKILL): still running {self._grace_s:.0f} s '
                   'after SIGTERM (or a second Ctrl-C) when the sweep was stopped')
        process.wait()
      self._reap()
