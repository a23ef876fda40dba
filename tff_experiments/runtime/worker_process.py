"""TFF's C++ `worker_binary` as a child process that never outlives its parent.

Imports no TensorFlow, so that the small launcher of a private worker (`private_worker`)
starts in milliseconds.
"""

import ctypes
import importlib.util
import os
import signal
import subprocess
from typing import Callable, Optional

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def binary_path() -> str:
  """Path of the C++ worker shipped inside the TFF wheel (found without importing TFF)."""
  spec = importlib.util.find_spec('tensorflow_federated')
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError('tensorflow_federated is not installed')
  return os.path.join(spec.submodule_search_locations[0], 'data', 'worker_binary')


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
  """Makes this process get `signum` when `parent_pid`, its parent, dies (even by SIGKILL);
  gets it at once if the parent is already gone."""
  _LIBC.prctl(_PR_SET_PDEATHSIG, signum)
  if os.getppid() != parent_pid:  # The parent died before prctl took effect.
    os.kill(os.getpid(), signum)


def die_with(parent_pid: int, signum: int = signal.SIGKILL) -> Callable[[], None]:
  """A pre-exec hook for a child: `die_with_parent(parent_pid, signum)`."""
  return lambda: die_with_parent(parent_pid, signum)


def start(*, port: int, log_path: Optional[str] = None, max_concurrent_computation_calls: int = -1,
          intra_op_threads: int = 1) -> subprocess.Popen:
  """Starts `worker_binary` serving on `port` of every interface of this process's network
  namespace (the binary has no bind address), its output appended to `log_path` (None: this
  process's stdout and stderr); it dies with this process.

  `intra_op_threads` sizes TF's per-op thread pool in the worker. Clients' small per-batch ops
  gain nothing from splitting across threads, and clients already run in parallel, so one
  thread per op is fastest (measured: ~40% less worker CPU per MNIST round than TF's default).
  """
  env = {**os.environ, 'TF_NUM_INTRAOP_THREADS': str(intra_op_threads)}
  with open(log_path or os.devnull, 'ab') as log:
    return subprocess.Popen(
        [binary_path(), f'--port={port}',
         f'--max_concurrent_computation_calls={max_concurrent_computation_calls}'],
        env=env, stdin=subprocess.DEVNULL, stdout=log if log_path else None,
        stderr=subprocess.STDOUT if log_path else None,
        preexec_fn=die_with(os.getpid()), start_new_session=True)


def stop(process: subprocess.Popen, *, grace_s: float = 5.0) -> None:
  """SIGTERM, then SIGKILL after `grace_s`; always reaps the child."""
  if process.poll() is None:
    process.terminate()
    try:
      process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
