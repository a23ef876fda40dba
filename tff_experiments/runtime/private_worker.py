"""A TFF worker reachable only through a Unix socket file: no network port at all.

`worker_binary` listens on every interface, unauthenticated, and has no bind-address option.
`start` runs `python -m tff_experiments.runtime.private_worker`, a small launcher that moves
into a network namespace of its own (`netns`), starts the worker there as its child, and
relays connections from the socket file (mode 0600, in a directory its owner chose) to the
worker's port inside the namespace. The port exists only in that namespace; the file is
reachable by its owner alone, across namespaces. Both processes die with their parent, even
on SIGKILL; when the worker exits the launcher exits the same way, so the parent sees the
worker's fate (e.g. `signal SIGKILL`) in the launcher's.

Where the machine forbids new namespaces (e.g. Ubuntu 24.04's AppArmor restriction on user
namespaces, some containers), the worker listens in the host's namespace instead, on a free
port of every interface, still relayed from the socket file; the status line says so (or the
launcher refuses, with `require_private`).
"""

import argparse
import contextlib
import os
import resource
import select
import signal
import subprocess
import sys
import time
from typing import IO, Optional

from tff_experiments.runtime import netns
from tff_experiments.runtime import unix_relay
from tff_experiments.runtime import worker_process

# A fresh namespace has no other socket, so any port is free there.
_PORT_IN_NAMESPACE = 8000
_CONNECT_TIMEOUT_S = 60.0
# Unix socket paths are limited to 108 bytes (sun_path), with the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
PRIVATE, EXPOSED, REFUSED = 'private', 'exposed', 'refused'
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def socket_path_error(path: str) -> Optional[str]:
  """Why a socket file cannot be made at `path`, or None."""
  if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
    return f'{path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes a socket path may have'
  if os.path.lexists(path):
    return f'{path} exists'
  if not os.path.isdir(os.path.dirname(path) or '.'):
    return f'the directory of {path} does not exist'
  return None


def start(socket_path: str, *, log_path: Optional[str], own_directory: bool = False,
          require_private: bool = False,
          max_concurrent_computation_calls: int = -1,
          intra_op_threads: int = 1) -> tuple[subprocess.Popen, IO[bytes]]:
  """Starts the launcher serving a worker at `socket_path` (see the module docstring), its
  and the worker's output appended to `log_path` (None: this process's); with
  `own_directory`, the launcher removes the socket's directory at exit, too. Returns the
  launcher and the pipe of its status line (`read_status`)."""
  status_read, status_write = os.pipe()
  package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = {**os.environ,
         'PYTHONPATH': os.pathsep.join(filter(None, [package_root,
                                                     os.environ.get('PYTHONPATH')]))}
  command = [sys.executable, '-m', __name__, f'--socket={socket_path}',
             f'--status_fd={status_write}',
             f'--max_concurrent_computation_calls={max_concurrent_computation_calls}',
             f'--intra_op_threads={intra_op_threads}']
  command += ['--own_directory'] * own_directory + ['--require_private'] * require_private
  try:
    with open(log_path or os.devnull, 'ab') as log:
      process = subprocess.Popen(
          command, env=env, stdin=subprocess.DEVNULL, stdout=log if log_path else None,
          stderr=subprocess.STDOUT if log_path else None, pass_fds=(status_write,),
          preexec_fn=worker_process.die_with(os.getpid(), signal.SIGTERM),
          start_new_session=True)
  except BaseException:
    os.close(status_read)
    raise
  finally:
    os.close(status_write)
  return process, os.fdopen(status_read, 'rb')


def read_status(process: subprocess.Popen, pipe: IO[bytes],
                timeout_s: float) -> Optional[tuple[str, str]]:
  """The launcher's status, once it serves: (PRIVATE, how), (EXPOSED, 'PORT reason') or
  (REFUSED, reason); None if it exited or did not answer within `timeout_s`."""
  deadline = time.monotonic() + timeout_s
  while not select.select([pipe], [], [], 0.05)[0]:
    if process.poll() is not None or time.monotonic() > deadline:
      return None
  line = pipe.readline().decode(errors='replace').strip()
  kind, _, detail = line.partition(' ')
  return (kind, detail) if kind in (PRIVATE, EXPOSED, REFUSED) else None


def exposed_notice(detail: str) -> str:
  """The one line telling the user that the worker of an EXPOSED status is on the network."""
  port, _, reason = detail.partition(' ')
  return (f'tff_experiments: this machine forbids a private network namespace for the TFF '
          f'worker ({reason}), so it listens unauthenticated on port {port} of every interface '
          'for this run (README, "Security")')


# --- The launcher process -------------------------------------------------------------------

class _Stopped(Exception):
  """A stop signal arrived (from the parent, or sent when the parent died)."""


def _raise_stopped(signum, frame):
  del frame
  raise _Stopped(signum)


def _exit_like(returncode: int) -> None:
  """Exits as the worker did: with its exit code, or killed by the same signal."""
  sys.stdout.flush()
  if returncode >= 0:
    os._exit(returncode)  # pylint: disable=protected-access
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # A mirrored SIGSEGV dumps no core.
  with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler.
    signal.signal(-returncode, signal.SIG_DFL)
  os.kill(os.getpid(), -returncode)
  os._exit(128 - returncode)  # pylint: disable=protected-access  # A signal that did not kill.


def _report(status_fd: int, line: str) -> None:
  with os.fdopen(status_fd, 'w') as status:
    status.write(line + '\n')


def _start_serving(args: argparse.Namespace, parent: int) -> subprocess.Popen:
  """Enters a private network namespace if the machine allows, starts the worker, relays the
  socket to it and reports the status; the worker."""
  flags, how = netns.first_possible_way()
  if flags is None and args.require_private:
    _report(args.status_fd, f'{REFUSED} {how}')
    raise SystemExit(3)
  if flags is not None:
    netns.enter(flags)
    worker_process.die_with_parent(parent, signal.SIGTERM)  # New credentials may clear it.
    port, status = _PORT_IN_NAMESPACE, f'{PRIVATE} {how}'
  else:
    import portpicker  # pylint: disable=g-import-not-at-top  # Only here: it is not tiny.
    port = portpicker.pick_unused_port()
    status = f'{EXPOSED} {port} {how}'
  listener = unix_relay.listen(args.socket)
  worker = worker_process.start(
      port=port, max_concurrent_computation_calls=args.max_concurrent_computation_calls,
      intra_op_threads=args.intra_op_threads)
  unix_relay.serve_in_background(listener, ('127.0.0.1', port),
                                 connect_timeout_s=_CONNECT_TIMEOUT_S)
  _report(args.status_fd, status)
  return worker


def _serve(args: argparse.Namespace) -> None:
  """Serves until the worker exits or a stop signal comes (the parent's death sends one), then
  stops the worker, removes the socket file (and its directory if it is ours) and exits as
  the worker did."""
  parent = os.getppid()
  for signum in _STOP_SIGNALS:
    signal.signal(signum, _raise_stopped)
  worker = None
  try:
    worker = _start_serving(args, parent)
    returncode = worker.wait()
  except _Stopped as stopped:
    returncode = -stopped.args[0]
  finally:
    for signum in _STOP_SIGNALS:
      signal.signal(signum, signal.SIG_IGN)
    if worker is not None:
      worker_process.stop(worker)
    with contextlib.suppress(OSError):
      os.unlink(args.socket)
    if args.own_directory:
      with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(args.socket))
  _exit_like(returncode)


def main(argv: Optional[list[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--socket', required=True)
  parser.add_argument('--own_directory', action='store_true',
                      help='remove the socket\'s directory too at exit')
  parser.add_argument('--status_fd', type=int, required=True)
  parser.add_argument('--max_concurrent_computation_calls', type=int, default=-1)
  parser.add_argument('--intra_op_threads', type=int, default=1)
  parser.add_argument('--require_private', action='store_true')
  _serve(parser.parse_args(argv))


if __name__ == '__main__':
  main()
