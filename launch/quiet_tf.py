"""Imports TensorFlow without its three import-time "Unable to register ... factory" lines.

TF 2.14's C++ prints, on every import and at ERROR level (so TF_CPP_MIN_LOG_LEVEL=2 keeps them):

  E .../cuda_dnn.cc:9342] Unable to register cuDNN factory: Attempting to register factory for
  plugin cuDNN when one has already been registered

and the same for cuFFT and cuBLAS. They are harmless (the CUDA plugins register twice) but read
as failures. `import_tensorflow` runs `import tensorflow` with file descriptor 2 pointing at a
pipe (`tff_experiments.core.stderr_filter`); a thread copies every line to the real stderr
except those three, so any other error TF
(or Python) writes during the import still appears, in order. Each launch entry point calls it
before anything imports TF. Setting TF_CPP_MIN_LOG_LEVEL=3 would hide them too, but also every
real C++ error.
"""

import re
import sys

from tff_experiments.core import stderr_filter

# Exactly the three known registration lines (the cuDNN, cuFFT and cuBLAS plugins).
NOISE = re.compile(
    rb'^.*\] Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory '
    rb'for plugin (cuDNN|cuFFT|cuBLAS) when one has already been registered\r?\n?$')


def is_noise(line: bytes) -> bool:
  """Whether `line` is one of the three known registration lines."""
  return NOISE.match(line) is not None


def filtered_stderr():
  """Within the block, fd 2 (C++ and Python) goes through the noise filter to the real stderr."""
  return stderr_filter.filtered(is_noise)


def import_tensorflow():
  """`import tensorflow` with the registration lines filtered out; returns the module."""
  if 'tensorflow' in sys.modules:
    return sys.modules['tensorflow']
  with filtered_stderr():
    import tensorflow  # pylint: disable=g-import-not-at-top
  return tensorflow
