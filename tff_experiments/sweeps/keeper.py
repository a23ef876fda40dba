"""A keeper: a process that starts a service (the sweep's local Ray instance) and makes sure
nothing it started outlives the process that asked for it, even if that one is SIGKILLed.

`Keeper.start('module', 'start', kwargs, stop='stop')` runs `python -m
tff_experiments.sweeps.keeper` in a session of its own (a Ctrl-C in the terminal reaches only
the sweep, which stops its runs first). The keeper becomes a child subreaper
(PR_SET_CHILD_SUBREAPER: every orphaned descendant is re-parented to it, so the whole tree stays
below it whatever daemonizes), calls `module.start(**kwargs)`, which starts the service as its
descendants, and reports the JSON result. Then it watches a pipe whose write end only the
caller holds (not inherited by any child): end of file means the caller closed it or died,
however. It then calls `module.stop()` (the service's own shutdown), gives what is left
`grace_s` to exit, sends SIGTERM once to each process still there, SIGKILL `grace_s` later,
until none is left, and exits. SIGTERM, SIGHUP or SIGINT to the keeper does the same.
"""

import ctypes
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Mapping, Optional

_PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 5.0      # A run stopped this way writes its summary within it, or resumes anyway.
_STOP_S = 30.0     # For the service's own stop.
_POLL_S = 0.05
_LIBC = ctypes.CDLL(None, use_errno=True)


class KeeperError(RuntimeError):
  """The keeper could not start its service (a one-line message)."""


def descendants(root: int) -> list[int]:
  """The live processes below `root` (its children, theirs, ...), from /proc."""
  children: dict[int, list[int]] = {}
  for entry in os.listdir('/proc'):
    if not entry.isdigit():
      continue
    try:
      with open(f'/proc/{entry}/stat', encoding='ascii', errors='replace') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
      continue
    if fields[0] != 'Z':  # A zombie has exited; its parent reaps it.
      children.setdefault(int(fields[1]), []).append(int(entry))
  found, queue = [], list(children.get(root, []))
  while queue:
    pid = queue.pop()
    found.append(pid)
    queue += children.get(pid, [])
  return found


def _reap() -> None:
  """Collects every exited child (a subreaper inherits the orphans' exits)."""
  try:
    while os.waitpid(-1, os.WNOHANG)[0]:
      pass
  except ChildProcessError:
    pass


def stop_descendants(settle_s: float = GRACE_S, grace_s: float = GRACE_S) -> None:
  """Stops what is left below this process: `settle_s` to exit on its own (the processes of a
  service that was just stopped, and the runs its workers' deaths sent SIGTERM), then SIGTERM
  once each and `grace_s` more, then SIGKILL, until none is left (new ones included: a
  subreaper sees every process its tree starts)."""
  began, warned = time.monotonic(), set()
  while pids := descendants(os.getpid()):
    elapsed = time.monotonic() - began
    for pid in pids:
      late = elapsed > settle_s + grace_s
      if late or (elapsed > settle_s and pid not in warned):
        try:
          os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
        except ProcessLookupError:
          pass
        warned.add(pid)
    time.sleep(_POLL_S)
    _reap()
  _reap()


def _call(module: str, function: str, timeout_s: float) -> None:
  """`module.function()` in a thread, given at most `timeout_s` (a service's stop may hang)."""
  thread = threading.Thread(target=getattr(importlib.import_module(module), function),
                            daemon=True)
  thread.start()
  thread.join(timeout_s)


def _watch(fd: int) -> None:
  """Returns at end of file on `fd`, reaping orphans meanwhile."""
  while True:
    readable, _, _ = select.select([fd], [], [], 1.0)
    _reap()
    if readable and not os.read(fd, 4096):
      return


def _stop_on_signal(signum, frame) -> None:
  del signum, frame
  raise SystemExit(0)


def _handle_signals() -> None:
  """SIGTERM, SIGHUP and SIGINT stop the keeper (and so its service). Handled, not ignored: an
  ignored signal stays ignored in the service's processes (Ray's gentle cancel is a SIGINT)."""
  for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(signum, _stop_on_signal)


def _main(module: str, start: str, stop: str, kwargs_json: str, grace_s: str) -> None:
  """The keeper process: stdin is the watched pipe, stdout the report pipe; `module.start`
  starts the service, `module.stop` (if not '') stops it at the end."""
  if _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    print(json.dumps({'error': f'prctl(PR_SET_CHILD_SUBREAPER): '
                               f'{os.strerror(ctypes.get_errno())}'}), flush=True)
    os._exit(1)  # pylint: disable=protected-access
  watched, report = os.dup(0), os.dup(1)  # Not inherited; the service gets /dev/null.
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  os.dup2(null, 1)
  _handle_signals()
  code = 0
  try:
    try:
      result = {'result': getattr(importlib.import_module(module), start)(
          **json.loads(kwargs_json))}
    except Exception as e:  # pylint: disable=broad-except  # Told to the caller in one line.
      lines = [l.strip() for l in str(e).splitlines() if l.strip()]
      result, code = {'error': f'{type(e).__name__}: {lines[0] if lines else ""}'}, 1
    _handle_signals()  # Again: the service may have set its own (ray.init does).
    try:
      os.write(report, (json.dumps(result) + '\n').encode())
      os.close(report)
    except OSError:
      pass  # The caller is gone: stop at once.
    if code == 0:
      _watch(watched)
  except SystemExit:
    pass
  finally:
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
      signal.signal(signum, signal.SIG_IGN)  # The cleanup runs to its end.
    if stop and code == 0:
      _call(module, stop, _STOP_S)
    stop_descendants(float(grace_s), float(grace_s))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access  # No atexit teardown of the service.


class Keeper:
  """The caller's side: the keeper process and the write end of its pipe."""

  def __init__(self, process: subprocess.Popen, watched_write_end: int, *, grace_s: float):
    self.process, self._fd, self.result = process, watched_write_end, None
    self._grace_s = grace_s

  @classmethod
  def start(cls, module: str, start: str, kwargs: Mapping[str, Any], *, stop: str = '',
            env: Optional[Mapping[str, str]] = None, timeout_s: float = 300.0,
            grace_s: float = GRACE_S) -> 'Keeper':
    """Starts a keeper that calls `module.start(**kwargs)` and keeps what it starts, and at
    the end `module.stop()` (if given) before stopping what is left (`stop_descendants` with
    `grace_s`); the start's JSON result is `.result`. KeeperError (one line) if the start fails
    or times out."""
    read_end, write_end = os.pipe()  # Neither end is inherited by anything but the keeper.
    try:
      process = subprocess.Popen(
          [sys.executable, '-m', __name__, module, start, stop, json.dumps(dict(kwargs)),
           str(grace_s)],
          stdin=read_end, stdout=subprocess.PIPE, env=dict(env or os.environ),
          start_new_session=True)
    except BaseException:
      os.close(write_end)
      raise
    finally:
      os.close(read_end)
    keeper = cls(process, write_end, grace_s=grace_s)
    try:
      ready, _, _ = select.select([process.stdout], [], [], timeout_s)
      line = process.stdout.readline() if ready else b''
      report = json.loads(line) if line.strip() else {
          'error': f'no answer within {timeout_s:.0f} s' if not ready else 'it exited'}
    except BaseException:
      keeper.close()
      raise
    if 'error' in report:
      keeper.close()
      raise KeeperError(report['error'])
    keeper.result = report['result']
    return keeper

  def close(self) -> None:
    """Closes the pipe (the keeper stops everything it kept) and waits for the keeper."""
    timeout_s = _STOP_S + 2 * self._grace_s + 30
    if self._fd is not None:
      os.close(self._fd)
      self._fd = None
    try:
      self.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
    if self.process.stdout:
      self.process.stdout.close()


if __name__ == '__main__':
  _main(*sys.argv[1:6])
