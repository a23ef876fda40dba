"""TFF's C++ worker, started and stopped by us, as the execution context of a run.

TFF's default local context starts `worker_binary` on the first computation, hands it our
stdout, listens on every interface unauthenticated and never stops it: the worker outlives
Python, a piped run hangs, and anyone on the network can run code through it. Here the worker
is private to this process (`private_worker`: a network namespace of its own, reached through
a Unix socket file only our user may open), logs to a file, dies with us even on SIGKILL
(PR_SET_PDEATHSIG), and is stopped when the `local_worker` context exits.
"""

import contextlib
import os
import shutil
import sys
import tempfile
from typing import Callable, Iterator, Optional

import tensorflow_federated as tff

from tff_experiments.runtime import contexts
from tff_experiments.runtime import private_worker
from tff_experiments.runtime import watchdog
from tff_experiments.runtime import worker_process

_READY_TIMEOUT_S = 60.0


class _NoWorkerContext(tff.framework.SyncContext):
  """Default context: running a computation outside `local_worker` is an error, not a hang."""

  def invoke(self, comp, arg):
    del comp, arg
    raise RuntimeError('TFF computations run inside tff_experiments.runtime.local_worker.local_worker()')


# TFF's import-time default context would start an unmanaged worker on first use, and its
# manager's __del__ fails noisily at interpreter exit; replacing it now frees it cleanly.
tff.framework.set_default_context(_NoWorkerContext())


class _ReadyOnFirstUse(tff.framework.SyncContext):
  """The context `connect()` returns, made on first use: the worker starts (~1 s) while the
  driver traces its computations, instead of before."""

  def __init__(self, connect: Callable[[], tff.framework.SyncContext]):
    self._connect, self._inner = connect, None

  def invoke(self, comp, arg):
    if self._inner is None:
      self._inner = self._connect()
    return self._inner.invoke(comp, arg)


def _socket_directory() -> str:
  """A new private (0700) temporary directory for the worker's socket file: not the run
  directory, as socket paths are limited to 108 bytes and shared drives often cannot hold
  sockets."""
  directory = tempfile.mkdtemp(prefix='tff-worker-')
  if len(os.fsencode(directory)) > private_worker.MAX_SOCKET_PATH_BYTES - len('/worker.sock'):
    os.rmdir(directory)
    directory = tempfile.mkdtemp(prefix='tff-worker-', dir='/tmp')
  return directory


@contextlib.contextmanager
def local_worker(*, log_path: Optional[str] = None, max_concurrent_computation_calls: int = -1,
                 intra_op_threads: int = 1) -> Iterator[watchdog.Watchdog]:
  """Runs TFF computations on a private local worker for the duration of the block.

  The worker is reachable by no other user and from no network: it listens in a network
  namespace of its own, reached through a Unix socket file in a private temporary directory
  (`private_worker`; where the machine forbids that, one line on stderr says what is exposed
  instead). It starts at once; the first computation waits until it answers (a RuntimeError
  if it exits or does not answer within a minute). Yields the worker's `watchdog.Watchdog`:
  if the worker dies, the block gets `watchdog.WorkerFailure` within a fraction of a second
  instead of hanging in gRPC retries; `deadline(s)` bounds a call to the worker.
  """
  log_path = log_path or os.devnull
  socket_path = os.path.join(_socket_directory(), 'worker.sock')
  channels = []
  try:
    process, status_pipe = private_worker.start(
        socket_path, log_path=log_path, own_directory=True,
        max_concurrent_computation_calls=max_concurrent_computation_calls,
        intra_op_threads=intra_op_threads)
  except BaseException:
    os.rmdir(os.path.dirname(socket_path))
    raise
  probe = watchdog.process_probe(process, log_path=log_path)

  def connect() -> tff.framework.SyncContext:
    status = private_worker.read_status(process, status_pipe, timeout_s=_READY_TIMEOUT_S)
    status_pipe.close()
    if status is None:
      failure = probe() or f'its launcher did not start within {_READY_TIMEOUT_S:.0f} s'
    else:
      if status[0] == private_worker.EXPOSED:
        print(private_worker.exposed_notice(status[1]), file=sys.stderr, flush=True)
      channels.append(contexts.Channel(f'unix:{socket_path}'))
      failure = contexts.wait_until_ready(channels[0], timeout_s=_READY_TIMEOUT_S,
                                          failure=probe)
    if failure:
      raise RuntimeError(f'starting the TFF worker: {failure} (log: {log_path})')
    return contexts.sync_context(channels[0])

  try:
    with tff.framework.get_context_stack().install(_ReadyOnFirstUse(connect)), \
        watchdog.Watchdog(probe, where=log_path, on_deadline=process.kill) as guard:
      yield guard
  finally:
    worker_process.stop(process)
    status_pipe.close()
    for channel in channels:
      channel.close()
    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)
