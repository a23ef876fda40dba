"""Ends a run that would otherwise hang: a TFF worker died, or a round overran its deadline.

TFF's gRPC stub retries a dead or silent worker for ever. A watchdog thread polls a liveness
probe (the local worker's process; remote workers' connections) and the current round's
deadline; on either failure it signals the main thread (`SIGUSR1` via `pthread_kill`, which
interrupts even a blocking wait), whose handler raises `WorkerFailure` with a message saying
what happened and where the worker's log is.
"""

import contextlib
import signal
import subprocess
import threading
import time
from typing import Callable, Iterator, Optional

_POLL_S = 0.2
_SIGNAL = signal.SIGUSR1


class WorkerFailure(RuntimeError):
  """The TFF worker died or stopped answering; the run cannot continue (it can be resumed)."""


# Returns None while the workers are alive, else what happened to them.
Probe = Callable[[], Optional[str]]


def describe_exit(returncode: int) -> str:
  if returncode < 0:
    try:
      return f'signal {signal.Signals(-returncode).name}'
    except ValueError:
      return f'signal {-returncode}'
  return f'exit code {returncode}'


def process_probe(process: subprocess.Popen, *, log_path: str) -> Probe:
  """A probe of a local worker process: fails once it has exited."""
  def probe() -> Optional[str]:
    returncode = process.poll()
    if returncode is None:
      return None
    return (f'the TFF worker died ({describe_exit(returncode)}); see {log_path}; run the same '
            'command again to resume')
  return probe


class Watchdog:
  """Watches the workers for the main thread; a context manager (start/stop).

  `probe` tells whether they are alive; `where` names their logs in messages; `on_deadline`
  (e.g. killing a local worker, which a wedged one would otherwise outlive) runs when a round
  overruns its deadline.
  """

  def __init__(self, probe: Probe, *, where: str,
               on_deadline: Callable[[], None] = lambda: None):
    self._probe = probe
    self._where = where
    self._on_deadline = on_deadline
    self._deadline: Optional[float] = None
    self._deadline_s = 0.0
    self._failure: Optional[str] = None
    self._stop = threading.Event()
    self._main = threading.main_thread().ident
    self._thread = threading.Thread(target=self._watch, name='tff-worker-watchdog', daemon=True)
    self._previous_handler = None

  def __enter__(self) -> 'Watchdog':
    if threading.current_thread() is threading.main_thread():
      self._previous_handler = signal.signal(_SIGNAL, self._raise)
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    self._thread.join(timeout=5)
    if self._previous_handler is not None:
      signal.signal(_SIGNAL, self._previous_handler)

  @contextlib.contextmanager
  def deadline(self, seconds: float) -> Iterator[None]:
    """Fails the block (WorkerFailure) if it is still running after `seconds`."""
    self._deadline_s, self._deadline = seconds, time.monotonic() + seconds
    try:
      yield
    finally:
      self._deadline = None

  def _raise(self, signum, frame) -> None:
    del signum, frame
    if self._failure is not None:
      raise WorkerFailure(self._failure)

  def _watch(self) -> None:
    while not self._stop.wait(_POLL_S):
      failure = self._probe()
      if failure:
        self._fail(failure)
        return
      deadline = self._deadline
      if deadline is not None and time.monotonic() > deadline:
        self._on_deadline()
        self._fail(f'the TFF worker did not answer within {self._deadline_s:.0f} s '
                   f'(--worker_timeout_s); see {self._where}; run the same command again '
                   'to resume')
        return

  def _fail(self, message: str) -> None:
    self._failure = message
    signal.pthread_kill(self._main, _SIGNAL)
