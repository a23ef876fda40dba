"""Worker services for tests: `python -m launch.worker` processes on 127.0.0.1 or a socket file."""

import os
import signal
import subprocess
import sys
import time
from typing import Optional

import portpicker
import process_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'PYTHONUNBUFFERED': '1'}
_READY = 'TFF worker (pid '


class WorkerService:
  """One `launch.worker` process and its worker_binary, on a fixed port or, given
  `socket_path`, on that Unix socket file only (`--socket`)."""

  def __init__(self, port: int = 0, socket_path: Optional[str] = None):
    self.socket_path = socket_path
    self.port = None if socket_path else port or portpicker.pick_unused_port()
    self.process = None
    self.binary_pid = None
    self.ready_line = None

  @property
  def target(self) -> str:
    return f'unix:{self.socket_path}' if self.socket_path else f'127.0.0.1:{self.port}'

  def start(self, timeout_s: float = 120) -> 'WorkerService':
    """Starts the service and waits for its ready line; finds its worker_binary."""
    where = f'--socket={self.socket_path}' if self.socket_path else f'--port={self.port}'
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'launch.worker', where], cwd=ROOT, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    for line in self.process.stdout:
      if line.startswith(_READY):
        self.ready_line = line
        self.binary_pid, = process_tree.worker_binaries(self.process.pid)
        return self
      if time.monotonic() > deadline:
        break
    raise AssertionError(f'worker at {self.target} did not start')

  def kill_binary(self) -> None:
    """SIGKILLs the worker_binary (a crash); the service then exits too."""
    os.kill(self.binary_pid, signal.SIGKILL)
    self.process.wait(timeout=30)

  def stop(self) -> None:
    if self.process is not None and self.process.poll() is None:
      self.process.terminate()
      self.process.wait(timeout=30)


def alive(pid: int) -> bool:
  """Whether `pid` runs (a zombie counts as dead)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().split(')')[-1].split()[0] != 'Z'
  except FileNotFoundError:
    return False
