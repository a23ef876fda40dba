"""The sweep backend registry, its checks, and the optional Ray install (no Ray needed here)."""

import ast
import os
import sys

import pytest

import sweep_helpers
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import pool


def test_backends_are_chosen_by_name():
  assert backends.BACKENDS.names() == ['local', 'ray']
  runner = backends.check('local', None).build(
      2, cpus_per_job=1, address=None, on_start=lambda job: None,
      on_exit=lambda job, code, seconds: None)
  assert isinstance(runner, pool.Pool)


def test_a_ray_address_needs_the_ray_backend():
  with pytest.raises(backends.BackendError, match='--ray_address=auto needs --backend=ray'):
    backends.check('local', 'auto')


def test_missing_ray_is_one_line_naming_the_flag_and_the_install(monkeypatch):
  monkeypatch.setitem(sys.modules, 'ray', None)  # `import ray` raises ImportError.
  with pytest.raises(backends.BackendError) as error:
    backends.check('ray', None)
  message = str(error.value)
  assert '\n' not in message and message.startswith('--backend=ray needs Ray')
  assert 'pip install .[ray]' in message and 'requirements-ray.lock' in message


def _lock_pins(path):
  with open(path, encoding='utf-8') as f:
    return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def test_the_ray_extra_pins_what_the_ray_lock_pins():
  with open(os.path.join(sweep_helpers.ROOT, 'setup.py'), encoding='utf-8') as f:
    call = next(node for node in ast.walk(ast.parse(f.read())) if isinstance(node, ast.Call)
                and getattr(node.func, 'attr', None) == 'setup')
  extras = ast.literal_eval(next(k.value for k in call.keywords if k.arg == 'extras_require'))
  pins = _lock_pins(os.path.join(sweep_helpers.ROOT, 'requirements-ray.lock'))
  assert sorted(extras['ray']) == sorted(pins) and pins[0].startswith('ray==')
  # Only what requirements.lock lacks: installing it with --no-deps changes nothing there.
  base = {p.split('==')[0].lower().replace('_', '-')
          for p in _lock_pins(os.path.join(sweep_helpers.ROOT, 'requirements.lock'))}
  assert not base & {p.split('==')[0].lower() for p in pins}
