r"""Serves TFF's C++ worker (the `worker_binary` in the TFF wheel) for `run_experiment --workers`.

  python -m launch.worker --port=8000                     # on each worker machine
  python -m launch.run_experiment --workers=host1:8000,host2:8000 ...   # on the driver

The worker runs whatever TensorFlow graphs it is sent, over unauthenticated, unencrypted gRPC.
With --port it listens on ALL network interfaces (the binary has no bind-address option): run
it only on a trusted network, with the port firewalled so that only the driver reaches it (e.g.
`iptables -A INPUT -p tcp --dport 8000 ! -s DRIVER_IP -j DROP`), or inside a private container
network (deploy/k8s's NetworkPolicy). The safe way is --socket: the worker gets a network
namespace of its own and is reached only through a Unix socket file (mode 0600), which the
driver reaches over SSH, authenticated and encrypted:

  python -m launch.worker --socket=$HOME/tff-worker.sock          # on the worker machine
  ssh -N -L /tmp/w1.sock:/home/me/tff-worker.sock me@host1 &      # on the driver machine
  python -m launch.run_experiment --workers=unix:/tmp/w1.sock ...

The worker reads client data files at the driver's `--cache_dir` path (see README, "Several
machines"). It stops on Ctrl-C or SIGTERM; if this process dies, the worker dies with it.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TF is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
from launch import quiet_tf

quiet_tf.import_tensorflow()  # First: without TF's three cuDNN/cuFFT/cuBLAS lines.

import signal
import socket
import sys

from absl import app
from absl import flags
import portpicker

from tff_experiments.runtime import contexts
from tff_experiments.runtime import private_worker
from tff_experiments.runtime import watchdog
from tff_experiments.runtime import worker_process

_PORT = flags.DEFINE_integer('port', None, 'Port to serve on, all interfaces, unauthenticated '
                             '(0: any free one, printed at start).', lower_bound=0,
                             upper_bound=65535)
_SOCKET = flags.DEFINE_string(
    'socket', None, 'Serve only on this Unix socket file (mode 0600; a new path), the worker in '
    'a network namespace of its own with no reachable port; drivers reach it over SSH '
    '(ssh -L LOCAL.sock:SOCKET host, then --workers=unix:LOCAL.sock). Instead of --port.')
_INTRA_OP_THREADS = flags.DEFINE_integer(
    'intra_op_threads', 1, 'Threads of each TensorFlow op (clients already run in parallel; '
    '1 is fastest for small models).', lower_bound=1)
_MAX_CONCURRENT_CALLS = flags.DEFINE_integer(
    'max_concurrent_computation_calls', -1, 'Computations the worker runs at once (-1: no '
    'limit).', lower_bound=-1)
_LOG_FILE = flags.DEFINE_string('log_file', None, 'Append the worker\'s output to this file '
                                '(default: this process\'s stdout).')
_READY_TIMEOUT_S = 60.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _error(text: str) -> int:
  print(f'worker: error: {text}', file=sys.stderr, flush=True)
  return 2


def _port_in_use(port: int) -> bool:
  """Whether something already listens on `port` (the binary would say so less clearly)."""
  with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As gRPC: TIME_WAIT is fine.
    try:
      probe.bind(('', port))
    except OSError:
      return True
  return False


def _serve(process, target: str, serving: str) -> int:
  """Waits for the worker at `target` (started as `process`), prints that it is `serving`,
  then runs until it exits or a stop signal comes; the exit code."""
  channel = contexts.Channel(target)
  try:
    failure = contexts.wait_until_ready(
        channel, timeout_s=_READY_TIMEOUT_S, failure=watchdog.process_probe(
            process, log_path=_LOG_FILE.value or 'its output above'))
    if failure:
      return _error(failure)
    print(f'TFF worker (pid {process.pid}) serving {serving}. Ctrl-C or SIGTERM stops it.',
          flush=True)
    code = process.wait()
    print(f'worker: the TFF worker exited ({watchdog.describe_exit(code)})', file=sys.stderr,
          flush=True)
    return 1
  finally:
    worker_process.stop(process)
    channel.close()


def _serve_port(port: int) -> int:
  """The worker on `port` of every interface."""
  if _port_in_use(port):
    return _error(f'--port={port} is in use; pick another port (or 0 for any free one)')
  process = worker_process.start(
      port=port, log_path=_LOG_FILE.value, intra_op_threads=_INTRA_OP_THREADS.value,
      max_concurrent_computation_calls=_MAX_CONCURRENT_CALLS.value)
  return _serve(process, f'localhost:{port}',
                f'on port {port} of every interface; drivers use '
                f'--workers={socket.gethostname()}:{port}. Unauthenticated: keep the port '
                'firewalled to the driver, or serve on --socket behind SSH instead')


def _serve_socket(path: str) -> int:
  """The worker in a network namespace of its own, reached only through the socket `path`."""
  path = os.path.abspath(path)
  problem = private_worker.socket_path_error(path)
  if problem:
    return _error(f'--socket: {problem}')
  process, status_pipe = private_worker.start(
      path, log_path=_LOG_FILE.value, require_private=True,
      intra_op_threads=_INTRA_OP_THREADS.value,
      max_concurrent_computation_calls=_MAX_CONCURRENT_CALLS.value)
  try:
    with status_pipe:
      status = private_worker.read_status(process, status_pipe, timeout_s=_READY_TIMEOUT_S)
  except KeyboardInterrupt:
    worker_process.stop(process)
    raise
  if status is not None and status[0] == private_worker.REFUSED:
    process.wait()
    return _error(f'--socket needs a network namespace of its own for the worker, and this '
                  f'machine forbids it ({status[1]}); serve on a firewalled --port instead')
  return _serve(process, f'unix:{path}',
                f'only on the Unix socket {path} (mode 0600; no network port); drivers reach '
                f'it over SSH: ssh -N -L /tmp/w.sock:{path} {socket.gethostname()}, then '
                '--workers=unix:/tmp/w.sock')


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if (_PORT.value is None) == (_SOCKET.value is None):
    return _error('give either --port (0 picks a free port) or --socket=PATH')
  for signum in _STOP_SIGNALS:
    signal.signal(signum, _raise_keyboard_interrupt)
  try:
    if _SOCKET.value is not None:
      return _serve_socket(_SOCKET.value)
    return _serve_port(_PORT.value or portpicker.pick_unused_port())
  except KeyboardInterrupt:
    print('worker: stopped', flush=True)
    return 0


if __name__ == '__main__':
  app.run(main)
