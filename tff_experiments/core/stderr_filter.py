"""Drops known noise lines that C++ libraries write to stderr, keeping every other line.

TensorFlow's C++ logs some harmless lines at ERROR level, so TF_CPP_MIN_LOG_LEVEL cannot hide
them without hiding real errors. `filtered` points file descriptor 2 at a pipe for the block; a
thread copies each line to the real stderr unless it is noise, so the rest appears in order.
"""

import contextlib
import os
import sys
import threading
from typing import Callable, Iterator

# How long the restored stderr waits for the copying thread to drain the pipe.
_DRAIN_TIMEOUT_S = 5.0


def _copy_lines(read_fd: int, write_fd: int, is_noise: Callable[[bytes], bool]) -> None:
  """Copies lines from `read_fd` to `write_fd` until EOF, dropping the noise lines."""
  with os.fdopen(read_fd, 'rb', buffering=0) as source:
    pending = b''
    while chunk := source.read(65536):
      pending += chunk
      *lines, pending = pending.split(b'\n')
      kept = b''.join(line + b'\n' for line in lines if not is_noise(line + b'\n'))
      if kept:
        os.write(write_fd, kept)
    if pending and not is_noise(pending):
      os.write(write_fd, pending)


@contextlib.contextmanager
def filtered(is_noise: Callable[[bytes], bool]) -> Iterator[None]:
  """Within the block, fd 2 (C++ and Python) goes to the real stderr without the lines (bytes,
  with their newline) that `is_noise` says are noise."""
  if sys.stderr is not None:
    sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # No stderr (closed): nothing to filter.
    yield
    return
  read_fd, write_fd = os.pipe()
  copier = threading.Thread(target=_copy_lines, args=(read_fd, saved, is_noise), daemon=True)
  copier.start()
  os.dup2(write_fd, 2)
  os.close(write_fd)
  try:
    yield
  finally:
    if sys.stderr is not None:
      sys.stderr.flush()
    os.dup2(saved, 2)  # Closes the pipe's last write end: the copier sees EOF and ends.
    copier.join(_DRAIN_TIMEOUT_S)
    if not copier.is_alive():  # Else a child inherited the pipe: leave the copier its fd.
      os.close(saved)
