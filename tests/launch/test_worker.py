"""launch.worker: serves TFF's worker on a port (refusing a taken one) or only on a Unix socket
file (refused where namespaces are forbidden), and leaves nothing behind."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import forbidden_namespaces
import process_tree
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


@pytest.fixture
def socket_path():
  directory = tempfile.mkdtemp(dir='/tmp')  # Short: socket paths have 107 bytes at most.
  yield os.path.join(directory, 'w.sock')
  shutil.rmtree(directory, ignore_errors=True)


def _run_worker(*args, command=lambda argv: argv):
  return subprocess.run(command([sys.executable, '-m', 'launch.worker', *args]),
                        cwd=worker_processes.ROOT, env=worker_processes.ENV,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('mode', ['port', 'socket'])
@pytest.mark.parametrize('stop', [signal.SIGTERM, signal.SIGKILL])
def test_the_worker_binary_never_outlives_the_service(stop, mode, socket_path):
  service = worker_processes.WorkerService(
      socket_path=socket_path if mode == 'socket' else None).start()
  tree = process_tree.descendants(service.process.pid)
  assert service.binary_pid in tree and all(map(worker_processes.alive, tree))
  service.process.send_signal(stop)
  service.process.wait(timeout=30)
  deadline = time.monotonic() + 10
  while any(map(worker_processes.alive, tree)) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not any(map(worker_processes.alive, tree))
  if stop == signal.SIGTERM:
    assert service.process.returncode == 0
    assert not os.path.exists(socket_path)


def test_a_socket_worker_has_no_tcp_port_and_a_socket_only_its_owner_may_open(socket_path):
  service = worker_processes.WorkerService(socket_path=socket_path).start()
  try:
    tree = [service.process.pid] + process_tree.descendants(service.process.pid)
    held = process_tree.socket_inodes(tree)
    assert not held & process_tree.listening_tcp('self').keys()
    assert held & process_tree.listening_tcp(service.binary_pid).keys()  # Its own namespace.
    mode = os.stat(socket_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert f'only on the Unix socket {socket_path}' in service.ready_line
    assert 'ssh -N -L' in service.ready_line
  finally:
    service.stop()


def test_port_and_socket_are_one_or_the_other(socket_path):
  for args in ([], ['--port=0', f'--socket={socket_path}']):
    done = _run_worker(*args)
    assert done.returncode == 2 and 'give either --port' in done.stderr


def test_a_socket_path_in_use_is_refused_naming_the_flag(socket_path):
  open(socket_path, 'w').close()
  done = _run_worker(f'--socket={socket_path}')
  assert done.returncode == 2 and f'--socket: {socket_path} exists' in done.stderr


def test_a_socket_worker_is_refused_where_namespaces_are_forbidden(socket_path):
  done = _run_worker(f'--socket={socket_path}', command=forbidden_namespaces.command)
  assert done.returncode == 2, done.stderr
  assert done.stderr.count('\n') == 1 and '--socket needs a network namespace' in done.stderr
  assert not os.path.exists(socket_path)
