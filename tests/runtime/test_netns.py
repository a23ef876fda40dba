"""The private network namespace: a port listening inside cannot be reached from here."""

import os
import shutil
import socket
import subprocess
import sys
import textwrap

import process_tree
import pytest
import worker_processes

_LISTEN_INSIDE = textwrap.dedent("""
    import os, socket, sys
    from tff_experiments.runtime import netns
    flags, how = netns.first_possible_way()
    netns.enter(flags)
    server = socket.socket(socket.AF_INET6)
    server.bind(('', int(sys.argv[1])))  # Every interface, as worker_binary listens.
    server.listen()
    socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()  # Loopback is up.
    print(f'{how}|{os.getuid()}', flush=True)
    sys.stdin.readline()
""")


@pytest.mark.parametrize('user', [None, 65534])  # This test's user; nobody, unprivileged.
def test_a_port_listening_on_every_interface_inside_is_unreachable_from_here(user):
  if user is not None and (os.geteuid() != 0 or not shutil.which('setpriv')):
    pytest.skip('needs root and setpriv to run as another user')
  # Without the privilege to make a network namespace alone, a user namespace must own it.
  ways = (['network namespace', 'user and network namespace'] if user is None else
          ['user and network namespace'])
  with socket.socket() as free:
    free.bind(('127.0.0.1', 0))
    port = free.getsockname()[1]
  as_user = [] if user is None else ['setpriv', f'--reuid={user}', f'--regid={user}',
                                      '--clear-groups']
  inside = subprocess.Popen(as_user + [sys.executable, '-c', _LISTEN_INSIDE, str(port)],
                            cwd=worker_processes.ROOT, env=worker_processes.ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  try:
    how, uid = inside.stdout.readline().rstrip('\n').split('|')
    assert how in ways
    assert int(uid) == (os.getuid() if user is None else user)  # Mapped to itself inside.
    with pytest.raises(ConnectionRefusedError):
      socket.create_connection(('127.0.0.1', port)).close()
    held = process_tree.socket_inodes([inside.pid])
    assert held and not held & process_tree.listening_tcp('self').keys()
    assert held & process_tree.listening_tcp(inside.pid).keys()
  finally:
    inside.stdin.close()
    inside.wait(timeout=30)
