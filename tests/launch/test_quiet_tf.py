"""launch.quiet_tf: exactly TF's three import-time registration lines are dropped."""

import os
import subprocess
import sys

import pytest

from launch import quiet_tf

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NOISE = [
    b'2026-11-24 06:48:53.806556: E tensorflow/compiler/xla/stream_executor/cuda/cuda_dnn.cc:9342]'
    b' Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one'
    b' has already been registered\n',
    b'2026-11-24 06:48:53.806620: E tensorflow/compiler/xla/stream_executor/cuda/cuda_fft.cc:609]'
    b' Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one'
    b' has already been registered\n',
    b'2026-11-24 06:48:53.806654: E tensorflow/compiler/xla/stream_executor/cuda/cuda_blas.cc:1518'
    b'] Unable to register cuBLAS factory: Attempting to register factory for plugin cuBLAS when'
    b' one has already been registered\n',
]


@pytest.mark.parametrize('line', _NOISE)
def test_the_three_registration_lines_are_noise(line):
  assert quiet_tf.is_noise(line)


@pytest.mark.parametrize('line', [
    b'2026-11-24 06:48:53.8: E tensorflow/core/foo.cc:1] Unable to register cuDNN factory: '
    b'out of memory\n',
    b'2026-11-24 06:48:53.8: E tensorflow/core/bar.cc:2] Could not load dynamic library\n',
    b'Traceback (most recent call last):\n',
])
def test_other_errors_are_not_noise(line):
  assert not quiet_tf.is_noise(line)


def test_filtered_stderr_drops_only_the_noise_and_keeps_order():
  """C++-style writes to fd 2 and Python's sys.stderr inside the block; output after it."""
  code = (
      'import os, sys\n'
      'from launch import quiet_tf\n'
      'with quiet_tf.filtered_stderr():\n'
      f'  os.write(2, {_NOISE[0]!r})\n'
      "  os.write(2, b'E real C++ error one\\n')\n"
      f'  os.write(2, {_NOISE[1]!r} + {_NOISE[2]!r})\n'
      "  print('python warning', file=sys.stderr, flush=True)\n"
      "  os.write(2, b'partial line without newline')\n"
      "print('after', file=sys.stderr)\n")
  done = subprocess.run([sys.executable, '-c', code], cwd=_ROOT, capture_output=True,
                        timeout=60)
  assert done.returncode == 0, done.stderr
  assert done.stderr == (b'E real C++ error one\npython warning\npartial line without newline'
                         b'after\n')


def test_launch_entry_points_print_no_registration_lines():
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}  # Level 2 lets TF print them.
  done = subprocess.run([sys.executable, '-m', 'launch.run_experiment', '--helpshort'],
                        cwd=_ROOT, capture_output=True, text=True, timeout=120, env=env)
  assert 'total_rounds' in done.stdout
  assert 'Unable to register' not in done.stderr, done.stderr
