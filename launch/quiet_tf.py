"""Imports TensorFlow without its three import-time "Unable to register ... factory" lines.

TF 2.14's C++ prints, on every import and at ERROR level (so TF_CPP_MIN_LOG_LEVEL=2 keeps them):

  E .../cuda_dnn.cc:9342] Unable to register cuDNN factory: Attempting to register factory for
  plugin cuDNN when one has already been registered

and the same for cuFFT and cuBLAS. They are harmless (the CUDA plugins register twice) but read
as failures. `import_tensorflow` runs `import tensorflow` with file descriptor 2 pointing at a
pipe; a thread copies every line to the real stderr except those three, so any other error TF
(or Python) writes during the import still appears, in order. Each launch entry point calls it
before anything imports TF. Setting TF_CPP_MIN_LOG_LEVEL=3 would hide them too, but also every
real C++ error.
"""

import contextlib
import os
import re
import sys
import threading
from typing import Iterator

# Exactly the three known registration lines (the cuDNN, cuFFT and cuBLAS plugins).
NOISE = re.compile(
    rb'^.*\] Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory '
    rb'for plugin (cuDNN|cuFFT|cuBLAS) when one has already been registered\r?\n?$')
# How long the restored stderr waits for the copying thread to drain the pipe.
_DRAIN_TIMEOUT_S = 5.0


def is_noise(line: bytes) -> bool:
  """Whether `line` is one of the three known registration lines."""
  return NOISE.match(line) is not None


def _copy_lines(read_fd: int, write_fd: int) -> None:
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
def filtered_stderr() -> Iterator[None]:
  """Within the block, fd 2 (C++ and Python) goes through the noise filter to the real stderr."""
  if sys.stderr is not None:
    sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # No stderr (closed): nothing to filter.
    yield
    return
  read_fd, write_fd = os.pipe()
  copier = threading.Thread(target=_copy_lines, args=(read_fd, saved), daemon=True)
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


def import_tensorflow():
  """`import tensorflow` with the registration lines filtered out; returns the module."""
  if 'tensorflow' in sys.modules:
    return sys.modules['tensorflow']
  with filtered_stderr():
    import tensorflow  # pylint: disable=g-import-not-at-top
  return tensorflow
