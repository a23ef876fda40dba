"""Relays connections from a Unix socket to a TCP address, both ways, a thread per direction.

The TCP side is opened in this process's network namespace, so a worker listening only in a
private namespace (`netns`) is reached through a socket file whose permissions say who may
connect. gRPC accepts `unix:PATH` targets, so its clients need no change.
"""

import contextlib
import os
import signal
import socket
import threading
import time

_CHUNK_BYTES = 1 << 20
_RETRY_S = 0.02
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def listen(path: str) -> socket.socket:
  """A Unix socket listening at `path` (a new file), mode 0600 whatever the umask."""
  sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  previous = os.umask(0o177)  # The file is created by bind(): no moment with a wider mode.
  try:
    sock.bind(path)
  finally:
    os.umask(previous)
  os.chmod(path, 0o600)
  sock.listen(64)
  return sock


def _connect(address: tuple[str, int], timeout_s: float) -> socket.socket:
  """A TCP connection to `address`, retried while refused (the server still starting)."""
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      upstream = socket.create_connection(address)
      upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
      return upstream
    except ConnectionRefusedError:
      if time.monotonic() > deadline:
        raise
      time.sleep(_RETRY_S)


def _pump(source: socket.socket, sink: socket.socket) -> None:
  """Copies `source` to `sink` until `source` ends or either fails, then ends `sink`'s side."""
  buffer = bytearray(_CHUNK_BYTES)
  view = memoryview(buffer)
  try:
    while True:
      count = source.recv_into(buffer)
      if not count:
        break
      sink.sendall(view[:count])
  except OSError:
    pass
  finally:
    with contextlib.suppress(OSError):
      sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, address: tuple[str, int], connect_timeout_s: float) -> None:
  with client:
    try:
      upstream = _connect(address, connect_timeout_s)
    except OSError:
      return  # The client sees its connection closed, and retries as gRPC does.
    with upstream:
      back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
      back.start()
      _pump(client, upstream)
      back.join()


def _start_quiet_thread(target, *args) -> None:
  """A daemon thread that never takes the process's signals (they stay with the main thread,
  whose blocking waits they must interrupt)."""
  previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
  try:
    threading.Thread(target=target, args=args, daemon=True).start()
  finally:
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def serve_in_background(listener: socket.socket, address: tuple[str, int], *,
                        connect_timeout_s: float) -> None:
  """Relays every connection `listener` accepts to a new TCP connection to `address`, from
  daemon threads (they end with the process). A connection that arrives before `address`
  accepts waits up to `connect_timeout_s` for it."""
  def accept_forever() -> None:
    while True:
      client, _ = listener.accept()
      _start_quiet_thread(_relay, client, address, connect_timeout_s)
  _start_quiet_thread(accept_forever)
