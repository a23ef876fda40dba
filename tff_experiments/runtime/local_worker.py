"""TFF's C++ worker, started and stopped by us, as the execution context of a run.

TFF's default local context starts `worker_binary` on the first computation, hands it our
stdout and never stops it: the worker outlives Python and a piped run hangs. Here the worker
is our child with its output in a log file, dies with us even on SIGKILL (PR_SET_PDEATHSIG),
and is stopped when the `local_worker` context exits.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from typing import Callable, Iterator, Optional

import portpicker
import tensorflow_federated as tff

from tff_experiments.runtime import contexts
from tff_experiments.runtime import watchdog

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 60.0
_LIBC = ctypes.CDLL(None, use_errno=True)


class _NoWorkerContext(tff.framework.SyncContext):
  """Default context: running a computation outside `local_worker` is an error, not a hang."""

  def invoke(self, comp, arg):
    del comp, arg
    raise RuntimeError('TFF computations run inside tff_experiments.runtime.local_worker.local_worker()')


# TFF's import-time default context would start an unmanaged worker on first use, and its
# manager's __del__ fails noisily at interpreter exit; replacing it now frees it cleanly.
tff.framework.set_default_context(_NoWorkerContext())


class _ReadyOnFirstUse(tff.framework.SyncContext):
  """`inner`, once `wait()` has returned: the worker starts (~1 s) while the driver traces its
  computations, instead of before."""

  def __init__(self, inner: tff.framework.SyncContext, wait: Callable[[], None]):
    self._inner, self._wait = inner, wait

  def invoke(self, comp, arg):
    if self._wait is not None:
      self._wait()
      self._wait = None
    return self._inner.invoke(comp, arg)


def worker_binary_path() -> str:
  """Path of the C++ worker shipped inside the TFF wheel."""
  return os.path.join(os.path.dirname(tff.__file__), 'data', 'worker_binary')


def _die_with(parent_pid: int):
  """A pre-exec hook for the child: SIGKILL it when `parent_pid` dies (even by SIGKILL)."""
  def hook() -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # The parent died before prctl took effect.
      os.kill(os.getpid(), signal.SIGKILL)
  return hook


def start_worker(*, port: int, log_path: Optional[str] = None,
                 max_concurrent_computation_calls: int = -1,
                 intra_op_threads: int = 1) -> subprocess.Popen:
  """Starts `worker_binary` serving on `port` (all interfaces: the binary has no bind address),
  its output appended to `log_path` (None: this process's stdout and stderr).

  `intra_op_threads` sizes TF's per-op thread pool in the worker. Clients' small per-batch ops
  gain nothing from splitting across threads, and clients already run in parallel, so one
  thread per op is fastest (measured: ~40% less worker CPU per MNIST round than TF's default).
  """
  env = {**os.environ, 'TF_NUM_INTRAOP_THREADS': str(intra_op_threads)}
  with open(log_path or os.devnull, 'ab') as log:
    return subprocess.Popen(
        [worker_binary_path(), f'--port={port}',
         f'--max_concurrent_computation_calls={max_concurrent_computation_calls}'],
        env=env, stdin=subprocess.DEVNULL, stdout=log if log_path else None,
        stderr=subprocess.STDOUT if log_path else None,
        preexec_fn=_die_with(os.getpid()), start_new_session=True)


def stop_worker(process: subprocess.Popen, *, grace_s: float = 5.0) -> None:
  """SIGTERM, then SIGKILL after `grace_s`; always reaps the child."""
  if process.poll() is None:
    process.terminate()
    try:
      process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


@contextlib.contextmanager
def local_worker(*, log_path: Optional[str] = None, max_concurrent_computation_calls: int = -1,
                 intra_op_threads: int = 1) -> Iterator[watchdog.Watchdog]:
  """Runs TFF computations on a private local worker for the duration of the block.

  The worker starts at once; the first computation waits until it answers (a RuntimeError if
  it exits or does not answer within a minute). Yields the worker's `watchdog.Watchdog`: if
  the worker dies, the block gets `watchdog.WorkerFailure` within a fraction of a second
  instead of hanging in gRPC retries; `deadline(s)` bounds a call to the worker.
  """
  log_path = log_path or os.devnull
  port = portpicker.pick_unused_port()
  process = start_worker(port=port, log_path=log_path,
                         max_concurrent_computation_calls=max_concurrent_computation_calls,
                         intra_op_threads=intra_op_threads)
  channel = None
  probe = watchdog.process_probe(process, log_path=log_path)
  try:
    channel = contexts.Channel(f'localhost:{port}')

    def wait_until_ready() -> None:
      failure = contexts.wait_until_ready(channel, timeout_s=_READY_TIMEOUT_S, failure=probe)
      if failure:
        raise RuntimeError(f'starting the TFF worker: {failure} (log: {log_path})')

    context = _ReadyOnFirstUse(contexts.sync_context(channel), wait_until_ready)
    with tff.framework.get_context_stack().install(context), \
        watchdog.Watchdog(probe, where=log_path, on_deadline=process.kill) as guard:
      yield guard
  finally:
    stop_worker(process)
    if channel is not None:
      channel.close()
