"""The private worker's launcher: it says how private the worker is, exits as its worker did,
cleans up, and where the machine forbids namespaces falls back (or refuses) as it says."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import forbidden_namespaces
import process_tree
import pytest
import worker_processes

from tff_experiments.runtime import private_worker


@pytest.fixture
def socket_path():
  directory = tempfile.mkdtemp(dir='/tmp')  # Short: socket paths have 107 bytes at most.
  yield os.path.join(directory, 'w.sock')
  shutil.rmtree(directory, ignore_errors=True)


def _binary_of(launcher: subprocess.Popen) -> int:
  deadline = time.monotonic() + 30
  while not process_tree.worker_binaries(launcher.pid):
    assert time.monotonic() < deadline and launcher.poll() is None
    time.sleep(0.05)
  binary, = process_tree.worker_binaries(launcher.pid)
  return binary


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_the_launcher_exits_as_its_worker_did_and_removes_its_socket(socket_path, tmp_path,
                                                                     signum):
  launcher, status_pipe = private_worker.start(socket_path, log_path=str(tmp_path / 'w.log'),
                                               own_directory=True)
  with status_pipe:
    kind, _ = private_worker.read_status(launcher, status_pipe, timeout_s=60)
  assert kind == private_worker.PRIVATE and os.path.exists(socket_path)
  os.kill(_binary_of(launcher), signum)
  assert launcher.wait(timeout=30) == -signum
  assert not os.path.exists(os.path.dirname(socket_path))


def test_a_stopped_launcher_stops_its_worker_and_keeps_a_directory_it_does_not_own(
    socket_path, tmp_path):
  launcher, status_pipe = private_worker.start(socket_path, log_path=str(tmp_path / 'w.log'))
  with status_pipe:
    assert private_worker.read_status(launcher, status_pipe, timeout_s=60) is not None
  binary = _binary_of(launcher)
  launcher.terminate()
  assert launcher.wait(timeout=30) == -signal.SIGTERM
  deadline = time.monotonic() + 10
  while worker_processes.alive(binary) and time.monotonic() < deadline:
    time.sleep(0.05)
  assert not worker_processes.alive(binary)
  assert os.listdir(os.path.dirname(socket_path)) == []


@pytest.mark.parametrize('path,problem', [
    ('/tmp/' + 'x' * 103, 'longer than the 107 bytes'), ('/nonexistent/w.sock', 'directory'),
    ('/tmp', 'exists')])
def test_unusable_socket_paths_are_named(path, problem):
  assert problem in private_worker.socket_path_error(path)


_STATUS_SCRIPT = textwrap.dedent("""
    import sys
    from tff_experiments.runtime import private_worker
    launcher, pipe = private_worker.start(sys.argv[1], log_path=sys.argv[2],
                                          require_private=sys.argv[3] == 'private')
    print(*private_worker.read_status(launcher, pipe, timeout_s=60), sep='\\t', flush=True)
    if sys.stdin.readline() == '':  # Until the test closes stdin.
      print(launcher.wait(timeout=30), flush=True)
""")


def _status_where_namespaces_are_forbidden(socket_path, tmp_path, require: str):
  """Starts the launcher in a process where namespaces are forbidden; that process and its
  status line."""
  owner = subprocess.Popen(
      forbidden_namespaces.command([sys.executable, '-c', _STATUS_SCRIPT, socket_path,
                                    str(tmp_path / 'w.log'), require]),
      cwd=worker_processes.ROOT, env=worker_processes.ENV, text=True, stdin=subprocess.PIPE,
      stdout=subprocess.PIPE)
  return owner, owner.stdout.readline().rstrip('\n').split('\t')


def test_where_namespaces_are_forbidden_the_worker_listens_on_the_port_it_names(socket_path,
                                                                                tmp_path):
  owner, (kind, detail) = _status_where_namespaces_are_forbidden(socket_path, tmp_path, '')
  try:
    assert kind == private_worker.EXPOSED
    port = int(detail.split()[0])
    assert 'No space left on device' in detail or 'not permitted' in detail
    deadline = time.monotonic() + 30
    while not _listening_ports(owner.pid) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert _listening_ports(owner.pid) == {port}  # What the notice names, in this namespace.
    assert 'forbids a private network namespace' in private_worker.exposed_notice(detail)
    assert f'port {port} of every interface' in private_worker.exposed_notice(detail)
  finally:
    owner.stdin.close()
    owner.wait(timeout=60)


def _listening_ports(pid: int) -> set[int]:
  """Ports of this namespace's listening TCP sockets held by `pid`'s tree."""
  held = process_tree.socket_inodes(process_tree.descendants(pid))
  return {port for inode, (_, port) in process_tree.listening_tcp('self').items()
          if inode in held}


def test_where_namespaces_are_forbidden_a_required_private_worker_is_refused(socket_path,
                                                                             tmp_path):
  owner, (kind, _) = _status_where_namespaces_are_forbidden(socket_path, tmp_path, 'private')
  owner.stdin.close()
  assert owner.stdout.read().strip() == '3' and kind == private_worker.REFUSED
  owner.wait(timeout=60)
  assert not os.path.exists(socket_path)
