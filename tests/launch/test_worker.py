"""launch.worker: serves TFF's worker on a port, refuses a taken one, leaves nothing behind."""

import signal
import socket
import subprocess
import sys
import time

import pytest
import worker_processes

pytestmark = pytest.mark.slow


def test_a_port_in_use_is_refused_naming_the_flag():
  with socket.socket() as taken:
    taken.bind(('', 0))
    taken.listen()
    port = taken.getsockname()[1]
    done = subprocess.run([sys.executable, '-m', 'launch.worker', f'--port={port}'],
                          cwd=worker_processes.ROOT, env=worker_processes.ENV,
                          capture_output=True, text=True, timeout=120)
  assert done.returncode == 2
  assert f'--port={port} is in use' in done.stderr


@pytest.mark.parametrize('stop', [signal.SIGTERM, signal.SIGKILL])
def test_the_worker_binary_never_outlives_the_service(stop):
  service = worker_processes.WorkerService().start()
  assert worker_processes.alive(service.binary_pid)
  service.process.send_signal(stop)
  service.process.wait(timeout=30)
  deadline = time.monotonic() + 10
  while worker_processes.alive(service.binary_pid) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not worker_processes.alive(service.binary_pid)
  if stop == signal.SIGTERM:
    assert service.process.returncode == 0
