"""Ends a run that would otherwise hang: the TFF worker died, or a round overran its deadline.

TFF's gRPC stub retries a dead or silent worker for ever. A watchdog thread polls the worker
process and the current round's deadline; on either failure it signals the main thread
(`SIGUSR1` via `pthread_kill`, which interrupts even a blocking wait), whose handler raises
`WorkerFailure` with a message saying what happened and where the worker's log is.
"""

import contextlib
import signal
import subprocess
import threading
import time
from typing import Iterator, Optional

_POLL_S = 0.2
_SIGNAL = signal.SIGUSR1


class WorkerFailure(RuntimeError):
  """The TFF worker died or stopped answering; the run cannot continue (it can be resumed)."""


def _describe_exit(returncode: int) -> str:
  if returncode < 0:
    try:
      return f'signal {signal.Signals(-returncode).name}'
    except ValueError:
      return f'signal {-returncode}'
  return f'exit code {returncode}'


class Watchdog:
  """Watches one worker process for the main thread; a context manager (start/stop)."""

  def __init__(self, process: subprocess.Popen, *, log_path: str):
    self._process = process
    self._log_path = log_path
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
      returncode = self._process.poll()
      if returncode is not None:
        self._fail(f'the TFF worker died ({_describe_exit(returncode)}); see '
                   f'{self._log_path}; run the same command again to resume')
        return
      deadline = self._deadline
      if deadline is not None and time.monotonic() > deadline:
        self._process.kill()  # A stopped or wedged worker would otherwise linger.
        self._fail(f'the TFF worker did not answer within {self._deadline_s:.0f} s '
                   f'(--worker_timeout_s); see {self._log_path}; run the same command again '
                   'to resume')
        return

  def _fail(self, message: str) -> None:
    self._failure = message
    signal.pthread_kill(self._main, _SIGNAL)
