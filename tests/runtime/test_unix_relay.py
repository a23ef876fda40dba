"""The Unix-socket relay: a private socket file, and bytes carried both ways unchanged."""

import os
import socket
import stat
import threading
import time

import numpy as np

from tff_experiments.runtime import unix_relay


def _echo_server(listener: socket.socket) -> None:
  """Echoes the one connection `listener` accepts, then closes it."""
  connection, _ = listener.accept()
  with connection:
    while True:
      data = connection.recv(65536)
      if not data:
        break
      connection.sendall(data)


def _send_and_receive(path: str, payload: bytes) -> bytes:
  with socket.socket(socket.AF_UNIX) as client:
    client.connect(path)
    sender = threading.Thread(target=lambda: (client.sendall(payload),
                                              client.shutdown(socket.SHUT_WR)))
    sender.start()
    chunks = []
    while True:
      chunk = client.recv(1 << 20)
      if not chunk:
        break
      chunks.append(chunk)
    sender.join()
  return b''.join(chunks)


def test_the_socket_file_is_0600_even_under_umask_0(tmp_path):
  previous = os.umask(0)
  try:
    with unix_relay.listen(str(tmp_path / 's')):
      mode = os.stat(tmp_path / 's').st_mode
  finally:
    os.umask(previous)
  assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_bytes_go_both_ways_unchanged_even_before_the_server_listens(tmp_path):
  server = socket.socket()
  server.bind(('127.0.0.1', 0))
  address = server.getsockname()
  path = str(tmp_path / 's')
  unix_relay.serve_in_background(unix_relay.listen(path), address, connect_timeout_s=30)
  payload = np.random.default_rng(0).bytes(3_000_017)  # Several chunks, an odd tail.

  def serve_later():
    time.sleep(0.3)  # The relay's first connection attempts are refused.
    server.listen()
    _echo_server(server)
  threading.Thread(target=serve_later, daemon=True).start()
  assert _send_and_receive(path, payload) == payload
  server.close()
